import type { ElementwiseOp } from '../../../shaders/elementwise.wgsl';

/** Float64 twins of the WGSL elementwise ops (same argument order and parameters). */
type Fn = (a: number, b: number, c: number, p: readonly number[]) => number;

export function erf(x: number): number {
  // Series for |x| < 3 (converges fast there), complementary continued fraction beyond: ~1e-15.
  const ax = Math.abs(x);
  if (ax < 3) {
    let sum = x;
    let term = x;
    const x2 = x * x;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = 0;
  for (let n = 60; n >= 1; n--) f = (n / 2) / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
function powRef(x: number, y: number): number {
  return x === 0 && y === 0 ? 1 : Math.pow(x, y);
}
const bool = (v: boolean) => (v ? 1 : 0);

export const ELEMENTWISE_REF: Record<ElementwiseOp, Fn> = {
  fill: (_a, _b, _c, p) => p[0],
  identity: (a) => a,
  neg: (a) => -a,
  exp: (a) => Math.exp(a),
  log: (a) => Math.log(a),
  sqrt: (a) => Math.sqrt(a),
  rsqrt: (a) => 1 / Math.sqrt(a),
  abs: (a) => Math.abs(a),
  sign: (a) => Math.sign(a),
  sin: (a) => Math.sin(a),
  cos: (a) => Math.cos(a),
  square: (a) => a * a,
  reciprocal: (a) => 1 / a,
  relu: (a) => Math.max(a, 0),
  leaky_relu: (a, _b, _c, p) => (a > 0 ? a : a * p[0]),
  silu: (a) => a * sigmoid(a),
  gelu: (a) => 0.5 * a * (1 + erf(a / Math.SQRT2)),
  sigmoid: (a) => sigmoid(a),
  tanh: (a) => Math.tanh(a),
  erf: (a) => erf(a),
  pow_scalar: (a, _b, _c, p) => powRef(a, p[0]),
  add_scalar: (a, _b, _c, p) => a + p[0],
  mul_scalar: (a, _b, _c, p) => a * p[0],
  affine_scalar: (a, _b, _c, p) => a * p[0] + p[1],
  clamp: (a, _b, _c, p) => Math.min(Math.max(a, p[0]), p[1]),
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => powRef(a, b),
  minimum: (a, b) => Math.min(a, b),
  maximum: (a, b) => Math.max(a, b),
  eq: (a, b) => bool(a === b),
  ne: (a, b) => bool(a !== b),
  lt: (a, b) => bool(a < b),
  le: (a, b) => bool(a <= b),
  gt: (a, b) => bool(a > b),
  ge: (a, b) => bool(a >= b),
  atan2: (a, b) => Math.atan2(a, b),
  relu_grad: (g, x) => (x > 0 ? g : 0),
  leaky_relu_grad: (g, x, _c, p) => (x > 0 ? g : g * p[0]),
  silu_grad: (g, x) => g * sigmoid(x) * (1 + x * (1 - sigmoid(x))),
  gelu_grad: (g, x) => g * (0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI)),
  sigmoid_grad: (g, y) => g * y * (1 - y),
  tanh_grad: (g, y) => g * (1 - y * y),
  sqrt_grad: (g, y) => (g * 0.5) / y,
  rsqrt_grad: (g, y) => g * -0.5 * y * y * y,
  abs_grad: (g, x) => g * Math.sign(x),
  sin_grad: (g, x) => g * Math.cos(x),
  cos_grad: (g, x) => -g * Math.sin(x),
  erf_grad: (g, x) => g * (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x),
  pow_scalar_grad: (g, x, _c, p) => (p[0] === 0 ? 0 : g * p[0] * powRef(x, p[0] - 1)),
  clamp_grad: (g, x, _c, p) => (x >= p[0] && x <= p[1] ? g : 0),
  where: (c, x, y) => (c !== 0 ? x : y),
  div_grad_b: (g, a, b) => (-g * a) / (b * b),
  pow_grad_a: (g, a, b) => (b === 0 ? 0 : g * b * powRef(a, b - 1)),
  pow_grad_b: (g, a, b) => (a === 0 && b >= 0 ? 0 : g * powRef(a, b) * Math.log(a)),
  min_grad_a: (g, a, b) => g * ((a < b ? 1 : 0) + (a === b ? 0.5 : 0)),
  max_grad_a: (g, a, b) => g * ((a > b ? 1 : 0) + (a === b ? 0.5 : 0)),
};

export interface RefView {
  data: Float64Array;
  strides: readonly number[];
  offset: number;
}

/**
 * Visits every index of `shape` in row-major order, passing the element offset of each view.
 * The one strided loop of the reference backend.
 */
export function forEachOffset(shape: readonly number[], views: readonly { strides: readonly number[]; offset: number }[], visit: (offsets: number[]) => void): void {
  const rank = shape.length;
  const total = shape.reduce((a, b) => a * b, 1);
  if (total === 0) return;
  const offsets = views.map((v) => v.offset);
  const idx = new Array<number>(rank).fill(0);
  for (let n = 0; n < total; n++) {
    visit(offsets);
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      for (let k = 0; k < views.length; k++) offsets[k] += views[k].strides[d];
      if (idx[d] < shape[d]) break;
      for (let k = 0; k < views.length; k++) offsets[k] -= views[k].strides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

export function elementwiseRef(op: ElementwiseOp, shape: readonly number[], inputs: readonly RefView[], out: RefView, params: readonly number[], integerOut: boolean): void {
  const fn = ELEMENTWISE_REF[op];
  const [a, b, c] = inputs;
  forEachOffset(shape, [out, ...inputs], (o) => {
    let r = fn(a ? a.data[o[1]] : 0, b ? b.data[o[2]] : 0, c ? c.data[o[3]] : 0, params);
    if (integerOut) r = Math.trunc(r);
    out.data[o[0]] = r;
  });
}
