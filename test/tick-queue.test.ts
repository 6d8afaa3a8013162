import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI, inferAddSubInTurn, REPO_ROOT, tempRepository } from './helpers.js';

const TICK_QUEUE = new URL('../src/cli/tick-queue.js', import.meta.url).href;

/**
 * What spoils the feedback: full collections while no tick object is alive, then more ticks.
 * Then prints V8's view of `process.nextTick`, its feedback slots among it.
 */
const SPOIL_AND_PRINT = `
  const noop = () => {};
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  for (let i = 0; i < 20; i++) { process.nextTick(noop); await turn(); }
  gc(); gc(); await turn(); gc();
  for (let i = 0; i < 20; i++) { process.nextTick(noop); await turn(); }
  %DebugPrint(process.nextTick);`;

/** The states of nextTick's four computed-key slots (`{ [async_id_symbol]: …, … }`), in order. */
function literalSlots(printed: string): string[] {
  return [...printed.matchAll(/DefineKeyedOwnPropertyInLiteral (\w+)/g)].map((m) => m[1]!);
}

/**
 * Runs node with V8's natives and `gc()`, its stdout in a file: V8 prints through C's stdio, and
 * into a pipe (non-blocking, as Node leaves it) part of that was lost.
 */
async function runNode(
  dir: string,
  args: string[],
): Promise<{ child: ChildProcess; exited: Promise<number | null>; output: () => Promise<string> }> {
  const file = join(dir, `stdout-${Date.now()}-${Math.random()}.txt`);
  const out = await open(file, 'w');
  const child = spawn(process.execPath, ['--allow-natives-syntax', '--expose-gc', ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', out.fd, 'inherit'],
  });
  // Listened for at once: a short script may be gone before the caller looks.
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await out.close();
  return { child, exited, output: () => readFile(file, 'utf8') };
}

async function scriptSlots(dir: string, keep: boolean): Promise<string[]> {
  const script = `
    ${keep ? `const { keepTickObjectShape } = await import(${JSON.stringify(TICK_QUEUE)}); console.log('kept=' + keepTickObjectShape());` : ''}
    ${SPOIL_AND_PRINT}`;
  const { exited, output } = await runNode(dir, ['--input-type=module', '-e', script]);
  assert.equal(await exited, 0);
  const printed = await output();
  if (keep) assert.match(printed, /kept=true/);
  return literalSlots(printed);
}

test('a kept tick object keeps process.nextTick monomorphic through full collections', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-tick-'));
  try {
    // The control: without one, the collections free the shapes and the later slots go megamorphic.
    const spoiled = await scriptSlots(dir, false);
    assert.equal(spoiled.length, 4, `nextTick's literal slots not found: ${spoiled}`);
    assert.ok(
      spoiled.includes('MEGAMORPHIC'),
      `expected a megamorphic slot without a kept object: ${spoiled}`,
    );
    assert.deepEqual(await scriptSlots(dir, true), [
      'MONOMORPHIC',
      'MONOMORPHIC',
      'MONOMORPHIC',
      'MONOMORPHIC',
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('slipway serve keeps process.nextTick monomorphic after load and full collections', async () => {
  const repo = await tempRepository(['add_sub']);
  const data = await mkdtemp(join(tmpdir(), 'slipway-tick-'));
  // Loaded into the server before its CLI: on SIGUSR2 it spoils and prints, as above, and exits.
  const probe = join(data, 'probe.mjs');
  await writeFile(probe, `process.on('SIGUSR2', async () => {${SPOIL_AND_PRINT}\nprocess.exit(0);\n});\n`);
  const { child, exited, output } = await runNode(data, [
    '--import',
    probe,
    CLI,
    'serve',
    ...['--models', repo.dir, '--data-dir', data, '--port', '0', '--no-grpc', '--log-level', 'warn'],
  ]);
  try {
    const deadline = Date.now() + 30_000;
    let base: string | undefined;
    while (!base) {
      assert.ok(Date.now() < deadline, `no REST address printed: ${await output()}`);
      base = /REST\s+(http:\/\/\S+)/.exec(await output())?.[1];
      if (!base) await sleep(50);
    }
    await inferAddSubInTurn(base, 200);
    child.kill('SIGUSR2');
    assert.equal(await exited, 0);
    assert.deepEqual(literalSlots(await output()), [
      'MONOMORPHIC',
      'MONOMORPHIC',
      'MONOMORPHIC',
      'MONOMORPHIC',
    ]);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await repo.remove();
    await rm(data, { recursive: true, force: true });
  }
});
