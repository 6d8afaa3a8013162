import type { App } from '../app.js';
import { settle } from './settle.js';

/** Stops the app on SIGTERM/SIGINT after draining in-flight requests, then exits (after `settle`). */
export function closeOnSignals(app: App): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ signal }, 'draining and shutting down');
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
}
