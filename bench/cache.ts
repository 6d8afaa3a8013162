/**
 * `npm run bench:cache`: what Triton's response cache gives and costs, side by side in one server
 * and one run. Two copies of a model, one with `response_cache.enable`, under two loads: the same
 * 64 requests in turn (after the first round every cached request is a hit), and requests that
 * never repeat within the cache's size (every cached request is a miss: hashing and storing with
 * nothing back). Prints req/s and p50/p99 per point, medians of interleaved runs, and the ratios
 * cached / uncached. See docs/BENCHMARKS.md.
 *
 * The model is `--model logreg30` (the serving benchmark's, a few µs a row) or `--model mlp256`
 * (bench/models/mlp256, an MLP with two hidden layers of 256 on the same 30 features, trained by
 * bench/models/train_mlp256.py: tens of µs a row), with `--rows N` rows a request (default 1).
 *
 * Flags: --runs N (3), --seconds S (5), --concurrency 1,64, --model logreg30|mlp256, --rows N,
 * --loadgen-cpu 1|none, --workers auto|N (serving processes, default auto).
 */
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type LoadResult, runLoad } from './harness/load.js';
import { loadSamples, N_FEATURES, writeWrkManifest } from './harness/payloads.js';
import { launch, waitReady } from './harness/servers.js';
import { ensureTools } from './harness/tools.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OUT = join(ROOT, 'bench', '.out', 'cache');
const log = (msg: string) => process.stderr.write(`bench:cache: ${msg}\n`);
/** Distinct bodies for the load that never repeats: more than the cache can hold at once. */
const DISTINCT = 20_000;

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '1,64' },
    rows: { type: 'string', default: '1' },
    model: { type: 'string', default: 'logreg30' },
    'loadgen-cpu': { type: 'string', default: '1' },
    workers: { type: 'string', default: 'auto' },
  },
});
const runs = Number(values.runs);
const seconds = Number(values.seconds);
const concurrencies = values.concurrency!.split(',').map(Number);
const rowsPerRequest = Number(values.rows);
const modelDir = values.model!;
if (modelDir !== 'logreg30' && modelDir !== 'mlp256') throw new Error('--model is logreg30 or mlp256');

async function main(): Promise<void> {
  const tools = ensureTools(ROOT, { grpc: false, mlserver: false });
  if (!tools.wrk) throw new Error('wrk is needed: apt-get install -y wrk');
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });

  // One repository, two copies of the model: config.json differs only in response_cache.
  const models = join(OUT, 'models');
  const source = join(ROOT, 'bench', 'models', modelDir);
  const base = JSON.parse(readFileSync(join(source, 'config.json'), 'utf8'));
  for (const [name, cache] of [
    ['plain', false],
    ['cached', true],
  ] as const) {
    cpSync(source, join(models, name), { recursive: true });
    writeFileSync(
      join(models, name, 'config.json'),
      JSON.stringify({ ...base, response_cache: { enable: cache } }),
    );
  }

  // The 64 sample rows, `rows` to a request; and DISTINCT bodies, each row nudged apart.
  const samples = loadSamples(ROOT);
  const request = (i: number, nudge: number) => {
    const rows = Array.from({ length: rowsPerRequest }, (_, k) => {
      const row = [...samples.rows[(i + k) % samples.rows.length]!];
      row[0] = row[0]! + nudge;
      return row;
    });
    const input = { name: 'input', shape: [rowsPerRequest, N_FEATURES], datatype: 'FP32', data: rows.flat() };
    return Buffer.from(JSON.stringify({ inputs: [input] }));
  };
  const repeated = Array.from({ length: 64 }, (_, i) => request(i, 0));
  const distinct = Array.from({ length: DISTINCT }, (_, i) => request(i, (i + 1) * 1e-3));
  // Room for the repeated bodies' answers, far from room for the distinct ones.
  const cacheBytes = 1 << 20;

  const dataDir = join(OUT, 'data');
  const args = [join(ROOT, 'bin', 'slipway.js'), 'serve', '--models', models, '--data-dir', dataDir];
  args.push('--port', '0', '--no-grpc', '--log-level', 'warn', '--workers', values.workers!);
  args.push('--response-cache-bytes', String(cacheBytes));
  const started = launch('slipway', process.execPath, args, { cwd: ROOT, env: process.env });
  const url = await new Promise<string>((resolveUrl, reject) => {
    let out = '';
    started.child.stdout!.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      const m = /REST\s+(http:\/\/\S+)/.exec(out);
      if (m) resolveUrl(m[1]!.replace(/\/$/, ''));
    });
    started.child.once('exit', (code) => reject(new Error(`slipway exited (${code}) before serving`)));
  });
  try {
    for (const name of ['plain', 'cached']) {
      await waitReady('slipway', `${url}/v2/models/${name}/ready`, started.child, 60_000);
    }
    // Both copies answer the same outputs before anything is timed.
    const check = async (name: string) =>
      (await (
        await fetch(`${url}/v2/models/${name}/infer`, { method: 'POST', body: repeated[0] })
      ).json()) as {
        outputs: { name: string; data: number[] }[];
      };
    const [a, b] = [await check('plain'), await check('cached')];
    if (JSON.stringify(a.outputs) !== JSON.stringify(b.outputs))
      throw new Error('the two copies answer differently');

    const manifests = new Map<string, string>();
    for (const name of ['plain', 'cached']) {
      for (const [load, bodies] of [
        ['repeated', repeated],
        ['distinct', distinct],
      ] as const) {
        manifests.set(
          `${name}/${load}`,
          writeWrkManifest(join(OUT, 'bodies'), `${name}-${load}`, {
            path: `/v2/models/${name}/infer`,
            headers: { 'Content-Type': 'application/json' },
            bodies,
          }),
        );
      }
    }
    const load = {
      wrk: tools.wrk,
      luaScript: join(ROOT, 'bench', 'wrk', 'post.lua'),
      protoPath: '',
      ...(tools.taskset && values['loadgen-cpu'] !== 'none'
        ? { taskset: { path: tools.taskset, cpu: values['loadgen-cpu']! } }
        : {}),
    };
    const results = new Map<string, LoadResult[]>();
    for (let run = 0; run < runs; run++) {
      for (const c of concurrencies) {
        for (const loadName of ['repeated', 'distinct']) {
          for (const name of ['plain', 'cached']) {
            const key = `${name}/${loadName}`;
            const target = {
              tool: 'wrk' as const,
              url,
              data: manifests.get(key)!,
              serverPid: started.child.pid!,
            };
            await runLoad(target, { ...load, concurrency: c, seconds: 1 });
            const r = await runLoad(target, { ...load, concurrency: c, seconds });
            if (r.errors > 0) throw new Error(`${key} c=${c}: ${r.errors} failed requests`);
            const point = `${key}@${c}`;
            results.set(point, [...(results.get(point) ?? []), r]);
            log(`run ${run + 1}/${runs} ${point}: ${Math.round(r.rps)} req/s, p99 ${r.p99Ms.toFixed(2)} ms`);
          }
        }
      }
    }
    const stats = (await (await fetch(`${url}/v2/models/cached/stats`)).json()) as {
      model_stats: { inference_stats: { cache_hit: { count: number }; cache_miss: { count: number } } }[];
    };
    printReport(results, stats.model_stats);
  } finally {
    started.child.kill('SIGTERM');
    await new Promise((r) => started.child.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function printReport(
  results: Map<string, LoadResult[]>,
  stats: { inference_stats: { cache_hit: { count: number }; cache_miss: { count: number } } }[],
): void {
  const lines = [
    `model ${modelDir}, ${rowsPerRequest} row(s) a request, --workers ${values.workers}, ${runs} runs × ${seconds} s, medians`,
    '',
    '| load | concurrency | uncached req/s (p50 / p99 ms) | cached req/s (p50 / p99 ms) | cached / uncached |',
    '|---|--:|--:|--:|--:|',
  ];
  for (const loadName of ['repeated', 'distinct']) {
    for (const c of concurrencies) {
      const of = (name: string) => results.get(`${name}/${loadName}@${c}`)!;
      const fmt = (rs: LoadResult[]) =>
        `${Math.round(median(rs.map((r) => r.rps))).toLocaleString('en')} (${median(rs.map((r) => r.p50Ms)).toFixed(2)} / ${median(rs.map((r) => r.p99Ms)).toFixed(2)})`;
      const ratio = median(of('cached').map((r, i) => r.rps / of('plain')[i]!.rps));
      lines.push(`| ${loadName} | ${c} | ${fmt(of('plain'))} | ${fmt(of('cached'))} | ${ratio.toFixed(2)} |`);
    }
  }
  const hits = stats.reduce((n, s) => n + s.inference_stats.cache_hit.count, 0);
  const misses = stats.reduce((n, s) => n + s.inference_stats.cache_miss.count, 0);
  lines.push(
    '',
    `cache hits ${hits.toLocaleString('en')}, misses ${misses.toLocaleString('en')} (the cached copy, every serving process)`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err) => {
  log((err as Error).stack ?? String(err));
  process.exit(1);
});
