import type { DType } from '../src/engine/dtype';

/** `enable f16;` when any binding stores f16. */
export function enableF16(types: readonly DType[]): string {
  return types.includes('f16') ? 'enable f16;\n' : '';
}

/** A load expression of a binding stored as `dtype`, as f32 (f16 values are widened exactly; f32 unchanged). */
export function loadF32(dtype: DType, expr: string): string {
  return dtype === 'f32' ? expr : `f32(${expr})`;
}

/**
 * WGSL statements that turn a linear index over `shape` (uniform `u.shape`, rank `u.rank`) into element
 * offsets for several strided views: `offVar[k] = base[k] + Σ coord_d · strides_k[d]`.
 */
export function stridedOffsets(linearVar: string, strideFields: readonly string[], offsetExprs: readonly string[], outVars: readonly string[]): string {
  const init = outVars.map((v, k) => `var ${v}: u32 = ${offsetExprs[k]};`).join('\n  ');
  const accum = outVars.map((v, k) => `${v} += coord * u.${strideFields[k]}[du / 4u][du % 4u];`).join('\n      ');
  return `${init}
  {
    var rest = ${linearVar};
    for (var d = i32(u.rank) - 1; d >= 0; d--) {
      let du = u32(d);
      let extent = u.shape[du / 4u][du % 4u];
      let coord = rest % extent;
      rest = rest / extent;
      ${accum}
    }
  }`;
}

/** The flat invocation index of a 2-D grid of 1-D workgroups (dispatches over 65,535 groups spill into y). */
export const FLAT_INDEX = (wg: number) => `gid.x + gid.y * nwg.x * ${wg}u`;

/** Math helpers WGSL lacks. erf: Abramowitz–Stegun 7.1.26 refined (|error| < 1.5e-7). */
export const MATH_HELPERS = /* wgsl */ `
fn erf_(x: f32) -> f32 {
  let s = sign(x);
  let a = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
  return s * y;
}
fn tanh_(x: f32) -> f32 {
  // exp overflows for |x| > 44; this form saturates to ±1 instead of returning NaN.
  let e = exp(-2.0 * abs(x));
  return sign(x) * (1.0 - e) / (1.0 + e);
}
fn sigmoid_(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}
fn pow_(x: f32, y: f32) -> f32 {
  // WGSL pow is undefined for x < 0; PyTorch defines integer powers of negative numbers.
  if (x >= 0.0) { if (x == 0.0 && y == 0.0) { return 1.0; } return pow(x, y); }
  if (y != floor(y)) { var nanBits = 0x7fc00000u; return bitcast<f32>(nanBits); }
  let m = pow(-x, y);
  if (fract(y * 0.5) != 0.0) { return -m; }
  return m;
}
`;

/**
 * Tiling of a GEMM-shaped kernel (matmul, convolution). Shared-memory variant: BM×BN outputs per workgroup,
 * BK depth per staged step, TM×TN outputs per invocation. `direct`: no workgroup memory (CPU adapters);
 * bm/bn/bk are then unused and `workgroup` sets the invocations per workgroup.
 */
export interface GemmTiling {
  direct?: boolean;
  workgroup?: number;
  bm: number;
  bn: number;
  bk: number;
  tm: number;
  tn: number;
}
