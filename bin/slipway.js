#!/usr/bin/env node
// Entry point for `npx slipway`: the TypeScript is compiled to dist/ by `npm install` (prepare).
// `slipway drift` loads only what it needs; every other command goes through the full CLI.
const fail = (err) => {
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
};
const command = process.argv[2];
if (command === 'serve' || command === 'demo') {
  // Before the CLI's modules load: set any later, V8 keeps pretenuring (src/cli/heap-tuning.ts).
  const { tuneHeapForServing } = await import('../dist/src/cli/heap-tuning.js');
  tuneHeapForServing();
  // Before a collection can spoil process.nextTick's feedback (src/cli/tick-queue.ts).
  const { keepTickObjectShape } = await import('../dist/src/cli/tick-queue.js');
  keepTickObjectShape();
}
if (command === 'drift') {
  import('../dist/src/cli/drift.js').then(({ driftMain }) => driftMain(process.argv)).catch(fail);
} else {
  import('../dist/src/cli/main.js').then(({ main }) => main(process.argv)).catch(fail);
}
