/**
 * Model cards after Mitchell et al., "Model Cards for Model Reporting" (FAT* 2019): nine sections
 * people write, and facts the registry fills in (versions, metrics, aliases, signature, data).
 */
import { SlipwayError } from '../errors/index.js';
import type { ModelSignature } from './onnx-signature.js';

export const CARD_SECTIONS = [
  { key: 'modelDetails', title: 'Model details' },
  { key: 'intendedUse', title: 'Intended use' },
  { key: 'factors', title: 'Factors' },
  { key: 'metrics', title: 'Metrics' },
  { key: 'evaluationData', title: 'Evaluation data' },
  { key: 'trainingData', title: 'Training data' },
  { key: 'quantitativeAnalyses', title: 'Quantitative analyses' },
  { key: 'ethicalConsiderations', title: 'Ethical considerations' },
  { key: 'caveatsAndRecommendations', title: 'Caveats and recommendations' },
] as const;

export type CardSectionKey = (typeof CARD_SECTIONS)[number]['key'];
export type CardSections = Record<CardSectionKey, string>;

export const CARD_SECTION_KEYS: readonly CardSectionKey[] = CARD_SECTIONS.map((s) => s.key);

/** Longest text of one section. */
export const CARD_SECTION_MAX_CHARS = 100_000;

export function emptySections(): CardSections {
  return Object.fromEntries(CARD_SECTION_KEYS.map((k) => [k, ''])) as CardSections;
}

/** `intended_use`, `intended-use` and `intendedUse` all name the same section. */
export function sectionKey(raw: string): CardSectionKey {
  const camel = raw.trim().replace(/[-_ ]+([a-zA-Z])/g, (_, c: string) => c.toUpperCase());
  const key = CARD_SECTION_KEYS.find((k) => k.toLowerCase() === camel.toLowerCase());
  if (!key) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      `sections: unknown model card section ${JSON.stringify(raw)}; the sections are ${CARD_SECTION_KEYS.join(', ')}`,
    );
  }
  return key;
}

/** Facts about a model that the registry knows, shown beside the written sections. */
export interface CardFacts {
  name: string;
  description: string;
  creator: string;
  createdMs: number;
  updatedMs: number;
  tags: Record<string, string>;
  aliases: Record<string, number>;
  versions: CardVersionFacts[];
  /** The signature of the version the serving alias names (else the latest version). */
  signature: { version: number; inputs: ModelSignature['inputs']; outputs: ModelSignature['outputs'] } | null;
}

export interface CardVersionFacts {
  version: number;
  status: string;
  createdMs: number;
  creator: string;
  description: string;
  source: string;
  runId: string | null;
  sha256: string | null;
  metrics: Record<string, number>;
  trainingData: string[];
  evaluationData: string[];
  aliases: string[];
}

export interface ModelCard {
  name: string;
  sections: CardSections;
  updatedMs: number | null;
  updatedBy: string | null;
  facts: CardFacts;
}

const date = (ms: number) =>
  new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');

function metricNames(facts: CardFacts): string[] {
  const names = new Set<string>();
  for (const v of facts.versions) for (const k of Object.keys(v.metrics)) names.add(k);
  return [...names].sort();
}

/** Facts as rows of cells per section, shared by both renderings. */
interface FactBlock {
  lines?: string[];
  table?: { head: string[]; rows: string[][] };
}

function factsFor(section: CardSectionKey, f: CardFacts): FactBlock[] {
  const aliasText = Object.entries(f.aliases)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([a, v]) => `${a} → v${v}`)
    .join(', ');
  switch (section) {
    case 'modelDetails': {
      const latest = f.versions.length ? Math.max(...f.versions.map((v) => v.version)) : null;
      const blocks: FactBlock[] = [
        {
          lines: [
            `Registered as ${f.name} by ${f.creator} on ${date(f.createdMs)}; last changed ${date(f.updatedMs)}.`,
            `Versions: ${f.versions.length}${latest === null ? '' : ` (latest v${latest})`}.`,
            `Aliases: ${aliasText || 'none'}.`,
            ...(Object.keys(f.tags).length
              ? [
                  `Tags: ${Object.entries(f.tags)
                    .map(([k, v]) => `${k}=${v}`)
                    .join(', ')}.`,
                ]
              : []),
          ],
        },
      ];
      if (f.signature) {
        blocks.push({
          lines: [`Signature of v${f.signature.version}:`],
          table: {
            head: ['', 'name', 'datatype', 'shape'],
            rows: [
              ...f.signature.inputs.map((t) => ['input', t.name, t.datatype, `[${t.shape.join(', ')}]`]),
              ...f.signature.outputs.map((t) => ['output', t.name, t.datatype, `[${t.shape.join(', ')}]`]),
            ],
          },
        });
      }
      if (f.versions.length) {
        blocks.push({
          table: {
            head: ['version', 'created', 'by', 'aliases', 'source', 'sha256'],
            rows: f.versions.map((v) => [
              `v${v.version}`,
              date(v.createdMs),
              v.creator,
              v.aliases.join(', '),
              v.source,
              v.sha256 ? v.sha256.slice(0, 12) : '',
            ]),
          },
        });
      }
      return blocks;
    }
    case 'metrics': {
      const names = metricNames(f);
      return names.length ? [{ lines: [`Metrics recorded with the versions: ${names.join(', ')}.`] }] : [];
    }
    case 'quantitativeAnalyses': {
      const names = metricNames(f);
      if (!names.length) return [];
      return [
        {
          table: {
            head: ['version', ...names],
            rows: f.versions.map((v) => [
              `v${v.version}${v.aliases.length ? ` (${v.aliases.join(', ')})` : ''}`,
              ...names.map((n) => (v.metrics[n] === undefined ? '' : String(v.metrics[n]))),
            ]),
          },
        },
      ];
    }
    case 'trainingData':
    case 'evaluationData': {
      const pick = (v: CardVersionFacts) => (section === 'trainingData' ? v.trainingData : v.evaluationData);
      const rows = f.versions.filter((v) => pick(v).length).map((v) => [`v${v.version}`, pick(v).join(', ')]);
      return rows.length ? [{ table: { head: ['version', 'datasets'], rows } }] : [];
    }
    default:
      return [];
  }
}

function mdCell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** The card as Markdown: written sections as their authors wrote them, facts as lists and tables. */
export function renderCardMarkdown(card: ModelCard): string {
  const f = card.facts;
  const out: string[] = [`# Model card: ${f.name}`, ''];
  if (f.description) out.push(...f.description.split(/\r?\n/).map((l) => `> ${l}`), '');
  for (const s of CARD_SECTIONS) {
    out.push(`## ${s.title}`, '');
    const text = card.sections[s.key].trim();
    out.push(text === '' ? '_Not written yet._' : text, '');
    for (const b of factsFor(s.key, f)) {
      for (const l of b.lines ?? []) out.push(`- ${l}`);
      if (b.lines?.length) out.push('');
      if (b.table) {
        out.push(`| ${b.table.head.map(mdCell).join(' | ')} |`);
        out.push(`|${b.table.head.map(() => ' --- ').join('|')}|`);
        for (const r of b.table.rows) out.push(`| ${r.map(mdCell).join(' | ')} |`);
        out.push('');
      }
    }
  }
  if (card.updatedMs !== null)
    out.push(`_Card last edited by ${card.updatedBy} on ${date(card.updatedMs)}._`, '');
  return out.join('\n');
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** Written text as paragraphs: blank lines separate them, single newlines break lines. */
function htmlParagraphs(text: string): string {
  return text
    .trim()
    .split(/\r?\n\s*\r?\n/)
    .map((p) => `<p>${escapeHtml(p).replace(/\r?\n/g, '<br>')}</p>`)
    .join('\n');
}

/** The card as a standalone HTML page. Every value from users is escaped. */
export function renderCardHtml(card: ModelCard): string {
  const f = card.facts;
  const body: string[] = [`<h1>Model card: ${escapeHtml(f.name)}</h1>`];
  if (f.description) body.push(`<blockquote>${htmlParagraphs(f.description)}</blockquote>`);
  for (const s of CARD_SECTIONS) {
    body.push(`<section id="${s.key}">`, `<h2>${escapeHtml(s.title)}</h2>`);
    const text = card.sections[s.key].trim();
    body.push(text === '' ? '<p class="empty">Not written yet.</p>' : htmlParagraphs(text));
    for (const b of factsFor(s.key, f)) {
      if (b.lines?.length) {
        body.push(`<ul class="facts">${b.lines.map((l) => `<li>${escapeHtml(l)}</li>`).join('')}</ul>`);
      }
      if (b.table) {
        body.push(
          '<table>',
          `<thead><tr>${b.table.head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>`,
          `<tbody>${b.table.rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('')}</tbody>`,
          '</table>',
        );
      }
    }
    body.push('</section>');
  }
  if (card.updatedMs !== null) {
    body.push(
      `<p class="edited">Card last edited by ${escapeHtml(card.updatedBy ?? '')} on ${escapeHtml(date(card.updatedMs))}.</p>`,
    );
  }
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Model card: ${escapeHtml(f.name)}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1b1f24}
table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #ccd;padding:.25rem .6rem;text-align:left}
th{background:#f3f4f6}blockquote{color:#444;border-left:3px solid #ccd;margin-left:0;padding-left:1rem}
.empty,.edited{color:#777;font-style:italic}.facts{color:#333}
</style>
</head>
<body>
${body.join('\n')}
</body>
</html>
`;
}
