import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

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
