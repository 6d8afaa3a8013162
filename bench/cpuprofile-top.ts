/**
 * Prints where a V8 CPU profile spent its time: the top functions by self time, then the same
 * time grouped by where the code lives (Slipway's own modules, Node internals, dependencies).
 * For the profile of a server under `npm run bench:serving`:
 *
 *   npm run bench:serving -- --cases slipway-json --concurrency 64 --runs 1 \
 *     --slipway-node-args="--cpu-prof --cpu-prof-dir=bench/.out/prof"
 *   node dist/bench/cpuprofile-top.js bench/.out/prof/CPU.*.cpuprofile [--top 25]
 *
 * Each worker thread writes its own profile; pass the main thread's (the largest) first.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function area(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)') return 'native / untracked';
  if (url.includes('/src/')) return `slipway ${url.slice(url.indexOf('/src/') + 1).replace(/\.js$/, '.ts')}`;
  if (url.includes('node_modules/')) return url.slice(url.lastIndexOf('node_modules/') + 13).split('/')[0]!;
  if (url.startsWith('node:')) return url.split('/').slice(0, 3).join('/');
  return url || '(native)';
}

function summarize(path: string, top: number): void {
  const p = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const n = byId.get(id)!;
    const dt = p.timeDeltas[i] ?? 0;
    const { functionName, url, lineNumber } = n.callFrame;
    const key = `${functionName || '(anonymous)'} ${url ? `${url.replace(/^.*\/(src|node_modules)\//, '$1/')}:${lineNumber + 1}` : ''}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    const a = area(url, functionName);
    areas.set(a, (areas.get(a) ?? 0) + dt);
    total += dt;
  });
  const idle = areas.get('idle') ?? 0;
  const busy = total - idle;
  const pct = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`;
  process.stdout.write(
    `${path}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (shares of busy time)\n`,
  );
  process.stdout.write(`\ntop ${top} functions by self time\n`);
  for (const [k, us] of [...self]
    .filter(([k]) => !k.startsWith('(idle)'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)) {
    process.stdout.write(`  ${pct(us)}  ${k}\n`);
  }
  process.stdout.write('\nby area\n');
  for (const [k, us] of [...areas]
    .filter(([k]) => k !== 'idle')
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)) {
    process.stdout.write(`  ${pct(us)}  ${k}\n`);
  }
  process.stdout.write('\n');
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' } },
});
if (positionals.length === 0) {
  process.stderr.write('usage: node dist/bench/cpuprofile-top.js <file.cpuprofile>... [--top N]\n');
  process.exit(2);
}
for (const file of positionals) summarize(file, Number(values.top));
