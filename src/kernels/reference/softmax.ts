/** Float64 softmax / log-softmax over contiguous rows, forward and backward. */
export function softmaxRef(x: Float64Array, rows: number, len: number, log: boolean): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let j = 0; j < len; j++) m = Math.max(m, x[r * len + j]);
    let s = 0;
    for (let j = 0; j < len; j++) s += Math.exp(x[r * len + j] - m);
    const logZ = m + Math.log(s);
    for (let j = 0; j < len; j++) y[r * len + j] = log ? x[r * len + j] - logZ : Math.exp(x[r * len + j] - logZ);
  }
  return y;
}

export function softmaxBackwardRef(g: Float64Array, y: Float64Array, rows: number, len: number, log: boolean): Float64Array {
  const dx = new Float64Array(g.length);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < len; j++) s += log ? g[r * len + j] : g[r * len + j] * y[r * len + j];
    for (let j = 0; j < len; j++) {
      const i = r * len + j;
      dx[i] = log ? g[i] - Math.exp(y[i]) * s : y[i] * (g[i] - s);
    }
  }
  return dx;
}
