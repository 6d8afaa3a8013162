/**
 * Starts the servers under test as child processes on 127.0.0.1 and stops them. Each server runs
 * in its own process group so that MLServer's worker processes stop with it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { CHECKED_MODEL, MODEL, RECORDS_MODEL, type Samples } from './payloads.js';

export interface RunningServer {
  name: string;
  child: ChildProcess;
  /** http://127.0.0.1:<port> */
  http: string;
  /** 127.0.0.1:<port>, for the servers that speak gRPC. */
  grpc?: string;
  /** Everything the server printed, for the error message when it fails. */
  output: () => string;
}

const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

export function launch(
  name: string,
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
) {
  log(`starting ${name}: ${cmd} ${args.join(' ')}`);
  const child = spawn(cmd, args, {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, output: () => output };
}

/** Resolves with the first match of `pattern` in the child's stdout. */
function waitForLine(
  name: string,
  child: ChildProcess,
  pattern: RegExp,
  timeoutMs: number,
): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(
      () => done(new Error(`${name} did not start within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      const m = seen.match(pattern);
      if (m) done(undefined, m);
    };
    const onExit = (code: number | null) => done(new Error(`${name} exited (${code}) before it was ready`));
    function done(err?: Error, m?: RegExpMatchArray) {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(m!);
    }
    child.stdout!.on('data', onData);
    child.on('exit', onExit);
  });
}

export async function waitReady(
  name: string,
  url: string,
  child: ChildProcess,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}) before it was ready`);
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${name}: ${url} not ready within ${timeoutMs} ms`);
}

/** A port that was free a moment ago, for servers that cannot bind port 0 and report it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function guarded(
  name: string,
  started: ReturnType<typeof launch>,
  ready: () => Promise<Omit<RunningServer, 'name' | 'child' | 'output'>>,
) {
  try {
    return { name, child: started.child, output: started.output, ...(await ready()) };
  } catch (err) {
    await stopServer({ name, child: started.child, http: '', output: started.output });
    throw new Error(`${(err as Error).message}\n--- ${name} output ---\n${started.output()}`);
  }
}

const LISTENING = /listening on (http:\/\/127\.0\.0\.1:\d+)/;

/** A Node server from dist/bench/servers that prints "listening on <url>". */
export async function startNodeServer(name: string, script: string, args: string[]): Promise<RunningServer> {
  const started = launch(name, process.execPath, [script, '--port', '0', ...args]);
  return guarded(name, started, async () => {
    const m = await waitForLine(name, started.child, LISTENING, 30_000);
    return { http: m[1]! };
  });
}

/**
 * The repository Slipway serves in the benchmark: the model as it is, and two records-API copies
 * (feature names in config.json), the second with a schema.json that checks every feature — a
 * range per numeric feature and {0, 1} per one-hot column, as `slipway data schema infer` writes
 * for this data — so the cost of serving-time validation shows side by side.
 */
export function prepareSlipwayModels(root: string, samples: Samples): string {
  const dir = join(root, 'bench', '.out', 'models');
  rmSync(dir, { recursive: true, force: true });
  const source = join(root, 'bench', 'models', MODEL);
  cpSync(source, join(dir, MODEL), { recursive: true });
  const config = {
    ...JSON.parse(readFileSync(join(source, 'config.json'), 'utf8')),
    feature_names: samples.feature_names,
  };
  for (const name of [RECORDS_MODEL, CHECKED_MODEL]) {
    cpSync(source, join(dir, name), { recursive: true });
    writeFileSync(join(dir, name, 'config.json'), JSON.stringify(config));
  }
  const columns = samples.feature_names.map((name, k) => {
    const values = samples.rows.map((r) => r[k]!);
    const binary = values.every((v) => v === 0 || v === 1);
    return binary
      ? { name, type: 'integer', nullable: false, categories: [0, 1] }
      : {
          name,
          type: 'float',
          nullable: false,
          range: { min: Math.min(...values) - 1, max: Math.max(...values) + 1 },
        };
  });
  writeFileSync(
    join(dir, CHECKED_MODEL, 'schema.json'),
    JSON.stringify({ format: 'slipway.schema', version: 1, columns, table: { extra_columns: false } }),
  );
  return dir;
}

export async function startSlipway(
  root: string,
  models: string,
  nodeArgs: string[],
  options: { predictionLog?: boolean; workers?: string; store?: string } = {},
): Promise<RunningServer> {
  // A fresh store each run: what an earlier run logged (or an older schema) must not weigh on this one.
  const dataDir = join(
    root,
    'bench',
    '.out',
    options.store ?? (options.predictionLog === false ? 'slipway-data-nolog' : 'slipway-data'),
  );
  rmSync(dataDir, { recursive: true, force: true });
  const args = [
    ...nodeArgs,
    join(root, 'bin', 'slipway.js'),
    'serve',
    '--models',
    models,
    '--data-dir',
    dataDir,
  ];
  args.push('--port', '0', '--grpc-port', '0', '--log-level', 'warn');
  if (options.workers) args.push('--workers', options.workers);
  const env = { ...process.env, SLIPWAY_PREDICTION_LOG: options.predictionLog === false ? 'false' : 'true' };
  const started = launch('slipway', process.execPath, args, { cwd: root, env });
  return guarded('slipway', started, async () => {
    const m = await waitForLine('slipway', started.child, /REST\s+(http:\/\/[^\s]+)\s+gRPC\s+(\S+)/, 60_000);
    const http = m[1]!.replace(/\/$/, '');
    await waitReady('slipway', `${http}/v2/models/${MODEL}/ready`, started.child, 60_000);
    return { http, grpc: m[2]! };
  });
}

/**
 * MLServer as its docs start it, logging at warning level like the other servers (its default
 * `debug` setting writes an access log line per request). It writes `.metrics/` and `.envs/`
 * into its working directory, so it runs in bench/.out/mlserver.
 */
export async function startMlserver(root: string, mlserver: string, workDir: string): Promise<RunningServer> {
  mkdirSync(workDir, { recursive: true });
  const [http, grpc, metrics] = [await freePort(), await freePort(), await freePort()];
  const env = {
    ...process.env,
    MLSERVER_HOST: '127.0.0.1',
    MLSERVER_HTTP_PORT: String(http),
    MLSERVER_GRPC_PORT: String(grpc),
    MLSERVER_METRICS_PORT: String(metrics),
    MLSERVER_DEBUG: 'false',
  };
  const started = launch('mlserver', mlserver, ['start', join(root, 'bench', 'mlserver')], {
    env,
    cwd: workDir,
  });
  return guarded('mlserver', started, async () => {
    const url = `http://127.0.0.1:${http}`;
    await waitReady('mlserver', `${url}/v2/models/${MODEL}/ready`, started.child, 180_000);
    return { http: url };
  });
}

/**
 * The prediction log's counters from a Slipway server's /metrics (rows written and dropped,
 * failed flushes), so a run with the log on can show that it really stored what it served.
 */
export async function predictionLogCounters(
  http: string,
): Promise<{ written: number; dropped: number; failedFlushes: number; queued: number }> {
  const text = await (await fetch(`${http}/metrics`)).text();
  // Summed over the serving processes (one sample per `worker` label when there are several).
  const value = (name: string) => {
    const all = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm'))];
    return all.length === 0 ? Number.NaN : all.reduce((sum, m) => sum + Number(m[1]), 0);
  };
  return {
    written: value('slipway_prediction_log_written_rows_total'),
    dropped: value('slipway_prediction_log_dropped_rows_total'),
    failedFlushes: value('slipway_prediction_log_failed_flushes_total'),
    queued: value('slipway_prediction_log_queued'),
  };
}

export async function stopServer(server: RunningServer, graceMs = 15_000): Promise<void> {
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // SIGTERM to the server itself so it shuts down its own workers; the group only if it hangs.
  const group = -child.pid!;
  try {
    process.kill(child.pid!, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    log(`${server.name} did not stop within ${graceMs} ms; killing it`);
    try {
      process.kill(group, 'SIGKILL');
    } catch {
      // already gone
    }
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc, so the report can say how the two cores were shared.

/** The pids of a process and its descendants (those alive while it is read). */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const visit = (p: number) => {
    out.push(p);
    try {
      for (const tid of readdirSync(`/proc/${p}/task`)) {
        const children = readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8').trim();
        if (children) for (const c of children.split(' ')) visit(Number(c));
      }
    } catch {
      // the process ended meanwhile
    }
  };
  visit(pid);
  return out;
}

/** CPU time (seconds) used so far by a process and all its descendants, threads included. */
export function processTreeCpuSeconds(pid: number): number {
  const ticks = 100; // USER_HZ on Linux
  let total = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / ticks; // utime, stime
    } catch {
      // the process ended meanwhile
    }
  }
  return total;
}

/**
 * CPU time (ns) every thread of a process tree has run so far, as the scheduler accounts it
 * (`/proc/<pid>/task/<tid>/schedstat`, nanoseconds rather than /proc/<pid>/stat's 10 ms ticks).
 */
export function processTreeCpuNs(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${p}/task`);
    } catch {
      continue; // the process ended meanwhile
    }
    for (const tid of tids) {
      try {
        total += Number(readFileSync(`/proc/${p}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // the thread ended meanwhile
      }
    }
  }
  return total;
}

/** Busy seconds per CPU since boot, from /proc/stat (everything but idle and iowait). */
export function cpuBusySeconds(): number[] {
  const lines = readFileSync('/proc/stat', 'utf8').split('\n');
  return lines
    .filter((l) => /^cpu\d+ /.test(l))
    .map((l) => {
      const v = l.split(/\s+/).slice(1).map(Number);
      const busy = v.reduce((a, b) => a + b, 0) - v[3]! - v[4]!;
      return busy / 100;
    });
}
