/**
 * Metrics of the downstream tasks (pure functions, float64).
 *
 * Classification from class probabilities [n × k]: accuracy, balanced accuracy (mean per-class recall over
 * the classes present), macro F1, macro AUC (one-vs-rest, Mann-Whitney with ties counted ½; a class
 * absent from the truth or present everywhere has no AUC and is left out of the mean).
 * Regression: MAE and R² = 1 − SS_res / SS_tot per target.
 * Summaries: mean ± sample sd over runs, and a percentile bootstrap CI of any metric over subjects.
 */
import { Rng } from '../data/random';

export interface ClassificationMetrics {
  acc: number;
  balancedAcc: number;
  macroF1: number;
  macroAuc: number;
}

export function argmaxRows(probs: Float64Array | Float32Array, k: number): number[] {
  const n = probs.length / k;
  return Array.from({ length: n }, (_, i) => {
    let best = 0;
    for (let c = 1; c < k; c++) if (probs[i * k + c] > probs[i * k + best]) best = c;
    return best;
  });
}

/** AUC of `scores` for positives (true) vs negatives (false); NaN when either group is empty. */
export function binaryAuc(scores: ArrayLike<number>, positive: ArrayLike<boolean>): number {
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  // Average ranks (1-based) with ties sharing their mean rank.
  const ranks = new Float64Array(scores.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]] === scores[idx[i]]) j++;
    for (let t = i; t <= j; t++) ranks[idx[t]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  let nPos = 0;
  let rankSum = 0;
  for (let i = 0; i < scores.length; i++) if (positive[i]) (nPos++, (rankSum += ranks[i]));
  const nNeg = scores.length - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

export function classificationMetrics(probs: Float64Array | Float32Array, labels: readonly number[], k: number): ClassificationMetrics {
  const pred = argmaxRows(probs, k);
  const n = labels.length;
  let correct = 0;
  const tp = new Array(k).fill(0);
  const support = new Array(k).fill(0);
  const predicted = new Array(k).fill(0);
  for (let i = 0; i < n; i++) {
    support[labels[i]]++;
    predicted[pred[i]]++;
    if (pred[i] === labels[i]) (correct++, tp[labels[i]]++);
  }
  const present = [...Array(k).keys()].filter((c) => support[c] > 0);
  const recall = present.map((c) => tp[c] / support[c]);
  const f1 = present.map((c) => {
    const precision = predicted[c] ? tp[c] / predicted[c] : 0;
    const r = tp[c] / support[c];
    return precision + r > 0 ? (2 * precision * r) / (precision + r) : 0;
  });
  const aucs = present
    .map((c) => binaryAuc(Array.from({ length: n }, (_, i) => probs[i * k + c]), labels.map((l) => l === c)))
    .filter((a) => !Number.isNaN(a));
  const avg = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  return { acc: correct / n, balancedAcc: avg(recall), macroF1: avg(f1), macroAuc: avg(aucs) };
}

export interface RegressionMetrics {
  mae: number;
  r2: number;
}

export function regressionMetrics(pred: ArrayLike<number>, truth: ArrayLike<number>): RegressionMetrics {
  const n = truth.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += truth[i] / n;
  let abs = 0;
  let ssRes = 0;
  let ssTot = 0;
  for (let i = 0; i < n; i++) {
    abs += Math.abs(pred[i] - truth[i]);
    ssRes += (pred[i] - truth[i]) ** 2;
    ssTot += (truth[i] - mean) ** 2;
  }
  return { mae: abs / n, r2: ssTot > 0 ? 1 - ssRes / ssTot : NaN };
}

export function meanSd(values: readonly number[]): { mean: number; sd: number; n: number } {
  const xs = values.filter((v) => Number.isFinite(v));
  const n = xs.length;
  const mean = n ? xs.reduce((a, b) => a + b, 0) / n : NaN;
  const sd = n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : n === 1 ? 0 : NaN;
  return { mean, sd, n };
}

/**
 * Percentile bootstrap CI of `metric(indices)` over n subjects: `resamples` draws of n indices with
 * replacement (seeded). Resamples whose metric is not finite (e.g. one class only) are dropped.
 */
export function bootstrapCi(n: number, metric: (indices: number[]) => number, options: { resamples?: number; level?: number; seed?: number } = {}): [number, number] {
  return bootstrapCis(n, (indices) => [metric(indices)], options)[0];
}

/**
 * bootstrapCi of several metrics at once over the same resamples (the same draws as bootstrapCi with the
 * same seed): one call of `metrics` per resample, where the metrics share their work (e.g. one
 * classificationMetrics call gives accuracy, AUC and F1).
 */
export function bootstrapCis(n: number, metrics: (indices: number[]) => number[], options: { resamples?: number; level?: number; seed?: number } = {}): [number, number][] {
  const resamples = options.resamples ?? 1000;
  const level = options.level ?? 0.95;
  const rng = new Rng(options.seed ?? 1);
  const values: number[][] = [];
  for (let r = 0; r < resamples; r++) {
    const indices = Array.from({ length: n }, () => Math.floor(rng.next() * n));
    metrics(indices).forEach((v, k) => {
      values[k] ??= [];
      if (Number.isFinite(v)) values[k].push(v);
    });
  }
  return values.map((vs) => {
    if (!vs.length) return [NaN, NaN];
    vs.sort((a, b) => a - b);
    const q = (p: number) => vs[Math.min(vs.length - 1, Math.max(0, Math.floor(p * (vs.length - 1) + 0.5)))];
    return [q((1 - level) / 2), q(1 - (1 - level) / 2)];
  });
}
