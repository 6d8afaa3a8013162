/**
 * One bench:drift repetition of Slipway: `analyzeDrift(reference, current)` on two files, timed
 * after the imports; prints {seconds, cpu_seconds, max_rss_mb, report} as JSON.
 *
 *   node dist/bench/drift/run-slipway.js ref.csv cur.csv
 */
import { settle } from '../../src/cli/settle.js';
import { analyzeDrift } from '../../src/monitoring/drift/index.js';

const [reference, current] = process.argv.slice(2);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const { report } = await analyzeDrift(reference, current);
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
process.stdout.write(
  `${JSON.stringify({
    seconds,
    cpu_seconds: (cpu.user + cpu.system) / 1e6,
    max_rss_mb: process.resourceUsage().maxRSS / 1024,
    report,
  })}\n`,
);
// As `slipway drift` does before it exits (Node 20 can hang at exit otherwise: see settle).
await settle();
