import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * Lowers the calling thread's scheduling priority (raises its nice value), so background work
 * such as the prediction log's writer yields the CPU to the serving threads when cores are busy.
 * Linux only (a thread id from /proc/thread-self); elsewhere, or when refused, nothing changes.
 * Returns whether it applied.
 */
export function lowerThreadPriority(nice: number): boolean {
  if (process.platform !== 'linux') return false;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return false;
    setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}
