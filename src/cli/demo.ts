import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type App, startApp } from '../app.js';
import { loadSettings } from '../config/index.js';
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
  const v2 = JSON.stringify({
    inputs: meta.inputs.map((i) => {
      const v = sample.instances[0]![i.name];
      return { name: i.name, datatype: i.datatype, shape: [1, 1], data: [v] };
    }),
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
  out.write(`  curl -s ${url}/v2/models/${MODEL}/stats\n`);
  out.write(`  curl -s ${url}/metrics | grep slipway_inference\n`);

  // The registry: the same file registered as 'adult' with metrics and lineage, `champion` on it,
  // then served by name from the registry.
  const upload = await fetch(
    `${url}/api/v1/models/${REGISTERED}/versions?create_model=true&metric=accuracy=0.8713&training_data=adult&alias=champion&source=examples/adult/train.py`,
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

  if (flags.exit) {
    await app.close();
    return;
  }
  out.write(`\nServing at ${url} — press Ctrl-C to stop.\n`);
  closeOnSignals(app);
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
