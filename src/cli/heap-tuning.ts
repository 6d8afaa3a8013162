import { setFlagsFromString } from 'node:v8';

/**
 * Turns off V8's allocation-site pretenuring in a serving process, unless the process was
 * started with an explicit `--allocation-site-pretenuring`.
 *
 * Pretenuring allocates a site's objects straight in the old generation once the site's objects
 * were seen to survive young collections. A server under load has requests in flight at every
 * collection, and V8 tenured some 80 sites that build requests, batches and answers: each young
 * collection then kept ~1.4 MB, scavenges took 3–5 ms instead of under 1, and a full collection
 * followed every 2 s. Off, a serving process at concurrency 64 spends a third as long in GC,
 * and its p99 falls from ~10 ms to ~4 (docs/BENCHMARKS.md). Returns whether it changed the
 * flag.
 *
 * It must run before the application's modules load (bin/slipway.js calls it first for `serve`
 * and `demo`): set once they had loaded, the flag changed nothing measurable.
 */
export function tuneHeapForServing(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((a) => /^--(no-)?allocation[-_]site[-_]pretenuring$/.test(a))) return false;
  setFlagsFromString('--no-allocation-site-pretenuring');
  return true;
}
