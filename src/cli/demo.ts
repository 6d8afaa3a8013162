import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type App, startApp } from '../app.js';
import { loadSettings } from '../config/index.js';
import { Datasets, readTable } from '../data/index.js';
import { closeOnSignals } from './signals.js';

const MODEL = 'adult-income';
const REGISTERED = 'adult';
const root = (p: string) => fileURLToPath(new URL(`../../../${p}`, import.meta.url));

async function startOnFreePorts(
  port: string | undefined,
  grpcPort: string | undefined,
  dataDir: string,
): Promise<App> {
  const base = { models: root('examples/models'), dataDir, logLevel: 'warn' as const, shutdownGraceMs: 2000 };
  try {
    return await startApp(
      loadSettings({ flags: { ...base, port: port ?? 8080, grpcPort: grpcPort ?? 8081 } }),
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port !== undefined) throw err;
    return startApp(loadSettings({ flags: { ...base, port: 0, grpcPort: 0 } }));
  }
}

/** `npm run demo`: serve the bundled model, show how to call it, and send a little traffic. */
export async function runDemo(flags: { port?: string; grpcPort?: string; exit?: boolean }): Promise<void> {
  // The demo's registry lives in a fresh folder, removed when the demo stops.
  const dataDir = await mkdtemp(join(tmpdir(), 'slipway-demo-'));
  const app = await startOnFreePorts(flags.port, flags.grpcPort, dataDir);
  const close = app.close.bind(app);
  app.close = () => close().finally(() => rm(dataDir, { recursive: true, force: true }));
  const url = app.http.url;
  const sample = JSON.parse(readFileSync(root('examples/adult/sample-records.json'), 'utf8')) as {
    instances: Record<string, string | number>[];
  };
  const one = JSON.stringify({ instances: sample.instances.slice(0, 1) });
  const meta = app.plane.modelMetadata(MODEL);
  const v2Request = {
    inputs: meta.inputs.map((i) => {
      const v = sample.instances[0]![i.name];
      return { name: i.name, datatype: i.datatype, shape: [1, 1], data: [v] };
    }),
  };
  const v2 = JSON.stringify(v2Request);
  const top = JSON.stringify({
    ...v2Request,
    outputs: [{ name: 'probabilities', parameters: { classification: 1 } }],
  });
  const out = process.stdout;
  out.write(`\nSlipway is serving the demo model '${MODEL}' (UCI Adult, income > 50K)\n`);
  out.write(`  REST  ${url}\n`);
  if (app.grpc) out.write(`  gRPC  127.0.0.1:${app.grpc.port}\n`);
  out.write('\nTry:\n');
  out.write(`  curl ${url}/v2/health/ready\n`);
  out.write(`  curl ${url}/v2/models/${MODEL}\n`);
  out.write(`  curl -s ${url}/v1/models/${MODEL}:predict -H 'content-type: application/json' -d '${one}'\n`);
  out.write(`  curl -s ${url}/v2/models/${MODEL}/infer -H 'content-type: application/json' -d '${v2}'\n`);
  out.write(`  curl -s ${url}/v2/models/${MODEL}/infer -d '${top}'   (the top class)\n`);
  out.write(`  curl -s ${url}/v2/models/${MODEL}/stats\n`);
  out.write(`  curl -s ${url}/metrics | grep slipway_inference\n`);

  // The registry: the training data becomes dataset version adult@1, then the same file is
  // registered as 'adult' with metrics and lineage to it, `champion` on it, and served by name.
  await new Datasets(app.db, app.artifacts).add(root('datasets/adult/adult.csv'), { name: 'adult' }, 'demo');
  const upload = await fetch(
    `${url}/api/v1/models/${REGISTERED}/versions?create_model=true&metric=accuracy=0.8713&training_data=adult@1&alias=champion&source=examples/adult/train.py`,
    {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: readFileSync(root(`examples/models/${MODEL}/1/model.onnx`)),
    },
  );
  if (upload.status !== 201) throw new Error(`registering the demo model failed: ${await upload.text()}`);
  for (let i = 0; i < 200 && !(await fetch(`${url}/v2/models/${REGISTERED}/ready`)).ok; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  out.write(`\nThe registry holds '${REGISTERED}' v1 (alias champion), served by name from the registry:\n`);
  out.write(`  curl -s ${url}/api/v1/models/${REGISTERED}\n`);
  out.write(`  curl -s ${url}/api/v1/models/${REGISTERED}/card.md\n`);
  out.write(
    `  curl -s ${url}/v1/models/${REGISTERED}:predict -H 'content-type: application/json' -d '${one}'\n`,
  );
  out.write(`  open ${url}/docs  (the admin API)\n`);
  out.write(`  python: mlflow.set_tracking_uri("${url}")  (an MLflow tracking server and registry)\n`);

  out.write(`\nSending ${sample.instances.length} records, then 500 single-record requests 16 at a time…\n`);
  const res = await fetch(`${url}/v1/models/${MODEL}:predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(sample),
  });
  const body = (await res.json()) as {
    predictions: { label: string; probabilities: Record<string, number> }[];
  };
  body.predictions.forEach((p, i) => {
    const r = sample.instances[i]!;
    const probs = Object.entries(p.probabilities)
      .map(([k, v]) => `${k} ${v.toFixed(3)}`)
      .join(', ');
    out.write(`  age ${r.age}, ${r.occupation}, ${r.hours_per_week} h/week → ${p.label}  (${probs})\n`);
  });

  const latencies: number[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  let next = 0;
  const worker = async () => {
    while (next < 500) {
      const i = next++;
      const record = { ...sample.instances[i % sample.instances.length]!, age: 20 + (i % 50) };
      const t0 = performance.now();
      await post(agent, `${url}/v1/models/${MODEL}:predict`, JSON.stringify({ instances: [record] }));
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const stats = app.plane.statistics(MODEL)[0]!;
  out.write(
    `  500 requests (the client shares this process's event loop): p50 ${latencies[250]!.toFixed(2)} ms, ` +
      `p99 ${latencies[495]!.toFixed(2)} ms; ` +
      `${stats.execution_count} model executions served ${stats.inference_count} inferences (dynamic batching)\n`,
  );

  await monitoringTour(app, url);

  if (flags.exit) {
    await app.close();
    return;
  }
  out.write(`\nServing at ${url} — press Ctrl-C to stop.\n`);
  closeOnSignals(app);
}

/** Adult's test rows without missing values, as an application sends them, with their true label. */
async function adultTestRows(): Promise<{ record: Record<string, string | number>; income: string }[]> {
  const rows: { record: Record<string, string | number>; income: string }[] = [];
  for await (const b of readTable(root('datasets/adult/adult.csv'))) {
    for (const cells of b.rows) {
      const r = Object.fromEntries(b.columns.map((c, i) => [c, cells[i]]));
      if (r.split !== 'test' || cells.some((c) => c === null)) continue;
      const record: Record<string, string | number> = {};
      for (const c of b.columns) {
        if (c === 'income' || c === 'split') continue;
        const v = r[c] as string;
        record[c] = /^-?\d+$/.test(v) ? Number(v) : v;
      }
      rows.push({ record, income: r.income as string });
    }
  }
  return rows;
}

/**
 * The monitoring part of the demo: against the training data's dataset version, traffic drifts
 * part-way (older graduates working longer hours arrive), ground truth follows, and the demo
 * prints the drift report and the alert that fires on it.
 */
async function monitoringTour(app: App, url: string): Promise<void> {
  const out = process.stdout;
  out.write(
    '\nMonitoring: against the training data (dataset adult@1), 600 test rows, then 600 rows of older graduates…\n',
  );
  // A webhook receiver, as a chat or paging service would be.
  const received: unknown[] = [];
  const hook = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      received.push(JSON.parse(body));
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/alerts`;
  try {
    const rule = await postJson(`${url}/api/v1/monitoring/alerts`, {
      name: 'adult-drift',
      model: MODEL,
      expression: 'drift_share > 0.3 over 1h',
      reference: 'adult@1',
      webhooks: [{ url: hookUrl, secret: 'demo-secret' }],
    });
    const all = await adultTestRows();
    const usual = all.slice(0, 600);
    const shifted = all
      .filter((r) => Number(r.record.education_num) >= 13 && Number(r.record.age) >= 45)
      .slice(0, 600)
      .map((r) => ({
        ...r,
        record: { ...r.record, hours_per_week: Math.min(99, Number(r.record.hours_per_week) + 10) },
      }));
    const send = async (rows: typeof all) => {
      for (let i = 0; i < rows.length; i += 50) {
        const chunk = rows.slice(i, i + 50);
        const res = await postJson(`${url}/v1/models/${MODEL}:predict`, {
          instances: chunk.map((r) => r.record),
        });
        const id = (res as { id: string }).id;
        // Ground truth arrives later; here, at once.
        await postJson(
          `${url}/v1/feedback`,
          chunk.map((r, row) => ({ request_id: id, row, ground_truth: r.income })),
        );
      }
    };
    const t0 = Date.now();
    await send(usual);
    await app.predictions?.flush();
    const mid = Date.now() + 1;
    await new Promise((r) => setTimeout(r, 5));
    await send(shifted);
    await app.predictions?.checkpoint();
    const after = Date.now() + 1;

    const perf = async (since: number, until: number) =>
      (await getJson(
        `${url}/api/v1/monitoring/performance?model=${MODEL}&since=${since}&until=${until}`,
      )) as {
        metrics: { accuracy: number; roc_auc: number | null } | null;
      };
    const [before, later] = [await perf(t0, mid), await perf(mid, after)];
    const fmt = (m: { accuracy: number; roc_auc: number | null } | null) =>
      m ? `accuracy ${m.accuracy.toFixed(3)}, ROC AUC ${m.roc_auc?.toFixed(3) ?? '-'}` : 'no ground truth';
    out.write(`  usual traffic:  ${fmt(before.metrics)}\n  shifted traffic: ${fmt(later.metrics)}\n`);

    const drift = (await getJson(
      `${url}/api/v1/monitoring/drift?model=${MODEL}&since=${mid}&until=${after}&reference=adult@1`,
    )) as {
      dataset_drift: boolean;
      drift_share: number;
      columns: Record<
        string,
        { type: string; test: string; score: number; threshold: number; drifted: boolean }
      >;
    };
    out.write(
      `\nDrift of the shifted traffic against adult@1 (Evidently's tests and defaults): dataset drift ${drift.dataset_drift}, ` +
        `${(drift.drift_share * 100).toFixed(0)}% of columns\n`,
    );
    for (const [name, c] of Object.entries(drift.columns)) {
      out.write(
        `  ${name.padEnd(15)} ${c.type.padEnd(11)} ${c.test.padEnd(13)} score ${c.score.toFixed(4).padStart(8)}  ` +
          `threshold ${String(c.threshold).padEnd(5)} ${c.drifted ? 'DRIFT' : ''}\n`,
      );
    }

    const evaluated = (await postJson(`${url}/api/v1/monitoring/alerts/evaluate`, {})) as {
      evaluations: { rule: string; state: string; value: number | null; threshold: number }[];
    };
    for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    const e = evaluated.evaluations[0];
    if (rule && e) {
      out.write(
        `\nAlert 'adult-drift' (drift_share > 0.3 over 1h, both halves): ${e.state.toUpperCase()} at ${e.value?.toFixed(2)}; ` +
          `${received.length} signed webhook delivered to ${hookUrl}\n`,
      );
    }
    out.write('\nSee it yourself:\n');
    out.write(`  curl -s '${url}/api/v1/monitoring/drift?model=${MODEL}&since=1h&reference=adult@1'\n`);
    out.write(`  curl -s '${url}/api/v1/monitoring/performance?model=${MODEL}&since=1h&window=5m'\n`);
    out.write(`  curl -s '${url}/api/v1/monitoring/versions?model=${MODEL}'   (cost per 1000 predictions)\n`);
    out.write(`  curl -s '${url}/api/v1/monitoring/alerts/history?rule=adult-drift'\n`);
    out.write(`  npx slipway drift --reference ref.csv --current cur.csv --html report.html\n`);
  } finally {
    await new Promise((resolve) => hook.close(resolve));
  }
}

async function postJson(url: string, body: unknown): Promise<unknown> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${url}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url);
  const json = await res.json();
  if (!res.ok) throw new Error(`${url}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** POSTs JSON over a keep-alive agent and resolves with the status once the body is read. */
function post(agent: Agent, url: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
