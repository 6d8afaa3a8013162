/**
 * Runs one bounded load against 127.0.0.1 with wrk (HTTP) or ghz (gRPC), pinned to one CPU when
 * taskset is there, and returns throughput, latency percentiles and how busy the cores were.
 */
import { spawn } from 'node:child_process';
import { cpuBusySeconds, processTreeCpuSeconds } from './servers.js';

export interface LoadResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Socket errors, timeouts and non-2xx answers (wrk), or non-OK calls (ghz). */
  errors: number;
  /** CPU used by the server process tree, in cores (1.0 = one core busy for the whole run). */
  serverCores: number;
  /** CPU used by the load generator, in cores. */
  loadgenCores: number;
  /** Busy fraction of each CPU during the run, whoever used it. */
  cpuBusy: number[];
  /** Cores busy with anything but the server and the load generator: the noise of a shared machine. */
  otherCores: number;
}

export interface LoadTarget {
  tool: 'wrk' | 'ghz';
  /** wrk: http://127.0.0.1:<port>; ghz: 127.0.0.1:<port>. */
  url: string;
  /** wrk: the manifest for bench/wrk/post.lua; ghz: the JSON data file. */
  data: string;
  serverPid: number;
}

export interface LoadOptions {
  concurrency: number;
  seconds: number;
  wrk?: string;
  ghz?: string;
  luaScript: string;
  protoPath: string;
  /** `taskset -c <cpu>` for the load generator; undefined runs it unpinned. */
  taskset?: { path: string; cpu: string };
}

/**
 * Runs the load generator under `sh`, whose `times` then reports the CPU the tool used (its
 * children's user and system time), so the report can tell the load generator's share of the cores.
 */
function exec(
  cmd: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string; cpuSeconds: number }> {
  return new Promise((resolve, reject) => {
    const script = '"$@"; rc=$?; times >&2; exit $rc';
    const child = spawn('/bin/sh', ['-c', script, 'sh', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    // A load run is bounded by its own -d/-z; this only catches a hung tool.
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const lines = stderr.trimEnd().split('\n');
      const m = lines[lines.length - 1]?.match(/^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/);
      const cpuSeconds = m ? Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]) : Number.NaN;
      resolve({ code, stdout, stderr: lines.slice(0, -2).join('\n'), cpuSeconds });
    });
  });
}

function pinned(opts: LoadOptions, cmd: string, args: string[]): [string, string[]] {
  return opts.taskset ? [opts.taskset.path, ['-c', opts.taskset.cpu, cmd, ...args]] : [cmd, args];
}

async function wrk(target: LoadTarget, opts: LoadOptions) {
  const args = ['-t1', `-c${opts.concurrency}`, `-d${opts.seconds}s`, '--timeout', '10s'];
  args.push('-s', opts.luaScript, target.url, '--', target.data);
  const [cmd, argv] = pinned(opts, opts.wrk!, args);
  const r = await exec(cmd, argv, (opts.seconds + 30) * 1000);
  const line = r.stdout.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  if (r.code !== 0 || !line) throw new Error(`wrk failed (${r.code}): ${r.stderr || r.stdout}`);
  const w = JSON.parse(line.slice('BENCH_RESULT '.length)) as {
    requests: number;
    duration_us: number;
    p50_us: number;
    p99_us: number;
    errors: Record<string, number>;
  };
  return {
    rps: w.requests / (w.duration_us / 1e6),
    p50Ms: w.p50_us / 1000,
    p99Ms: w.p99_us / 1000,
    requests: w.requests,
    errors: Object.values(w.errors).reduce((a, b) => a + b, 0),
    loadgenCpuSeconds: r.cpuSeconds,
  };
}

async function ghz(target: LoadTarget, opts: LoadOptions) {
  // One HTTP/2 connection, as a gRPC client library opens by default; calls still in flight when
  // the time is up are left out rather than counted as errors.
  const args = [
    '--insecure',
    '--proto',
    opts.protoPath,
    '--call',
    'inference.GRPCInferenceService.ModelInfer',
  ];
  args.push('-D', target.data, '-c', String(opts.concurrency), '--connections', '1');
  args.push('-z', `${opts.seconds}s`, '--duration-stop', 'ignore', '--cpus', '1', '-O', 'json', target.url);
  const [cmd, argv] = pinned(opts, opts.ghz!, args);
  const r = await exec(cmd, argv, (opts.seconds + 60) * 1000);
  if (r.code !== 0) throw new Error(`ghz failed (${r.code}): ${r.stderr || r.stdout}`);
  const g = JSON.parse(r.stdout) as {
    count: number;
    rps: number;
    latencyDistribution: { percentage: number; latency: number }[] | null;
    statusCodeDistribution: Record<string, number>;
  };
  const pct = (p: number) =>
    (g.latencyDistribution ?? []).find((d) => d.percentage === p)?.latency ?? Number.NaN;
  const ok = g.statusCodeDistribution.OK ?? 0;
  return {
    rps: g.rps,
    p50Ms: pct(50) / 1e6,
    p99Ms: pct(99) / 1e6,
    requests: g.count,
    errors: g.count - ok,
    loadgenCpuSeconds: r.cpuSeconds,
  };
}

export async function runLoad(target: LoadTarget, opts: LoadOptions): Promise<LoadResult> {
  const cpu0 = cpuBusySeconds();
  const srv0 = processTreeCpuSeconds(target.serverPid);
  const t0 = process.hrtime.bigint();
  const r = target.tool === 'wrk' ? await wrk(target, opts) : await ghz(target, opts);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const srv1 = processTreeCpuSeconds(target.serverPid);
  const cpu1 = cpuBusySeconds();
  const { loadgenCpuSeconds, ...rest } = r;
  const cpuBusy = cpu1.map((b, i) => (b - cpu0[i]!) / wall);
  const serverCores = (srv1 - srv0) / wall;
  const loadgenCores = loadgenCpuSeconds / wall;
  const otherCores = Math.max(0, cpuBusy.reduce((a, b) => a + b, 0) - serverCores - loadgenCores);
  return { ...rest, serverCores, loadgenCores, cpuBusy, otherCores };
}
