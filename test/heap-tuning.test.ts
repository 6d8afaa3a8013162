import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { inferAddSubInTurn, REPO_ROOT, spawnCli, tempRepository } from './helpers.js';

const run = promisify(execFile);
const TUNING = new URL('../src/cli/heap-tuning.js', import.meta.url).href;

/**
 * A child that calls tuneHeapForServing, then keeps a ring of 200,000 recent objects from one
 * allocation site (so its objects survive young collections), with V8 tracing its pretenuring
 * decisions. Prints whether the flag was changed, then the trace.
 */
async function child(nodeFlags: string[]): Promise<{ changed: boolean; trace: string }> {
  const script = `
    const { tuneHeapForServing } = await import(${JSON.stringify(TUNING)});
    console.log('changed=' + tuneHeapForServing());
    const make = (i) => ({ id: i, pair: [i, i + 1] });
    const ring = new Array(200000);
    for (let i = 0; i < 3000000; i++) ring[i % ring.length] = make(i);`;
  const { stdout } = await run(
    process.execPath,
    [...nodeFlags, '--trace-pretenuring-statistics', '--input-type=module', '-e', script],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  return { changed: /changed=true/.test(stdout), trace: stdout };
}

test('a serving process does not pretenure allocation sites', async () => {
  const { changed, trace } = await child([]);
  assert.equal(changed, true);
  assert.doesNotMatch(trace, /=> tenure/);
});

test('an explicit --allocation-site-pretenuring is kept, and V8 then tenures the surviving site', async () => {
  const { changed, trace } = await child(['--allocation-site-pretenuring']);
  assert.equal(changed, false);
  assert.match(trace, /=> tenure/);
});

/** Runs the real CLI with V8 tracing pretenuring (during `during`, when given), and returns what it printed. */
async function traced(args: string[], during?: (base: string) => Promise<void>): Promise<string> {
  const cli = spawnCli(args, {}, REPO_ROOT, ['--trace-pretenuring-statistics']);
  if (during) {
    const deadline = Date.now() + 30_000;
    let base: string | undefined;
    while (!base) {
      assert.ok(Date.now() < deadline, `no REST address printed: ${cli.stdout()}`);
      base = /REST\s+(http:\/\/\S+)/.exec(cli.stdout())?.[1];
      if (!base) await sleep(50);
    }
    await during(base);
    cli.child.kill('SIGTERM');
  }
  assert.equal((await cli.exited).code, 0);
  return cli.stdout();
}

test('slipway serve runs with pretenuring off under load; another command keeps V8 default', async () => {
  const repo = await tempRepository(['add_sub']);
  const data = await mkdtemp(join(tmpdir(), 'slipway-heap-'));
  try {
    const serving = await traced(
      ['serve', '--models', repo.dir, '--data-dir', data, '--port', '0', '--no-grpc', '--log-level', 'warn'],
      async (base) => {
        await Promise.all(Array.from({ length: 16 }, () => inferAddSubInTurn(base, 250)));
      },
    );
    assert.match(serving, /REST\s+http:/);
    assert.doesNotMatch(serving, /pretenuring:/);
    // The control: the same trace does report V8's pretenuring in a command that keeps it.
    const profiling = await traced([
      'data',
      'profile',
      join(REPO_ROOT, 'datasets/adult/adult.csv'),
      '--json',
    ]);
    assert.match(profiling, /pretenuring:/);
  } finally {
    await repo.remove();
    await rm(data, { recursive: true, force: true });
  }
});
