import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { App } from '../src/app.js';
import { Datasets, readTable } from '../src/data/index.js';
import { FIXTURES, getJson, postJson, REPO_ROOT, startTestApp } from './helpers.js';

const ADULT = join(REPO_ROOT, 'datasets', 'adult', 'adult.csv');

describe('model gauges for Prometheus', () => {
  let app: App;
  let url: string;

  before(async () => {
    app = await startTestApp({ models: null, predictionFlushMs: 50, registryPollMs: 200 });
    url = app.http.url;
    await new Datasets(app.db, app.artifacts).add(ADULT, { name: 'adult' }, 'test');
    await app.registry.createVersion(
      {
        name: 'income',
        content: {
          file: await readFile(join(FIXTURES, 'tabular', '1', 'model.onnx')),
          fileName: 'model.onnx',
        },
        createModel: true,
        trainingData: ['adult@1'],
        config: { label_names: ['<=50K', '>50K'] },
      },
      'test',
    );
    for (let i = 0; i < 100; i++) {
      if ((await getJson(`${url}/v2/models/income/ready`)).status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    await app?.close();
  });

  test('accuracy, error rate, p99, cost and drift against the training dataset, by model and version', async () => {
    const records: Record<string, unknown>[] = [];
    for await (const b of readTable(ADULT, { batchRows: 300 })) {
      const [a, h, w] = ['age', 'hours_per_week', 'workclass'].map((c) => b.columns.indexOf(c));
      // Twenty years older than the training data: age drifts, the rest does not.
      for (const r of b.rows)
        records.push({
          age: Number(r[a!]) + 20,
          hours_per_week: Number(r[h!]),
          workclass: r[w!] ?? 'Private',
        });
      break;
    }
    const ids: string[] = [];
    for (let i = 0; i < records.length; i += 50) {
      const r = await postJson(`${url}/v1/models/income:predict`, { instances: records.slice(i, i + 50) });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      ids.push(r.body.id);
    }
    await postJson(
      `${url}/v1/feedback`,
      ids.map((id) => ({ request_id: id, row: 0, ground_truth: '<=50K' })),
    );
    await app.predictions!.checkpoint();
    await app.gauges.refresh();
    const [g] = app.gauges.current;
    assert.equal(g?.model, 'income');
    assert.equal(g?.version, '1');
    assert.equal(g?.drift?.columns.find((c) => c.column === 'age')?.drifted, true);
    assert.equal(g?.drift?.columns.find((c) => c.column === 'hours_per_week')?.drifted, false);

    const text = await (await fetch(`${url}/metrics`)).text();
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1]);
    assert.equal(value(/^slipway_drift_share\{model="income",version="1"\} (\S+)$/m), 1 / 3);
    assert.equal(value(/^slipway_drift_detected\{model="income",version="1",column="age"\} (\S+)$/m), 1);
    assert.match(
      text,
      /^slipway_drift_score\{model="income",version="1",column="age",test="wasserstein"\} \S+$/m,
    );
    assert.equal(value(/^slipway_model_error_rate\{model="income",version="1"\} (\S+)$/m), 0);
    const accuracy = value(/^slipway_model_accuracy\{model="income",version="1"\} (\S+)$/m);
    assert.ok(accuracy >= 0 && accuracy <= 1);
    // Every classification figure by name, the same as the performance API's for the day.
    const perf = await getJson(`${url}/api/v1/monitoring/performance?model=income&version=1&since=1d`);
    for (const metric of ['accuracy', 'precision', 'recall', 'f1']) {
      const gauge = value(
        new RegExp(`^slipway_model_quality\\{model="income",version="1",metric="${metric}"\\} (\\S+)$`, 'm'),
      );
      assert.equal(gauge, perf.body.metrics[metric], metric);
    }
    assert.equal(
      value(/^slipway_model_quality\{model="income",version="1",metric="accuracy"\} (\S+)$/m),
      accuracy,
    );
    assert.ok(value(/^slipway_model_latency_p99_milliseconds\{model="income",version="1"\} (\S+)$/m) > 0);
    assert.ok(value(/^slipway_model_cost_per_1000_predictions\{model="income",version="1"\} (\S+)$/m) > 0);

    // Every metric the Grafana dashboard charts is one this server exposes (process metrics aside:
    // tests start servers without them).
    const dashboard = await readFile(join(REPO_ROOT, 'deploy', 'grafana', 'slipway-dashboard.json'), 'utf8');
    const charted = new Set(
      [...dashboard.matchAll(/slipway_[a-z0-9_]+/g)]
        .map((m) => m[0].replace(/_(bucket|sum|count)$/, ''))
        .filter((n) => !n.startsWith('slipway_process_') && n !== 'slipway_overview'),
    );
    const exposed = new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!));
    assert.deepEqual(
      [...charted].filter((n) => !exposed.has(n)),
      [],
    );
    assert.ok(charted.size >= 15, [...charted].join(', '));
  });
});
