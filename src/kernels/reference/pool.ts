/** Pooling geometry over [planes, D, H, W] (lower ranks padded with size-1 dims). */
export interface PoolGeometry {
  planes: number;
  input: [number, number, number];
  output: [number, number, number];
  kernel: [number, number, number];
  stride: [number, number, number];
  padding: [number, number, number];
}

/** Float64 max / average pooling; max also returns the flat in-plane index of the first maximum. */
export function poolForwardRef(op: 'max' | 'avg', x: Float64Array, p: PoolGeometry): { y: Float64Array; argmax: Int32Array } {
  const [D, H, W] = p.input;
  const [oD, oH, oW] = p.output;
  const outPlane = oD * oH * oW;
  const y = new Float64Array(p.planes * outPlane);
  const argmax = new Int32Array(op === 'max' ? y.length : 0);
  const volume = p.kernel[0] * p.kernel[1] * p.kernel[2];
  for (let t = 0; t < y.length; t++) {
    const plane = Math.floor(t / outPlane);
    const r = t % outPlane;
    const o = [Math.floor(r / (oH * oW)), Math.floor(r / oW) % oH, r % oW];
    let best = -Infinity;
    let bestIndex = -1;
    let sum = 0;
    for (let kd = 0; kd < p.kernel[0]; kd++) {
      const id = o[0] * p.stride[0] - p.padding[0] + kd;
      if (id < 0 || id >= D) continue;
      for (let kh = 0; kh < p.kernel[1]; kh++) {
        const ih = o[1] * p.stride[1] - p.padding[1] + kh;
        if (ih < 0 || ih >= H) continue;
        for (let kw = 0; kw < p.kernel[2]; kw++) {
          const iw = o[2] * p.stride[2] - p.padding[2] + kw;
          if (iw < 0 || iw >= W) continue;
          const index = (id * H + ih) * W + iw;
          const v = x[plane * D * H * W + index];
          if (bestIndex < 0 || v > best || Number.isNaN(v)) {
            best = v;
            bestIndex = index;
          }
          sum += v;
        }
      }
    }
    if (op === 'max') {
      y[t] = best;
      argmax[t] = bestIndex;
    } else y[t] = sum / volume;
  }
  return { y, argmax };
}

/** Gradient of the pooling wrt its input: to the saved argmax (max) or spread over the window (avg). */
export function poolBackwardRef(op: 'max' | 'avg', g: Float64Array, argmax: ArrayLike<number>, p: PoolGeometry): Float64Array {
  const [D, H, W] = p.input;
  const [oD, oH, oW] = p.output;
  const inPlane = D * H * W;
  const outPlane = oD * oH * oW;
  const dx = new Float64Array(p.planes * inPlane);
  const volume = p.kernel[0] * p.kernel[1] * p.kernel[2];
  for (let t = 0; t < g.length; t++) {
    const plane = Math.floor(t / outPlane);
    if (op === 'max') {
      dx[plane * inPlane + argmax[t]] += g[t];
      continue;
    }
    const r = t % outPlane;
    const o = [Math.floor(r / (oH * oW)), Math.floor(r / oW) % oH, r % oW];
    for (let kd = 0; kd < p.kernel[0]; kd++) {
      const id = o[0] * p.stride[0] - p.padding[0] + kd;
      if (id < 0 || id >= D) continue;
      for (let kh = 0; kh < p.kernel[1]; kh++) {
        const ih = o[1] * p.stride[1] - p.padding[1] + kh;
        if (ih < 0 || ih >= H) continue;
        for (let kw = 0; kw < p.kernel[2]; kw++) {
          const iw = o[2] * p.stride[2] - p.padding[2] + kw;
          if (iw < 0 || iw >= W) continue;
          dx[plane * inPlane + (id * H + ih) * W + iw] += g[t] / volume;
        }
      }
    }
  }
  return dx;
}
