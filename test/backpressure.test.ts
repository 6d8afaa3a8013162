/**
 * Back-pressure and timeouts on the real server, with copies of the `slow` fixture (about
 * 30 ms per row, more on a loaded machine) in a temp repository:
 *
 * - `slow` with max_batch_size 1 and max_queue_size 2: a flood is partly refused with 429
 *   (gRPC RESOURCE_EXHAUSTED) and Retry-After; what is accepted is answered correctly.
 * - `slow_t` with max_batch_size 8 and the default queue: 8-row requests hold the instance
 *   while requests with short timeouts wait behind them and expire (504 / DEADLINE_EXCEEDED).
 *
 * Nothing here measures latency: each check rests on order (a request queued behind a whole
 * 8-row execution cannot finish within 50 ms) and on counts in the model's statistics.
 */
import assert from 'node:assert/strict';
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { App } from '../src/app.js';
import { grpcProtoPath, LOADER_OPTIONS } from '../src/server/grpc/index.js';
import { FIXTURES, getJson, postJson, startTestApp, tempRepository } from './helpers.js';

type Msg = Record<string, any>;

interface GrpcClient {
  infer(request: Msg, deadlineMs?: number): Promise<{ err: grpc.ServiceError | null; res?: Msg }>;
  close(): void;
}

function grpcClient(port: number): GrpcClient {
  const definition = loadSync(grpcProtoPath(), LOADER_OPTIONS);
  const inference = grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject;
  const Service = inference.GRPCInferenceService as grpc.ServiceClientConstructor;
  const client = new Service(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return {
    infer(request, deadlineMs) {
      return new Promise((resolve) => {
        const options: grpc.CallOptions =
          deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs };
        client.ModelInfer(request, new grpc.Metadata(), options, (err: grpc.ServiceError | null, res: Msg) =>
          resolve({ err, res }),
        );
      });
    },
    close: () => client.close(),
  };
}

const ROW = Array.from({ length: 256 }, (_, i) => Math.sin(i) / 2);
const rowsOf = (n: number) => Array.from({ length: n }, () => ROW).flat();
const slowRequest = (rows: number, parameters?: Record<string, unknown>) => ({
  inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [rows, 256], data: rowsOf(rows) }],
  ...(parameters ? { parameters } : {}),
});
const grpcSlowRequest = (model: string, rows: number, parameters?: Msg): Msg => ({
  model_name: model,
  inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [rows, 256] }],
  raw_input_contents: [Buffer.from(Float32Array.from(rowsOf(rows)).buffer)],
  ...(parameters ? { parameters } : {}),
});

interface Stats {
  inference_count: number;
  execution_count: number;
  inference_stats: Record<string, { count: number }>;
}

async function statsOf(base: string, model: string): Promise<Stats> {
  const res = await getJson<{ model_stats: Stats[] }>(`${base}/v2/models/${model}/versions/1/stats`);
  assert.equal(res.status, 200);
  return res.body.model_stats[0]!;
}

async function inFlight(base: string, model: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`slipway_inference_in_flight_requests{model="${model}",version="1"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function waitFor(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('back-pressure and timeouts', () => {
  let app: App;
  let base: string;
  let client: GrpcClient;
  let remove: () => Promise<void>;
  /** `slow`'s output for ROW, from a request that ran alone. */
  let reference: number[];

  before(async () => {
    const repo = await tempRepository(['slow']);
    remove = repo.remove;
    await writeFile(
      join(repo.dir, 'slow', 'config.json'),
      JSON.stringify({ max_batch_size: 1, dynamic_batching: { max_queue_size: 2 } }),
    );
    await cp(join(FIXTURES, 'slow'), join(repo.dir, 'slow_t'), { recursive: true });
    app = await startTestApp({ models: repo.dir, grpcPort: 0 });
    base = app.http.url;
    client = grpcClient(app.grpc!.port);
    const res = await postJson(`${base}/v2/models/slow/infer`, slowRequest(1));
    assert.equal(res.status, 200);
    reference = res.body.outputs[0].data;
  });
  after(async () => {
    client.close();
    await app.close();
    await remove();
  });

  /**
   * Sends two 8-row requests to slow_t and waits until both are accepted: about 2 × 8 rows of
   * work ahead of anything sent next. `done` settles when they are answered (and checked).
   */
  async function occupySlowT(): Promise<{ done: Promise<void> }> {
    const blockers = Promise.all(
      [1, 2].map(() => postJson(`${base}/v2/models/slow_t/infer`, slowRequest(8))),
    );
    await waitFor('both blockers in flight', async () => (await inFlight(base, 'slow_t')) === 2);
    const done = blockers.then((rs) => {
      for (const r of rs) {
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.deepEqual(r.body.outputs[0].shape, [8, 256]);
      }
    });
    return { done };
  }

  test('a flood beyond max_queue_size is partly refused with 429 and Retry-After', async () => {
    const before = await statsOf(base, 'slow');
    const n = 12;
    const results = await Promise.all(
      Array.from({ length: n }, () => postJson(`${base}/v2/models/slow/infer`, slowRequest(1))),
    );
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 429);
    assert.equal(ok.length + refused.length, n, `statuses: ${results.map((r) => r.status)}`);
    // One runs at once and two wait, whatever the timing; twelve at once overflow the queue.
    assert.ok(ok.length >= 3, `only ${ok.length} accepted`);
    assert.ok(refused.length >= 1, 'nothing was refused');
    for (const r of ok) assert.deepEqual(r.body.outputs[0].data, reference);
    for (const r of refused) {
      assert.equal(r.headers.get('retry-after'), '1');
      assert.match(r.headers.get('content-type')!, /application\/json/);
      assert.equal(r.body.code, 'SLIPWAY_ERR_QUEUE_FULL');
      assert.match(r.body.error, /queue .*\(max_queue_size 2\)/);
    }
    // Refused requests never ran: the model executed exactly the accepted ones.
    const after = await statsOf(base, 'slow');
    assert.equal(after.inference_count - before.inference_count, ok.length);
    assert.equal(after.inference_stats.success!.count - before.inference_stats.success!.count, ok.length);
    assert.equal(after.inference_stats.fail!.count - before.inference_stats.fail!.count, refused.length);
    // The pressure is transient: once drained, the model takes requests again.
    const again = await postJson(`${base}/v2/models/slow/infer`, slowRequest(1));
    assert.equal(again.status, 200);
    assert.deepEqual(again.body.outputs[0].data, reference);
  });

  test('over gRPC, a full queue answers RESOURCE_EXHAUSTED with retry-after metadata', async () => {
    const n = 12;
    const results = await Promise.all(
      Array.from({ length: n }, () => client.infer(grpcSlowRequest('slow', 1))),
    );
    const ok = results.filter((r) => r.err === null);
    const refused = results.filter((r) => r.err !== null);
    assert.ok(ok.length >= 3, `only ${ok.length} accepted`);
    assert.ok(refused.length >= 1, 'nothing was refused');
    for (const { err } of refused) {
      assert.equal(err!.code, grpc.status.RESOURCE_EXHAUSTED, `${grpc.status[err!.code]}: ${err!.details}`);
      assert.match(err!.details, /max_queue_size 2/);
      assert.deepEqual(err!.metadata.get('retry-after'), ['1']);
      assert.deepEqual(err!.metadata.get('slipway-error-code'), ['SLIPWAY_ERR_QUEUE_FULL']);
    }
    for (const { res } of ok) {
      const raw: Buffer = res!.raw_output_contents[0];
      const out = Array.from(
        new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)),
      );
      assert.deepEqual(out, reference);
    }
  });

  test('queued requests past their timeout answer 504; a generous timeout succeeds', async () => {
    const before = await statsOf(base, 'slow_t');
    const blockers = await occupySlowT();
    const [byHeader, byParameter, generous] = await Promise.all([
      postJson(`${base}/v2/models/slow_t/infer`, slowRequest(1), { 'slipway-timeout-ms': '50' }),
      // The V2 `timeout` parameter is in microseconds, as in Triton.
      postJson(`${base}/v2/models/slow_t/infer`, slowRequest(1, { timeout: 50_000 })),
      postJson(`${base}/v2/models/slow_t/infer`, slowRequest(1), { 'slipway-timeout-ms': '60000' }),
    ]);
    for (const r of [byHeader, byParameter]) {
      assert.equal(r.status, 504, JSON.stringify(r.body));
      assert.equal(r.body.code, 'SLIPWAY_ERR_TIMEOUT');
      assert.match(r.body.error, /did not complete within its timeout of 50 ms/);
    }
    assert.equal(generous.status, 200, JSON.stringify(generous.body));
    assert.deepEqual(generous.body.outputs[0].shape, [1, 256]);
    await blockers.done;
    // The two that expired left the queue without running: 8 + 8 + 1 rows in three executions.
    const after = await statsOf(base, 'slow_t');
    assert.equal(after.inference_count - before.inference_count, 17);
    assert.equal(after.execution_count - before.execution_count, 3);
    assert.equal(after.inference_stats.success!.count - before.inference_stats.success!.count, 3);
    assert.equal(after.inference_stats.fail!.count - before.inference_stats.fail!.count, 2);
  });

  test('a malformed timeout is a 400 that names it', async () => {
    const header = await postJson(`${base}/v2/models/slow_t/infer`, slowRequest(1), {
      'slipway-timeout-ms': 'soon',
    });
    assert.equal(header.status, 400);
    assert.match(header.body.error, /slipway-timeout-ms/);
    const param = await postJson(`${base}/v2/models/slow_t/infer`, slowRequest(1, { timeout: -5 }));
    assert.equal(param.status, 400);
    assert.match(param.body.error, /'timeout'/);
    // 0 means no timeout, as in Triton and over gRPC.
    const none = await postJson(`${base}/v2/models/slow_t/infer`, slowRequest(1, { timeout: 0 }));
    assert.equal(none.status, 200, JSON.stringify(none.body));
  });

  test('over gRPC, a deadline or a timeout parameter that passes in the queue answers DEADLINE_EXCEEDED', async () => {
    const before = await statsOf(base, 'slow_t');
    const blockers = await occupySlowT();
    const [deadline, parameter, generous] = await Promise.all([
      client.infer(grpcSlowRequest('slow_t', 1), 50),
      client.infer(grpcSlowRequest('slow_t', 1, { timeout: { int64_param: 50_000 } })),
      client.infer(grpcSlowRequest('slow_t', 1), 60_000),
    ]);
    assert.equal(deadline.err?.code, grpc.status.DEADLINE_EXCEEDED, deadline.err?.details);
    // No client deadline here: the status comes from the server's own timer.
    assert.equal(parameter.err?.code, grpc.status.DEADLINE_EXCEEDED, parameter.err?.details);
    assert.match(parameter.err!.details, /timeout of 50 ms/);
    assert.deepEqual(parameter.err!.metadata.get('slipway-error-code'), ['SLIPWAY_ERR_TIMEOUT']);
    assert.equal(generous.err, null);
    assert.equal(generous.res!.raw_output_contents[0].length, 256 * 4);
    await blockers.done;
    // The server dropped both from the queue: neither ran.
    await waitFor('slow_t to be idle', async () => (await inFlight(base, 'slow_t')) === 0);
    const after = await statsOf(base, 'slow_t');
    assert.equal(after.inference_count - before.inference_count, 17);
    assert.equal(after.execution_count - before.execution_count, 3);
  });

  test('a request that times out while executing is counted once, as a failure', async () => {
    // On an idle model the request starts at once; 8 rows run far longer than 50 ms.
    await waitFor('slow_t to be idle', async () => (await inFlight(base, 'slow_t')) === 0);
    const before = await statsOf(base, 'slow_t');
    const res = await postJson(`${base}/v2/models/slow_t/infer`, slowRequest(8), {
      'slipway-timeout-ms': '50',
    });
    assert.equal(res.status, 504);
    // ONNX Runtime cannot stop a run: it finishes, and counts as an execution.
    await waitFor(
      'the execution to finish',
      async () => (await statsOf(base, 'slow_t')).execution_count > before.execution_count,
    );
    const after = await statsOf(base, 'slow_t');
    assert.equal(after.inference_stats.fail!.count - before.inference_stats.fail!.count, 1);
    assert.equal(
      after.inference_stats.success!.count - before.inference_stats.success!.count,
      0,
      'the timed-out request was also counted as a success',
    );
  });

  test('a REST client that disconnects while queued does not leave its request to run', async () => {
    // InferOptions.signal: "Aborted when the client goes away; the request is dropped from the
    // queue if still waiting". gRPC does this on cancel; REST should on a closed connection.
    const before = await statsOf(base, 'slow_t');
    const blocker = postJson(`${base}/v2/models/slow_t/infer`, slowRequest(8));
    await waitFor('the blocker in flight', async () => (await inFlight(base, 'slow_t')) === 1);
    const controllers = [0, 1].map(() => new AbortController());
    const abandoned = controllers.map((c) =>
      fetch(`${base}/v2/models/slow_t/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(slowRequest(8)),
        signal: c.signal,
      }).then(
        () => 'answered',
        () => 'aborted',
      ),
    );
    await waitFor('both requests queued', async () => (await inFlight(base, 'slow_t')) === 3);
    for (const c of controllers) c.abort();
    assert.deepEqual(await Promise.all(abandoned), ['aborted', 'aborted']);
    assert.equal((await blocker).status, 200);
    await waitFor('slow_t to be idle', async () => (await inFlight(base, 'slow_t')) === 0);
    const after = await statsOf(base, 'slow_t');
    assert.equal(after.inference_count - before.inference_count, 8, 'the abandoned requests were executed');
  });
});
