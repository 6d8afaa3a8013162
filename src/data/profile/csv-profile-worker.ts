/**
 * One range of a CSV split by `profileCsv` across threads: profiles bytes `[start, end)` with the
 * column names it was given, reports its progress and sends the profile's state with its value
 * counts in insertion order, so the calling thread rebuilds the very profile built here.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { profileRange, type RangePlan } from './csv-profile.js';

const { path, plan } = workerData as { path: string; plan: Omit<RangePlan, 'end'> & { end: number | null } };
const port = parentPort!;
let reported = 0;

profileRange(path, {
  ...plan,
  end: plan.end ?? Number.POSITIVE_INFINITY,
  read: {
    ...plan.read,
    onProgress: (bytes) => {
      // Every 8 MiB and at the end: a message per read would cost more than the bar shows.
      if (bytes - reported >= 8 << 20) {
        reported = bytes;
        port.postMessage({ read: bytes });
      }
    },
  },
}).then(
  (profile) => port.postMessage({ profile: profile.toStateInOrder() }),
  (err: Error) => port.postMessage({ error: err.message }),
);
