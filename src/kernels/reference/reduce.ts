import type { ReduceOp } from '../../../shaders/reduce.wgsl';

/** Float64 reduction of a contiguous [outer, R, inner] array to [outer, inner]. */
export function reduceRef(op: ReduceOp, x: Float64Array, outer: number, r: number, inner: number, scale: number): Float64Array {
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let acc = op === 'sum' ? 0 : op === 'max' ? -Infinity : Infinity;
      for (let k = 0; k < r; k++) {
        const v = x[(o * r + k) * inner + i];
        acc = op === 'sum' ? acc + v : op === 'max' ? Math.max(acc, v) : Math.min(acc, v);
      }
      out[o * inner + i] = acc * scale;
    }
  }
  return out;
}
