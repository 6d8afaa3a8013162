/**
 * Triton's streaming inference (`GRPCInferenceService/ModelStreamInfer`): a real grpc-js client
 * on a bidirectional stream, against the real server on the fixture models (answers equal the
 * unary call's, statistics count them) and against an echo data plane (order of answers, errors
 * on the stream, cancellation, the in-flight bound, deadlines and shutdown).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { App } from '../src/app.js';
import {
  type GrpcServer,
  grpcProtoPath,
  LOADER_OPTIONS,
  MAX_STREAM_IN_FLIGHT,
  startGrpcServer,
} from '../src/server/grpc/index.js';
import { startTestApp } from './helpers.js';
import { EchoPlane } from './support/echo-plane.js';

type Msg = Record<string, any>;

const definition = loadSync(grpcProtoPath(), LOADER_OPTIONS);
const Service = (grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject)
  .GRPCInferenceService as grpc.ServiceClientConstructor;

/** One open stream: what it has answered so far, and its final status. */
interface OpenStream {
  call: grpc.ClientDuplexStream<Msg, Msg>;
  answers: Msg[];
  /** Resolves once `n` answers have come (rejects if the call ends first). */
  answered(n: number): Promise<Msg[]>;
  status: Promise<grpc.StatusObject>;
}

function openStream(client: grpc.Client, options: { deadlineMs?: number; token?: string } = {}): OpenStream {
  const metadata = new grpc.Metadata();
  if (options.token) metadata.set('authorization', `Bearer ${options.token}`);
  const callOptions: grpc.CallOptions = {};
  if (options.deadlineMs !== undefined) callOptions.deadline = Date.now() + options.deadlineMs;
  const call = (client as any).ModelStreamInfer(metadata, callOptions) as grpc.ClientDuplexStream<Msg, Msg>;
  const answers: Msg[] = [];
  const waiters: { n: number; resolve: (a: Msg[]) => void; reject: (e: Error) => void }[] = [];
  let ended: grpc.StatusObject | undefined;
  const status = new Promise<grpc.StatusObject>((resolve) => {
    call.on('status', (s: grpc.StatusObject) => {
      ended = s;
      for (const w of waiters.splice(0)) {
        if (answers.length >= w.n) w.resolve(answers);
        else
          w.reject(
            new Error(
              `the stream ended (${grpc.status[s.code]}: ${s.details}) after ${answers.length} answers`,
            ),
          );
      }
      resolve(s);
    });
  });
  call.on('error', () => {}); // a non-OK status is read from 'status'
  call.on('data', (m: Msg) => {
    answers.push(m);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (answers.length >= waiters[i]!.n) waiters.splice(i, 1)[0]!.resolve(answers);
    }
  });
  return {
    call,
    answers,
    status,
    answered(n) {
      if (answers.length >= n) return Promise.resolve(answers);
      if (ended) return Promise.reject(new Error(`the stream ended after ${answers.length} answers`));
      return new Promise((resolve, reject) => waiters.push({ n, resolve, reject }));
    },
  };
}

const unary = (client: grpc.Client, method: string, request: Msg) =>
  new Promise<Msg>((resolve, reject) =>
    (client as any)[method](request, (err: grpc.ServiceError | null, res: Msg) =>
      err ? reject(err) : resolve(res),
    ),
  );

const f32 = (values: number[]) => Buffer.from(new Float32Array(values).buffer);

async function until(check: () => boolean, what: string, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// --- The real server ---------------------------------------------------------------------------

describe('ModelStreamInfer on the real server (fixture models)', () => {
  let app: App;
  let client: grpc.Client;
  const FIXTURES = fileURLToPath(new URL('../../test/fixtures/models', import.meta.url));

  before(async () => {
    app = await startTestApp({ models: FIXTURES, grpcPort: 0 });
    client = new Service(`127.0.0.1:${app.grpc!.port}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client.close();
    await app.close();
  });

  /** Request i: add_sub on both versions, typed and raw contents, batches of 1 to 3 rows. */
  function request(i: number): Msg {
    const rows = 1 + (i % 3);
    const a = Array.from({ length: 4 * rows }, (_, k) => i + k / 8);
    const b = Array.from({ length: 4 * rows }, (_, k) => 2 * k - i);
    const base = { model_name: 'add_sub', model_version: String(1 + (i % 2)), id: `req-${i}` };
    if (i % 4 < 2) {
      return {
        ...base,
        inputs: [
          { name: 'INPUT0', datatype: 'FP32', shape: [rows, 4], contents: { fp32_contents: a } },
          { name: 'INPUT1', datatype: 'FP32', shape: [rows, 4], contents: { fp32_contents: b } },
        ],
      };
    }
    return {
      ...base,
      inputs: [
        { name: 'INPUT0', datatype: 'FP32', shape: [rows, 4] },
        { name: 'INPUT1', datatype: 'FP32', shape: [rows, 4] },
      ],
      raw_input_contents: [f32(a), f32(b)],
    };
  }

  test('every request on the stream gets the answer ModelInfer gives it, matched by id', async () => {
    const n = 40;
    const before = await unary(client, 'ModelStatistics', { name: 'add_sub', version: '1' });
    const stream = openStream(client);
    for (let i = 0; i < n; i++) stream.call.write(request(i));
    stream.call.end();
    const answers = await stream.answered(n);
    const status = await stream.status;
    assert.equal(status.code, grpc.status.OK, status.details);
    assert.equal(answers.length, n);
    const byId = new Map(answers.map((a) => [a.infer_response?.id, a]));
    for (let i = 0; i < n; i++) {
      const answer = byId.get(`req-${i}`);
      assert.ok(answer, `no answer for req-${i}`);
      assert.equal(answer.error_message, undefined);
      assert.deepEqual(answer.infer_response, await unary(client, 'ModelInfer', request(i)));
    }
    // Version 1 adds: request 0 has one row of a = 0, 0.125, 0.25, 0.375 and b = 0, 2, 4, 6.
    assert.deepEqual(
      byId.get('req-0')!.infer_response.outputs[0].contents.fp32_contents,
      [0, 2.125, 4.25, 6.375],
    );
    const after = await unary(client, 'ModelStatistics', { name: 'add_sub', version: '1' });
    const count = (s: Msg) => Number(s.model_stats[0]?.inference_stats?.success?.count ?? 0);
    assert.equal(
      count(after) - count(before),
      2 * (n / 2),
      'each request on v1 counted twice (stream and unary)',
    );
  });

  test('a failed request answers error_message and the stream goes on', async () => {
    const stream = openStream(client);
    stream.call.write({ ...request(0), model_name: 'nope', id: 'bad-model' });
    await stream.answered(1);
    stream.call.write({
      ...request(0),
      id: 'bad-shape',
      inputs: [
        { name: 'INPUT0', datatype: 'FP32', shape: [1, 3], contents: { fp32_contents: [1, 2, 3] } },
        request(0).inputs[1],
      ],
    });
    await stream.answered(2);
    stream.call.write(request(1));
    stream.call.end();
    const [notFound, badShape, ok] = await stream.answered(3);
    assert.match(notFound!.error_message, /model 'nope' is not in the repository/);
    assert.equal(notFound!.infer_response.id, 'bad-model', "the error carries its request's id");
    assert.match(badShape!.error_message, /INPUT0/);
    assert.equal(ok!.infer_response.id, 'req-1');
    assert.equal((await stream.status).code, grpc.status.OK);
  });
});

// --- The transport on an echo data plane --------------------------------------------------------

describe('ModelStreamInfer transport (echo data plane)', () => {
  const echo = (id: string, delayMs?: number, extra: Msg = {}) => ({
    model_name: 'echo',
    id,
    ...(delayMs === undefined ? {} : { parameters: { delay_ms: { int64_param: delayMs }, ...extra } }),
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1], contents: { fp32_contents: [1] } }],
  });
  let plane: EchoPlane;
  let server: GrpcServer;
  let client: grpc.Client;

  before(async () => {
    plane = new EchoPlane();
    server = await startGrpcServer(plane, { host: '127.0.0.1', port: 0 });
    client = new Service(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client.close();
    await server.close(1000);
  });

  test('requests run at once, and are answered in the order they came', async () => {
    plane.maxRunning = 0;
    const started = Date.now();
    const stream = openStream(client);
    stream.call.write(echo('slow', 200));
    stream.call.write(echo('mid', 150));
    stream.call.write(echo('quick'));
    stream.call.end();
    const answers = await stream.answered(3);
    assert.deepEqual(
      answers.map((a) => a.infer_response.id),
      ['slow', 'mid', 'quick'],
    );
    assert.equal(plane.maxRunning, 2, 'the two delayed requests ran together');
    assert.ok(Date.now() - started < 340, 'the requests ran one after the other');
    assert.equal((await stream.status).code, grpc.status.OK);
  });

  test('errors of any kind stay on the stream: not found, internal, timeout, undecodable', async () => {
    // A raw client sends bytes as they are, so one message can be broken on purpose.
    const method = definition['inference.GRPCInferenceService'] as grpc.ServiceDefinition;
    const encode = method.ModelStreamInfer!.requestSerialize;
    const decode = method.ModelStreamInfer!.responseDeserialize;
    const raw = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    try {
      const call = raw.makeBidiStreamRequest(
        '/inference.GRPCInferenceService/ModelStreamInfer',
        (b: Buffer) => b,
        (b: Buffer) => decode(b) as Msg,
      );
      const answers: Msg[] = [];
      call.on('data', (m: Msg) => answers.push(m));
      const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
      call.on('error', () => {});
      const send = async (bytes: Buffer) => {
        const n = answers.length + 1;
        call.write(bytes);
        await until(() => answers.length >= n, 'an answer');
      };
      await send(encode({ ...echo('a'), model_name: 'nope' }));
      await send(encode({ ...echo('b'), model_name: 'boom' }));
      await send(encode(echo('c', 500, { timeout: { int64_param: 20_000 } })));
      await send(Buffer.from([0xff, 0xff, 0xff]));
      await send(encode(echo('d')));
      call.end();
      assert.equal((await status).code, grpc.status.OK);
      assert.match(answers[0]!.error_message, /model 'nope' is not in the repository/);
      assert.equal(answers[0]!.infer_response.id, 'a', "an error carries its request's id");
      assert.match(answers[1]!.error_message, /kaboom/);
      assert.match(answers[2]!.error_message, /timed out after 20 ms/);
      assert.match(answers[3]!.error_message, /the request message cannot be decoded/);
      assert.equal(answers[4]!.infer_response.id, 'd');
      assert.deepEqual(answers[4]!.infer_response.outputs[0].contents, { fp32_contents: [1] });
    } finally {
      raw.close();
    }
  });

  test('a stream reads at most MAX_STREAM_IN_FLIGHT requests at a time, and answers them all', async () => {
    plane.maxRunning = 0;
    const n = MAX_STREAM_IN_FLIGHT + 50;
    const stream = openStream(client);
    for (let i = 0; i < n; i++) stream.call.write(echo(`r${i}`, 100));
    stream.call.end();
    const answers = await stream.answered(n);
    assert.equal((await stream.status).code, grpc.status.OK);
    assert.equal(new Set(answers.map((a) => a.infer_response.id)).size, n);
    assert.equal(plane.maxRunning, MAX_STREAM_IN_FLIGHT);
  });

  test('cancelling the stream cancels the requests it has running', async () => {
    const stream = openStream(client);
    stream.call.write(echo('long-1', 10_000));
    stream.call.write(echo('long-2', 10_000));
    await until(() => plane.running === 2, 'both requests to run');
    stream.call.cancel();
    await until(() => plane.running === 0, 'the data plane to see the cancellation');
    assert.equal((await stream.status).code, grpc.status.CANCELLED);
  });

  test("the call's deadline ends the stream DEADLINE_EXCEEDED and cancels what runs", async () => {
    const stream = openStream(client, { deadlineMs: 100 });
    stream.call.write(echo('quick'));
    stream.call.write(echo('long', 10_000));
    await stream.answered(1);
    assert.equal((await stream.status).code, grpc.status.DEADLINE_EXCEEDED);
    await until(() => plane.running === 0, 'the data plane to see the cancellation');
  });
});

describe('ModelStreamInfer at shutdown', () => {
  const echo = (id: string, delayMs: number) => ({
    model_name: 'echo',
    id,
    parameters: { delay_ms: { int64_param: delayMs } },
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1], contents: { fp32_contents: [7] } }],
  });

  for (const clientEnded of [false, true]) {
    test(`close() answers what the stream has read, then ends it ${clientEnded ? 'OK (the client had ended its side)' : 'UNAVAILABLE'}`, async () => {
      const plane = new EchoPlane();
      const server = await startGrpcServer(plane, { host: '127.0.0.1', port: 0 });
      const client = new Service(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
      try {
        const stream = openStream(client);
        stream.call.write(echo('in-flight', 200));
        if (clientEnded) stream.call.end();
        await until(() => plane.running === 1, 'the request to run');
        const started = Date.now();
        await server.close(5000);
        assert.ok(Date.now() - started < 2000, 'close waited for the grace period instead of the stream');
        const [answer] = await stream.answered(1);
        assert.equal(answer!.infer_response.id, 'in-flight');
        const status = await stream.status;
        if (clientEnded) assert.equal(status.code, grpc.status.OK);
        else {
          assert.equal(status.code, grpc.status.UNAVAILABLE);
          assert.match(status.details, /shutting down/);
        }
      } finally {
        client.close();
        await server.close(100);
      }
    });
  }
});
