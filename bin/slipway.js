#!/usr/bin/env node
// Entry point for `npx slipway`: the TypeScript is compiled to dist/ by `npm install` (prepare).
// `slipway drift` loads only what it needs; every other command goes through the full CLI.
const fail = (err) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
};
if (process.argv[2] === 'drift') {
  import('../dist/src/cli/drift.js').then(({ driftMain }) => driftMain(process.argv)).catch(fail);
} else {
  import('../dist/src/cli/main.js').then(({ main }) => main(process.argv)).catch(fail);
}
