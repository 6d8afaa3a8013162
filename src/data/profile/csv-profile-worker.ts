/**
 * One range of a CSV split by `profileCsv` across threads. Started before the calling thread has
 * read the header, it waits for its plan (the file, bytes `[start, end)`, the column names), then
 * profiles the range, reports its progress and sends the profile as `TableProfile.toTransfer`
 * writes it (value counts in insertion order, their buffers transferred), so the calling thread
 * rebuilds the very profile built here.
 */
import { parentPort } from 'node:worker_threads';
import { profileRange, type RangePlan } from './csv-profile.js';

const port = parentPort!;

port.once(
  'message',
  ({ path, plan }: { path: string; plan: Omit<RangePlan, 'end'> & { end: number | null } }) => {
    let reported = 0;
    profileRange(path, {
      ...plan,
      end: plan.end ?? Number.POSITIVE_INFINITY,
      read: {
        ...plan.read,
        onProgress: (bytes) => {
          // Every 8 MiB: a message per read would cost more than the bar shows.
          if (bytes - reported >= 8 << 20) {
            reported = bytes;
            port.postMessage({ read: bytes });
          }
        },
      },
    }).then(
      (profile) => {
        const { message, buffers } = profile.toTransfer();
        port.postMessage({ profile: message }, buffers);
      },
      (err: Error) => port.postMessage({ error: err.message }),
    );
  },
);
