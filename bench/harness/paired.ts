/**
 * Ratios of two configurations that the drift of a shared machine cannot tilt. Side by side
 * (`runPaired`): two servers measured at the same time, each with its own load generator, both
 * confined to one CPU of their own, the CPUs swapped every round. Where that cannot be done (at
 * concurrency 1 each server needs its load generator on another CPU), in many short alternating
 * rounds (`runAlternating`). On this machine two 6 s runs of one server in a row differ by up
 * to a quarter, more than the gap a 0.95 target is about; run side by side, both servers meet the
 * same moment, and everything a server does (its writer thread, its collector's threads) is paid
 * on its own CPU, so nothing it spends is charged to the other. On one shared CPU (`runSameCpu`):
 * both servers confined to the same CPU at once and both load generators to the other, each
 * server's CPU time a request read from the scheduler; both run at the same speed of the same
 * CPU at the same moment, so neither the drift of the machine nor a difference between its two
 * virtual CPUs can tilt the ratio.
 */
import { spawnSync } from 'node:child_process';
import { type LoadOptions, type LoadResult, type LoadTarget, runLoad } from './load.js';
import { quantile } from './report.js';
import { processTree, processTreeCpuNs } from './servers.js';

export interface PairedRound {
  /**
   * Side by side: the CPU the first server (and its load generator) ran on; the second had the
   * other one. On one shared CPU: the CPU both servers ran on. Absent in alternating rounds.
   */
  cpuA?: number;
  /** Which load generator started first (alternating rounds: which server was measured first). */
  aFirst: boolean;
  a: LoadResult;
  b: LoadResult;
  /**
   * a.rps / b.rps; on one shared CPU the inverse ratio of CPU time a request (b's over a's),
   * which is the throughput ratio of the two on a CPU of their own.
   */
  ratio: number;
  /** On one shared CPU: each server's CPU time a request, every thread counted (µs). */
  cpuUsA?: number;
  cpuUsB?: number;
  /**
   * Whether A's server was started before B's. Here the server started first costs 2–3% more a
   * request than the other, whichever it is, so the bench runs half of its rounds in each order.
   */
  aStartedFirst?: boolean;
}

export interface PairedSummary {
  rounds: PairedRound[];
  median: number;
  q1: number;
  q3: number;
  /** A distribution-free interval for the median (order statistics of the rounds' ratios). */
  ciLow: number;
  ciHigh: number;
  /** Its coverage, at least 0.95 where the rounds allow it. */
  confidence: number;
}

/** Slipway against a baseline at concurrency 1, measured in alternating rounds. */
export interface AlternatingComparison {
  concurrency: number;
  seconds: number;
  summary: PairedSummary;
}

/** The prediction log's cost measured side by side, with what the log-on server stored. */
export interface PairedLogCost {
  concurrency: number;
  seconds: number;
  /** Side by side, when measured. */
  summary?: PairedSummary;
  /** The same two servers on one shared CPU (CPU time a request), when measured. */
  sameCpu?: PairedSummary;
  /** Both servers had the log off: an A/A check of the designs themselves. */
  control: boolean;
  predictionLog: { written: number; dropped: number; failedFlushes: number; queued: number };
}

export interface PairedOptions {
  rounds: number;
  seconds: number;
  warmup: number;
  concurrency: number;
  tasksetPath: string;
  load: Omit<LoadOptions, 'concurrency' | 'seconds' | 'taskset'>;
}

/** Confines every thread of a process tree to one CPU (threads started later inherit it). */
function pin(tasksetPath: string, pid: number, cpu: number): void {
  for (const p of processTree(pid)) {
    const r = spawnSync(tasksetPath, ['-a', '-p', '-c', String(cpu), String(p)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`taskset -a -p -c ${cpu} ${p} failed: ${r.stderr || r.stdout}`);
  }
}

const sorted = (xs: number[]) => [...xs].sort((x, y) => x - y);

/** P(X ≤ k) for X ~ Binomial(n, 1/2). */
function binomialHalfCdf(n: number, k: number): number {
  let term = 0.5 ** n; // C(n,0) / 2^n
  let sum = term;
  for (let i = 1; i <= k; i++) {
    term = (term * (n - i + 1)) / i;
    sum += term;
  }
  return sum;
}

/**
 * The interval [x_(j), x_(n-j+1)] (1-based order statistics) around the median of n values, for
 * the largest j whose coverage 1 - 2·P(Binomial(n, 1/2) ≤ j-1) is still at least 0.95; with too
 * few values for that, the whole range and its coverage.
 */
export function medianInterval(values: number[]): { low: number; high: number; confidence: number } {
  const s = sorted(values);
  const n = s.length;
  let j = 1;
  while (j + 1 <= n / 2 && 1 - 2 * binomialHalfCdf(n, j) >= 0.95) j++;
  return { low: s[j - 1]!, high: s[n - j]!, confidence: 1 - 2 * binomialHalfCdf(n, j - 1) };
}

export function summarizePaired(rounds: PairedRound[]): PairedSummary {
  const ratios = sorted(rounds.map((r) => r.ratio));
  const ci = medianInterval(ratios);
  return {
    rounds,
    median: quantile(ratios, 0.5),
    q1: quantile(ratios, 0.25),
    q3: quantile(ratios, 0.75),
    ciLow: ci.low,
    ciHigh: ci.high,
    confidence: ci.confidence,
  };
}

/**
 * Rounds of A and B at once. In round r, A runs on CPU r mod 2; side by side, A's load generator
 * shares its CPU and B has the other CPU with its own; on one CPU, B shares A's CPU and both load
 * generators have the other. Which load generator starts first alternates every two rounds. Each
 * round has a warm-up of both, then the measured `seconds`. The servers stay pinned afterwards:
 * they are started for this and stopped after it.
 */
async function runTogether(
  a: LoadTarget,
  b: LoadTarget,
  o: PairedOptions,
  layout: 'side by side' | 'one CPU',
  onRound?: (r: PairedRound, index: number) => void,
): Promise<PairedSummary> {
  const rounds: PairedRound[] = [];
  const oneCpu = layout === 'one CPU';
  for (let r = 0; r < o.rounds; r++) {
    const cpuA = r % 2;
    const cpuB = oneCpu ? cpuA : 1 - cpuA;
    const loadCpuA = oneCpu ? 1 - cpuA : cpuA;
    const loadCpuB = 1 - cpuA;
    pin(o.tasksetPath, a.serverPid, cpuA);
    pin(o.tasksetPath, b.serverPid, cpuB);
    const aFirst = (r >> 1) % 2 === 0;
    const both = async (seconds: number): Promise<[LoadResult, LoadResult]> => {
      const load = (t: LoadTarget, cpu: number) =>
        runLoad(t, {
          ...o.load,
          concurrency: o.concurrency,
          seconds,
          taskset: { path: o.tasksetPath, cpu: String(cpu) },
        });
      if (aFirst) return Promise.all([load(a, loadCpuA), load(b, loadCpuB)]);
      const [rb, ra] = await Promise.all([load(b, loadCpuB), load(a, loadCpuA)]);
      return [ra, rb];
    };
    if (o.warmup > 0) await both(o.warmup);
    const a0 = oneCpu ? processTreeCpuNs(a.serverPid) : 0;
    const b0 = oneCpu ? processTreeCpuNs(b.serverPid) : 0;
    const [ra, rb] = await both(o.seconds);
    let round: PairedRound;
    if (oneCpu) {
      const cpuUsA = (processTreeCpuNs(a.serverPid) - a0) / 1000 / ra.requests;
      const cpuUsB = (processTreeCpuNs(b.serverPid) - b0) / 1000 / rb.requests;
      round = { cpuA, aFirst, a: ra, b: rb, ratio: cpuUsB / cpuUsA, cpuUsA, cpuUsB };
    } else {
      round = { cpuA, aFirst, a: ra, b: rb, ratio: ra.rps / rb.rps };
    }
    rounds.push(round);
    onRound?.(round, r);
  }
  return summarizePaired(rounds);
}

/** Rounds of two servers measured at once, in one layout of `runTogether`. */
type RoundsTogether = (
  a: LoadTarget,
  b: LoadTarget,
  o: PairedOptions,
  onRound?: (r: PairedRound, index: number) => void,
) => Promise<PairedSummary>;

/** Side by side: each server with its own load generator on a CPU of its own, CPUs swapped every round. */
export const runPaired: RoundsTogether = (a, b, o, onRound) => runTogether(a, b, o, 'side by side', onRound);

/**
 * On one shared CPU: both servers on one CPU, both load generators on the other. Each server's
 * CPU time (every thread) is read before and after the measured `seconds` and divided by the
 * requests it answered. The CPU is saturated and each server gets the share its work asks for,
 * so the ratio of the two costs a request (B's over A's) is what their throughputs would be on a
 * CPU each; the CPU's speed, whatever it is that second, is the same for both.
 */
export const runSameCpu: RoundsTogether = (a, b, o, onRound) => runTogether(a, b, o, 'one CPU', onRound);

/**
 * Rounds of A and B one after the other, A first in every other round, each run after a
 * warm-up of its own (`measure` runs the load, the warm-up with `warmup` seconds). For a
 * comparison that cannot run side by side: at concurrency 1 a server and its load generator
 * take turns, so each needs a CPU of its own and two servers at once would need four. Rounds a
 * few seconds long, and many of them, put both servers into nearly the same moment of the
 * machine; the median of the rounds' ratios is not moved by the few rounds a burst of other work
 * fell into.
 */
export async function runAlternating(
  a: LoadTarget,
  b: LoadTarget,
  o: { rounds: number; seconds: number; warmup: number },
  measure: (t: LoadTarget, seconds: number) => Promise<LoadResult>,
  onRound?: (r: PairedRound, index: number) => void,
): Promise<PairedSummary> {
  const rounds: PairedRound[] = [];
  const one = async (t: LoadTarget): Promise<LoadResult> => {
    if (o.warmup > 0) await measure(t, o.warmup);
    return measure(t, o.seconds);
  };
  for (let r = 0; r < o.rounds; r++) {
    const aFirst = r % 2 === 0;
    let ra: LoadResult;
    let rb: LoadResult;
    if (aFirst) {
      ra = await one(a);
      rb = await one(b);
    } else {
      rb = await one(b);
      ra = await one(a);
    }
    const round = { aFirst, a: ra, b: rb, ratio: ra.rps / rb.rps };
    rounds.push(round);
    onRound?.(round, r);
  }
  return summarizePaired(rounds);
}
