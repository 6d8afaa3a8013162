/**
 * `slipway serve --workers N` end to end: the real CLI (`node bin/slipway.js serve`) becomes a
 * supervisor that forks serving processes sharing its REST and gRPC ports, on 127.0.0.1 port 0
 * over a temp repository and a temp data dir.
 *
 * Every HTTP request opens a connection of its own unless it says otherwise, so the supervisor
 * hands successive requests to different processes. Which process answered is never guessed:
 * a probe shares one keep-alive connection with an inference request, and the `worker` label of
 * the inference counter in /metrics tells which process that connection reached.
 *
 * Processes are found in /proc (Linux): a supervisor's children, and every process whose command
 * line holds a server's data dir (the supervisor, its serving processes, and any orphan of them).
 * Each server is stopped in `after` (SIGTERM, then SIGKILL), and so is anything left with its
 * data dir.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { grpcProtoPath, LOADER_OPTIONS } from '../src/server/grpc/index.js';
import {
  CLI,
  type Exit,
  FIXTURES,
  type HttpReply,
  httpCall,
  slowRequest,
  spawnCli,
  tempRepository,
} from './helpers.js';

// --- HTTP -------------------------------------------------------------------------------------

/** Runs `fn(0..n-1)`, at most `concurrency` at a time; results in order. */
async function pool<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, lane));
  return out;
}

/** add_sub's version 1 (OUTPUT0 = a + b) as the files of a load request, model `uploaded`. */
const uploadParameters = () => ({
  parameters: {
    config: '{"max_batch_size": 8}',
    'file:1/model.onnx': readFileSync(join(FIXTURES, 'add_sub', '1', 'model.onnx')).toString('base64'),
  },
});

const uploadedInfer = {
  method: 'POST',
  path: '/v2/models/uploaded/infer',
  body: (i: number) => addSubRow(i).body,
};

function assertUploadedSum(r: HttpReply, i: number): void {
  const { a, b } = addSubRow(i);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(
    r.body.outputs.find((o: { name: string }) => o.name === 'OUTPUT0').data,
    a.map((x, k) => x + b[k]!),
  );
}

/** Upload folders under a server's private TMPDIR. */
const uploadsIn = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('slipway-upload-'));

/**
 * add_sub on one row, served by its latest version, 2: OUTPUT0 = a + b + 1, OUTPUT1 = a − b
 * (test/fixtures/README.md); exact in FP32.
 */
function addSubRow(i: number) {
  const a = [i, i + 0.5, i + 1, i + 1.5];
  const b = [1, 2, 3, 4];
  return {
    body: {
      inputs: [
        { name: 'INPUT0', datatype: 'FP32', shape: [1, 4], data: a },
        { name: 'INPUT1', datatype: 'FP32', shape: [1, 4], data: b },
      ],
    },
    a,
    b,
    sum: a.map((x, k) => x + b[k]! + 1),
    difference: a.map((x, k) => x - b[k]!),
  };
}

function assertAddSub(reply: HttpReply, i: number): void {
  const want = addSubRow(i);
  assert.equal(reply.status, 200, reply.text);
  assert.equal(reply.body.model_version, '2');
  assert.deepEqual(
    reply.body.outputs.map((o: { name: string; data: number[] }) => [o.name, o.data]),
    [
      ['OUTPUT0', want.sum],
      ['OUTPUT1', want.difference],
    ],
  );
}

const identityRow = (i: number) => ({
  inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 2], data: [i, -(i + 1) / 4] }],
});

/**
 * A POSIX shared memory object (a file under /dev/shm) holding 2 FP32 values, registered as
 * region 'row' through one serving process.
 */
async function sharedRow(base: string) {
  const key = `/slipway-cluster-${process.pid}`;
  const values = [1.5, -2.25];
  writeFileSync(join('/dev/shm', key.slice(1)), Buffer.from(new Float32Array(values).buffer));
  const region = { key, offset: 0, byte_size: 8 };
  const registered = await httpCall(base, 'POST', '/v2/systemsharedmemory/region/row/register', region);
  assert.equal(registered.status, 200, registered.text);
  return { region, values, remove: () => rmSync(join('/dev/shm', key.slice(1)), { force: true }) };
}

const sharedInfer = {
  method: 'POST',
  path: '/v2/models/identity_fp32/infer',
  body: () => ({
    inputs: [
      {
        name: 'INPUT0',
        datatype: 'FP32',
        shape: [1, 2],
        parameters: { shared_memory_region: 'row', shared_memory_byte_size: 8 },
      },
    ],
  }),
};

// --- /metrics ---------------------------------------------------------------------------------

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of the samples of `name` whose labels include `match`, by `worker` label. */
function byWorker(text: string, name: string, match: Record<string, string> = {}): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of parseSamples(text)) {
    if (s.name !== name || Object.entries(match).some(([k, v]) => s.labels[k] !== v)) continue;
    const w = s.labels.worker;
    assert.ok(w !== undefined, `${name} sample without a worker label`);
    out.set(w, (out.get(w) ?? 0) + s.value);
  }
  return out;
}

/** The `worker` labels of the processes that contributed to an exposition. */
const workersIn = (text: string) => new Set([...byWorker(text, 'slipway_process_start_time_seconds').keys()]);

const metrics = async (base: string) => {
  const r = await httpCall(base, 'GET', '/metrics');
  assert.equal(r.status, 200);
  return r.text;
};

const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

function delta(after: Map<string, number>, before: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [w, v] of after) if (v - (before.get(w) ?? 0) !== 0) out.set(w, v - (before.get(w) ?? 0));
  return out;
}

const REQUESTS = 'slipway_inference_requests_total';
const addSubOk = { model: 'add_sub', version: '2', protocol: 'rest', status: '200' };

/**
 * Sends `probe` on `connections` fresh keep-alive connections, each followed on the same
 * connection by an add_sub inference, and proves through /metrics that the connections reached
 * `processes` distinct serving processes. Returns the probes' replies.
 */
async function probeEveryProcess(
  base: string,
  probe: { method: string; path: string; body?: (i: number) => unknown },
  connections: number,
  processes: number,
): Promise<HttpReply[]> {
  const before = byWorker(await metrics(base), REQUESTS, addSubOk);
  const replies = await pool(connections, 4, async (i) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await httpCall(base, probe.method, probe.path, probe.body?.(i), agent);
      const marker = await httpCall(base, 'POST', '/v2/models/add_sub/infer', addSubRow(i).body, agent);
      assert.ok(marker.reused, 'the marker request did not share the probe’s connection');
      assertAddSub(marker, i);
      return first;
    } finally {
      agent.destroy();
    }
  });
  const reached = delta(byWorker(await metrics(base), REQUESTS, addSubOk), before);
  assert.equal(total(reached), connections, `marker requests by process: ${JSON.stringify([...reached])}`);
  assert.equal(reached.size, processes, `the probes reached processes ${[...reached.keys()]}`);
  return replies;
}

// --- gRPC -------------------------------------------------------------------------------------

type Msg = Record<string, any>;

let service: grpc.ServiceClientConstructor | undefined;

function grpcService(): grpc.ServiceClientConstructor {
  if (!service) {
    const pkg = grpc.loadPackageDefinition(loadSync(grpcProtoPath(), LOADER_OPTIONS));
    service = (pkg.inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;
  }
  return service;
}

/** One unary call on a channel, and so a connection, of its own (no shared subchannel pool). */
function grpcCall(port: number, method: string, req: Msg): Promise<Msg> {
  const Service = grpcService();
  const client = new Service(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
  });
  return new Promise<Msg>((resolve, reject) => {
    (client[method] as (r: Msg, cb: (e: grpc.ServiceError | null, res: Msg) => void) => void).call(
      client,
      req,
      (err, res) => (err ? reject(err) : resolve(res)),
    );
  }).finally(() => client.close());
}

// --- Processes --------------------------------------------------------------------------------

const pidsInProc = () =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);

function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a) => a !== '');
  } catch {
    return [];
  }
}

/** State letter from /proc/<pid>/stat, or undefined when there is no such process. */
function procState(pid: number): { state: string; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0]!, ppid: Number(rest[1]) };
  } catch {
    return undefined;
  }
}

/** Running (a zombie has exited: it only waits to be reaped). */
function alive(pid: number): boolean {
  const s = procState(pid);
  return s !== undefined && s.state !== 'Z';
}

/** The supervisor's serving processes: its running children that run the CLI. */
const servingProcesses = (supervisor: number) =>
  pidsInProc().filter((p) => procState(p)?.ppid === supervisor && alive(p) && cmdline(p).includes(CLI));

/** Every running process whose command line names this data dir: a server and its forks, orphans too. */
function processesOf(dataDir: string): number[] {
  return pidsInProc().filter((p) => {
    const args = cmdline(p);
    const i = args.indexOf('--data-dir');
    return i >= 0 && args[i + 1] === dataDir;
  });
}

async function waitFor(what: string, ms: number, check: () => boolean | Promise<boolean>): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    assert.ok(performance.now() - started < ms, `${what}: not within ${ms} ms`);
    await sleep(50);
  }
  return performance.now() - started;
}

interface Server {
  child: ChildProcess;
  pid: number;
  dataDir: string;
  base: string;
  grpcPort: number | null;
  exited: Promise<Exit>;
  stdout: () => string;
  stderr: () => string;
}

const servers: Server[] = [];

/** Resolves with the result, or undefined after `ms`. */
const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, sleep(ms, undefined, { ref: false })]);

/**
 * Starts `slipway serve` over `models` with a fresh data dir and resolves once its banner is
 * out (the `workers` line too when `workers` > 1). The server is stopped by `stopAll`.
 */
async function startServer(
  models: string,
  o: { workers: number; grpc?: boolean; port?: number; env?: Record<string, string>; nodeArgs?: string[] },
): Promise<Server> {
  const dataDir = await mkdtemp(join(tmpdir(), 'slipway-cluster-'));
  const args = ['serve', '--models', models, '--data-dir', dataDir, '--host', '127.0.0.1'];
  args.push('--port', String(o.port ?? 0));
  args.push(...(o.grpc === false ? ['--no-grpc'] : ['--grpc-port', '0']));
  args.push('--workers', String(o.workers), '--log-level', 'warn');
  // The data dir as cwd: whatever a crashing process writes to its cwd goes away with it.
  const p = spawnCli(args, { SLIPWAY_SHUTDOWN_GRACE_MS: '10000', ...o.env }, dataDir, o.nodeArgs);
  const server: Server = { ...p, pid: p.child.pid!, dataDir, base: '', grpcPort: null };
  servers.push(server);
  const banner = o.workers > 1 ? /^ {2}workers {2}\d+ serving processes$/m : /^ {2}REST {2}http:\S+$/m;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no banner within 30 s:\n${p.stdout()}\n${p.stderr()}`)),
      30_000,
    );
    const check = () => {
      if (!banner.test(p.stdout())) return;
      clearTimeout(timer);
      resolve();
    };
    p.child.stdout!.on('data', check);
    void p.exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the CLI exited (${signal ?? code}) before serving:\n${p.stderr()}`));
    });
  });
  server.base = /^ {2}REST {2}(http:\S+)$/m.exec(p.stdout())![1]!;
  const g = /^ {2}gRPC {2}127\.0\.0\.1:(\d+)$/m.exec(p.stdout());
  server.grpcPort = g ? Number(g[1]) : null;
  return server;
}

/** Stops every server started here: SIGTERM, SIGKILL after 20 s, then anything left on its data dir. */
async function stopAll(): Promise<void> {
  for (const s of servers.splice(0)) {
    if (s.child.exitCode === null && s.child.signalCode === null) {
      s.child.kill('SIGTERM');
      if (!(await within(s.exited, 20_000))) s.child.kill('SIGKILL');
      await within(s.exited, 5000);
    }
    const deadline = performance.now() + 5000;
    while (processesOf(s.dataDir).length > 0 && performance.now() < deadline) await sleep(50);
    for (const pid of processesOf(s.dataDir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    await rm(s.dataDir, { recursive: true, force: true });
  }
}

/** Runs the CLI to its end (SIGKILL after `ms`): exit, output, and how long it took. */
async function runCli(args: string[], env: Record<string, string> = {}, ms = 30_000) {
  const dataDir = await mkdtemp(join(tmpdir(), 'slipway-cluster-'));
  const started = performance.now();
  const p = spawnCli(
    args.map((a) => (a === '<data-dir>' ? dataDir : a)),
    env,
    dataDir,
  );
  const exit = await within(p.exited, ms);
  if (!exit) p.child.kill('SIGKILL');
  const lingering = async () => {
    const deadline = performance.now() + 10_000;
    while (processesOf(dataDir).length > 0 && performance.now() < deadline) await sleep(20);
    return processesOf(dataDir);
  };
  return {
    exit,
    ms: (exit?.at ?? performance.now()) - started,
    stdout: p.stdout(),
    stderr: p.stderr(),
    dataDir,
    /** Processes still running on the data dir right after the exit. */
    leftAtExit: processesOf(dataDir),
    /** Waits up to 10 s for them to go; returns those that did not. */
    lingering,
    remove: () => rm(dataDir, { recursive: true, force: true }),
  };
}

// --- Suites -----------------------------------------------------------------------------------

describe('slipway serve --workers 2', () => {
  let repo: Awaited<ReturnType<typeof tempRepository>>;
  let server: Server;
  /** REST and gRPC add_sub inferences sent so far. */
  let sent = 0;

  let uploadTmp: string;

  before(async () => {
    repo = await tempRepository(['add_sub', 'identity_fp32']);
    uploadTmp = await mkdtemp(join(tmpdir(), 'slipway-cluster-tmp-'));
    server = await startServer(repo.dir, {
      workers: 2,
      env: {
        SLIPWAY_ALLOW_CLIENT_SHM: 'true',
        TMPDIR: uploadTmp,
        SLIPWAY_TRACE_FILE: join(uploadTmp, 'trace.json'),
      },
    });
  });
  after(async () => {
    await stopAll();
    await repo.remove();
    await rm(uploadTmp, { recursive: true, force: true });
  });

  test('two serving processes answer requests on fresh connections, each counted once', {
    timeout: 30_000,
  }, async () => {
    assert.match(server.stdout(), /^Slipway \S+ serving 3 model version\(s\)/m);
    assert.match(server.stdout(), /^ {2}workers {2}2 serving processes$/m);
    const forks = servingProcesses(server.pid);
    assert.equal(forks.length, 2, `children of the supervisor: ${forks}`);
    for (const pid of forks)
      assert.ok(!cmdline(pid).some((a) => a.startsWith('--max-semi-space-size')), cmdline(pid).join(' '));

    const n = 40;
    const replies = await pool(n, 4, (i) =>
      httpCall(server.base, 'POST', '/v2/models/add_sub/infer', addSubRow(i).body),
    );
    for (const [i, r] of replies.entries()) assertAddSub(r, i);
    sent += n;

    // Every process reports all of them, whichever one a scrape reaches.
    for (let k = 0; k < 4; k++) {
      const counted = byWorker(await metrics(server.base), REQUESTS, addSubOk);
      assert.equal(counted.size, 2, `requests counted by processes ${JSON.stringify([...counted])}`);
      for (const [w, c] of counted) assert.ok(c > 0, `process ${w} counted ${c}`);
      assert.equal(total(counted), n);
    }
    for (let k = 0; k < 4; k++) {
      const stats = await httpCall(server.base, 'GET', '/v2/models/add_sub/stats');
      assert.equal(stats.status, 200, stats.text);
      const v2 = stats.body.model_stats.find((s: { version: string }) => s.version === '2');
      assert.equal(v2.inference_count, n, JSON.stringify(v2));
      assert.equal(v2.inference_stats.success.count, n);
      assert.ok(v2.execution_count >= 1 && v2.execution_count <= n);
      const v1 = stats.body.model_stats.find((s: { version: string }) => s.version === '1');
      assert.equal(v1?.inference_count ?? 0, 0);
    }
  });

  test('gRPC shares the port: fresh channels reach both processes, statistics cover both protocols', {
    timeout: 30_000,
  }, async () => {
    assert.ok(server.grpcPort !== null, server.stdout());
    const port = server.grpcPort;
    const m = 12;
    const replies = await pool(m, 4, (i) => {
      const row = addSubRow(100 + i);
      return grpcCall(port, 'ModelInfer', {
        model_name: 'add_sub',
        inputs: [
          { name: 'INPUT0', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: row.a } },
          { name: 'INPUT1', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: row.b } },
        ],
      });
    });
    replies.forEach((r, i) => {
      const row = addSubRow(100 + i);
      assert.equal(r.model_version, '2');
      assert.deepEqual(
        r.outputs.map((o: Msg) => [o.name, o.contents.fp32_contents]),
        [
          ['OUTPUT0', row.sum],
          ['OUTPUT1', row.difference],
        ],
      );
    });
    sent += m;
    const counted = byWorker(await metrics(server.base), REQUESTS, { ...addSubOk, protocol: 'grpc' });
    assert.equal(counted.size, 2, `gRPC requests counted by processes ${JSON.stringify([...counted])}`);
    assert.equal(total(counted), m);
    for (let k = 0; k < 4; k++) {
      const { model_stats } = await grpcCall(port, 'ModelStatistics', { name: 'add_sub', version: '2' });
      assert.equal(model_stats.length, 1);
      assert.equal(Number(model_stats[0].inference_count), sent);
    }
  });

  test('/metrics is one valid exposition of both processes', { timeout: 30_000 }, async () => {
    for (let k = 0; k < 4; k++) {
      const text = await metrics(server.base);
      const typed = new Map<string, number>();
      const helped = new Map<string, number>();
      const closed = new Set<string>();
      const series = new Set<string>();
      let current: string | undefined;
      for (const line of text.split('\n')) {
        if (line === '') continue;
        const meta = /^# (HELP|TYPE) (\S+)/.exec(line);
        if (meta) {
          const seen = meta[1] === 'TYPE' ? typed : helped;
          seen.set(meta[2]!, (seen.get(meta[2]!) ?? 0) + 1);
          if (current !== meta[2]) {
            if (current !== undefined) closed.add(current);
            assert.ok(!closed.has(meta[2]!), `family ${meta[2]} is split in two`);
            current = meta[2]!;
          }
          continue;
        }
        const s = parseSamples(line)[0]!;
        // A sample belongs to the family declared just before it (histograms add suffixes).
        const family = current ?? '';
        const rest = s.name.startsWith(family) ? s.name.slice(family.length) : undefined;
        assert.ok(
          current !== undefined &&
            (rest === '' || rest === '_bucket' || rest === '_sum' || rest === '_count'),
          `sample outside its family (${current}): ${line}`,
        );
        assert.ok(s.labels.worker === '1' || s.labels.worker === '2', `worker label: ${line}`);
        const key = line.slice(0, line.lastIndexOf(' '));
        assert.ok(!series.has(key), `series twice: ${key}`);
        series.add(key);
      }
      for (const [name, count] of typed) assert.equal(count, 1, `# TYPE ${name} appears ${count} times`);
      for (const [name, count] of helped) assert.equal(count, 1, `# HELP ${name} appears ${count} times`);
      assert.ok(typed.has(REQUESTS));
      assert.deepEqual([...workersIn(text)].sort(), ['1', '2']);
    }
  });

  test('an unload through REST reaches every process, and so does the load after it', {
    timeout: 30_000,
  }, async () => {
    const ready = { method: 'GET', path: '/v2/models/identity_fp32/ready' };
    const unload = await httpCall(server.base, 'POST', '/v2/repository/models/identity_fp32/unload', {});
    assert.equal(unload.status, 200, unload.text);
    for (const r of await probeEveryProcess(server.base, ready, 16, 2)) {
      assert.equal(r.status, 503, r.text);
      assert.equal(r.body.ready, false);
    }
    const refused = await pool(8, 4, (i) =>
      httpCall(server.base, 'POST', '/v2/models/identity_fp32/infer', identityRow(i)),
    );
    for (const r of refused) assert.equal(r.status, 503, r.text);

    const load = await httpCall(server.base, 'POST', '/v2/repository/models/identity_fp32/load', {});
    assert.equal(load.status, 200, load.text);
    for (const r of await probeEveryProcess(server.base, ready, 16, 2)) {
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.ready, true);
    }
    const infer = { method: 'POST', path: '/v2/models/identity_fp32/infer', body: identityRow };
    const answers = await probeEveryProcess(server.base, infer, 16, 2);
    answers.forEach((r, i) => {
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body.outputs[0].data, identityRow(i).inputs[0]!.data);
    });
  });

  test('model files loaded through one process serve on every process; the unload removes them once', {
    timeout: 30_000,
  }, async () => {
    const load = await httpCall(
      server.base,
      'POST',
      '/v2/repository/models/uploaded/load',
      uploadParameters(),
    );
    assert.equal(load.status, 200, load.text);
    assert.equal(uploadsIn(uploadTmp).length, 1, 'one folder, written by the process that was asked');
    (await probeEveryProcess(server.base, uploadedInfer, 16, 2)).forEach(assertUploadedSum);
    const unload = await httpCall(server.base, 'POST', '/v2/repository/models/uploaded/unload', {});
    assert.equal(unload.status, 200, unload.text);
    assert.deepEqual(uploadsIn(uploadTmp), []);
    for (const r of await probeEveryProcess(server.base, uploadedInfer, 16, 2))
      assert.equal(r.status, 503, r.text);
  });

  test('a trace settings change through one process reaches every process; each writes its own files', {
    timeout: 30_000,
  }, async () => {
    const on = await httpCall(server.base, 'POST', '/v2/trace/setting', {
      trace_level: ['TIMESTAMPS'],
      trace_rate: '1',
      log_frequency: '1',
    });
    assert.equal(on.status, 200, on.text);
    try {
      for (const r of await probeEveryProcess(
        server.base,
        { method: 'GET', path: '/v2/trace/setting' },
        16,
        2,
      )) {
        assert.deepEqual([r.body.trace_level, r.body.trace_rate], [['TIMESTAMPS'], '1'], r.text);
      }
      // Every probe above sent an add_sub request on its connection: both processes traced some.
      const deadline = performance.now() + 5000;
      let writers = new Set<string>();
      while (writers.size < 2 && performance.now() < deadline) {
        writers = new Set(
          readdirSync(uploadTmp)
            .map((n) => /^trace\.json\.w(\d+)\.\d+$/.exec(n)?.[1])
            .filter((w): w is string => w !== undefined),
        );
        await sleep(20);
      }
      assert.equal(writers.size, 2, `trace files: ${readdirSync(uploadTmp).join(', ')}`);
    } finally {
      await httpCall(server.base, 'POST', '/v2/trace/setting', { trace_level: ['OFF'] });
    }
    for (const r of await probeEveryProcess(
      server.base,
      { method: 'GET', path: '/v2/trace/setting' },
      16,
      2,
    )) {
      assert.deepEqual(r.body.trace_level, ['OFF'], r.text);
    }
  });

  test('a shared memory region registered through one process serves every process', {
    timeout: 30_000,
  }, async () => {
    const row = await sharedRow(server.base);
    try {
      for (const r of await probeEveryProcess(server.base, sharedInfer, 16, 2)) {
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.body.outputs[0].data, row.values);
      }
      const status = { method: 'GET', path: '/v2/systemsharedmemory/status' };
      for (const r of await probeEveryProcess(server.base, status, 8, 2)) {
        assert.deepEqual(r.body, [{ name: 'row', ...row.region }]);
      }
      const gone = await httpCall(server.base, 'POST', '/v2/systemsharedmemory/unregister');
      assert.equal(gone.status, 200, gone.text);
      for (const r of await probeEveryProcess(server.base, sharedInfer, 16, 2)) {
        assert.equal(r.status, 400, r.text);
        assert.match(r.body.error, /shared memory region 'row' is not registered/);
      }
    } finally {
      await httpCall(server.base, 'POST', '/v2/systemsharedmemory/unregister');
      row.remove();
    }
  });

  test('a log settings change through one process reaches every process', { timeout: 30_000 }, async () => {
    const logging = { method: 'GET', path: '/v2/logging' };
    const verbose = await httpCall(server.base, 'POST', '/v2/logging', {
      log_info: true,
      log_verbose_level: 1,
    });
    assert.equal(verbose.status, 200, verbose.text);
    try {
      for (const r of await probeEveryProcess(server.base, logging, 16, 2)) {
        assert.deepEqual([r.body.log_info, r.body.log_verbose_level], [true, 1], r.text);
      }
    } finally {
      await httpCall(server.base, 'POST', '/v2/logging', { log_info: false, log_verbose_level: 0 });
    }
    for (const r of await probeEveryProcess(server.base, logging, 16, 2)) {
      assert.deepEqual(
        [r.body.log_info, r.body.log_warnings, r.body.log_verbose_level],
        [false, true, 0],
        r.text,
      );
    }
  });

  test('gRPC RepositoryModelUnload and RepositoryModelLoad reach every process', {
    timeout: 30_000,
  }, async () => {
    const port = server.grpcPort!;
    const ready = { method: 'GET', path: '/v2/models/identity_fp32/ready' };
    await grpcCall(port, 'RepositoryModelUnload', { model_name: 'identity_fp32' });
    for (const r of await probeEveryProcess(server.base, ready, 12, 2)) assert.equal(r.status, 503, r.text);
    await grpcCall(port, 'RepositoryModelLoad', { model_name: 'identity_fp32' });
    for (const r of await probeEveryProcess(server.base, ready, 12, 2)) assert.equal(r.status, 200, r.text);
  });

  test('SIGTERM drains every process; the supervisor exits 0 and leaves no process behind', {
    timeout: 30_000,
  }, async () => {
    const forks = servingProcesses(server.pid);
    assert.equal(forks.length, 2);
    const signalled = performance.now();
    server.child.kill('SIGTERM');
    const exit = await within(server.exited, 20_000);
    assert.ok(exit, 'the supervisor still runs 20 s after SIGTERM');
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, server.stderr());
    assert.ok(exit.at - signalled < 15_000, `exited ${Math.round(exit.at - signalled)} ms after SIGTERM`);
    for (const pid of forks) assert.ok(!alive(pid), `serving process ${pid} still runs`);
    assert.deepEqual(processesOf(server.dataDir), []);
    assert.doesNotMatch(server.stderr(), /shutdown failed/);
    await assert.rejects(httpCall(server.base, 'GET', '/v2/health/live'), { code: 'ECONNREFUSED' });
  });
});

describe('a serving process that dies', () => {
  let repo: Awaited<ReturnType<typeof tempRepository>>;
  let server: Server;
  let uploadTmp: string;

  before(async () => {
    repo = await tempRepository(['add_sub', 'identity_fp32']);
    uploadTmp = await mkdtemp(join(tmpdir(), 'slipway-cluster-tmp-'));
    server = await startServer(repo.dir, {
      workers: 2,
      grpc: false,
      // The supervisor's own Node flags reach its serving processes, replacements included.
      nodeArgs: ['--max-semi-space-size=64'],
      env: { SLIPWAY_ALLOW_CLIENT_SHM: 'true', TMPDIR: uploadTmp },
    });
  });
  after(async () => {
    await stopAll();
    await repo.remove();
    await rm(uploadTmp, { recursive: true, force: true });
  });

  /** Kills one serving process with SIGKILL and waits until its replacement serves. */
  async function killOne(): Promise<{ victim: number; replacement: number; workers: Set<string> }> {
    const forks = servingProcesses(server.pid);
    assert.equal(forks.length, 2, `children of the supervisor: ${forks}`);
    const before = workersIn(await metrics(server.base));
    assert.equal(before.size, 2);
    const victim = forks[0]!;
    process.kill(victim, 'SIGKILL');
    let workers = new Set<string>();
    await waitFor('a replacement that serves', 20_000, async () => {
      const now = servingProcesses(server.pid);
      if (alive(victim) || now.length !== 2) return false;
      workers = workersIn(await metrics(server.base));
      return workers.size === 2 && [...workers].some((w) => !before.has(w));
    });
    const replacement = servingProcesses(server.pid).find((p) => !forks.includes(p))!;
    assert.ok(replacement !== undefined && replacement !== victim);
    // One of the two processes before is still there; the other is new.
    assert.equal([...workers].filter((w) => before.has(w)).length, 1);
    return { victim, replacement, workers };
  }

  test('is replaced: the server keeps answering, the banner is not printed again', {
    timeout: 30_000,
  }, async () => {
    for (const pid of servingProcesses(server.pid)) {
      assert.ok(cmdline(pid).includes('--max-semi-space-size=64'), cmdline(pid).join(' '));
    }
    const { replacement, workers } = await killOne();
    assert.ok(cmdline(replacement).includes('--max-semi-space-size=64'));
    assert.ok(alive(server.pid), 'the supervisor died');
    assert.equal(server.child.exitCode, null);

    const before = byWorker(await metrics(server.base), REQUESTS, addSubOk);
    const replies = await pool(20, 4, (i) =>
      httpCall(server.base, 'POST', '/v2/models/add_sub/infer', addSubRow(i).body),
    );
    for (const [i, r] of replies.entries()) assertAddSub(r, i);
    const counted = delta(byWorker(await metrics(server.base), REQUESTS, addSubOk), before);
    assert.deepEqual(
      [...counted.keys()].sort(),
      [...workers].sort(),
      'both processes, the new one too, serve',
    );
    assert.equal(total(counted), 20);

    assert.equal(server.stdout().match(/^Slipway /gm)?.length, 1, server.stdout());
    assert.equal(server.stdout().match(/serving processes$/gm)?.length, 1, server.stdout());
    assert.match(server.stderr(), /serving process exited; starting another/);
  });

  test('a replacement serves what the others serve: a model unloaded before stays unloaded', {
    timeout: 30_000,
  }, async () => {
    const row = await sharedRow(server.base);
    const unload = await httpCall(server.base, 'POST', '/v2/repository/models/identity_fp32/unload', {});
    assert.equal(unload.status, 200, unload.text);
    const verbose = await httpCall(server.base, 'POST', '/v2/logging', { log_info: true });
    assert.equal(verbose.status, 200, verbose.text);
    const upload = await httpCall(
      server.base,
      'POST',
      '/v2/repository/models/uploaded/load',
      uploadParameters(),
    );
    assert.equal(upload.status, 200, upload.text);
    // A failed upload after it changes nothing: not even what a replacement repeats.
    const broken = await httpCall(server.base, 'POST', '/v2/repository/models/uploaded/load', {
      parameters: { config: '{}', 'file:1/model.onnx': Buffer.from('not onnx').toString('base64') },
    });
    assert.equal(broken.status, 400, broken.text);
    try {
      await killOne();
      // Loaded from the folder the relayed load names, whichever process wrote it.
      (await probeEveryProcess(server.base, uploadedInfer, 16, 2)).forEach(assertUploadedSum);
      for (const r of await probeEveryProcess(server.base, { method: 'GET', path: '/v2/logging' }, 16, 2)) {
        assert.equal(r.body.log_info, true, 'the replacement took the log level set before it');
      }
      const ready = { method: 'GET', path: '/v2/models/identity_fp32/ready' };
      const statuses = (await probeEveryProcess(server.base, ready, 16, 2)).map((r) => r.status);
      assert.deepEqual(
        statuses,
        statuses.map(() => 503),
        'ready probes on fresh connections',
      );
      await httpCall(server.base, 'POST', '/v2/repository/models/identity_fp32/load', {});
      // The replacement registered the region too, from the relayed registration.
      for (const r of await probeEveryProcess(server.base, sharedInfer, 16, 2)) {
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.body.outputs[0].data, row.values);
      }
    } finally {
      await httpCall(server.base, 'POST', '/v2/repository/models/identity_fp32/load', {});
      await httpCall(server.base, 'POST', '/v2/systemsharedmemory/unregister');
      await httpCall(server.base, 'POST', '/v2/logging', { log_info: false });
      row.remove();
    }
  });

  test('SIGTERM after a replacement still exits 0', {
    timeout: 30_000,
  }, async () => {
    const forks = servingProcesses(server.pid);
    server.child.kill('SIGTERM');
    const exit = await within(server.exited, 20_000);
    assert.ok(exit, 'the supervisor still runs 20 s after SIGTERM');
    for (const pid of forks) assert.ok(!alive(pid), `serving process ${pid} still runs`);
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, server.stderr());
    // Removed by the process that wrote it, or by the supervisor if that process was the one killed.
    assert.deepEqual(uploadsIn(uploadTmp), []);
  });
});

describe('a supervisor killed with SIGKILL', () => {
  let repo: Awaited<ReturnType<typeof tempRepository>>;
  let server: Server;
  let forks: number[];
  let inFlight: Promise<HttpReply | Error>;
  let reference: number[];
  const slow = slowRequest;

  before(async () => {
    repo = await tempRepository(['slow']);
    server = await startServer(repo.dir, {
      workers: 2,
      grpc: false,
    });
    const lone = await httpCall(server.base, 'POST', '/v2/models/slow/infer', slow(1));
    assert.equal(lone.status, 200, lone.text);
    reference = lone.body.outputs[0].data;
  });
  after(async () => {
    await stopAll();
    await repo.remove();
  });

  test('takes its serving processes with it: none is left on the port', { timeout: 30_000 }, async () => {
    forks = servingProcesses(server.pid);
    assert.equal(forks.length, 2);
    // About half a second of work on one process when the supervisor dies.
    inFlight = httpCall(server.base, 'POST', '/v2/models/slow/infer', slow(8)).catch((e: Error) => e);
    await waitFor('the slow request in flight', 10_000, async () => {
      const gauge = byWorker(await metrics(server.base), 'slipway_inference_in_flight_requests', {
        model: 'slow',
      });
      return total(gauge) === 1;
    });
    server.child.kill('SIGKILL');
    await server.exited;
    const ms = await waitFor('the serving processes to exit', 10_000, () => forks.every((p) => !alive(p)));
    assert.deepEqual(processesOf(server.dataDir), []);
    await assert.rejects(httpCall(server.base, 'GET', '/v2/health/live'), { code: 'ECONNREFUSED' });
    assert.ok(ms < 10_000);
  });

  test('a request in flight is still answered (the serving process drains on disconnect)', {
    timeout: 30_000,
  }, async () => {
    const r = await inFlight;
    assert.ok(!(r instanceof Error), `the in-flight request failed: ${(r as Error).message}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.outputs[0].shape, [8, 256]);
    for (let i = 0; i < r.body.outputs[0].data.length; i++) {
      const want = reference[i % reference.length]!;
      assert.ok(Math.abs(r.body.outputs[0].data[i] - want) <= 1e-5 * Math.max(1, Math.abs(want)));
    }
  });
});

describe('slipway serve --workers: start-up failures', () => {
  let repo: Awaited<ReturnType<typeof tempRepository>>;

  before(async () => {
    repo = await tempRepository(['identity_fp32']);
  });
  after(async () => {
    await stopAll();
    await repo.remove();
  });

  test('a REST port already taken: the supervisor exits non-zero, with the reason on stderr', {
    timeout: 60_000,
  }, async (t) => {
    const holder = await startServer(repo.dir, { workers: 1, grpc: false });
    const port = Number(new URL(holder.base).port);
    const run = await runCli([
      'serve',
      '--models',
      repo.dir,
      '--data-dir',
      '<data-dir>',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--grpc-port',
      '0',
      '--workers',
      '2',
      '--log-level',
      'warn',
    ]);
    try {
      assert.ok(run.exit, `still running after 30 s:\n${run.stdout}\n${run.stderr}`);
      assert.equal(run.exit.signal, null);
      assert.notEqual(run.exit.code, 0, run.stderr);
      assert.match(run.stderr, new RegExp(`EADDRINUSE.*${port}`));
      assert.match(run.stderr, /serving process \d+ exited \(code 1\) before it served/);
      assert.doesNotMatch(run.stdout, /serving processes/);
      const leftAtExit = run.leftAtExit;
      assert.deepEqual(await run.lingering(), [], 'serving processes left running');
      t.diagnostic(
        `exited ${run.exit.code} after ${Math.round(run.ms)} ms; serving processes still running at that moment: ${leftAtExit.length}`,
      );
      // The server that holds the port is untouched.
      assert.equal((await httpCall(holder.base, 'GET', '/v2/health/ready')).status, 200);
    } finally {
      for (const pid of processesOf(run.dataDir)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
      await run.remove();
    }
  });

  test('--workers 0, --workers abc and SLIPWAY_WORKERS=abc are config errors naming the setting', {
    timeout: 60_000,
  }, async () => {
    const serve = (workers?: string) => [
      'serve',
      '--models',
      repo.dir,
      '--data-dir',
      '<data-dir>',
      '--port',
      '0',
      '--no-grpc',
      ...(workers === undefined ? [] : ['--workers', workers]),
    ];
    const cases: { args: string[]; env: Record<string, string>; source: string; value: string }[] = [
      { args: serve('0'), env: {}, source: '--workers', value: '"0"' },
      { args: serve('abc'), env: {}, source: '--workers', value: '"abc"' },
      { args: serve('65'), env: {}, source: '--workers', value: '"65"' },
      { args: serve(), env: { SLIPWAY_WORKERS: 'abc' }, source: 'SLIPWAY_WORKERS', value: '"abc"' },
    ];
    const runs = await Promise.all(cases.map((c) => runCli(c.args, c.env, 20_000)));
    try {
      runs.forEach((run, i) => {
        const c = cases[i]!;
        assert.ok(run.exit, `${c.source}=${c.value}: still running after 20 s`);
        assert.deepEqual({ code: run.exit.code, signal: run.exit.signal }, { code: 1, signal: null });
        const message = `error: ${c.source}: must be an integer from 1 to 64, got ${c.value}`;
        assert.ok(run.stderr.split('\n').includes(message), `${c.source}=${c.value}: stderr ${run.stderr}`);
        assert.equal(run.stdout, '');
      });
    } finally {
      await Promise.all(runs.map((r) => r.remove()));
    }
  });
});
