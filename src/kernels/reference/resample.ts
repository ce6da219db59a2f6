/** Float64 references for the resampling kernels (same index rules as shaders/resample.wgsl.ts). */

export function linearTaps(l: number, scale: number, len: number): { i0: number; i1: number; lambda: number } {
  const real = Math.max(scale * (l + 0.5) - 0.5, 0);
  const i0 = Math.min(Math.floor(real), len - 1);
  const i1 = Math.min(i0 + 1, len - 1);
  return { i0, i1, lambda: Math.min(Math.max(real - i0, 0), 1) };
}

/** Linear resampling along the middle axis of [outer, L, inner] to Lout; `grad` gives the backward. */
export function linearAxisRef(src: Float64Array, outer: number, len: number, inner: number, lenOut: number, scale: number, backward: boolean): Float64Array {
  const out = new Float64Array(outer * (backward ? len : lenOut) * inner);
  for (let o = 0; o < outer; o++) {
    for (let l = 0; l < lenOut; l++) {
      const { i0, i1, lambda } = linearTaps(l, scale, len);
      for (let k = 0; k < inner; k++) {
        const x0 = (o * len + i0) * inner + k;
        const x1 = (o * len + i1) * inner + k;
        const y = (o * lenOut + l) * inner + k;
        if (backward) {
          out[x0] += (1 - lambda) * src[y];
          out[x1] += lambda * src[y];
        } else out[y] = (1 - lambda) * src[x0] + lambda * src[x1];
      }
    }
  }
  return out;
}

/** Nearest upsampling of [planes, D, H, W] by integer scales, or (backward) the block sums. */
export function nearestRef(src: Float64Array, planes: number, dims: readonly number[], scales: readonly number[], backward: boolean): Float64Array {
  const [D, H, W] = dims;
  const [sD, sH, sW] = scales;
  const oD = D * sD;
  const oH = H * sH;
  const oW = W * sW;
  const out = new Float64Array(backward ? planes * D * H * W : planes * oD * oH * oW);
  for (let p = 0; p < planes; p++) {
    for (let d = 0; d < oD; d++) {
      for (let h = 0; h < oH; h++) {
        for (let w = 0; w < oW; w++) {
          const y = ((p * oD + d) * oH + h) * oW + w;
          const x = ((p * D + Math.floor(d / sD)) * H + Math.floor(h / sH)) * W + Math.floor(w / sW);
          if (backward) out[x] += src[y];
          else out[y] = src[x];
        }
      }
    }
  }
  return out;
}
