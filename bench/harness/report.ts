/**
 * Medians of the repeated runs, the table printed side by side, and the ratios Slipway is held to.
 */
import type { LoadResult } from './load.js';
import type { AlternatingComparison, PairedLogCost, PairedSummary } from './paired.js';

interface CaseLike {
  id: string;
  label: string;
}

export interface Point {
  caseId: string;
  concurrency: number;
  runs: number;
  /** Medians over the runs, each metric on its own. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  serverCores: number;
  loadgenCores: number;
  otherCores: number;
  cpuBusy: number[];
  errors: number;
  allRps: number[];
}

/** Above this many cores used by other processes during a run, the run is flagged as noisy. */
export const NOISY_CORES = 0.3;

/** The q-quantile of xs, interpolated between the two nearest values (q = 0.5: the median). */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const at = (s.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return s[lo]! + (s[hi]! - s[lo]!) * (at - lo);
}

const median = (xs: number[]): number => quantile(xs, 0.5);

export function summarize(
  cases: CaseLike[],
  concurrencies: number[],
  results: { caseId: string; concurrency: number; result: LoadResult }[],
): Point[] {
  const points: Point[] = [];
  for (const c of cases) {
    for (const concurrency of concurrencies) {
      const rs = results
        .filter((r) => r.caseId === c.id && r.concurrency === concurrency)
        .map((r) => r.result);
      if (rs.length === 0) continue;
      points.push({
        caseId: c.id,
        concurrency,
        runs: rs.length,
        rps: median(rs.map((r) => r.rps)),
        p50Ms: median(rs.map((r) => r.p50Ms)),
        p99Ms: median(rs.map((r) => r.p99Ms)),
        serverCores: median(rs.map((r) => r.serverCores)),
        loadgenCores: median(rs.map((r) => r.loadgenCores)),
        otherCores: median(rs.map((r) => r.otherCores)),
        cpuBusy: rs[0]!.cpuBusy.map((_, i) => median(rs.map((r) => r.cpuBusy[i] ?? 0))),
        errors: rs.reduce((a, r) => a + r.errors, 0),
        allRps: rs.map((r) => r.rps),
      });
    }
  }
  return points;
}

export interface Target {
  name: string;
  value: number | undefined;
  /** For a ratio of two cases: its value in each run (runs pair up in the order they ran). */
  runs?: number[];
  unit: '' | 'ms';
  op: '>=' | '<=';
  goal: number;
}

export function targets(
  points: Point[],
  paired?: PairedLogCost,
  alternating?: AlternatingComparison,
): Target[] {
  const at = (id: string, c: number) => points.find((p) => p.caseId === id && p.concurrency === c);
  const ratio = (a?: Point, b?: Point) => (a && b ? a.rps / b.rps : undefined);
  const byRun = (a?: Point, b?: Point) =>
    a && b && a.allRps.length === b.allRps.length && a.allRps.length > 1
      ? { runs: a.allRps.map((x, i) => x / b.allRps[i]!) }
      : {};
  return [
    {
      name: 'Slipway REST JSON / bare ceiling, req/s at c=64',
      value: ratio(at('slipway-json', 64), at('bare', 64)),
      ...byRun(at('slipway-json', 64), at('bare', 64)),
      unit: '',
      op: '>=',
      goal: 0.65,
    },
    {
      name: 'Slipway REST JSON p99 at c=64',
      value: at('slipway-json', 64)?.p99Ms,
      unit: 'ms',
      op: '<=',
      goal: 5,
    },
    {
      name: 'Slipway REST JSON / naive Fastify, req/s at c=1',
      value: ratio(at('slipway-json', 1), at('fastify', 1)),
      ...byRun(at('slipway-json', 1), at('fastify', 1)),
      unit: '',
      op: '>=',
      goal: 1,
    },
    ...(alternating
      ? [
          {
            name: `the same, alternating (median of ${alternating.summary.rounds.length} rounds, c=${alternating.concurrency})`,
            value: alternating.summary.median,
            unit: '' as const,
            op: '>=' as const,
            goal: 1,
          },
        ]
      : []),
    {
      name: 'prediction log on (100% sampled) / off, req/s at c=64',
      value: ratio(at('slipway-json', 64), at('slipway-json-nolog', 64)),
      ...byRun(at('slipway-json', 64), at('slipway-json-nolog', 64)),
      unit: '',
      op: '>=',
      goal: 0.95,
    },
    ...(paired?.summary
      ? [
          {
            name: `${paired.control ? 'control, log off / off' : 'the same'}, side by side (median of ${paired.summary.rounds.length} rounds, c=${paired.concurrency})`,
            value: paired.summary.median,
            unit: '' as const,
            op: '>=' as const,
            goal: 0.95,
          },
        ]
      : []),
    ...(paired?.sameCpu
      ? [
          {
            name: `${paired.control ? 'control, log off / off' : 'the same'}, on one shared CPU (median of ${paired.sameCpu.rounds.length} rounds)`,
            value: paired.sameCpu.median,
            unit: '' as const,
            op: '>=' as const,
            goal: 0.95,
          },
        ]
      : []),
    {
      name: 'records API with / without a schema check, req/s at c=64',
      value: ratio(at('slipway-records-checked', 64), at('slipway-records', 64)),
      ...byRun(at('slipway-records-checked', 64), at('slipway-records', 64)),
      unit: '',
      op: '>=',
      goal: 0.95,
    },
    {
      name: 'Slipway REST JSON / MLServer, req/s at c=64',
      value: ratio(at('slipway-json', 64), at('mlserver', 64)),
      ...byRun(at('slipway-json', 64), at('mlserver', 64)),
      unit: '',
      op: '>=',
      goal: 10,
    },
  ];
}

const verdict = (t: Target) =>
  t.value === undefined ? 'n/a' : (t.op === '>=' ? t.value >= t.goal : t.value <= t.goal) ? 'PASS' : 'MISS';
const fmtTarget = (t: Target) =>
  t.value === undefined ? 'n/a' : `${t.value.toFixed(2)}${t.unit ? ` ${t.unit}` : ''}`;
/** A ratio's value in each run, for the report's last column. */
const fmtRuns = (t: Target) => (t.runs ? `runs ${t.runs.map((r) => r.toFixed(2)).join(', ')}` : '');
const fmtGoal = (t: Target) => `${t.op === '>=' ? '≥' : '≤'} ${t.goal}${t.unit ? ` ${t.unit}` : ''}`;
const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');

export interface ReportInput {
  machine: Record<string, string | number | undefined>;
  opts: {
    runs: number;
    seconds: number;
    warmup: number;
    concurrency: number[];
    quick: boolean;
    slipwayWorkers?: string;
  };
  cases: CaseLike[];
  summary: Point[];
  skipped: string[];
  features: number;
  paired?: PairedLogCost;
  alternating?: AlternatingComparison;
}

/** A summary's median with its interval, as the bench's progress lines give it. */
export function medianWithInterval(s: PairedSummary): string {
  return (
    `${s.median.toFixed(3)} (${Math.round(s.confidence * 100)}% interval ` +
    `${s.ciLow.toFixed(3)}–${s.ciHigh.toFixed(3)})`
  );
}

/** Every round's ratio, then the median, the quartiles and the interval for the median. */
function roundLines(s: PairedSummary): string[] {
  return [
    `Ratios by round: ${s.rounds.map((r) => r.ratio.toFixed(3)).join(', ')}.`,
    `Median ${s.median.toFixed(3)}, quartiles ${s.q1.toFixed(3)}–${s.q3.toFixed(3)}, ` +
      `${Math.round(s.confidence * 100)}% interval for the median ${s.ciLow.toFixed(3)}–${s.ciHigh.toFixed(3)}.`,
  ];
}

/**
 * The medians of the rounds in each start order of the two servers (`aStartedFirst`), when the
 * rounds ran in both; `a` and `b` name the two servers.
 */
function orderLines(s: PairedSummary, a: string, b: string): string[] {
  const ratios = (aFirst: boolean) => s.rounds.filter((r) => r.aStartedFirst === aFirst).map((r) => r.ratio);
  const [aFirst, bFirst] = [ratios(true), ratios(false)];
  if (aFirst.length === 0 || bFirst.length === 0) return [];
  return [
    `The two were started in both orders: median ${median(aFirst).toFixed(3)} in the ${aFirst.length} rounds ` +
      `with the ${a} server started first, ${median(bFirst).toFixed(3)} in the ${bFirst.length} with the ${b} one first.`,
  ];
}

/** The alternating rounds of REST JSON against naive Fastify, as lines of text. */
function alternatingLines(a: AlternatingComparison): string[] {
  return [
    `REST JSON / naive Fastify in alternating rounds: the servers of the main runs, one wrk (c=${a.concurrency}) ` +
      `pinned as there, each round one ${a.seconds} s run of each, the first alternating; ${a.summary.rounds.length} rounds.`,
    ...roundLines(a.summary),
  ];
}

/** The paired rounds of the prediction log's cost, as lines of text. */
function pairedLines(p: PairedLogCost): string[] {
  const first = p.control ? 'A second log-off server (control)' : 'Prediction log on';
  const server = p.control ? 'control' : 'log-on';
  const lines: string[] = [];
  if (p.summary) {
    lines.push(
      `${first} / off side by side: one serving process each, each with its own wrk (c=${p.concurrency}) ` +
        `on one CPU of its own, CPUs swapped every round; ${p.summary.rounds.length} rounds of ${p.seconds} s.`,
      ...roundLines(p.summary),
      ...orderLines(p.summary, server, 'log-off'),
    );
  }
  if (p.sameCpu) {
    const us = (xs: number[]) => median(xs).toFixed(2);
    const rounds = p.sameCpu.rounds;
    lines.push(
      `${first} / off on one shared CPU: the same two processes both on one CPU, both wrks (c=${p.concurrency}) ` +
        `on the other, CPUs swapped every round; ${rounds.length} rounds of ${p.seconds} s. A ratio is the ` +
        "log-off server's CPU time a request over the other's (every thread counted), which is their " +
        `throughput ratio on a CPU each. Median CPU a request: ${us(rounds.map((r) => r.cpuUsA!))} µs ` +
        `against ${us(rounds.map((r) => r.cpuUsB!))} µs.`,
      ...roundLines(p.sameCpu),
      ...orderLines(p.sameCpu, server, 'log-off'),
    );
  }
  if (p.control) return lines;
  lines.push(
    `The log-on server stored ${p.predictionLog.written} rows (${p.predictionLog.dropped} dropped, ` +
      `${p.predictionLog.failedFlushes} failed flushes, ${p.predictionLog.queued} queued).`,
  );
  return lines;
}

export function formatReport(input: ReportInput): { text: string; markdown: string } {
  const { machine, opts, cases, summary } = input;
  const at = (id: string, c: number) => summary.find((p) => p.caseId === id && p.concurrency === c);
  const ts = targets(summary, input.paired, input.alternating);
  const head =
    `Serving benchmark: logreg30 (${input.features} FP32 features, one row per request), ` +
    `${opts.runs} run(s) × ${opts.seconds} s per point after a ${opts.warmup} s warm-up, medians` +
    (opts.quick ? ' (--quick: a smoke run, not a measurement)' : '');
  const env =
    `Slipway ${machine.slipway} (serve --workers ${opts.slipwayWorkers ?? 1}); ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}; ${machine.wrk}` +
    (machine.ghz ? `; ghz ${machine.ghz}` : '') +
    `; load generator ${machine.loadgenPinning}, servers unpinned`;

  // Text: one row per case, the concurrencies side by side.
  const lines = [head, env, ''];
  const w = 26;
  lines.push(
    'case'.padEnd(w) +
      opts.concurrency
        .map(
          (c) =>
            `| c=${c}`.padEnd(8) + 'req/s'.padStart(8) + '  p50 / p99 ms'.padStart(16) + '  srv'.padStart(6),
        )
        .join(' '),
  );
  for (const c of cases) {
    const cells = opts.concurrency.map((conc) => {
      const p = at(c.id, conc);
      if (!p) return '| –'.padEnd(38);
      const lat = `${ms(p.p50Ms)} / ${ms(p.p99Ms)}`;
      return '|'.padEnd(8) + int(p.rps).padStart(8) + lat.padStart(16) + p.serverCores.toFixed(2).padStart(6);
    });
    lines.push(c.label.padEnd(w) + cells.join(' '));
  }
  const errors = summary.filter((p) => p.errors > 0);
  for (const p of errors)
    lines.push(`! ${p.caseId} c=${p.concurrency}: ${p.errors} failed requests over ${p.runs} run(s)`);
  lines.push('', '(srv = CPU cores used by the server process tree during the run)');
  const noisy = summary.filter((p) => p.otherCores > NOISY_CORES);
  for (const p of noisy) {
    lines.push(
      `! ${p.caseId} c=${p.concurrency}: other processes used ${p.otherCores.toFixed(2)} cores (median)`,
    );
  }
  lines.push('');
  lines.push('target'.padEnd(50) + 'value'.padStart(10) + 'goal'.padStart(10) + '  result');
  for (const t of ts)
    lines.push(
      t.name.padEnd(50) +
        fmtTarget(t).padStart(10) +
        fmtGoal(t).padStart(10) +
        `  ${verdict(t)}` +
        (t.runs ? `  (${fmtRuns(t)})` : ''),
    );
  for (const s of input.skipped) lines.push(`skipped or degraded: ${s}`);
  if (input.alternating) lines.push('', ...alternatingLines(input.alternating));
  if (input.paired) lines.push('', ...pairedLines(input.paired));
  lines.push('');

  // Markdown, for docs/BENCHMARKS.md.
  const md = [`${head}.`, '', `${env}.`, ''];
  md.push(`| case | ${opts.concurrency.map((c) => `c=${c} req/s | c=${c} p50 / p99 ms`).join(' | ')} |`);
  md.push(`|---|${opts.concurrency.map(() => '--:|--:').join('|')}|`);
  for (const c of cases) {
    const cells = opts.concurrency.map((conc) => {
      const p = at(c.id, conc);
      return p ? `${int(p.rps)} | ${ms(p.p50Ms)} / ${ms(p.p99Ms)}` : '– | –';
    });
    md.push(`| ${c.label} | ${cells.join(' | ')} |`);
  }
  md.push(
    '',
    'CPU during the runs (medians, in cores): server process tree / load generator / everything else on the machine.',
    '',
  );
  md.push(`| case | ${opts.concurrency.map((c) => `c=${c}`).join(' | ')} |`);
  md.push(`|---|${opts.concurrency.map(() => '--:').join('|')}|`);
  for (const c of cases) {
    const cells = opts.concurrency.map((conc) => {
      const p = at(c.id, conc);
      return p ? [p.serverCores, p.loadgenCores, p.otherCores].map((x) => x.toFixed(2)).join(' / ') : '–';
    });
    md.push(`| ${c.label} | ${cells.join(' | ')} |`);
  }
  md.push('', '| target | value | goal | result | by run |', '|---|--:|--:|---|---|');
  for (const t of ts)
    md.push(`| ${t.name} | ${fmtTarget(t)} | ${fmtGoal(t)} | ${verdict(t)} | ${fmtRuns(t)} |`);
  if (input.alternating) md.push('', ...alternatingLines(input.alternating));
  if (input.paired) md.push('', ...pairedLines(input.paired));
  md.push('');
  return { text: lines.join('\n'), markdown: md.join('\n') };
}
