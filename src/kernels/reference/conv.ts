/**
 * Float64 convolution over three spatial dims (lower ranks use size-1 dims), PyTorch semantics:
 * x [N, Cin, D, H, W], w [Cout, Cin, KD, KH, KW], y [N, Cout, OD, OH, OW], all contiguous row-major.
 */
export interface ConvGeometry {
  batch: number;
  cin: number;
  cout: number;
  /** Spatial sizes, always three entries (depth, height, width). */
  inSize: readonly number[];
  kernel: readonly number[];
  stride: readonly number[];
  padding: readonly number[];
  dilation: readonly number[];
  outSize: readonly number[];
}

const prod = (v: readonly number[]) => v.reduce((a, b) => a * b, 1);

/**
 * Visits every (output position, kernel tap, input position) triple whose input position lies inside
 * the input: the one loop nest the forward and both backward references share.
 */
function forEachTap(g: ConvGeometry, visit: (outSpatial: number, tap: number, inSpatial: number) => void): void {
  const [D, H, W] = g.inSize;
  const [OD, OH, OW] = g.outSize;
  const [KD, KH, KW] = g.kernel;
  for (let oz = 0; oz < OD; oz++)
    for (let oy = 0; oy < OH; oy++)
      for (let ox = 0; ox < OW; ox++) {
        const o = (oz * OH + oy) * OW + ox;
        for (let kd = 0; kd < KD; kd++) {
          const iz = oz * g.stride[0] - g.padding[0] + kd * g.dilation[0];
          if (iz < 0 || iz >= D) continue;
          for (let kh = 0; kh < KH; kh++) {
            const iy = oy * g.stride[1] - g.padding[1] + kh * g.dilation[1];
            if (iy < 0 || iy >= H) continue;
            for (let kw = 0; kw < KW; kw++) {
              const ix = ox * g.stride[2] - g.padding[2] + kw * g.dilation[2];
              if (ix < 0 || ix >= W) continue;
              visit(o, (kd * KH + kh) * KW + kw, (iz * H + iy) * W + ix);
            }
          }
        }
      }
}

export function convForwardRef(x: Float64Array, w: Float64Array, bias: Float64Array | null, g: ConvGeometry): Float64Array {
  const inS = prod(g.inSize);
  const outS = prod(g.outSize);
  const kv = prod(g.kernel);
  const y = new Float64Array(g.batch * g.cout * outS);
  for (let n = 0; n < g.batch; n++)
    for (let co = 0; co < g.cout; co++) {
      const yBase = (n * g.cout + co) * outS;
      if (bias) for (let o = 0; o < outS; o++) y[yBase + o] = bias[co];
      for (let ci = 0; ci < g.cin; ci++) {
        const xBase = (n * g.cin + ci) * inS;
        const wBase = (co * g.cin + ci) * kv;
        forEachTap(g, (o, t, i) => (y[yBase + o] += x[xBase + i] * w[wBase + t]));
      }
    }
  return y;
}

/** Gradient with respect to x of Σ gy ⊙ conv(x, w). */
export function convBackwardDataRef(gy: Float64Array, w: Float64Array, g: ConvGeometry): Float64Array {
  const inS = prod(g.inSize);
  const outS = prod(g.outSize);
  const kv = prod(g.kernel);
  const dx = new Float64Array(g.batch * g.cin * inS);
  for (let n = 0; n < g.batch; n++)
    for (let co = 0; co < g.cout; co++) {
      const gBase = (n * g.cout + co) * outS;
      for (let ci = 0; ci < g.cin; ci++) {
        const xBase = (n * g.cin + ci) * inS;
        const wBase = (co * g.cin + ci) * kv;
        forEachTap(g, (o, t, i) => (dx[xBase + i] += gy[gBase + o] * w[wBase + t]));
      }
    }
  return dx;
}

/** Gradient with respect to w of Σ gy ⊙ conv(x, w). */
export function convBackwardWeightRef(x: Float64Array, gy: Float64Array, g: ConvGeometry): Float64Array {
  const inS = prod(g.inSize);
  const outS = prod(g.outSize);
  const kv = prod(g.kernel);
  const dw = new Float64Array(g.cout * g.cin * kv);
  for (let n = 0; n < g.batch; n++)
    for (let co = 0; co < g.cout; co++) {
      const gBase = (n * g.cout + co) * outS;
      for (let ci = 0; ci < g.cin; ci++) {
        const xBase = (n * g.cin + ci) * inS;
        const wBase = (co * g.cin + ci) * kv;
        forEachTap(g, (o, t, i) => (dw[wBase + t] += gy[gBase + o] * x[xBase + i]));
      }
    }
  return dw;
}
