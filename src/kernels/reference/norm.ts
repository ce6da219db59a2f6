/**
 * Float64 references for the normalizations over contiguous data. Element i belongs to stat group
 * s = ⌊i / statDiv⌋ mod statMod (statistics) and channel c = ⌊i / chanDiv⌋ mod chanMod (affine).
 */
export interface NormIndexMap {
  statDiv: number;
  statMod: number;
  chanDiv: number;
  chanMod: number;
}

const statOf = (m: NormIndexMap, i: number) => Math.floor(i / m.statDiv) % m.statMod;
const chanOf = (m: NormIndexMap, i: number) => Math.floor(i / m.chanDiv) % m.chanMod;

/** Two-pass mean and biased variance per stat group (and the element count per group). */
export function normStatsRef(x: Float64Array, m: NormIndexMap): { mean: Float64Array; variance: Float64Array; count: number } {
  const groups = m.statMod;
  const mean = new Float64Array(groups);
  const variance = new Float64Array(groups);
  const counts = new Float64Array(groups);
  for (let i = 0; i < x.length; i++) {
    const s = statOf(m, i);
    mean[s] += x[i];
    counts[s]++;
  }
  for (let s = 0; s < groups; s++) mean[s] /= counts[s];
  for (let i = 0; i < x.length; i++) {
    const d = x[i] - mean[statOf(m, i)];
    variance[statOf(m, i)] += d * d;
  }
  for (let s = 0; s < groups; s++) variance[s] /= counts[s];
  return { mean, variance, count: counts[0] };
}

export function normApplyRef(x: Float64Array, mean: Float64Array, rstd: Float64Array, weight: Float64Array | null, bias: Float64Array | null, m: NormIndexMap): Float64Array {
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const s = statOf(m, i);
    const c = chanOf(m, i);
    y[i] = (x[i] - mean[s]) * rstd[s] * (weight ? weight[c] : 1) + (bias ? bias[c] : 0);
  }
  return y;
}

/**
 * Backward of y = x̂·w + b, x̂ = (x − mean)·rstd. With batch statistics (`fixedStats` false) mean and rstd
 * depend on x: dx = rstd·(g·w − mean_s(g·w) − x̂·mean_s(g·w·x̂)). dw = Σ g·x̂ and db = Σ g per channel.
 */
export function normBackwardRef(
  x: Float64Array,
  g: Float64Array,
  mean: Float64Array,
  rstd: Float64Array,
  weight: Float64Array | null,
  m: NormIndexMap,
  fixedStats: boolean,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const groups = m.statMod;
  const s1 = new Float64Array(groups);
  const s2 = new Float64Array(groups);
  const counts = new Float64Array(groups);
  const dw = new Float64Array(m.chanMod);
  const db = new Float64Array(m.chanMod);
  const xhat = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const s = statOf(m, i);
    const c = chanOf(m, i);
    xhat[i] = (x[i] - mean[s]) * rstd[s];
    const gw = g[i] * (weight ? weight[c] : 1);
    s1[s] += gw;
    s2[s] += gw * xhat[i];
    counts[s]++;
    dw[c] += g[i] * xhat[i];
    db[c] += g[i];
  }
  const dx = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const s = statOf(m, i);
    const gw = g[i] * (weight ? weight[chanOf(m, i)] : 1);
    dx[i] = fixedStats ? rstd[s] * gw : rstd[s] * (gw - s1[s] / counts[s] - (xhat[i] * s2[s]) / counts[s]);
  }
  return { dx, dw, db };
}

/** x / (‖x‖₂ over dim 1 + eps) for [N, C, S], and its backward. */
export function l2NormalizeRef(x: Float64Array, g: Float64Array | null, n: number, c: number, s: number, eps: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let b = 0; b < n; b++) {
    for (let p = 0; p < s; p++) {
      const base = b * c * s + p;
      let ss = 0;
      let gx = 0;
      for (let k = 0; k < c; k++) {
        const v = x[base + k * s];
        ss += v * v;
        if (g) gx += v * g[base + k * s];
      }
      const norm = Math.sqrt(ss);
      const d = norm + eps;
      for (let k = 0; k < c; k++) {
        const j = base + k * s;
        out[j] = g ? g[j] / d - (x[j] * gx) / (d * d * norm) : x[j] / d;
      }
    }
  }
  return out;
}
