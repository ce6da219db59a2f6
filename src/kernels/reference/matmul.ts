/** Float64 batched matmul over contiguous [batch, M, K] × [batch, K, N] arrays. */
export function matmulRef(a: Float64Array, b: Float64Array, batch: number, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(batch * m * n);
  for (let p = 0; p < batch; p++) {
    for (let i = 0; i < m; i++) {
      for (let kk = 0; kk < k; kk++) {
        const av = a[(p * m + i) * k + kk];
        if (av === 0) continue;
        const bRow = (p * k + kk) * n;
        const oRow = (p * m + i) * n;
        for (let j = 0; j < n; j++) out[oRow + j] += av * b[bRow + j];
      }
    }
  }
  return out;
}
