import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import type { LoadTarget } from '../bench/harness/load.js';
import { medianInterval, runAlternating, summarizePaired } from '../bench/harness/paired.js';
import { processTreeCpuNs, processTreeCpuSeconds } from '../bench/harness/servers.js';
import { loadResult } from './support/load-results.js';

describe('side-by-side rounds (bench/harness/paired.ts)', () => {
  it('gives the order-statistic interval of the median with its binomial coverage', () => {
    // n = 16: P(X ≤ 3) = (1 + 16 + 120 + 560) / 2^16 for X ~ Binomial(16, 1/2), so [x(4), x(13)]
    // covers the median with 1 - 2·697/65536; [x(5), x(12)] would cover only 1 - 2·2517/65536 < 0.95.
    const values = Array.from({ length: 16 }, (_, i) => 16 - i); // unsorted on purpose
    const ci = medianInterval(values);
    assert.equal(ci.low, 4);
    assert.equal(ci.high, 13);
    assert.ok(Math.abs(ci.confidence - (1 - (2 * 697) / 65536)) < 1e-12);
  });

  it('falls back to the whole range when too few rounds reach 95%', () => {
    const ci = medianInterval([3, 1, 2, 5, 4]);
    assert.deepEqual([ci.low, ci.high], [1, 5]);
    assert.equal(ci.confidence, 1 - 2 / 32);
  });

  it('summarizes the ratios of the rounds', () => {
    const ratios = [0.9, 1.1, 1.0, 0.95];
    const s = summarizePaired(
      ratios.map((r, i) => ({
        cpuA: i % 2,
        aFirst: true,
        a: loadResult(r * 1000),
        b: loadResult(1000),
        ratio: r,
      })),
    );
    assert.equal(s.rounds.length, 4);
    assert.ok(Math.abs(s.median - 0.975) < 1e-12);
    assert.ok(Math.abs(s.q1 - 0.9375) < 1e-12);
    assert.ok(Math.abs(s.q3 - 1.025) < 1e-12);
    assert.deepEqual([s.ciLow, s.ciHigh], [0.9, 1.1]);
  });

  it('alternates which server goes first, warms each up before its run and pairs the runs of a round', async () => {
    const target = (url: string): LoadTarget => ({ tool: 'wrk', url, data: 'manifest', serverPid: 1 });
    const a = target('http://a');
    const b = target('http://b');
    const calls: string[] = [];
    // A serves 900 req/s in its first measured run, then 1000, 1100; B always 1000.
    let aRuns = 0;
    const measure = async (t: LoadTarget, seconds: number) => {
      calls.push(`${t.url === a.url ? 'a' : 'b'}${seconds}`);
      if (seconds === 1) return loadResult(1);
      return loadResult(t.url === a.url ? 900 + 100 * aRuns++ : 1000);
    };
    const seen: number[] = [];
    const s = await runAlternating(a, b, { rounds: 3, seconds: 3, warmup: 1 }, measure, (_, i) =>
      seen.push(i),
    );
    assert.deepEqual(calls, ['a1', 'a3', 'b1', 'b3', 'b1', 'b3', 'a1', 'a3', 'a1', 'a3', 'b1', 'b3']);
    assert.deepEqual(
      s.rounds.map((r) => [r.aFirst, r.ratio]),
      [
        [true, 0.9],
        [false, 1],
        [true, 1.1],
      ],
    );
    assert.deepEqual(seen, [0, 1, 2]);
    assert.equal(s.median, 1);
    assert.equal(s.rounds[0]!.cpuA, undefined);
  });

  it("reads a process tree's CPU time in nanoseconds, child processes and threads included", async () => {
    // A child that spins for 300 ms of CPU and then waits to be read.
    const child = spawn(
      process.execPath,
      [
        '-e',
        'const t = process.cpuUsage(); while (process.cpuUsage(t).user < 300000); console.log("done"); setInterval(() => {}, 1000)',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
      // The parent (this process) plus the child: at least the child's 300 ms.
      const ns = processTreeCpuNs(process.pid);
      const childNs = processTreeCpuNs(child.pid!);
      assert.ok(childNs >= 300e6, `child ${childNs} ns`);
      assert.ok(ns >= childNs, `tree ${ns} ns < child ${childNs} ns`);
      // The kernel's tick-based figure for the child agrees within a few ticks and start-up.
      const ticks = processTreeCpuSeconds(child.pid!);
      assert.ok(Math.abs(childNs / 1e9 - ticks) < 0.1, `${childNs / 1e9} s against ${ticks} s`);
    } finally {
      child.kill();
    }
  });
});
