import type { App } from '../app.js';
import { settle } from './settle.js';

/**
 * Stops the app on SIGTERM/SIGINT after draining in-flight requests, then exits (after `settle`).
 * Returns the same stop, for other reasons to shut down (a supervisor's request).
 */
export function closeOnSignals(app: App): (reason: string) => void {
  let stopping = false;
  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ reason }, 'draining and shutting down');
    // The short wait before exiting: see settle.
    app.close().then(
      () => settle().then(() => process.exit(0)),
      (err) => {
        app.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return stop;
}
