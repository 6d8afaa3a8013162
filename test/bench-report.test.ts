import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Point, targets } from '../bench/harness/report.js';

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
});
