/**
 * `npm run bench:log-writer [-- --rows 25000 --flushes 8]`: what the prediction log's writer
 * thread spends on one flush, on a SQLite file as `slipway serve` uses it (payloads in segment
 * files beside it), and with each payload in its batch row instead (as on PostgreSQL), the two
 * in turn flush by flush. Each flush gathers
 * `--rows` V2 answers shaped like bench:serving's (30 FP32 inputs, an INT64 label and two FP32
 * probabilities, a UUID request id) and writes them with `PredictionWriter.write`: the batch row
 * (JSON header and binary payload) in one statement, then the sampled window profiles and the
 * latency counts. Printed: the median over the flushes after two warm-up ones, per flush and per
 * row for each, beside the gathering on the serving thread (`TensorAccumulator.add`) per row.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { PredictionEntry } from '../src/inference/index.js';
import { monitoringMigrations } from '../src/monitoring/monitoring-migrations.js';
import { PayloadSegments, segmentFolder } from '../src/monitoring/payload-segments.js';
import { TensorAccumulator } from '../src/monitoring/prediction-batch.js';
import { PredictionWriter } from '../src/monitoring/prediction-writer.js';
import { Database } from '../src/store/index.js';

const { values } = parseArgs({
  options: { rows: { type: 'string', default: '25000' }, flushes: { type: 'string', default: '8' } },
});
const rows = Number(values.rows);
const flushes = Math.max(3, Number(values.flushes));

function answer(i: number): PredictionEntry {
  return {
    timeMs: Date.now(),
    model: 'logreg30',
    version: '1',
    protocol: 'rest',
    requestId: randomUUID(),
    latencyUs: 300 + (i % 200),
    inputs: [
      {
        name: 'x',
        datatype: 'FP32',
        shape: [1, 30],
        data: Float32Array.from({ length: 30 }, (_, k) => i + k),
      },
    ],
    outputs: [
      { name: 'label', datatype: 'INT64', shape: [1], data: BigInt64Array.of(BigInt(i & 1)) },
      { name: 'probabilities', datatype: 'FP32', shape: [1, 2], data: Float32Array.of(0.3, 0.7) },
    ],
  };
}

const median = (xs: number[]) => xs.slice(2).sort((a, b) => a - b)[Math.floor((xs.length - 2) / 2)]!;
const dir = mkdtempSync(join(tmpdir(), 'slipway-log-writer-'));
// The writer as `slipway serve` runs it on a SQLite file (payloads in segment files beside it),
// and with each payload in its batch row (as on PostgreSQL), on two files, flush by flush in turn.
const modes = ['segment file', 'batch row'] as const;
const stores = await Promise.all(
  modes.map(async (mode, k) => {
    const db = await Database.open({ url: join(dir, `slipway-${k}.db`) });
    await db.migrate(monitoringMigrations);
    const folder = segmentFolder(db);
    const segments = mode === 'segment file' && folder ? new PayloadSegments(folder) : undefined;
    const writer = new PredictionWriter(db.as(), {
      flushMs: 1000,
      warn: () => undefined,
      now: Date.now,
      ...(segments ? { segments } : {}),
    });
    return { mode, db, segments, writer, write: [] as number[], writeCpu: [] as number[] };
  }),
);
try {
  const gather: number[] = [];
  for (let f = 0; f < flushes; f++) {
    for (const s of stores) {
      const acc = new TensorAccumulator('logreg30', '1', answer(0));
      const answers = Array.from({ length: rows }, (_, i) => answer(i));
      let t = performance.now();
      for (const a of answers) acc.add(a);
      gather.push(performance.now() - t);
      const batch = acc.take();
      t = performance.now();
      const cpu = process.cpuUsage();
      const reply = await s.writer.write({
        tensors: [batch],
        records: [],
        counts: [],
        entries: rows,
        sync: true,
      });
      s.write.push(performance.now() - t);
      const spent = process.cpuUsage(cpu);
      s.writeCpu.push((spent.user + spent.system) / 1000);
      if (reply.failed || reply.rows !== rows)
        throw new Error(`flush ${f} (${s.mode}) stored ${reply.rows} of ${rows} rows`);
    }
  }
  const g = median(gather);
  let out =
    `bench:log-writer — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, ` +
    `${rows} rows a flush, median of ${flushes - 2}\n`;
  for (const s of stores) {
    const w = median(s.write);
    const wc = median(s.writeCpu);
    out +=
      `writer thread, payload in a ${s.mode}: ${w.toFixed(1)} ms a flush, ${((w * 1000) / rows).toFixed(2)} µs a row; ` +
      `CPU (every thread of the process) ${wc.toFixed(1)} ms a flush, ${((wc * 1000) / rows).toFixed(2)} µs a row\n`;
  }
  out += `serving thread, gathering: ${((g * 1000) / rows).toFixed(2)} µs a row\n`;
  process.stdout.write(out);
} finally {
  for (const s of stores) {
    s.segments?.close();
    await s.db.close();
  }
  rmSync(dir, { recursive: true, force: true });
}
