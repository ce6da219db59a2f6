import { CHUNKED_BUILTINS, chunkedLoop } from './loss.wgsl';

/**
 * Optimizer kernels. Every kernel works on one contiguous f32 tensor (element offset in the uniforms);
 * the host records one dispatch per parameter and the context batches them into one submit.
 * Kernels loop over contiguous per-workgroup chunks (`chunkedLoop`) of a device-sized number of groups.
 */

/**
 * Fused AdamW (PyTorch's single-tensor algorithm), in place:
 *   p ← p·(1 − lr·wd);  m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²;
 *   p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps)
 * m and v live interleaved in one vec2 state buffer per parameter (one 8-byte load per element).
 * The bias corrections are computed in float64 on the host per parameter (each has its own step count).
 */
export function adamwShader(workgroupSize: number): string {
  const wg = workgroupSize;
  return `struct Params {
  n: u32, paramOffset: u32, gradOffset: u32, pad0: u32,
  decay: f32, beta1: f32, beta2: f32, eps: f32,
  stepSize: f32, bc2Sqrt: f32, pad1: f32, pad2: f32,
};
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<vec2<f32>>;
@compute @workgroup_size(${wg})
fn main(${CHUNKED_BUILTINS}) {
  ${chunkedLoop('u.n', wg)} {
    let g = grad[u.gradOffset + i];
    let s = state[i];
    let m = u.beta1 * s.x + (1.0 - u.beta1) * g;
    let v = u.beta2 * s.y + (1.0 - u.beta2) * g * g;
    state[i] = vec2<f32>(m, v);
    let p = param[u.paramOffset + i] * u.decay;
    param[u.paramOffset + i] = p - u.stepSize * m / (sqrt(v) / u.bc2Sqrt + u.eps);
  }
}
`;
}

/**
 * Partial sums of squares of one tensor. `treeReduce`: one partial per workgroup (partials[slot + group]),
 * reduced through workgroup memory — right for GPUs. Without it every invocation writes its own partial
 * (partials[slot + invocation]): no barriers, which lavapipe runs as costly coroutine switches.
 */
export function sumSquaresShader(workgroupSize: number, treeReduce: boolean): string {
  const wg = workgroupSize;
  const finish = treeReduce
    ? `scratch[lid] = acc;
  workgroupBarrier();
  for (var t = ${wg / 2}u; t > 0u; t = t >> 1u) {
    if (lid < t) { scratch[lid] += scratch[lid + t]; }
    workgroupBarrier();
  }
  if (lid == 0u) { partials[u.slot + wid.x] = scratch[0]; }`
    : `partials[u.slot + wid.x * ${wg}u + lid] = acc;`;
  return `struct Params { n: u32, offset: u32, groups: u32, slot: u32 };
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
${treeReduce ? `var<workgroup> scratch: array<f32, ${wg}>;` : ''}
@compute @workgroup_size(${wg})
fn main(${CHUNKED_BUILTINS}) {
  var acc = 0.0;
  ${chunkedLoop('u.n', wg)} {
    let v = x[u.offset + i];
    acc += v * v;
  }
  ${finish}
}
`;
}

/** x ← x · min(1, maxNorm / (norm + 1e-6)), the norm read from a one-element buffer (no readback). */
export function clipScaleShader(workgroupSize: number): string {
  const wg = workgroupSize;
  return `struct Params { n: u32, offset: u32, pad0: u32, pad1: u32, maxNorm: f32 };
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> norm: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(${wg})
fn main(${CHUNKED_BUILTINS}) {
  let factor = min(1.0, u.maxNorm / (norm[0] + 1e-6));
  ${chunkedLoop('u.n', wg)} {
    x[u.offset + i] = x[u.offset + i] * factor;
  }
}
`;
}

/**
 * GradScaler's unscale: x ← x · invScale in place, and flag[0] |= 1 when any element is Inf or NaN.
 * Non-finite values are found from the bits (all exponent bits set), which no compiler can fold away
 * the way it may fold `x != x` under fast-math assumptions.
 */
export function unscaleCheckShader(workgroupSize: number): string {
  const wg = workgroupSize;
  return `struct Params { n: u32, offset: u32, pad0: u32, pad1: u32, invScale: f32 };
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> flag: array<atomic<u32>>;
@compute @workgroup_size(${wg})
fn main(${CHUNKED_BUILTINS}) {
  var bad = false;
  ${chunkedLoop('u.n', wg)} {
    let v = x[u.offset + i];
    bad = bad || (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u;
    x[u.offset + i] = v * u.invScale;
  }
  if (bad) { atomicOr(&flag[0], 1u); }
}
`;
}
