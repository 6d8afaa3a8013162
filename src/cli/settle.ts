/** How long a finished command keeps the event loop alive before the process exits. */
const SETTLE_MS = 40;

/**
 * Waits a moment with the event loop alive (after a CLI command, and after `slipway serve` has
 * drained on a signal, before it exits), so that background work V8 started (optimizing
 * compiles of the code that just ran) finishes while this thread can still run the garbage
 * collection such work may ask it for. On Node 20 a process that ends (its loop empty, or
 * `process.exit`) while a compile job waits for that collection never exits: the main thread
 * waits for the job, the job for the main thread (nodejs/node#54918). `slipway drift` on Adult hung that way in 3 of 100 runs without
 * this wait, and in none of 400 with it.
 */
export function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
}
