import { createHook } from 'node:async_hooks';

/** The tick object kept alive for the life of the process (see keepTickObjectShape). */
let kept: object | undefined;

/**
 * Keeps one of `process.nextTick`'s queue entries alive for the life of the process, so that
 * `nextTick` stays fast. Returns whether it caught one (false where Node announces none).
 *
 * Node builds each entry as `{ [async_id_symbol]: id, [trigger_async_id_symbol]: id, callback,
 * args }`. V8 adds those computed keys one by one, through a runtime call that records the
 * object's shape in `nextTick`'s feedback, and it holds the shapes the keys lead to only weakly.
 * A full collection while no entry is alive (common in a server: entries live for one turn of the
 * loop) frees them. The next entry gets new shapes, the recorded one no longer matches, and V8
 * marks the call megamorphic for good, so `nextTick` is compiled with the runtime call in it:
 * about 400 ns a call instead of 40. Node's HTTP code alone calls it five or six times a request
 * (in `perf` profiles of a serving process, 2.2 µs a request at c=64 and 3.2 µs at c=1). An entry
 * kept alive keeps every shape on its path alive, so the feedback keeps matching.
 *
 * It must run before the application's modules load (bin/slipway.js calls it first for `serve`
 * and `demo`): a collection during their loading is enough to spoil the feedback.
 */
export function keepTickObjectShape(): boolean {
  if (kept) return true;
  const noop = () => {};
  // An init hook sees each entry as it is made; it is on for this one call only.
  const hook = createHook({
    init(_id, type, _trigger, resource) {
      if (type === 'TickObject' && kept === undefined) kept = resource as object;
    },
  });
  hook.enable();
  try {
    process.nextTick(noop);
  } finally {
    hook.disable();
  }
  return kept !== undefined;
}
