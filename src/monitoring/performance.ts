/**
 * Model performance from predictions joined with ground truth, computed as scikit-learn computes
 * it (sample weights included): classification — accuracy, precision, recall and F1 (binary: of
 * the positive class; more classes: macro averages), ROC AUC (binary; one-vs-rest macro for more
 * classes), log loss, the confusion matrix; regression — MAE, RMSE, MAPE, R².
 */

export interface LabelledRow {
  /** The predicted class (classification) or value (regression). */
  predicted: string | number;
  /** Class probabilities by class name, when the model gives them. */
  probabilities?: Record<string, number>;
  actual: string | number;
  weight: number;
}

export interface ClassificationMetrics {
  task: 'classification';
  rows: number;
  classes: string[];
  /** The class precision, recall and F1 are about in a binary problem. */
  positive?: string;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  roc_auc: number | null;
  log_loss: number | null;
  /** confusion_matrix[i][j]: weight of rows of class i predicted as j, classes in `classes` order. */
  confusion_matrix: number[][];
}

export interface RegressionMetrics {
  task: 'regression';
  rows: number;
  mae: number;
  rmse: number;
  mape: number;
  r2: number;
}

export type PerformanceMetrics = ClassificationMetrics | RegressionMetrics;

const EPS = 2.220446049250313e-16;

/** Classes sort as scikit-learn's `np.unique` sorts them: numbers numerically, strings by code point. */
function sortClasses(values: Iterable<string>): string[] {
  const all = [...new Set(values)];
  const numeric = all.every((v) => v.trim() !== '' && Number.isFinite(Number(v)));
  return numeric
    ? all.sort((a, b) => Number(a) - Number(b))
    : all.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Classification metrics. `positive` picks the class of binary precision, recall and F1 (default
 * the last class in sorted order, as scikit-learn's pos_label=1 for 0/1 labels).
 */
export function classificationMetrics(
  rows: readonly LabelledRow[],
  positive?: string,
): ClassificationMetrics {
  const actual = rows.map((r) => String(r.actual));
  const predicted = rows.map((r) => String(r.predicted));
  const w = rows.map((r) => r.weight);
  const classes = sortClasses([...actual, ...predicted]);
  const index = new Map(classes.map((c, i) => [c, i]));
  const k = classes.length;
  const cm = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let total = 0;
  let correct = 0;
  for (let i = 0; i < rows.length; i++) {
    cm[index.get(actual[i]!)!]![index.get(predicted[i]!)!]! += w[i]!;
    total += w[i]!;
    if (actual[i] === predicted[i]) correct += w[i]!;
  }
  const perClass = classes.map((_, c) => {
    const tp = cm[c]![c]!;
    let predictedC = 0;
    let actualC = 0;
    for (let j = 0; j < k; j++) {
      predictedC += cm[j]![c]!;
      actualC += cm[c]![j]!;
    }
    // scikit-learn's zero_division default: 0 when undefined.
    const p = predictedC > 0 ? tp / predictedC : 0;
    const r = actualC > 0 ? tp / actualC : 0;
    const f = p + r > 0 ? (2 * p * r) / (p + r) : 0;
    return { p, r, f, present: actualC > 0 || predictedC > 0 };
  });
  let precision: number;
  let recall: number;
  let f1: number;
  let pos: string | undefined;
  if (k === 2) {
    pos = positive ?? classes[1]!;
    const c = index.get(pos);
    const m = c === undefined ? { p: 0, r: 0, f: 0 } : perClass[c]!;
    precision = m.p;
    recall = m.r;
    f1 = m.f;
  } else {
    const mean = (f: (x: (typeof perClass)[number]) => number) =>
      perClass.reduce((s, x) => s + f(x), 0) / Math.max(1, k);
    precision = mean((x) => x.p);
    recall = mean((x) => x.r);
    f1 = mean((x) => x.f);
  }
  const probs = rows.every((r) => r.probabilities) ? rows.map((r) => r.probabilities!) : null;
  return {
    task: 'classification',
    rows: rows.length,
    classes,
    ...(pos !== undefined ? { positive: pos } : {}),
    accuracy: total > 0 ? correct / total : 0,
    precision,
    recall,
    f1,
    roc_auc: probs ? rocAuc(actual, probs, classes, w, pos) : null,
    log_loss: probs ? logLoss(actual, probs, classes, w) : null,
    confusion_matrix: cm,
  };
}

/** Area under the ROC curve of one score against a binary truth, trapezoids over distinct scores (weighted). */
export function binaryAuc(
  scores: readonly number[],
  truth: readonly boolean[],
  weights: readonly number[],
): number | null {
  const order = scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  let tp = 0;
  let fp = 0;
  let prevTp = 0;
  let prevFp = 0;
  let area = 0;
  for (let n = 0; n < order.length; n++) {
    const i = order[n]!;
    if (truth[i]) tp += weights[i]!;
    else fp += weights[i]!;
    const next = order[n + 1];
    if (next === undefined || scores[next] !== scores[i]) {
      area += ((fp - prevFp) * (tp + prevTp)) / 2;
      prevTp = tp;
      prevFp = fp;
    }
  }
  if (tp === 0 || fp === 0) return null; // undefined with one class only
  return area / (tp * fp);
}

function rocAuc(
  actual: readonly string[],
  probs: readonly Record<string, number>[],
  classes: readonly string[],
  w: readonly number[],
  positive?: string,
): number | null {
  if (classes.length < 2) return null;
  if (classes.length === 2) {
    const pos = positive ?? classes[1]!;
    return binaryAuc(
      probs.map((p) => p[pos] ?? 0),
      actual.map((a) => a === pos),
      w,
    );
  }
  // One-vs-rest, macro average over the classes (scikit-learn: multi_class='ovr', average='macro').
  let sum = 0;
  for (const c of classes) {
    const auc = binaryAuc(
      probs.map((p) => p[c] ?? 0),
      actual.map((a) => a === c),
      w,
    );
    if (auc === null) return null;
    sum += auc;
  }
  return sum / classes.length;
}

/** Weighted mean of −ln p(actual class), probabilities renormalized and clipped to [eps, 1 − eps]. */
function logLoss(
  actual: readonly string[],
  probs: readonly Record<string, number>[],
  classes: readonly string[],
  w: readonly number[],
): number | null {
  let sum = 0;
  let total = 0;
  for (let i = 0; i < actual.length; i++) {
    const p = probs[i]!;
    let norm = 0;
    for (const c of classes) norm += Math.min(Math.max(p[c] ?? 0, EPS), 1 - EPS);
    const own = Math.min(Math.max(p[actual[i]!] ?? 0, EPS), 1 - EPS) / norm;
    sum -= w[i]! * Math.log(own);
    total += w[i]!;
  }
  return total > 0 ? sum / total : null;
}

export function regressionMetrics(rows: readonly LabelledRow[]): RegressionMetrics {
  let total = 0;
  let abs = 0;
  let sq = 0;
  let pct = 0;
  let mean = 0;
  for (const r of rows) {
    const y = Number(r.actual);
    const e = y - Number(r.predicted);
    total += r.weight;
    abs += r.weight * Math.abs(e);
    sq += r.weight * e * e;
    pct += (r.weight * Math.abs(e)) / Math.max(Math.abs(y), EPS);
    mean += r.weight * y;
  }
  mean /= total || 1;
  let ssTot = 0;
  for (const r of rows) ssTot += r.weight * (Number(r.actual) - mean) ** 2;
  // scikit-learn's force_finite: a constant truth scores 1 when predicted exactly, else 0.
  const r2 = ssTot === 0 ? (sq === 0 ? 1 : 0) : 1 - sq / ssTot;
  return {
    task: 'regression',
    rows: rows.length,
    mae: total > 0 ? abs / total : 0,
    rmse: total > 0 ? Math.sqrt(sq / total) : 0,
    mape: total > 0 ? pct / total : 0,
    r2,
  };
}
