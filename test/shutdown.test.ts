/**
 * Graceful shutdown of the real CLI: `node bin/slipway.js serve` on port 0 over a temp
 * repository, stopped with SIGTERM while `slow` requests are in flight.
 *
 * Every HTTP request here opens a connection of its own (no keep-alive pool), so "refused"
 * means what a new client would see: the connection is refused or reset, or the server
 * answers 503.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Exit, httpCall, REPO_ROOT, slowRequest, spawnCli, tempRepository } from './helpers.js';

function assertRowsClose(actual: number[], reference: number[], rows: number): void {
  assert.equal(actual.length, reference.length * rows);
  for (let i = 0; i < actual.length; i++) {
    const want = reference[i % reference.length]!;
    assert.ok(
      Math.abs(actual[i]! - want) <= 1e-5 * Math.max(1, Math.abs(want)),
      `element ${i}: ${actual[i]} vs ${want}`,
    );
  }
}

interface Server {
  child: ChildProcess;
  base: string;
  exited: Promise<Exit>;
  stderr: () => string;
}

/** Starts the CLI and resolves once it prints its REST address. */
async function serve(models: string, graceMs: number): Promise<Server> {
  const cli = spawnCli(
    ['serve', '--models', models, '--port', '0', '--no-grpc', '--log-level', 'warn'],
    { SLIPWAY_SHUTDOWN_GRACE_MS: String(graceMs) },
    REPO_ROOT,
  );
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the CLI printed no address within 30 s: ${cli.stdout()} ${cli.stderr()}`)),
      30_000,
    );
    // spawnCli's own listener, added first, has already collected this chunk.
    cli.child.stdout!.on('data', () => {
      const m = /REST\s+(http:\/\/\S+)/.exec(cli.stdout());
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void cli.exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`the CLI exited (${code}) before serving: ${cli.stderr()}`));
    });
  });
  return { child: cli.child, base, exited: cli.exited, stderr: cli.stderr };
}

async function inFlight(base: string, model: string): Promise<number> {
  const res = await new Promise<string>((resolve, reject) => {
    request(`${base}/metrics`, { agent: false }, (r) => {
      let text = '';
      r.on('data', (c) => {
        text += c;
      });
      r.on('end', () => resolve(text));
    })
      .on('error', reject)
      .end();
  });
  const line = res
    .split('\n')
    .find((l) => l.startsWith(`slipway_inference_in_flight_requests{model="${model}",`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('SIGTERM on the CLI', () => {
  let repo: Awaited<ReturnType<typeof tempRepository>>;
  const running: ChildProcess[] = [];

  before(async () => {
    repo = await tempRepository(['slow', 'add_sub']);
  });
  after(async () => {
    for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await repo.remove();
  });

  test('drains in-flight requests, refuses new ones, exits 0 within the grace period', {
    timeout: 60_000,
  }, async (t) => {
    const graceMs = 20_000;
    const server = await serve(repo.dir, graceMs);
    running.push(server.child);
    const { base } = server;
    const lone = await httpCall(base, 'POST', '/v2/models/slow/infer', slowRequest(1));
    assert.equal(lone.status, 200);
    const reference: number[] = lone.body.outputs[0].data;

    // About a second of work: one 4-row request runs, three more queue behind it.
    let completed = 0;
    const inflight = [1, 2, 3, 4].map(() =>
      httpCall(base, 'POST', '/v2/models/slow/infer', slowRequest(4)).then((r) => {
        completed++;
        return r;
      }),
    );
    const deadline = performance.now() + 15_000;
    while ((await inFlight(base, 'slow')) !== 4) {
      assert.ok(performance.now() < deadline, 'the four requests never were in flight together');
      await sleep(5);
    }

    const signalled = performance.now();
    server.child.kill('SIGTERM');

    // New work is refused while the accepted work is still running. A probe that reached the
    // server before it handled the signal is simply served; keep probing until one is refused.
    let refusal: string | undefined;
    let completedAtRefusal = -1;
    while (refusal === undefined) {
      assert.ok(
        performance.now() - signalled < 10_000,
        'new requests were still accepted 10 s after SIGTERM',
      );
      try {
        const probe = await httpCall(base, 'POST', '/v2/models/add_sub/infer', {
          inputs: [
            { name: 'INPUT0', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] },
            { name: 'INPUT1', datatype: 'FP32', shape: [1, 4], data: [1, 1, 1, 1] },
          ],
        });
        if (probe.status === 503) {
          assert.equal(probe.body.code, 'SLIPWAY_ERR_SHUTTING_DOWN');
          refusal = '503';
        } else {
          assert.equal(probe.status, 200, JSON.stringify(probe.body));
          await sleep(5);
          continue;
        }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        assert.ok(
          code === 'ECONNREFUSED' || code === 'ECONNRESET',
          `unexpected error ${code}: ${(err as Error).message}`,
        );
        refusal = code;
      }
      completedAtRefusal = completed;
    }
    t.diagnostic(
      `new work refused (${refusal}) with ${4 - completedAtRefusal} of 4 requests still in flight`,
    );
    assert.ok(completedAtRefusal < 4, 'new requests were refused only after the in-flight work was done');

    for (const r of await Promise.all(inflight)) {
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(r.body.outputs[0].shape, [4, 256]);
      assertRowsClose(r.body.outputs[0].data, reference, 4);
    }
    const exit = await server.exited;
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, server.stderr());
    assert.ok(exit.at - signalled < graceMs, `exited ${Math.round(exit.at - signalled)} ms after SIGTERM`);
    assert.doesNotMatch(server.stderr(), /shutdown failed/);
  });

  test('past the grace period, queued work is abandoned and the process exits', {
    timeout: 60_000,
  }, async (t) => {
    // Settings.shutdownGraceMs: "How long a SIGTERM waits for in-flight requests"; App.close:
    // "drains in-flight requests (up to the grace period)". Forty 8-row requests are queued, far
    // more than the grace allows; the process should stop after at most the batch that is
    // executing, not after computing answers for connections it has already closed.
    const graceMs = 200;
    const server = await serve(repo.dir, graceMs);
    running.push(server.child);
    const { base } = server;
    const started = performance.now();
    assert.equal((await httpCall(base, 'POST', '/v2/models/slow/infer', slowRequest(8))).status, 200);
    const batchMs = performance.now() - started;

    const n = 40;
    const outcomes = Array.from({ length: n }, () =>
      httpCall(base, 'POST', '/v2/models/slow/infer', slowRequest(8)).then(
        (r) => String(r.status),
        (e: NodeJS.ErrnoException) => e.code ?? e.message,
      ),
    );
    const deadline = performance.now() + 15_000;
    while ((await inFlight(base, 'slow')) !== n) {
      assert.ok(performance.now() < deadline, `the ${n} requests never were in flight together`);
      await sleep(5);
    }
    const signalled = performance.now();
    server.child.kill('SIGTERM');
    // Generous: the grace, the executing batch several times over, and two seconds to tear down.
    // Finishing the whole queue would take about n × batchMs.
    const bound = graceMs + 5 * batchMs + 2000;
    const exit = await Promise.race([server.exited, sleep(bound).then(() => undefined)]);
    const seen = (await Promise.race([Promise.all(outcomes), sleep(100).then(() => [])])).join(' ');
    if (!exit) server.child.kill('SIGKILL');
    t.diagnostic(
      `one 8-row batch: ${Math.round(batchMs)} ms; bound ${Math.round(bound)} ms; clients saw: ${seen}`,
    );
    assert.ok(exit, `still running ${Math.round(bound)} ms after SIGTERM with a grace of ${graceMs} ms`);
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, server.stderr());
    assert.ok(exit.at - signalled < bound);
    for (const o of await Promise.all(outcomes))
      assert.ok(['200', '503', 'ECONNRESET'].includes(o), `a client saw ${o}`);
  });

  test('an idle server exits 0 on SIGTERM and stops listening', { timeout: 60_000 }, async () => {
    const server = await serve(repo.dir, 20_000);
    running.push(server.child);
    assert.equal((await httpCall(server.base, 'GET', '/v2/health/ready')).status, 200);
    server.child.kill('SIGTERM');
    const exit = await server.exited;
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, server.stderr());
    await assert.rejects(httpCall(server.base, 'GET', '/v2/health/live'), { code: 'ECONNREFUSED' });
  });
});
