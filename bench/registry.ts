/**
 * `npm run bench:registry [-- --quick]`: one MLflow client workload against Slipway and against
 * MLflow's own tracking server (`mlflow server` on SQLite, from the interop venv), side by side
 * in one run. The requests are those the `mlflow` Python client sends (same routes, same bodies),
 * issued by one Node driver at a fixed concurrency so that the servers, not the client, are
 * measured. Phases:
 *   - log-batch: runs each logging 1000 metrics (10 keys × 100 steps) in one `runs/log-batch`,
 *   - versions: hundreds of model versions registered from one run's ONNX artifact,
 *   - reads: run searches with a metric filter, metric histories, registered-model and
 *     model-version searches, version gets.
 * Each run starts both servers on fresh, empty stores; runs alternate which server goes first.
 * Printed: the median throughput of each phase per server and Slipway's ratio.
 *
 * Flags: --quick, --runs N, --concurrency C, --batches N, --versions N, --reads N,
 * --servers slipway,mlflow.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, guarded, launch, type RunningServer, stopServer, waitReady } from './harness/servers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OUT = join(ROOT, 'bench', '.out');
const MODEL_FILE = join(ROOT, 'bench', 'models', 'logreg30', '1', 'model.onnx');
const MLFLOW = join(ROOT, 'interop', '.venv', 'bin', 'mlflow');
const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

interface Options {
  runs: number;
  concurrency: number;
  batches: number;
  versions: number;
  reads: number;
}

type Phase = 'log-batch' | 'versions' | 'reads';
const PHASES: Phase[] = ['log-batch', 'versions', 'reads'];

interface PhaseResult {
  ops: number;
  seconds: number;
  failures: number;
  /** Units per second: metrics for log-batch, versions, requests for reads. */
  rate: number;
}

class Client {
  constructor(private readonly base: string) {}

  async call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<any> {
    let url = `${this.base}/api/2.0/mlflow${path}`;
    const init: RequestInit = { method };
    if (method === 'GET' && body) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(body as Record<string, unknown>)) q.append(k, String(v));
      url += `?${q}`;
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'content-type': 'application/json' };
    }
    const res = await fetch(url, init);
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : {};
  }

  async put(artifactPath: string, bytes: Buffer): Promise<void> {
    const res = await fetch(`${this.base}/api/2.0/mlflow-artifacts/artifacts/${artifactPath}`, {
      method: 'PUT',
      body: bytes,
    });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`PUT ${artifactPath}: ${res.status}`);
  }
}

/** Runs `count` tasks with at most `concurrency` in flight; counts failures instead of stopping. */
async function pool(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<{ seconds: number; failures: number; firstError?: string }> {
  let next = 0;
  let failures = 0;
  let firstError: string | undefined;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const i = next++;
        try {
          await task(i);
        } catch (err) {
          failures++;
          firstError ??= (err as Error).message;
        }
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, failures, firstError };
}

async function workload(base: string, o: Options, name: string): Promise<Record<Phase, PhaseResult>> {
  const c = new Client(base);
  const exp = await c.call('POST', '/experiments/create', { name: `bench-${Date.now()}` });
  const experimentId = exp.experiment_id as string;
  const t0 = Date.now();

  // log-batch: each run gets 10 params and 5 tags, then 1000 metrics in one request.
  const runIds: string[] = [];
  for (let i = 0; i < o.batches; i++) {
    const r = await c.call('POST', '/runs/create', {
      experiment_id: experimentId,
      start_time: t0,
      run_name: `run-${i}`,
      tags: [{ key: 'mlflow.user', value: 'bench' }],
    });
    runIds.push(r.run.info.run_id);
  }
  const batch = pool(o.batches, o.concurrency, async (i) => {
    const metrics = [];
    for (let k = 0; k < 10; k++)
      for (let step = 0; step < 100; step++)
        metrics.push({
          key: `m${k}`,
          value: Math.sin(i + k + step / 10) * 0.5 + 0.5,
          timestamp: t0 + step,
          step,
        });
    const params = Array.from({ length: 10 }, (_, k) => ({ key: `p${k}`, value: String(i * k) }));
    const tags = Array.from({ length: 5 }, (_, k) => ({ key: `t${k}`, value: `v${i % 3}` }));
    // MLflow caps one request at 1000 metrics + params + tags, so the client splits them as here.
    await c.call('POST', '/runs/log-batch', { run_id: runIds[i], params, tags });
    await c.call('POST', '/runs/log-batch', { run_id: runIds[i], metrics });
  });
  const b = await batch;
  if (b.firstError) log(`${name} log-batch: ${b.failures} failed, first: ${b.firstError}`);
  const logBatch: PhaseResult = {
    ops: o.batches,
    seconds: b.seconds,
    failures: b.failures,
    rate: ((o.batches - b.failures) * 1000) / b.seconds,
  };

  // versions: one ONNX artifact on a run, then many versions registered from it.
  const run = await c.call('GET', '/runs/get', { run_id: runIds[0] });
  const artifactRoot = String(run.run.info.artifact_uri).replace(/^mlflow-artifacts:\/+/, '');
  await c.put(`${artifactRoot}/model/model.onnx`, readFileSync(MODEL_FILE));
  await c.call('POST', '/registered-models/create', { name: 'bench-model' });
  const v = await pool(o.versions, o.concurrency, async () => {
    await c.call('POST', '/model-versions/create', {
      name: 'bench-model',
      source: `runs:/${runIds[0]}/model`,
      run_id: runIds[0],
    });
  });
  if (v.firstError) log(`${name} versions: ${v.failures} failed, first: ${v.firstError}`);
  const versions: PhaseResult = {
    ops: o.versions,
    seconds: v.seconds,
    failures: v.failures,
    rate: (o.versions - v.failures) / v.seconds,
  };

  // reads: the searches and gets a dashboard or a notebook makes.
  const reads = await pool(o.reads, o.concurrency, async (i) => {
    switch (i % 5) {
      case 0:
        await c.call('POST', '/runs/search', {
          experiment_ids: [experimentId],
          filter: 'metrics.m0 > 0.5',
          max_results: 50,
          order_by: ['metrics.m1 DESC'],
        });
        break;
      case 1:
        await c.call('GET', '/metrics/get-history', { run_id: runIds[i % runIds.length], metric_key: 'm3' });
        break;
      case 2:
        await c.call('GET', '/registered-models/search', { filter: "name LIKE 'bench%'", max_results: 100 });
        break;
      case 3:
        await c.call('GET', '/model-versions/search', { filter: "name='bench-model'", max_results: 100 });
        break;
      default:
        await c.call('GET', '/model-versions/get', {
          name: 'bench-model',
          version: String(1 + (i % Math.max(1, o.versions - v.failures))),
        });
    }
  });
  if (reads.firstError) log(`${name} reads: ${reads.failures} failed, first: ${reads.firstError}`);
  return {
    'log-batch': logBatch,
    versions,
    reads: {
      ops: o.reads,
      seconds: reads.seconds,
      failures: reads.failures,
      rate: (o.reads - reads.failures) / reads.seconds,
    },
  };
}

async function startSlipwayStore(dir: string): Promise<RunningServer> {
  const args = [
    join(ROOT, 'bin', 'slipway.js'),
    'serve',
    '--data-dir',
    dir,
    '--port',
    '0',
    '--no-grpc',
    '--log-level',
    'warn',
  ];
  const started = launch('slipway', process.execPath, args, { cwd: ROOT });
  return guarded('slipway', started, async () => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const m = started.output().match(/REST\s+(http:\/\/\S+)/);
      if (m) {
        const http = m[1]!.replace(/\/$/, '');
        await waitReady('slipway', `${http}/health`, started.child, 60_000);
        return { http };
      }
      if (Date.now() > deadline || started.child.exitCode !== null) throw new Error('slipway did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  });
}

/** `mlflow server` as its docs start it for a local team server: SQLite, proxied artifacts, default workers. */
async function startMlflow(dir: string): Promise<RunningServer> {
  const port = await freePort();
  const args = [
    'server',
    '--backend-store-uri',
    `sqlite:///${join(dir, 'mlflow.db')}`,
    '--artifacts-destination',
    join(dir, 'mlartifacts'),
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
  ];
  const started = launch('mlflow', MLFLOW, args, { cwd: dir });
  return guarded('mlflow', started, async () => {
    const http = `http://127.0.0.1:${port}`;
    await waitReady('mlflow', `${http}/health`, started.child, 180_000);
    return { http };
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      concurrency: { type: 'string', default: '4' },
      batches: { type: 'string' },
      versions: { type: 'string' },
      reads: { type: 'string' },
      servers: { type: 'string', default: 'slipway,mlflow' },
    },
  });
  const servers = values.servers.split(',') as ('slipway' | 'mlflow')[];
  const quick = values.quick === true;
  const o: Options = {
    runs: Number(values.runs ?? (quick ? 1 : 3)),
    concurrency: Number(values.concurrency),
    batches: Number(values.batches ?? (quick ? 10 : 40)),
    versions: Number(values.versions ?? (quick ? 50 : 200)),
    reads: Number(values.reads ?? (quick ? 200 : 1000)),
  };
  const results: Record<'slipway' | 'mlflow', Record<Phase, PhaseResult>[]> = { slipway: [], mlflow: [] };
  for (let run = 0; run < o.runs; run++) {
    const order = run % 2 === 0 ? servers : [...servers].reverse();
    for (const name of order) {
      const dir = mkdtempSync(join(tmpdir(), `bench-${name}-`));
      const server = name === 'slipway' ? await startSlipwayStore(dir) : await startMlflow(dir);
      try {
        log(`run ${run + 1}/${o.runs}: ${name}`);
        const r = await workload(server.http, o, name);
        results[name].push(r);
        log(
          `  ${PHASES.map((p) => `${p} ${r[p].rate.toFixed(1)}/s${r[p].failures ? ` (${r[p].failures} failed)` : ''}`).join(', ')}`,
        );
      } finally {
        await stopServer(server);
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  const units: Record<Phase, string> = {
    'log-batch': 'metrics/s',
    versions: 'versions/s',
    reads: 'requests/s',
  };
  const lines = [
    `Registry benchmark: ${o.runs} run(s), concurrency ${o.concurrency}; ${o.batches} log-batch requests × 1000 metrics, ${o.versions} versions, ${o.reads} reads`,
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}`,
    '',
    '| phase | Slipway | MLflow server | Slipway / MLflow | failures (Slipway / MLflow) |',
    '|---|---|---|---|---|',
  ];
  const json: Record<string, unknown> = { options: o, runs: results };
  for (const p of PHASES) {
    const s = results.slipway.length ? median(results.slipway.map((r) => r[p].rate)) : Number.NaN;
    const m = results.mlflow.length ? median(results.mlflow.map((r) => r[p].rate)) : Number.NaN;
    const fs = results.slipway.reduce((a, r) => a + r[p].failures, 0);
    const fm = results.mlflow.reduce((a, r) => a + r[p].failures, 0);
    lines.push(
      `| ${p} | ${s.toFixed(1)} ${units[p]} | ${m.toFixed(1)} ${units[p]} | ${(s / m).toFixed(1)}× | ${fs} / ${fm} |`,
    );
    json[p] = { slipway: s, mlflow: m, ratio: s / m };
  }
  // The whole workload: the time each server took for all three phases, median over runs.
  const total = (r: Record<Phase, PhaseResult>) => PHASES.reduce((a, p) => a + r[p].seconds, 0);
  const ts = results.slipway.length ? median(results.slipway.map(total)) : Number.NaN;
  const tm = results.mlflow.length ? median(results.mlflow.map(total)) : Number.NaN;
  lines.push(`| whole workload | ${ts.toFixed(2)} s | ${tm.toFixed(2)} s | ${(tm / ts).toFixed(1)}× | |`);
  json.total = { slipwaySeconds: ts, mlflowSeconds: tm, ratio: tm / ts };
  const report = lines.join('\n');
  process.stdout.write(`${report}\n`);
  mkdirSync(OUT, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(join(OUT, `registry-${stamp}.json`), JSON.stringify(json, null, 2));
  writeFileSync(join(OUT, `registry-${stamp}.md`), `${report}\n`);
}

main().catch((err) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
