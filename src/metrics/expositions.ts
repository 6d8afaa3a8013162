/**
 * Several processes' Prometheus text expositions as one, family by family, each sample labelled
 * with the process it came from.
 */

/** One process's Prometheus text exposition. */
export interface Exposition {
  worker: string;
  text: string;
}

/**
 * Joins expositions into one: each metric family's `# HELP` and `# TYPE` once, followed by every
 * process's samples of that family, each labelled `worker="<id>"` (so `sum by (…)` gives the
 * server's totals). Families keep the order of their first appearance.
 */
export function mergeExpositions(parts: readonly Exposition[]): string {
  const families = new Map<string, { meta: string[]; samples: string[] }>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) {
      f = { meta: [], samples: [] };
      families.set(name, f);
    }
    return f;
  };
  for (const { worker, text } of parts) {
    let current: string | undefined;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      if (line.startsWith('#')) {
        const m = /^# (HELP|TYPE) (\S+)/.exec(line);
        if (!m) continue; // other comments carry nothing a scraper reads
        current = m[2]!;
        // The first process's HELP and TYPE stand for all: the processes run the same code.
        const f = family(current);
        if (!f.meta.some((x) => x.startsWith(`# ${m[1]} `))) f.meta.push(line);
        continue;
      }
      const name = sampleName(line);
      family(current !== undefined && belongsTo(name, current) ? current : name).samples.push(
        withLabel(line, 'worker', worker),
      );
    }
  }
  let out = '';
  for (const f of families.values()) {
    for (const m of f.meta) out += `${m}\n`;
    for (const s of f.samples) out += `${s}\n`;
  }
  return out;
}

function sampleName(line: string): string {
  const end = line.search(/[{\s]/);
  return end < 0 ? line : line.slice(0, end);
}

/** A histogram's or summary's samples carry suffixes on the family's name. */
function belongsTo(sample: string, familyName: string): boolean {
  if (sample === familyName) return true;
  if (!sample.startsWith(familyName)) return false;
  const rest = sample.slice(familyName.length);
  return (
    rest === '_bucket' || rest === '_sum' || rest === '_count' || rest === '_total' || rest === '_created'
  );
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

/** Adds a label to one sample line, after its other labels. */
export function withLabel(line: string, label: string, value: string): string {
  const pair = `${label}="${escapeLabel(value)}"`;
  const nameEnd = line.search(/[{\s]/);
  if (nameEnd < 0) return line;
  if (line[nameEnd] !== '{') return `${line.slice(0, nameEnd)}{${pair}}${line.slice(nameEnd)}`;
  // Find the closing brace outside quoted label values (which may hold `}` or escaped quotes).
  let i = nameEnd + 1;
  let quoted = false;
  for (; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '}') break;
  }
  if (i >= line.length) return line;
  const inner = line.slice(nameEnd + 1, i).trim();
  const sep = inner === '' || inner.endsWith(',') ? '' : ',';
  return `${line.slice(0, i)}${sep}${pair}${line.slice(i)}`;
}
