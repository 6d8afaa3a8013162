/**
 * The counting side of `profileCsv` with a worker: receives a CSV's rows as cell batches, in file
 * order, adds them to a `CsvSink` and, at the end, returns the profile's state with its value
 * counts in insertion order, so the reading thread rebuilds the very profile built here.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ProfileOptions } from './column-profile.js';
import { addCells, type CsvCellBatch, CsvSink } from './csv-profile.js';
import { TableProfile } from './table-profile.js';

const { options, names, batchRows } = workerData as {
  options: ProfileOptions;
  names: string[];
  batchRows: number;
};
const sink = new CsvSink(new TableProfile(options), names, batchRows);
const port = parentPort!;

port.on('message', (m: CsvCellBatch | { end: true }) => {
  if ('end' in m) {
    port.postMessage({ profile: sink.finish().toStateInOrder() });
    port.close(); // nothing more to do: the thread ends
    return;
  }
  addCells(sink, m);
  // The cells' buffer goes back for the next read (fresh memory costs page faults).
  port.postMessage({ ack: m.cells }, [m.cells.buffer as ArrayBuffer]);
});
