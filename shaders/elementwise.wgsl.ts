import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import type { DType } from '../src/engine/dtype';
import { enableF16, FLAT_INDEX, MATH_HELPERS, stridedOffsets } from './common.wgsl';

/**
 * Elementwise ops as WGSL expressions over f32 values `a`, `b`, `c` (the inputs, in order) and the
 * scalar parameters `p.x`..`p.w`. Gradient rules are ops too, so each backward is one dispatch.
 * The float64 twin of every entry is in src/kernels/reference/elementwise.ts.
 */
export const ELEMENTWISE_WGSL = {
  // arity 0
  fill: 'p.x',
  // arity 1
  identity: 'a',
  neg: '-a',
  exp: 'exp(a)',
  log: 'log(a)',
  sqrt: 'sqrt(a)',
  rsqrt: 'inverseSqrt(a)',
  abs: 'abs(a)',
  sign: 'sign(a)',
  sin: 'sin(a)',
  cos: 'cos(a)',
  square: 'a * a',
  reciprocal: '1.0 / a',
  relu: 'max(a, 0.0)',
  leaky_relu: 'select(a * p.x, a, a > 0.0)',
  silu: 'a * sigmoid_(a)',
  gelu: '0.5 * a * (1.0 + erf_(a * 0.70710678118654752))',
  sigmoid: 'sigmoid_(a)',
  tanh: 'tanh_(a)',
  erf: 'erf_(a)',
  pow_scalar: 'pow_(a, p.x)',
  add_scalar: 'a + p.x',
  mul_scalar: 'a * p.x',
  affine_scalar: 'a * p.x + p.y',
  clamp: 'min(max(a, p.x), p.y)',
  // arity 2
  add: 'a + b',
  sub: 'a - b',
  mul: 'a * b',
  div: 'a / b',
  pow: 'pow_(a, b)',
  minimum: 'min(a, b)',
  maximum: 'max(a, b)',
  eq: 'select(0.0, 1.0, a == b)',
  ne: 'select(0.0, 1.0, a != b)',
  lt: 'select(0.0, 1.0, a < b)',
  le: 'select(0.0, 1.0, a <= b)',
  gt: 'select(0.0, 1.0, a > b)',
  ge: 'select(0.0, 1.0, a >= b)',
  atan2: 'atan2(a, b)',
  // gradient rules (a = upstream gradient)
  relu_grad: 'select(0.0, a, b > 0.0)',
  leaky_relu_grad: 'select(a * p.x, a, b > 0.0)',
  silu_grad: 'a * sigmoid_(b) * (1.0 + b * (1.0 - sigmoid_(b)))',
  gelu_grad: 'a * (0.5 * (1.0 + erf_(b * 0.70710678118654752)) + b * exp(-0.5 * b * b) * 0.39894228040143268)',
  sigmoid_grad: 'a * b * (1.0 - b)',
  tanh_grad: 'a * (1.0 - b * b)',
  sqrt_grad: 'a * 0.5 / b',
  rsqrt_grad: 'a * -0.5 * b * b * b',
  abs_grad: 'a * sign(b)',
  sin_grad: 'a * cos(b)',
  cos_grad: '-a * sin(b)',
  erf_grad: 'a * 1.12837916709551257 * exp(-b * b)',
  pow_scalar_grad: 'select(a * p.x * pow_(b, p.x - 1.0), 0.0, p.x == 0.0)',
  clamp_grad: 'select(0.0, a, b >= p.x && b <= p.y)',
  // arity 3
  where: 'select(c, b, a != 0.0)',
  div_grad_b: '-a * b / (c * c)',
  pow_grad_a: 'select(a * c * pow_(b, c - 1.0), 0.0, c == 0.0)',
  pow_grad_b: 'select(a * pow_(b, c) * log(b), 0.0, b == 0.0 && c >= 0.0)',
  // share of the gradient when a minimum/maximum ties: half to each side, as PyTorch does
  min_grad_a: 'a * (select(0.0, 1.0, b < c) + select(0.0, 0.5, b == c))',
  max_grad_a: 'a * (select(0.0, 1.0, b > c) + select(0.0, 0.5, b == c))',
} as const;

export type ElementwiseOp = keyof typeof ELEMENTWISE_WGSL;

export interface ElementwiseShaderOptions {
  op: ElementwiseOp;
  inputTypes: readonly DType[];
  outputType: DType;
  /**
   * contiguous: every view is contiguous with the output's shape, index directly. strided: one element per
   * invocation, found by a div/mod walk over the dims. rows: one innermost row per invocation (one walk per
   * row, then stride steps) — for CPU adapters, where integer division is scalar and dear; a GPU would lose
   * coalescing with it.
   */
  layout: 'contiguous' | 'strided' | 'rows';
  workgroupSize: number;
}

function load(k: number, t: DType, offset: string): string {
  return t === 'f32' ? `in${k}[${offset}]` : `f32(in${k}[${offset}])`;
}

export function elementwiseShader(o: ElementwiseShaderOptions): string {
  const n = o.inputTypes.length;
  const names = ['a', 'b', 'c'];
  const strideFields = ['outStrides', ...o.inputTypes.map((_, k) => `inStrides${k}`)];
  const offsetExprs = ['u.offsets.x', 'u.offsets.y', 'u.offsets.z', 'u.offsets.w'];
  const offVars = ['oOut', ...o.inputTypes.map((_, k) => `o${k}`)];
  const store = o.outputType === 'f32' ? 'r' : `${o.outputType}(r)`;
  return wgsl`${enableF16([...o.inputTypes, o.outputType])}
struct Params {
  numel: u32, rank: u32, pad0: u32, pad1: u32,
  p: vec4<f32>,
  shape: array<vec4<u32>, 2>,
  ${strideFields.map((f) => `${f}: array<vec4<u32>, 2>,`).join('\n  ')}
  offsets: vec4<u32>,
};
@group(0) @binding(0) var<uniform> u: Params;
${o.inputTypes.map((t, k) => `@group(0) @binding(${k + 1}) var<storage, read> in${k}: array<${t}>;`).join('\n')}
@group(0) @binding(${n + 1}) var<storage, read_write> out: array<${o.outputType}>;
${MATH_HELPERS}
@compute @workgroup_size(${o.workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = u.p;
#if ${o.layout === 'rows'}
  // pad0 = rows, pad1 = the innermost extent; the walk finds the row start, the loop steps along it.
  let row = ${FLAT_INDEX(o.workgroupSize)};
  if (row >= u.pad0) { return; }
  let last = u.rank - 1u;
  ${stridedOffsets('row * u.pad1', strideFields, offsetExprs, offVars.map((v) => `${v}Row`))}
  ${strideFields.map((f, k) => `let ${offVars[k]}Step = u.${f}[last / 4u][last % 4u];`).join('\n  ')}
  for (var j = 0u; j < u.pad1; j++) {
    ${offVars.map((v) => `let ${v} = ${v}Row + j * ${v}Step;`).join('\n    ')}
    ${o.inputTypes.map((t, k) => `let ${names[k]} = ${load(k, t, `o${k}`)};`).join('\n    ')}
    let r = ${ELEMENTWISE_WGSL[o.op]};
    out[oOut] = ${store};
  }
#else
  let i = ${FLAT_INDEX(o.workgroupSize)};
  if (i >= u.numel) { return; }
#if ${o.layout === 'contiguous'}
  ${offVars.map((v, k) => `let ${v} = ${offsetExprs[k]} + i;`).join('\n  ')}
#else
  ${stridedOffsets('i', strideFields, offsetExprs, offVars)}
#endif
  ${o.inputTypes.map((t, k) => `let ${names[k]} = ${load(k, t, `o${k}`)};`).join('\n  ')}
  let r = ${ELEMENTWISE_WGSL[o.op]};
  out[oOut] = ${store};
#endif
}
`;
}
