/**
 * Float64 multi-head attention, forward and backward, over contiguous [BH, N, D] arrays. Works one query
 * row at a time (memory linear in N), so tests can also evaluate a few rows of a very long sequence by
 * passing only those query rows.
 */
export interface AttentionDims {
  /** Batch × heads. */
  batchHeads: number;
  nq: number;
  nk: number;
  headDim: number;
  scale: number;
}

/** Softmax probabilities of one query row (into `p`), returning the row's log-sum-exp of scaled scores. */
function rowProbabilities(q: Float64Array, qOff: number, k: Float64Array, kBase: number, dims: AttentionDims, p: Float64Array): number {
  const { nk, headDim: d, scale } = dims;
  let m = -Infinity;
  for (let j = 0; j < nk; j++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += q[qOff + c] * k[kBase + j * d + c];
    p[j] = s * scale;
    if (p[j] > m) m = p[j];
  }
  let sum = 0;
  for (let j = 0; j < nk; j++) {
    p[j] = Math.exp(p[j] - m);
    sum += p[j];
  }
  for (let j = 0; j < nk; j++) p[j] /= sum;
  return m + Math.log(sum);
}

/** out = softmax(scale·q·kᵀ)·v per (batch, head); lse = per-row log-sum-exp of the scaled scores. */
export function attentionForwardRef(q: Float64Array, k: Float64Array, v: Float64Array, dims: AttentionDims): { out: Float64Array; lse: Float64Array } {
  const { batchHeads, nq, nk, headDim: d } = dims;
  const out = new Float64Array(batchHeads * nq * d);
  const lse = new Float64Array(batchHeads * nq);
  const p = new Float64Array(nk);
  for (let bh = 0; bh < batchHeads; bh++) {
    const kBase = bh * nk * d;
    for (let i = 0; i < nq; i++) {
      const row = bh * nq + i;
      lse[row] = rowProbabilities(q, row * d, k, kBase, dims, p);
      for (let j = 0; j < nk; j++) {
        const pj = p[j];
        for (let c = 0; c < d; c++) out[row * d + c] += pj * v[kBase + j * d + c];
      }
    }
  }
  return { out, lse };
}

/**
 * Gradients of attention for upstream gradient dO: with P the softmax, dP = dO·vᵀ, dS = P⊙(dP − rowsum(dP⊙P)),
 * dQ = scale·dS·k, dK = scale·dSᵀ·q, dV = Pᵀ·dO. Rows are recomputed, never stored as a matrix.
 */
export function attentionBackwardRef(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  dOut: Float64Array,
  dims: AttentionDims,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { batchHeads, nq, nk, headDim: d, scale } = dims;
  const dq = new Float64Array(batchHeads * nq * d);
  const dk = new Float64Array(batchHeads * nk * d);
  const dv = new Float64Array(batchHeads * nk * d);
  const p = new Float64Array(nk);
  const dp = new Float64Array(nk);
  for (let bh = 0; bh < batchHeads; bh++) {
    const kBase = bh * nk * d;
    for (let i = 0; i < nq; i++) {
      const row = bh * nq + i;
      rowProbabilities(q, row * d, k, kBase, dims, p);
      let delta = 0;
      for (let j = 0; j < nk; j++) {
        let s = 0;
        for (let c = 0; c < d; c++) s += dOut[row * d + c] * v[kBase + j * d + c];
        dp[j] = s;
        delta += s * p[j];
      }
      for (let j = 0; j < nk; j++) {
        const ds = p[j] * (dp[j] - delta) * scale;
        for (let c = 0; c < d; c++) {
          dq[row * d + c] += ds * k[kBase + j * d + c];
          dk[kBase + j * d + c] += ds * q[row * d + c];
          dv[kBase + j * d + c] += p[j] * dOut[row * d + c];
        }
      }
    }
  }
  return { dq, dk, dv };
}
