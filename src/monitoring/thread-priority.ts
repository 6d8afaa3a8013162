import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * Lowers the calling thread's scheduling priority (raises its nice value), so background work
 * such as the prediction log's writer yields the CPU to the serving threads when cores are busy.
 * Linux only (a thread id from /proc/thread-self); elsewhere, or when refused, nothing changes.
 */
export function lowerThreadPriority(nice: number): void {
  if (process.platform !== 'linux') return;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, nice);
  } catch {
    // Not permitted or not available: the thread keeps its priority.
  }
}
