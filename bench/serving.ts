/**
 * `npm run bench:serving [-- --quick]`: serving throughput and latency of Slipway next to a bare
 * node:http ceiling, a naive Fastify + onnxruntime-node handler and MLServer, on one model (a
 * 30-feature logistic regression, one row per request) and one load generator (wrk for HTTP,
 * ghz for gRPC) in one run. Cases are interleaved and repeated; medians are printed with the
 * ratios Slipway is held to. See docs/BENCHMARKS.md.
 *
 * Flags: --quick (1 run of 2 s per point), --runs N, --seconds S, --warmup S,
 * --concurrency 1,16,64, --cases bare,fastify,slipway-json,slipway-binary,slipway-grpc,mlserver,
 * --loadgen-cpu 1|none, --slipway-node-args="--cpu-prof --cpu-prof-dir=bench/.out/prof",
 * --slipway-workers auto|N (serving processes; default auto, one per CPU),
 * --paired-rounds N and --paired-seconds S (the prediction log's cost measured side by side),
 * --same-cpu-rounds N (the same two servers on one shared CPU, CPU time a request), --paired-control
 * (both of those servers with the log off: an A/A check of the two designs),
 * --alternating-rounds N and --alternating-seconds S (REST JSON against naive Fastify at c=1 in
 * alternating rounds).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type LoadOptions, type LoadResult, type LoadTarget, runLoad } from './harness/load.js';
import {
  type AlternatingComparison,
  type PairedLogCost,
  type PairedRound,
  runAlternating,
  runPaired,
  runSameCpu,
  summarizePaired,
} from './harness/paired.js';
import {
  checkGrpc,
  checkHttp,
  type HttpFormat,
  loadSamples,
  N_FEATURES,
  writeGhzData,
  writeWrkManifest,
  wrkPayload,
} from './harness/payloads.js';
import { formatReport, medianWithInterval, NOISY_CORES, summarize } from './harness/report.js';
import {
  cpuBusySeconds,
  predictionLogCounters,
  prepareSlipwayModels,
  type RunningServer,
  startMlserver,
  startNodeServer,
  startSlipway,
  stopServer,
} from './harness/servers.js';
import { ensureTools, GHZ_VERSION, versionOf } from './harness/tools.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OUT = join(ROOT, 'bench', '.out');
const PROTO = join(ROOT, 'src', 'server', 'grpc', 'grpc_service.proto');
const MODELS = join(ROOT, 'bench', 'models');
const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

export type CaseId =
  | 'bare'
  | 'fastify'
  | 'slipway-json'
  | 'slipway-json-nolog'
  | 'slipway-binary'
  | 'slipway-grpc'
  | 'slipway-records'
  | 'slipway-records-checked'
  | 'mlserver';

export interface BenchCase {
  id: CaseId;
  label: string;
  server: 'bare' | 'fastify' | 'slipway' | 'slipway-nolog' | 'mlserver';
  tool: 'wrk' | 'ghz';
  format: HttpFormat | 'bare' | 'grpc';
}

export const CASES: BenchCase[] = [
  { id: 'bare', label: 'bare node:http (ceiling)', server: 'bare', tool: 'wrk', format: 'bare' },
  { id: 'fastify', label: 'naive Fastify + ort', server: 'fastify', tool: 'wrk', format: 'json' },
  { id: 'slipway-json', label: 'Slipway REST JSON', server: 'slipway', tool: 'wrk', format: 'json' },
  {
    id: 'slipway-json-nolog',
    label: 'Slipway REST JSON, prediction log off',
    server: 'slipway-nolog',
    tool: 'wrk',
    format: 'json',
  },
  { id: 'slipway-binary', label: 'Slipway REST binary', server: 'slipway', tool: 'wrk', format: 'binary' },
  { id: 'slipway-grpc', label: 'Slipway gRPC', server: 'slipway', tool: 'ghz', format: 'grpc' },
  { id: 'slipway-records', label: 'Slipway records API', server: 'slipway', tool: 'wrk', format: 'records' },
  {
    id: 'slipway-records-checked',
    label: 'Slipway records API + schema check',
    server: 'slipway',
    tool: 'wrk',
    format: 'records-checked',
  },
  { id: 'mlserver', label: 'MLServer REST JSON', server: 'mlserver', tool: 'wrk', format: 'mlserver' },
];

function options() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      concurrency: { type: 'string', default: '1,16,64' },
      cases: { type: 'string', default: CASES.map((c) => c.id).join(',') },
      'loadgen-cpu': { type: 'string', default: '1' },
      'slipway-node-args': { type: 'string', default: '' },
      'slipway-workers': { type: 'string', default: 'auto' },
      'wait-quiet': { type: 'string' },
      'paired-rounds': { type: 'string' },
      'paired-seconds': { type: 'string' },
      'same-cpu-rounds': { type: 'string' },
      'paired-control': { type: 'boolean', default: false },
      'alternating-rounds': { type: 'string' },
      'alternating-seconds': { type: 'string' },
    },
  });
  const quick = values.quick!;
  const ids = values.cases!.split(',').map((s) => s.trim());
  for (const id of ids) if (!CASES.some((c) => c.id === id)) throw new Error(`unknown case '${id}'`);
  return {
    quick,
    runs: Number(values.runs ?? (quick ? 1 : 3)),
    seconds: Number(values.seconds ?? (quick ? 2 : 6)),
    warmup: Number(values.warmup ?? 1),
    concurrency: values.concurrency!.split(',').map(Number),
    cases: CASES.filter((c) => ids.includes(c.id)),
    loadgenCpu: values['loadgen-cpu']!,
    slipwayNodeArgs: values['slipway-node-args']!.split(' ').filter(Boolean),
    /** `slipway serve --workers`: serving processes sharing the ports. */
    slipwayWorkers: values['slipway-workers']!,
    /** How long to wait for other processes to leave the CPUs alone before a point (seconds). */
    waitQuiet: Number(values['wait-quiet'] ?? (quick ? 0 : 120)),
    /** Rounds of the log-on and log-off servers side by side (0: none), and their length (seconds). */
    pairedRounds: Number(values['paired-rounds'] ?? (quick ? 2 : 16)),
    pairedSeconds: Number(values['paired-seconds'] ?? (quick ? 2 : 4)),
    /** Rounds of the same two servers on one shared CPU (0: none), as long as the paired ones. */
    sameCpuRounds: Number(values['same-cpu-rounds'] ?? (quick ? 2 : 8)),
    /** Both paired servers with the log off, to see what the designs give for two equal servers. */
    pairedControl: values['paired-control']!,
    /** Rounds of REST JSON and naive Fastify at c=1 one after the other (0: none), and their length. */
    alternatingRounds: Number(values['alternating-rounds'] ?? (quick ? 2 : 12)),
    alternatingSeconds: Number(values['alternating-seconds'] ?? (quick ? 1 : 3)),
  };
}

/**
 * Waits until the machine is quiet (other processes use under NOISY_CORES over 2 s, while the
 * servers are idle), for at most `maxSeconds`. The machine is shared: this keeps someone else's
 * test suite out of the figures where it can, and the report flags the runs where it could not.
 */
async function waitQuiet(maxSeconds: number): Promise<number> {
  const deadline = Date.now() + maxSeconds * 1000;
  let warned = false;
  for (;;) {
    const a = cpuBusySeconds();
    await new Promise((r) => setTimeout(r, 2000));
    const b = cpuBusySeconds();
    const busy = b.reduce((sum, x, i) => sum + x - a[i]!, 0) / 2;
    if (busy < NOISY_CORES || Date.now() >= deadline) return busy;
    if (!warned) log(`other processes use ${busy.toFixed(2)} cores; waiting up to ${maxSeconds} s for quiet`);
    warned = true;
  }
}

/** The commit measured, and whether src/ differed from it (others may be editing it). */
function slipwayRevision(): string {
  const git = (...args: string[]) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  const head = git('rev-parse', '--short', 'HEAD') || 'unknown commit';
  const dirty = git('status', '--porcelain', '--', 'src', 'bin').split('\n').filter(Boolean).length;
  return dirty ? `${head} with ${dirty} uncommitted file(s) in src/ or bin/` : head;
}

type Options = ReturnType<typeof options>;

/** Rounds of `n` in two halves, the first half one longer when `n` is odd. */
function halves(n: number): [number, number] {
  return [Math.ceil(n / 2), Math.floor(n / 2)];
}

/**
 * The log-on and log-off servers of the sequential runs are measured one after the other, and
 * consecutive runs of one server here differ by more than the 5% the log is allowed. So two more
 * servers, one serving process each, are measured together (harness/paired.ts): side by side,
 * each confined with its own wrk to one CPU, the CPUs swapped every round; then both on one
 * shared CPU, by the CPU time a request each. Here the server started first costs 2–3% more a
 * request than the one started after it, whichever it is (two log-off servers: 1.032 with one
 * first, 0.982 with the other). So the pair is started twice, in both orders, and each start
 * order runs half of the rounds of each layout. Only with both log cases selected, two CPUs and
 * taskset. With --paired-control both servers have the log off.
 */
async function measurePaired(
  opts: Options,
  taskset: string | undefined,
  load: Omit<LoadOptions, 'concurrency' | 'seconds'>,
  data: Record<CaseId, string>,
  models: string,
): Promise<PairedLogCost | undefined> {
  const ids = new Set(opts.cases.map((c) => c.id));
  if (opts.pairedRounds <= 0 && opts.sameCpuRounds <= 0) return undefined;
  if (!ids.has('slipway-json') || !ids.has('slipway-json-nolog')) return undefined;
  if (!taskset || cpus().length < 2) {
    log('the paired log measurements need taskset and two CPUs; skipped');
    return undefined;
  }
  const concurrency = Math.max(...opts.concurrency);
  const control = opts.pairedControl;
  const first = control ? 'log off (control)' : 'log on';
  const paired = {
    seconds: opts.pairedSeconds,
    warmup: opts.warmup,
    concurrency,
    tasksetPath: taskset,
    load,
  };
  const sideBySide = halves(opts.pairedRounds);
  const sameCpu = halves(opts.sameCpuRounds);
  const rounds = { sideBySide: [] as PairedRound[], sameCpu: [] as PairedRound[] };
  const stored = { written: 0, dropped: 0, failedFlushes: 0, queued: 0 };
  for (const [half, onFirst] of [
    [0, true],
    [1, false],
  ] as const) {
    if (sideBySide[half] + sameCpu[half] === 0) continue;
    const started: RunningServer[] = [];
    try {
      const start = async (logOn: boolean) => {
        const s = await startSlipway(ROOT, models, opts.slipwayNodeArgs, {
          workers: '1',
          predictionLog: logOn && !control,
          store: logOn ? 'slipway-data-paired' : 'slipway-data-paired-nolog',
        });
        started.push(s);
        return s;
      };
      let onServer: RunningServer;
      let off: RunningServer;
      if (onFirst) {
        onServer = await start(true);
        off = await start(false);
      } else {
        off = await start(false);
        onServer = await start(true);
      }
      const target = (s: RunningServer, id: CaseId): LoadTarget => ({
        tool: 'wrk',
        url: s.http,
        data: data[id],
        serverPid: s.child.pid!,
      });
      const a = target(onServer, 'slipway-json');
      const b = target(off, 'slipway-json-nolog');
      const order = `${onFirst ? (control ? 'control' : 'log-on') : 'log-off'} server started first`;
      if (sideBySide[half] > 0) {
        log(
          `prediction log side by side, ${order}: ${sideBySide[half]} rounds of ${opts.pairedSeconds} s at c=${concurrency}`,
        );
        const done = rounds.sideBySide.length;
        const s = await runPaired(a, b, { ...paired, rounds: sideBySide[half] }, (r, i) =>
          log(
            `[paired ${done + i + 1}/${opts.pairedRounds}] ${first} (CPU ${r.cpuA}) ${Math.round(r.a.rps)} req/s, ` +
              `log off (CPU ${1 - r.cpuA!}) ${Math.round(r.b.rps)} req/s: ${r.ratio.toFixed(3)}` +
              (r.a.errors || r.b.errors ? `, ${r.a.errors + r.b.errors} errors` : ''),
          ),
        );
        rounds.sideBySide.push(...s.rounds.map((r) => ({ ...r, aStartedFirst: onFirst })));
      }
      if (sameCpu[half] > 0) {
        log(
          `prediction log on one shared CPU, ${order}: ${sameCpu[half]} rounds of ${opts.pairedSeconds} s at c=${concurrency}`,
        );
        const done = rounds.sameCpu.length;
        const s = await runSameCpu(a, b, { ...paired, rounds: sameCpu[half] }, (r, i) =>
          log(
            `[same CPU ${done + i + 1}/${opts.sameCpuRounds}] both on CPU ${r.cpuA}: ${first} ${r.cpuUsA!.toFixed(2)} µs ` +
              `a request (${r.a.requests}), log off ${r.cpuUsB!.toFixed(2)} µs (${r.b.requests}): ${r.ratio.toFixed(3)}` +
              (r.a.errors || r.b.errors ? `, ${r.a.errors + r.b.errors} errors` : ''),
          ),
        );
        rounds.sameCpu.push(...s.rounds.map((r) => ({ ...r, aStartedFirst: onFirst })));
      }
      // What was served last is stored within the log's flush interval (one second).
      await new Promise((r) => setTimeout(r, 2000));
      const counters = await predictionLogCounters(onServer.http);
      for (const k of Object.keys(stored) as (keyof typeof stored)[]) stored[k] += counters[k];
    } finally {
      await Promise.all(started.map((s) => stopServer(s)));
    }
  }
  const summary = rounds.sideBySide.length > 0 ? summarizePaired(rounds.sideBySide) : undefined;
  if (summary) log(`prediction log side by side: median ${first} / log off ${medianWithInterval(summary)}`);
  const shared = rounds.sameCpu.length > 0 ? summarizePaired(rounds.sameCpu) : undefined;
  if (shared)
    log(`prediction log on one shared CPU: median ${first} / log off ${medianWithInterval(shared)}`);
  if (!control) {
    log(
      `paired log-on servers: ${stored.written} rows written, ${stored.dropped} dropped, ` +
        `${stored.failedFlushes} failed flushes`,
    );
  }
  return {
    concurrency,
    seconds: opts.pairedSeconds,
    ...(summary ? { summary } : {}),
    ...(shared ? { sameCpu: shared } : {}),
    control,
    predictionLog: stored,
  };
}

/**
 * At concurrency 1 the three interleaved runs of each case are too few: this machine's drift
 * between two runs of a few seconds is larger than the margin the c=1 target is about, and the
 * ratio of two medians can pair a fast moment of one server with a slow one of the other. So
 * REST JSON and naive Fastify, on the servers of the main runs (load generator pinned as
 * there), are also measured in many short rounds, one after the other, the first of each round
 * alternating (harness/paired.ts). They cannot run side by side: at c=1 a server and its load
 * generator take turns, and each needs a CPU of its own.
 */
async function measureAlternating(
  opts: Options,
  load: Omit<LoadOptions, 'concurrency' | 'seconds'>,
  target: (id: CaseId) => LoadTarget | undefined,
): Promise<AlternatingComparison | undefined> {
  const slipway = target('slipway-json');
  const fastify = target('fastify');
  if (opts.alternatingRounds <= 0 || !slipway || !fastify || !opts.concurrency.includes(1)) return undefined;
  const concurrency = 1;
  log(
    `REST JSON against naive Fastify at c=${concurrency}: ${opts.alternatingRounds} alternating rounds of ` +
      `${opts.alternatingSeconds} s`,
  );
  const summary = await runAlternating(
    slipway,
    fastify,
    { rounds: opts.alternatingRounds, seconds: opts.alternatingSeconds, warmup: opts.warmup },
    (t, seconds) => runLoad(t, { ...load, concurrency, seconds }),
    (r, i) =>
      log(
        `[alternating ${i + 1}/${opts.alternatingRounds}] ${r.aFirst ? 'Slipway first' : 'Fastify first'}: ` +
          `Slipway ${Math.round(r.a.rps)} req/s, naive Fastify ${Math.round(r.b.rps)} req/s: ${r.ratio.toFixed(3)}` +
          (r.a.errors || r.b.errors ? `, ${r.a.errors + r.b.errors} errors` : ''),
      ),
  );
  log(`REST JSON / naive Fastify at c=${concurrency}, alternating: median ${medianWithInterval(summary)}`);
  return { concurrency, seconds: opts.alternatingSeconds, summary };
}

async function main(): Promise<void> {
  const opts = options();
  const tools = ensureTools(ROOT, {
    grpc: opts.cases.some((c) => c.tool === 'ghz'),
    mlserver: opts.cases.some((c) => c.server === 'mlserver'),
  });
  for (const m of tools.missing) log(`missing ${m}`);
  if (!tools.wrk) throw new Error('wrk is needed for every HTTP case; install it with the command above');
  const cases = opts.cases.filter(
    (c) => (c.tool !== 'ghz' || tools.ghz) && (c.server !== 'mlserver' || tools.mlserver),
  );

  const samples = loadSamples(ROOT);
  const bodies = join(OUT, 'bodies');
  const data: Record<CaseId, string> = {} as Record<CaseId, string>;
  for (const c of cases) {
    data[c.id] =
      c.format === 'grpc'
        ? writeGhzData(bodies, samples)
        : writeWrkManifest(bodies, c.id, wrkPayload(c.format === 'bare' ? 'json' : c.format, samples));
  }

  const servers = new Map<BenchCase['server'], RunningServer>();
  const stopAll = async () => {
    await Promise.all([...servers.values()].map((s) => stopServer(s)));
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));

  try {
    const wanted = new Set(cases.map((c) => c.server));
    const dist = join(ROOT, 'dist', 'bench', 'servers');
    if (opts.waitQuiet > 0) await waitQuiet(opts.waitQuiet);
    log('starting servers');
    if (wanted.has('bare'))
      servers.set('bare', await startNodeServer('bare', join(dist, 'bare-http.js'), []));
    if (wanted.has('fastify')) {
      const model = join(MODELS, 'logreg30', '1', 'model.onnx');
      servers.set(
        'fastify',
        await startNodeServer('fastify', join(dist, 'naive-fastify.js'), ['--model', model]),
      );
    }
    const slipwayModels =
      wanted.has('slipway') || wanted.has('slipway-nolog') ? prepareSlipwayModels(ROOT, samples) : '';
    if (wanted.has('slipway')) {
      servers.set(
        'slipway',
        await startSlipway(ROOT, slipwayModels, opts.slipwayNodeArgs, { workers: opts.slipwayWorkers }),
      );
    }
    if (wanted.has('slipway-nolog')) {
      servers.set(
        'slipway-nolog',
        await startSlipway(ROOT, slipwayModels, opts.slipwayNodeArgs, {
          predictionLog: false,
          workers: opts.slipwayWorkers,
        }),
      );
    }
    if (wanted.has('mlserver')) {
      servers.set('mlserver', await startMlserver(ROOT, tools.mlserver!, join(OUT, 'mlserver')));
    }

    // Every case must compute the right answer before its speed means anything.
    for (const c of cases) {
      const s = servers.get(c.server)!;
      if (c.format === 'grpc') await checkGrpc(s.grpc!, PROTO, samples);
      else await checkHttp(s.http, c.format, samples);
    }
    log(`answers checked against scikit-learn for ${cases.map((c) => c.id).join(', ')}`);

    const load: Omit<LoadOptions, 'concurrency' | 'seconds'> = {
      wrk: tools.wrk,
      ghz: tools.ghz,
      luaScript: join(ROOT, 'bench', 'wrk', 'post.lua'),
      protoPath: PROTO,
      taskset:
        tools.taskset && opts.loadgenCpu !== 'none'
          ? { path: tools.taskset, cpu: opts.loadgenCpu }
          : undefined,
    };
    const targetOf = (c: BenchCase): LoadTarget => {
      const s = servers.get(c.server)!;
      return {
        tool: c.tool,
        url: c.tool === 'ghz' ? s.grpc! : s.http,
        data: data[c.id],
        serverPid: s.child.pid!,
      };
    };

    // One longer warm-up per case at the highest concurrency: JIT, ORT's first runs, pools.
    const top = Math.max(...opts.concurrency);
    for (const c of cases) {
      log(`warming up ${c.id}`);
      await runLoad(targetOf(c), { ...load, concurrency: top, seconds: opts.quick ? 1 : 3 });
    }

    // A run disturbed by other processes is taken again (twice at most) after a wait for quiet;
    // the least disturbed attempt counts.
    const measure = async (target: LoadTarget, o: LoadOptions, waitFirst: boolean): Promise<LoadResult> => {
      let best: LoadResult | undefined;
      for (let attempt = 0; attempt < 3; attempt++) {
        if (opts.waitQuiet > 0 && (attempt > 0 || waitFirst)) await waitQuiet(opts.waitQuiet);
        if (opts.warmup > 0) await runLoad(target, { ...o, seconds: opts.warmup });
        const r = await runLoad(target, o);
        if (!best || r.otherCores < best.otherCores) best = r;
        if (best.otherCores <= NOISY_CORES) break;
      }
      return best!;
    };

    // Interleaved: every case at one concurrency, then the next concurrency, then the next run,
    // so slow drifts of a shared machine spread over all cases alike.
    const results: { caseId: CaseId; concurrency: number; run: number; result: LoadResult }[] = [];
    const total = opts.runs * opts.concurrency.length * cases.length;
    for (let run = 1; run <= opts.runs; run++) {
      // Every other run takes the cases in reverse, so no case always follows the same one.
      const order = run % 2 === 1 ? cases : [...cases].reverse();
      for (const concurrency of opts.concurrency) {
        for (const c of order) {
          const first = concurrency === opts.concurrency[0] && c === order[0];
          const result = await measure(targetOf(c), { ...load, concurrency, seconds: opts.seconds }, first);
          results.push({ caseId: c.id, concurrency, run, result });
          log(
            `[${results.length}/${total}] run ${run} c=${concurrency} ${c.id}: ${Math.round(result.rps)} req/s, ` +
              `p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms` +
              `, server ${result.serverCores.toFixed(2)} / load ${result.loadgenCores.toFixed(2)} / ` +
              `other ${result.otherCores.toFixed(2)} cores` +
              (result.errors ? `, ${result.errors} errors` : ''),
          );
        }
      }
    }

    // The log-on figures mean something only if the log stored what was served.
    const slipway = servers.get('slipway');
    const predictionLog = slipway ? await predictionLogCounters(slipway.http) : undefined;
    if (predictionLog) {
      const ok = predictionLog.written > 0 && predictionLog.failedFlushes === 0;
      log(
        `prediction log (log-on server): ${predictionLog.written} rows written, ${predictionLog.dropped} dropped, ` +
          `${predictionLog.failedFlushes} failed flushes, ${predictionLog.queued} queued` +
          (ok ? '' : ' — THE LOG DID NOT STORE WHAT WAS SERVED: its figures are not valid'),
      );
    }

    const caseTarget = (id: CaseId) => {
      const c = cases.find((x) => x.id === id);
      return c ? targetOf(c) : undefined;
    };
    const alternating = await measureAlternating(opts, load, caseTarget);
    const paired = await measurePaired(opts, tools.taskset, load, data, slipwayModels);

    const machine = {
      slipway: slipwayRevision(),
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      wrk: versionOf(tools.wrk, ['-v']).split(' [')[0],
      ghz: tools.ghz ? GHZ_VERSION : undefined,
      loadgenPinning: load.taskset ? `taskset -c ${load.taskset.cpu}` : 'unpinned',
    };
    const summary = summarize(cases, opts.concurrency, results);
    const report = formatReport({
      machine,
      opts,
      cases,
      summary,
      skipped: tools.missing,
      features: N_FEATURES,
      paired,
      alternating,
    });
    process.stdout.write(report.text);
    if (predictionLog) {
      process.stdout.write(
        `\nprediction log of the log-on server: ${predictionLog.written} rows written, ` +
          `${predictionLog.dropped} dropped, ${predictionLog.failedFlushes} failed flushes\n`,
      );
    }
    mkdirSync(OUT, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    writeFileSync(
      join(OUT, `serving-${stamp}.json`),
      JSON.stringify({ machine, opts, results, summary, predictionLog, paired, alternating }, null, 2),
    );
    writeFileSync(join(OUT, `serving-${stamp}.md`), report.markdown);
    log(`wrote bench/.out/serving-${stamp}.{json,md}`);
  } finally {
    await stopAll();
  }
}

main().catch((err) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
