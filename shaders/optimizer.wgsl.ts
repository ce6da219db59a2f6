import { CHUNKED_BUILTINS, chunkedLoop } from './loss.wgsl';

/**
 * Optimizer kernels. Every kernel works on one contiguous f32 tensor (element offset in the uniforms);
 * the host records one dispatch per parameter and the context batches them into one submit.
 * Kernels loop over contiguous per-workgroup chunks (`chunkedLoop`) of a device-sized number of groups.
 */

/** The AdamW element update shared by the plain and the gated kernel (uniforms n, offsets, decay, betas, eps). */
function adamwUpdate(wg: number, stepSize: string, bc2Sqrt: string): string {
  return `${chunkedLoop('u.n', wg)} {
    let g = grad[u.gradOffset + i];
    let s = state[i];
    let m = u.beta1 * s.x + (1.0 - u.beta1) * g;
    let v = u.beta2 * s.y + (1.0 - u.beta2) * g * g;
    state[i] = vec2<f32>(m, v);
    let p = param[u.paramOffset + i] * u.decay;
    param[u.paramOffset + i] = p - ${stepSize} * m / (sqrt(v) / ${bc2Sqrt} + u.eps);
  }`;
}

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
  ${adamwUpdate(wg, 'u.stepSize', 'u.bc2Sqrt')}
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

// The device-side GradScaler (src/kernels/optimizer.ts, DeviceGradScaler): its state vector's layout.
export const S_SCALE = 0;
export const S_TRACKER = 1;
export const S_SKIPPED = 2;
export const S_FOUND = 3;
export const S_USED = 4;

/** AdamW gated on flags[slot]: skipped → count it in skips[index]; else AdamW with device bias corrections. */
export function gatedAdamwShader(workgroupSize: number): string {
  const wg = workgroupSize;
  return `struct Params {
  n: u32, paramOffset: u32, gradOffset: u32, flag: u32,
  decay: f32, beta1: f32, beta2: f32, eps: f32,
  lr: f32, step: u32, index: u32, pad0: u32,
};
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read> flags: array<u32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read_write> state: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read_write> skips: array<u32>;
@compute @workgroup_size(${wg})
fn main(${CHUNKED_BUILTINS}) {
  if (flags[u.flag] != 0u) {
    if (wid.x == 0u && lid == 0u) { skips[u.index] = skips[u.index] + 1u; }
    return;
  }
  let t = f32(u.step - skips[u.index]);
  let stepSize = u.lr / (1.0 - pow(u.beta1, t));
  let bc2Sqrt = sqrt(1.0 - pow(u.beta2, t));
  ${adamwUpdate(wg, 'stepSize', 'bc2Sqrt')}
}
`;
}

/** x ← x / scale in place (scale read from the device state), flags[slot] |= 1 on any Inf/NaN (from the bits). */
export function deviceUnscaleShader(workgroupSize: number): string {
  const wg = workgroupSize;
  return `struct Params { n: u32, offset: u32, slot: u32, pad0: u32 };
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> scaler: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> flags: array<atomic<u32>>;
@compute @workgroup_size(${wg})
fn main(${CHUNKED_BUILTINS}) {
  let inv = 1.0 / scaler[${S_SCALE}];
  var bad = false;
  ${chunkedLoop('u.n', wg)} {
    let v = x[u.offset + i];
    bad = bad || (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u;
    x[u.offset + i] = v * inv;
  }
  if (bad) { atomicOr(&flags[u.slot], 1u); }
}
`;
}

/** One invocation: OR and clear the flags, then back off, or grow after the interval, as torch's update(). */
export function scalerUpdateShader(): string {
  return `struct Params { slots: u32, pad0: u32, pad1: u32, pad2: u32, growth: f32, backoff: f32, interval: f32, pad3: f32 };
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read_write> st: array<f32>;
@group(0) @binding(2) var<storage, read_write> flags: array<u32>;
@compute @workgroup_size(1)
fn main() {
  var found = 0u;
  for (var i = 0u; i < u.slots; i++) {
    found = found | flags[i];
    flags[i] = 0u;
  }
  let scale = st[${S_SCALE}];
  st[${S_USED}] = scale;
  if (found != 0u) {
    st[${S_SCALE}] = scale * u.backoff;
    st[${S_TRACKER}] = 0.0;
    st[${S_SKIPPED}] = st[${S_SKIPPED}] + 1.0;
    st[${S_FOUND}] = 1.0;
  } else {
    st[${S_FOUND}] = 0.0;
    let t = st[${S_TRACKER}] + 1.0;
    if (t >= u.interval) {
      st[${S_SCALE}] = scale * u.growth;
      st[${S_TRACKER}] = 0.0;
    } else {
      st[${S_TRACKER}] = t;
    }
  }
}
`;
}
