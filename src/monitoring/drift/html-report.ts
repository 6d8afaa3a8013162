import { histogram, keyCounts } from './binning.js';
import type { ColumnComparison, DriftAnalysis } from './drift-engine.js';
import type { CategoryKey, ColumnSummary } from './stat-test.js';

const REF = '#4e79a7';
const CUR = '#e15759';
const WIDTH = 560;
const HEIGHT = 180;
const PAD = { left: 44, right: 10, top: 10, bottom: 34 };
const MAX_CATEGORIES = 20;
const NUMERIC_BINS = 30;

const escapeHtml = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );

function fmt(x: number): string {
  if (x === 0 || !Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a >= 1e5 || a < 1e-3 ? x.toExponential(3) : Number(x.toPrecision(4)).toString();
}

/**
 * One self-contained HTML page (inline CSS and SVG, no scripts, fonts or links): the dataset
 * verdict, a table of every column's test, score, threshold and decision, and per column a chart
 * of both distributions — overlaid histograms (share of rows per bin) for numerical columns,
 * paired bars of the most frequent values for categorical ones.
 */
export function renderDriftHtml(
  analysis: DriftAnalysis,
  meta: { reference: string; current: string; driftShare: number },
): string {
  const { report } = analysis;
  const drifted = analysis.columns.filter((c) => c.drift.drifted).length;
  const rows = analysis.columns
    .map(
      (c) =>
        `<tr class="${c.drift.drifted ? 'drift' : 'ok'}"><td><a href="#col-${anchor(c.name)}">${escapeHtml(c.name)}</a></td><td>${c.drift.type}</td><td>${escapeHtml(c.drift.test)}</td><td class="num">${fmt(c.drift.score)}</td><td class="num">${fmt(c.drift.threshold)}</td><td>${c.drift.drifted ? 'drift' : 'no drift'}</td></tr>`,
    )
    .join('\n');
  const skipped = analysis.skipped.length
    ? `<p class="note">Not tested: ${analysis.skipped.map((s) => `${escapeHtml(s.name)} (${escapeHtml(s.reason)})`).join('; ')}</p>`
    : '';
  const sections = analysis.columns.map(section).join('\n');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:980px}
h1{font-size:20px}h2{font-size:16px;margin:28px 0 4px}
table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.drift td{background:#fdecea}.verdict{font-size:16px;font-weight:600}
.verdict.drift{color:#b3261e}.verdict.ok{color:#1e7b34}.note{color:#666}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
svg text{font-size:10px;fill:#444}
</style></head><body>
<h1>Drift report</h1>
<p>Reference: <code>${escapeHtml(meta.reference)}</code> · Current: <code>${escapeHtml(meta.current)}</code></p>
<p class="verdict ${report.dataset_drift ? 'drift' : 'ok'}">${report.dataset_drift ? 'Dataset drift' : 'No dataset drift'}: ${drifted} of ${analysis.columns.length} columns drifted (share ${fmt(report.drift_share)}, dataset drift at ≥ ${fmt(meta.driftShare)})</p>
${skipped}
<table><thead><tr><th>column</th><th>type</th><th>test</th><th>score</th><th>threshold</th><th>decision</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<p class="legend"><span style="background:${REF}"></span>reference<span style="background:${CUR}"></span>current</p>
${sections}
</body></html>
`;
}

function anchor(name: string): string {
  return encodeURIComponent(name).replace(/%/g, '_');
}

function section(c: ColumnComparison): string {
  const d = c.drift;
  const chart =
    c.reference.kind === 'numerical' && c.current.kind === 'numerical' ? numericChart(c) : categoryChart(c);
  return `<h2 id="col-${anchor(c.name)}">${escapeHtml(c.name)}</h2>
<p>${d.type} · ${escapeHtml(d.test)} · score ${fmt(d.score)} · threshold ${fmt(d.threshold)} · <strong>${d.drifted ? 'drift' : 'no drift'}</strong> · ${c.reference.n} reference / ${c.current.n} current values</p>
${chart}`;
}

type Numeric = Extract<ColumnSummary, { kind: 'numerical' }>;

function numericChart(c: ColumnComparison): string {
  const ref = c.reference as Numeric;
  const cur = c.current as Numeric;
  let lo = Math.min(ref.values[0], cur.values[0]);
  let hi = Math.max(ref.values[ref.values.length - 1], cur.values[cur.values.length - 1]);
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const edges = new Float64Array(NUMERIC_BINS + 1);
  for (let i = 0; i <= NUMERIC_BINS; i++) edges[i] = lo + ((hi - lo) * i) / NUMERIC_BINS;
  edges[NUMERIC_BINS] = hi;
  const r = histogram(ref, edges).map((x) => x / ref.n);
  const k = histogram(cur, edges).map((x) => x / cur.n);
  const labels = [fmt(lo), fmt((lo + hi) / 2), fmt(hi)];
  return bars(Array.from(r), Array.from(k), labels, true, `${c.name} distribution`);
}

function categoryChart(c: ColumnComparison): string {
  const rc = keyCounts(c.reference);
  const cc = keyCounts(c.current);
  const keys = new Set<CategoryKey>([...rc.keys(), ...cc.keys()]);
  const ranked = [...keys]
    .map((key) => ({ key, r: (rc.get(key) ?? 0) / c.reference.n, k: (cc.get(key) ?? 0) / c.current.n }))
    .sort((a, b) => b.r + b.k - (a.r + a.k));
  const shown = ranked.slice(0, MAX_CATEGORIES);
  const rest = ranked.length - shown.length;
  const svg = bars(
    shown.map((s) => s.r),
    shown.map((s) => s.k),
    shown.map((s) => String(s.key)),
    false,
    `${c.name} distribution`,
  );
  return rest > 0 ? `${svg}<p class="note">${rest} less frequent values not shown.</p>` : svg;
}

/** Paired (categories) or overlaid (histogram) bars of two share vectors, as inline SVG. */
function bars(ref: number[], cur: number[], labels: string[], overlay: boolean, title: string): string {
  const n = ref.length;
  const max = Math.max(...ref, ...cur, 1e-12);
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const slot = plotW / n;
  const y = (v: number) => PAD.top + plotH - (v / max) * plotH;
  const parts: string[] = [];
  parts.push(
    `<svg width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${escapeHtml(title)}">`,
  );
  parts.push(`<title>${escapeHtml(title)}</title>`);
  for (const t of [0, 0.5, 1]) {
    const yy = y(max * t);
    parts.push(
      `<line x1="${PAD.left}" x2="${WIDTH - PAD.right}" y1="${yy.toFixed(1)}" y2="${yy.toFixed(1)}" stroke="#eee"/>`,
      `<text x="${PAD.left - 4}" y="${(yy + 3).toFixed(1)}" text-anchor="end">${fmt(max * t)}</text>`,
    );
  }
  for (let i = 0; i < n; i++) {
    const x0 = PAD.left + i * slot;
    if (overlay) {
      for (const [v, color] of [
        [ref[i], REF],
        [cur[i], CUR],
      ] as const) {
        parts.push(
          `<rect x="${x0.toFixed(1)}" y="${y(v).toFixed(1)}" width="${Math.max(slot - 1, 0.5).toFixed(1)}" height="${(PAD.top + plotH - y(v)).toFixed(1)}" fill="${color}" fill-opacity="0.45"/>`,
        );
      }
    } else {
      const w = Math.max(slot / 2 - 1, 0.5);
      parts.push(
        `<rect x="${x0.toFixed(1)}" y="${y(ref[i]).toFixed(1)}" width="${w.toFixed(1)}" height="${(PAD.top + plotH - y(ref[i])).toFixed(1)}" fill="${REF}"/>`,
        `<rect x="${(x0 + w).toFixed(1)}" y="${y(cur[i]).toFixed(1)}" width="${w.toFixed(1)}" height="${(PAD.top + plotH - y(cur[i])).toFixed(1)}" fill="${CUR}"/>`,
      );
      const label = labels[i].length > 12 ? `${labels[i].slice(0, 11)}…` : labels[i];
      parts.push(
        `<text x="${(x0 + slot / 2).toFixed(1)}" y="${HEIGHT - PAD.bottom + 12}" text-anchor="middle">${escapeHtml(label)}</text>`,
      );
    }
  }
  if (overlay) {
    labels.forEach((label, i) => {
      const x = PAD.left + (plotW * i) / (labels.length - 1);
      parts.push(
        `<text x="${x.toFixed(1)}" y="${HEIGHT - PAD.bottom + 12}" text-anchor="middle">${escapeHtml(label)}</text>`,
      );
    });
  }
  parts.push('</svg>');
  return parts.join('\n');
}
