import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { summarizePaired } from '../bench/harness/paired.js';
import { formatReport, type Point, targets } from '../bench/harness/report.js';
import { loadResult } from './support/load-results.js';

const point = (caseId: string, concurrency: number, allRps: number[]): Point => {
  const sorted = [...allRps].sort((a, b) => a - b);
  return {
    caseId,
    concurrency,
    runs: allRps.length,
    rps: sorted[sorted.length >> 1]!,
    p50Ms: 1,
    p99Ms: 4,
    serverCores: 1,
    loadgenCores: 0.3,
    otherCores: 0,
    cpuBusy: [1, 1],
    errors: 0,
    allRps,
  };
};

describe('bench:serving targets (bench/harness/report.ts)', () => {
  it('gives a ratio of medians and, run by run, the ratio of the runs that ran together', () => {
    const points = [
      point('slipway-json', 64, [900, 800, 1000]),
      point('slipway-json-nolog', 64, [1000, 1000, 1000]),
    ];
    const log = targets(points).find((t) => t.name.startsWith('prediction log on'))!;
    assert.equal(log.value, 0.9);
    assert.deepEqual(log.runs, [0.9, 0.8, 1]);
    // Cases that did not run have neither.
    const fastify = targets(points).find((t) => t.name.includes('naive Fastify'))!;
    assert.equal(fastify.value, undefined);
    assert.equal(fastify.runs, undefined);
  });

  it('adds the alternating c=1 comparison as a target of its own, at the median of its rounds', () => {
    const points = [point('slipway-json', 1, [5000]), point('fastify', 1, [6000])];
    const round = (ratio: number) => ({
      aFirst: true,
      a: loadResult(ratio * 1000),
      b: loadResult(1000),
      ratio,
    });
    const rounds = [1.1, 0.9, 1.05].map(round);
    const alternating = {
      concurrency: 1,
      seconds: 3,
      summary: { rounds, median: 1.05, q1: 1, q3: 1.075, ciLow: 0.9, ciHigh: 1.1, confidence: 0.75 },
    };
    const all = targets(points, undefined, alternating);
    const names = all.map((t) => t.name);
    const at = names.findIndex((n) => n.startsWith('the same, alternating (median of 3 rounds, c=1)'));
    // Right after the ratio it checks.
    assert.equal(names[at - 1], 'Slipway REST JSON / naive Fastify, req/s at c=1');
    assert.equal(all[at]!.value, 1.05);
    assert.equal(all[at]!.goal, 1);
    assert.ok(!targets(points).some((t) => t.name.includes('alternating')));
  });

  it('adds the log measured on one shared CPU, and names an A/A control as such', () => {
    const points = [point('slipway-json', 64, [900]), point('slipway-json-nolog', 64, [1000])];
    // CPU time a request: the log-on server 50, 52.5, 47.5 µs against 45 µs for the other.
    const sameCpu = summarizePaired(
      [50, 52.5, 47.5].map((us, i) => ({
        cpuA: i % 2,
        aFirst: i < 2,
        a: loadResult(1000),
        b: loadResult(1100),
        ratio: 45 / us,
        cpuUsA: us,
        cpuUsB: 45,
      })),
    );
    const predictionLog = { written: 5000, dropped: 0, failedFlushes: 0, queued: 0 };
    const paired = { concurrency: 64, seconds: 4, sameCpu, control: false, predictionLog };
    const all = targets(points, paired);
    const t = all.find((x) => x.name.startsWith('the same, on one shared CPU (median of 3 rounds)'))!;
    assert.equal(t.value, 0.9);
    assert.equal(t.goal, 0.95);
    // No side-by-side rounds were run: no target for them.
    assert.ok(!all.some((x) => x.name.includes('side by side')));

    const input = {
      machine: {
        slipway: 'abc',
        cpus: 2,
        cpuModel: 'cpu',
        node: 'v20',
        wrk: 'wrk',
        loadgenPinning: 'taskset -c 1',
      },
      opts: { runs: 1, seconds: 2, warmup: 1, concurrency: [64], quick: false },
      cases: [{ id: 'slipway-json', label: 'Slipway REST JSON' }],
      summary: points,
      skipped: [],
      features: 30,
    };
    const text = formatReport({ ...input, paired }).text;
    assert.match(text, /Median CPU a request: 50\.00 µs against 45\.00 µs/);
    // Every round with the log-on server started first: no line by start order.
    assert.doesNotMatch(text, /started in both orders/);
    const balanced = summarizePaired(sameCpu.rounds.map((r, i) => ({ ...r, aStartedFirst: i === 0 })));
    const both = formatReport({ ...input, paired: { ...paired, sameCpu: balanced } }).text;
    // 45/50 first; 45/52.5 and 45/47.5 (median 0.902) with the log-off server first.
    assert.match(
      both,
      /started in both orders: median 0\.900 in the 1 rounds with the log-on server started first, 0\.902 in the 2 with the log-off one first/,
    );
    assert.match(text, /The log-on server stored 5000 rows/);
    const control = formatReport({ ...input, paired: { ...paired, control: true } }).text;
    assert.match(control, /control, log off \/ off, on one shared CPU/);
    assert.match(control, /A second log-off server \(control\) \/ off on one shared CPU/);
    assert.doesNotMatch(control, /stored/);
  });
});
