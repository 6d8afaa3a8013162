import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { App } from '../src/app.js';
import { Datasets, readTable } from '../src/data/index.js';
import { analyzeDrift } from '../src/monitoring/drift/index.js';
import { binaryAuc, classificationMetrics, regressionMetrics } from '../src/monitoring/performance.js';
import { getJson, postJson, REPO_ROOT, startTestApp, tempRepository } from './helpers.js';

describe('feedback and performance', () => {
  let app: App;
  let url: string;
  let remove: () => Promise<void>;

  before(async () => {
    const repo = await tempRepository(['tabular', 'identity_fp32']);
    remove = repo.remove;
    await writeFile(
      join(repo.dir, 'tabular', 'config.json'),
      JSON.stringify({ label_names: ['<=50K', '>50K'], monitoring: { segments: ['region'] } }),
    );
    app = await startTestApp({ models: repo.dir, predictionFlushMs: 50 });
    url = app.http.url;
  });
  after(async () => {
    await app?.close();
    await remove?.();
  });

  test('feedback before or after its prediction, resent or replaced, joins by request id and row', async () => {
    // Ground truth may arrive before the prediction it belongs to (the client chose the id).
    const early = await postJson(`${url}/v1/feedback`, { request_id: 'early-1', ground_truth: '>50K' });
    assert.deepEqual(early.body, { accepted: 1 });
    const p = await postJson(`${url}/v1/models/tabular:predict`, {
      id: 'early-1',
      instances: [{ age: 70, hours_per_week: 60, workclass: 'Private', region: 'EU' }],
    });
    assert.equal(p.status, 200);
    const two = await postJson(`${url}/v1/models/tabular:predict`, {
      id: 'pair-1',
      instances: [
        { age: 20, hours_per_week: 10, workclass: 'Private', region: 'US' },
        { age: 30, hours_per_week: 20, workclass: 'State-gov', region: 'US' },
      ],
    });
    assert.equal(two.status, 200);
    // A list; the second item of the pair is sent twice, the last value wins.
    const fb = await postJson(`${url}/v1/feedback`, {
      feedback: [
        { request_id: 'pair-1', row: 0, ground_truth: '<=50K' },
        { request_id: 'pair-1', row: 1, ground_truth: '>50K', weight: 2 },
      ],
    });
    assert.deepEqual(fb.body, { accepted: 2 });
    const again = await postJson(`${url}/v1/feedback`, [
      { request_id: 'pair-1', row: 1, ground_truth: '<=50K', weight: 2 },
    ]);
    assert.deepEqual(again.body, { accepted: 1 });
    await app.predictions!.flush();

    const listed = await getJson(`${url}/api/v1/monitoring/predictions?model=tabular&request_id=pair-1`);
    assert.equal(listed.status, 200);
    assert.deepEqual(
      listed.body.predictions.map((x: { row: number; ground_truth: unknown; segments: unknown }) => [
        x.row,
        x.ground_truth,
        x.segments,
      ]),
      [
        [0, '<=50K', { region: 'US' }],
        [1, '<=50K', { region: 'US' }],
      ],
    );

    const perf = await getJson(`${url}/api/v1/monitoring/performance?model=tabular&since=1h&by=region`);
    assert.equal(perf.status, 200, JSON.stringify(perf.body));
    assert.equal(perf.body.labelled, 3);
    const labels = [
      p.body.predictions[0].label,
      two.body.predictions[0].label,
      two.body.predictions[1].label,
    ];
    const truth = ['>50K', '<=50K', '<=50K'];
    const weights = [1, 1, 2];
    const correct = labels.reduce((n, l, i) => n + (l === truth[i] ? weights[i]! : 0), 0);
    assert.equal(perf.body.metrics.accuracy, correct / 4);
    assert.deepEqual(Object.keys(perf.body.segments), ['EU', 'US']);
    assert.equal(perf.body.segments.EU.rows, 1);
    assert.equal(perf.body.segments.US.rows, 2);
    const eu = await getJson(`${url}/api/v1/monitoring/performance?model=tabular&since=1h&segment=region:EU`);
    assert.equal(eu.body.labelled, 1);
  });

  test('service stats: requests and errors from the closed minute windows, latency quantiles of the log', async () => {
    await app.predictions!.checkpoint(); // writes the open windows, as a minute closing does
    const s = await getJson(`${url}/api/v1/monitoring/service?model=tabular&since=1h`);
    assert.equal(s.status, 200, JSON.stringify(s.body));
    assert.equal(s.body.requests, 2);
    assert.equal(s.body.errors, 0);
    assert.equal(s.body.error_rate, 0);
    assert.equal(s.body.logged, 3);
    assert.ok(s.body.latency_ms.p50 > 0 && s.body.latency_ms.p99 >= s.body.latency_ms.p50);
    assert.ok(s.body.cpu_seconds > 0 && s.body.cpu_seconds < 1, String(s.body.cpu_seconds));

    // Versions side by side: cost per 1000 from the CPU time at the default price (0.045 per CPU-hour).
    const v = await getJson(`${url}/api/v1/monitoring/versions?model=tabular&since=1h`);
    assert.equal(v.status, 200, JSON.stringify(v.body));
    assert.equal(v.body.versions.length, 1);
    const one = v.body.versions[0];
    assert.equal(one.version, '1');
    assert.equal(one.requests, 2);
    assert.ok(Math.abs(one.cost_per_1000 - ((one.cpu_seconds / 3600) * 0.045 * 1000) / 2) < 1e-15);
    assert.equal(one.labelled, 3);
    assert.equal(typeof one.accuracy, 'number');
  });

  test('a classifier called through V2 is scored by class name, with ROC AUC and log loss from its probabilities', async () => {
    // V2 answers carry the label as an INT64 index and the probabilities as an [N, 2] tensor;
    // config.json's label_names name the classes, as the records API answers them.
    const rows = [
      [25, 20, 'State-gov'],
      [45, 50, 'Private'],
      [60, 60, 'Private'],
      [35, 40, 'Self-emp'],
    ] as const;
    const r = await postJson(`${url}/v2/models/tabular/infer`, {
      id: 'v2-cls',
      parameters: { region: 'V2' },
      inputs: [
        { name: 'age', datatype: 'FP32', shape: [4, 1], data: rows.map((x) => x[0]) },
        { name: 'hours_per_week', datatype: 'FP32', shape: [4, 1], data: rows.map((x) => x[1]) },
        { name: 'workclass', datatype: 'BYTES', shape: [4, 1], data: rows.map((x) => x[2]) },
      ],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const names = ['<=50K', '>50K'];
    const out = (name: string) => r.body.outputs.find((o: { name: string }) => o.name === name).data;
    const labels = (out('label') as number[]).map((k) => names[k]!);
    const p1 = (out('probabilities') as number[]).filter((_, k) => k % 2 === 1);
    const truth = ['<=50K', '>50K', '<=50K', '>50K'];
    await postJson(
      `${url}/v1/feedback`,
      truth.map((t, row) => ({ request_id: 'v2-cls', row, ground_truth: t })),
    );
    await app.predictions!.flush();
    const perf = await getJson(
      `${url}/api/v1/monitoring/performance?model=tabular&since=1h&segment=region:V2`,
    );
    assert.equal(perf.status, 200, JSON.stringify(perf.body));
    const m = perf.body.metrics;
    assert.equal(m.task, 'classification');
    assert.deepEqual(m.classes, names);
    assert.equal(m.accuracy, labels.filter((l, i) => l === truth[i]).length / 4);
    const auc = binaryAuc(
      p1,
      truth.map((t) => t === '>50K'),
      [1, 1, 1, 1],
    );
    assert.ok(Math.abs(m.roc_auc - auc!) < 1e-6, `${m.roc_auc} against ${auc}`);
    const loss = -truth.reduce((sum, t, i) => sum + Math.log(t === '>50K' ? p1[i]! : 1 - p1[i]!), 0) / 4;
    assert.ok(Math.abs(m.log_loss - loss) < 1e-6, `${m.log_loss} against ${loss}`);
  });

  test('bad feedback and bad ranges are 400s naming the field', async () => {
    const missing = await postJson(`${url}/v1/feedback`, { request_id: 'x' });
    assert.equal(missing.status, 400);
    assert.match(missing.body.error, /ground_truth/);
    const weight = await postJson(`${url}/v1/feedback`, { request_id: 'x', ground_truth: 1, weight: -1 });
    assert.equal(weight.status, 400);
    assert.match(weight.body.error, /weight/);
    const since = await getJson(`${url}/api/v1/monitoring/performance?model=tabular&since=yesterday`);
    assert.equal(since.status, 400);
    assert.match(since.body.error, /since must be/);
    const window = await getJson(`${url}/api/v1/monitoring/performance?model=tabular&window=5x`);
    assert.equal(window.status, 400);
    assert.match(window.body.error, /window must be a duration/);
  });

  test('regression: a model with one numeric output gets MAE, RMSE, MAPE, R² per window', async () => {
    const xs = [1, 2, 3, 4];
    const r = await postJson(`${url}/v2/models/identity_fp32/infer`, {
      id: 'reg-1',
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [4, 1], data: xs }],
    });
    assert.equal(r.status, 200);
    const ys = [1.5, 2, 2, 5];
    await postJson(
      `${url}/v1/feedback`,
      ys.map((y, row) => ({ request_id: 'reg-1', row, ground_truth: y })),
    );
    await app.predictions!.flush();
    const perf = await getJson(
      `${url}/api/v1/monitoring/performance?model=identity_fp32&since=1h&window=30m`,
    );
    assert.equal(perf.status, 200, JSON.stringify(perf.body));
    const m = perf.body.metrics;
    assert.equal(m.task, 'regression');
    assert.equal(m.mae, (0.5 + 0 + 1 + 1) / 4);
    assert.equal(m.rmse, Math.sqrt((0.25 + 0 + 1 + 1) / 4));
    assert.equal(m.mape, (0.5 / 1.5 + 0 + 1 / 2 + 1 / 5) / 4);
    const mean = (1.5 + 2 + 2 + 5) / 4;
    const ssTot = ys.reduce((s, y) => s + (y - mean) ** 2, 0);
    assert.equal(m.r2, 1 - 2.25 / ssTot);
    // 30-minute windows aligned on the clock, covering the last hour: two or three of them.
    assert.ok(perf.body.windows.length >= 2 && perf.body.windows.length <= 3);
    assert.ok(perf.body.windows.every((w: { start: string }) => Date.parse(w.start) % 1_800_000 === 0));
    assert.equal(
      perf.body.windows.reduce((n: number, w: { labelled: number }) => n + w.labelled, 0),
      4,
    );
  });
});

describe('performance metrics', () => {
  test('binary classification by hand: confusion matrix, precision, recall, F1, ROC AUC with ties, log loss', () => {
    const rows = [
      { actual: 'b', predicted: 'b', probabilities: { a: 0.2, b: 0.8 }, weight: 1 },
      { actual: 'b', predicted: 'a', probabilities: { a: 0.6, b: 0.4 }, weight: 1 },
      { actual: 'a', predicted: 'a', probabilities: { a: 0.6, b: 0.4 }, weight: 1 },
      { actual: 'a', predicted: 'b', probabilities: { a: 0.3, b: 0.7 }, weight: 1 },
      { actual: 'a', predicted: 'a', probabilities: { a: 0.9, b: 0.1 }, weight: 1 },
    ];
    const m = classificationMetrics(rows);
    assert.deepEqual(m.classes, ['a', 'b']);
    assert.equal(m.positive, 'b');
    assert.deepEqual(m.confusion_matrix, [
      [2, 1],
      [1, 1],
    ]);
    assert.equal(m.accuracy, 3 / 5);
    assert.equal(m.precision, 1 / 2);
    assert.equal(m.recall, 1 / 2);
    assert.equal(m.f1, 1 / 2);
    // Pairs (pos, neg): 0.8 beats all 3; 0.4 ties 0.4 (½), beats 0.1, loses to 0.7 → (3 + 1.5) / 6.
    assert.equal(m.roc_auc, 4.5 / 6);
    const ll = -(Math.log(0.8) + Math.log(0.4) + Math.log(0.6) + Math.log(0.3) + Math.log(0.9)) / 5;
    assert.ok(Math.abs(m.log_loss! - ll) < 1e-12);
    assert.equal(binaryAuc([0.5, 0.5], [true, true], [1, 1]), null);
  });

  test('three classes: macro averages; numeric labels sort numerically', () => {
    const rows = [
      { actual: 10, predicted: 10, weight: 1 },
      { actual: 2, predicted: 10, weight: 1 },
      { actual: 2, predicted: 2, weight: 1 },
      { actual: 3, predicted: 3, weight: 1 },
    ];
    const m = classificationMetrics(rows);
    assert.deepEqual(m.classes, ['2', '3', '10']);
    // precision: 2 → 1, 3 → 1, 10 → 1/2; recall: 2 → 1/2, 3 → 1, 10 → 1.
    assert.equal(m.precision, (1 + 1 + 0.5) / 3);
    assert.equal(m.recall, (0.5 + 1 + 1) / 3);
    assert.equal(m.roc_auc, null);
  });

  test('regression: a constant truth gives R² 1 when exact, 0 otherwise', () => {
    assert.equal(regressionMetrics([{ actual: 3, predicted: 3, weight: 1 }]).r2, 1);
    assert.equal(
      regressionMetrics([
        { actual: 3, predicted: 4, weight: 1 },
        { actual: 3, predicted: 3, weight: 1 },
      ]).r2,
      0,
    );
  });
});

describe('drift of logged traffic', () => {
  let app: App;
  let url: string;
  let remove: () => Promise<void>;
  const ADULT = join(REPO_ROOT, 'datasets', 'adult', 'adult.csv');

  before(async () => {
    const repo = await tempRepository(['tabular']);
    remove = repo.remove;
    app = await startTestApp({ models: repo.dir, predictionFlushMs: 50 });
    url = app.http.url;
    await new Datasets(app.db, app.artifacts).add(ADULT, { name: 'adult' }, 'test');
  });
  after(async () => {
    await app?.close();
    await remove?.();
  });

  /** Adult rows as an application sends them, `shift` years older. */
  async function adultRecords(count: number, skip: number, shift: number) {
    const out: Record<string, unknown>[] = [];
    for await (const b of readTable(ADULT, { batchRows: 4096 })) {
      const [a, h, w] = ['age', 'hours_per_week', 'workclass'].map((c) => b.columns.indexOf(c));
      for (const r of b.rows.slice(skip, skip + count)) {
        out.push({
          age: Number(r[a!]) + shift,
          hours_per_week: Number(r[h!]),
          workclass: r[w!] ?? 'Private',
        });
      }
      break;
    }
    return out;
  }

  test('against the dataset version: same population passes, an age shift is caught on age alone', async () => {
    const start = Date.now();
    const send = async (records: Record<string, unknown>[]) => {
      // tabular takes batches of at most 64 rows
      for (let i = 0; i < records.length; i += 50) {
        const r = await postJson(`${url}/v1/models/tabular:predict`, { instances: records.slice(i, i + 50) });
        assert.equal(r.status, 200, JSON.stringify(r.body));
      }
    };
    await send(await adultRecords(600, 0, 0));
    await app.predictions!.flush();
    const mid = Date.now() + 1;
    await new Promise((r) => setTimeout(r, 5));
    await send(await adultRecords(600, 600, 15));
    await app.predictions!.flush();

    const same = await getJson(
      `${url}/api/v1/monitoring/drift?model=tabular&since=${start}&until=${mid}&reference=adult@1`,
    );
    assert.equal(same.status, 200, JSON.stringify(same.body));
    assert.equal(same.body.reference, 'adult@1');
    assert.deepEqual(Object.keys(same.body.columns).sort(), ['age', 'hours_per_week', 'workclass']);
    // A reference of 48 842 rows: Evidently's large-reference defaults.
    assert.equal(same.body.columns.age.test, 'wasserstein');
    assert.equal(same.body.columns.workclass.test, 'jensenshannon');
    assert.equal(same.body.columns.age.drifted, false);
    assert.equal(same.body.dataset_drift, false);

    const shifted = await getJson(
      `${url}/api/v1/monitoring/drift?model=tabular&since=${mid}&reference=adult@1`,
    );
    assert.equal(shifted.status, 200, JSON.stringify(shifted.body));
    assert.equal(shifted.body.columns.age.drifted, true);
    assert.equal(shifted.body.columns.hours_per_week.drifted, false);
    assert.equal(shifted.body.drift_share, 1 / 3);

    // The same numbers as the offline engine on the same rows.
    const offline = await analyzeDrift(
      (async function* () {
        const tables = await new Datasets(app.db, app.artifacts).tables('adult@1');
        for await (const b of readTable(tables[0]!.local, { format: 'csv' })) {
          const idx = ['age', 'hours_per_week', 'workclass'].map((c) => b.columns.indexOf(c));
          yield {
            columns: ['age', 'hours_per_week', 'workclass'],
            rows: b.rows.map((r) => idx.map((i) => r[i]!)),
            firstRow: b.firstRow,
          };
        }
      })(),
      (async function* () {
        const all = await adultRecords(600, 600, 15);
        yield {
          columns: ['age', 'hours_per_week', 'workclass'],
          rows: all.map((r) => [r.age, r.hours_per_week, r.workclass] as never[]),
          firstRow: 1,
        };
      })(),
    );
    assert.equal(shifted.body.columns.age.score, offline.report.columns.age!.score);

    // The multivariate check beside the per-column tests: the shifted range reconstructs worse.
    const mvSame = await getJson(
      `${url}/api/v1/monitoring/drift?model=tabular&since=${start}&until=${mid}&reference=adult@1&multivariate=true`,
    );
    const mvShifted = await getJson(
      `${url}/api/v1/monitoring/drift?model=tabular&since=${mid}&reference=adult@1&multivariate=true`,
    );
    assert.equal(mvShifted.status, 200, JSON.stringify(mvShifted.body));
    assert.equal(mvShifted.body.multivariate.method, 'pca_reconstruction');
    assert.deepEqual(mvShifted.body.multivariate.columns, ['age', 'hours_per_week', 'workclass']);
    assert.equal(mvSame.body.multivariate.drifted, false);
    assert.ok(mvShifted.body.multivariate.score > mvSame.body.multivariate.score);

    // Against an earlier range of the log itself.
    const window = await getJson(
      `${url}/api/v1/monitoring/drift?model=tabular&since=${mid}&reference=window:${start}..${mid}`,
    );
    assert.equal(window.status, 200, JSON.stringify(window.body));
    assert.equal(window.body.columns.age.test, 'ks');
    assert.equal(window.body.columns.age.drifted, true);
    // The predictions are compared too, as the window profiles name them; a training dataset
    // holds no such column, so the comparisons above were over the inputs alone.
    assert.equal(window.body.columns['prediction.label'].type, 'categorical');
    assert.equal(typeof window.body.columns['prediction.probabilities.>50K'].score, 'number');
    assert.equal(shifted.body.columns['prediction.label'], undefined);
  });

  test("a model's config.json chooses tests and thresholds per column; a request's choice for every column replaces them", async () => {
    // Reloaded with monitoring.drift in its config (the logged rows above stay).
    const config = {
      max_batch_size: 64,
      label_names: ['<=50K', '>50K'],
      monitoring: {
        drift: {
          drift_share: 0.3,
          threshold: 0.05,
          columns: {
            hours_per_week: { test: 'psi', threshold: 0.001 },
            // Absent from the dataset reference: left out there, not refused.
            'prediction.label': { test: 'chisquare' },
          },
        },
      },
    };
    const load = await postJson(`${url}/v2/repository/models/tabular/load`, {
      parameters: { config: JSON.stringify(config) },
    });
    assert.equal(load.status, 200, JSON.stringify(load.body));
    const r = await getJson(`${url}/api/v1/monitoring/drift?model=tabular&since=1h&reference=adult@1`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.columns.hours_per_week.test, 'psi');
    assert.equal(r.body.columns.hours_per_week.threshold, 0.001);
    assert.equal(
      r.body.columns.age.test,
      'wasserstein',
      'a column the config does not name keeps the default',
    );
    assert.equal(r.body.columns.age.threshold, 0.05, "the config's threshold for every column");
    const drifted = Object.values(r.body.columns as Record<string, { drifted: boolean }>).filter(
      (c) => c.drifted,
    );
    assert.equal(r.body.dataset_drift, drifted.length / 3 >= 0.3);
    const asked = await getJson(
      `${url}/api/v1/monitoring/drift?model=tabular&since=1h&reference=adult@1&test=jensenshannon`,
    );
    assert.equal(asked.status, 200, JSON.stringify(asked.body));
    assert.equal(asked.body.columns.hours_per_week.test, 'jensenshannon');
    // The config's thresholds were chosen for its tests: the request's test keeps its own default.
    assert.equal(asked.body.columns.hours_per_week.threshold, 0.1);
    assert.equal(asked.body.columns.age.threshold, 0.1);
    // A bad choice in config.json is refused at load, naming the field.
    const bad = await postJson(`${url}/v2/repository/models/tabular/load`, {
      parameters: {
        config: JSON.stringify({ monitoring: { drift: { columns: { age: { threshold: -1 } } } } }),
      },
    });
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    assert.match(bad.body.error, /monitoring\.drift\.columns\.age\.threshold/);
    const unknown = await postJson(`${url}/v2/repository/models/tabular/load`, {
      parameters: {
        config: JSON.stringify({ monitoring: { drift: { columns: { age: { test: 'pzi' } } } } }),
      },
    });
    assert.equal(unknown.status, 400, JSON.stringify(unknown.body));
    assert.match(
      unknown.body.error,
      /monitoring\.drift\.columns\.age\.test' must be one of Evidently's tests: ks, /,
    );
  });

  test('no reference, no data, a bad test name: 400s saying what is missing', async () => {
    const training = await getJson(`${url}/api/v1/monitoring/drift?model=tabular&since=1h`);
    assert.equal(training.status, 400);
    assert.match(training.body.error, /names no training dataset version/);
    // A model neither served nor ever logged is not found; a served one with nothing in range is a 400.
    const none = await getJson(`${url}/api/v1/monitoring/drift?model=nope&since=1h&reference=adult@1`);
    assert.equal(none.status, 404);
    assert.match(none.body.error, /model 'nope' is not served here and has no logged predictions/);
    const empty = await getJson(
      `${url}/api/v1/monitoring/drift?model=tabular&since=2000-01-01&until=2000-01-02&reference=adult@1`,
    );
    assert.equal(empty.status, 400);
    assert.match(empty.body.error, /no logged predictions of model 'tabular' in that range/);
    // Service figures, performance and version comparisons: the same 404 for a model nothing here
    // knows, and an empty answer (zeros) for a served model without traffic in the range.
    for (const what of ['service', 'performance', 'versions']) {
      const unknown = await getJson(`${url}/api/v1/monitoring/${what}?model=nope&since=1h`);
      assert.equal(unknown.status, 404, `${what}: ${JSON.stringify(unknown.body)}`);
      assert.match(unknown.body.error, /model 'nope' is not served here and has no logged predictions/);
      const quiet = await getJson(
        `${url}/api/v1/monitoring/${what}?model=tabular&since=2000-01-01&until=2000-01-02`,
      );
      assert.equal(quiet.status, 200, `${what}: ${JSON.stringify(quiet.body)}`);
    }
  });
});
