/**
 * Fused pointwise losses. Every kernel reads its inputs through per-input strides and element offsets
 * (non-contiguous and broadcast views need no copy) and iterates a flat index over the broadcast shape.
 *
 * Modes:
 *   partial: invocations grid-stride over the elements summing the per-element loss; each workgroup
 *            (or, on CPU adapters, each invocation) writes one partial sum, and a second tiny dispatch,
 *            `finishSumShader`, adds the partials and scales;
 *   map:     writes the per-element loss (reduction 'none');
 *   grad:    writes d(loss)/d(input) = g[i] · scale · ∂f/∂input for the inputs that need it.
 * All kernels loop over the elements with a device-sized number of workgroups, each owning a
 * contiguous chunk (`chunkedLoop`): on CPU adapters (lavapipe) each workgroup launch is costly, so few
 * groups doing many elements each run several times faster than one element per invocation.
 */
export type PointwiseLoss = 'mse' | 'l1' | 'hinge_real' | 'hinge_fake' | 'kl';
export type LossMode = 'partial' | 'map' | 'grad';
/** scalar: one value (a reduced loss); contiguous: plain row-major; strided: anything else. */
export type GradLayout = 'scalar' | 'contiguous' | 'strided';

/** Inputs each loss reads (a, then b). */
export const LOSS_ARITY: Record<PointwiseLoss, 1 | 2> = { mse: 2, l1: 2, hinge_real: 1, hinge_fake: 1, kl: 2 };

/** Upper bounds of the KL's logvar clamp (DiagonalGaussianDistribution clamps to [−30, 20]). */
export const KL_LOGVAR_MIN = -30;
export const KL_LOGVAR_MAX = 20;

/** WGSL for the loss value f(a, b) and its partial derivatives, given `a` and `b` in scope. */
function lossExpressions(op: PointwiseLoss): { value: string; gradA: string; gradB: string } {
  switch (op) {
    case 'mse':
      return { value: '(a - b) * (a - b)', gradA: '2.0 * (a - b)', gradB: '-2.0 * (a - b)' };
    case 'l1':
      return { value: 'abs(a - b)', gradA: 'sign(a - b)', gradB: '-sign(a - b)' };
    case 'hinge_real':
      return { value: 'max(0.0, 1.0 - a)', gradA: 'select(0.0, -1.0, a < 1.0)', gradB: '0.0' };
    case 'hinge_fake':
      return { value: 'max(0.0, 1.0 + a)', gradA: 'select(0.0, 1.0, a > -1.0)', gradB: '0.0' };
    case 'kl': {
      // a = μ, b = logvar. The clamp passes the gradient inside [min, max] inclusive (PyTorch's rule).
      const lv = `clamp(b, ${KL_LOGVAR_MIN}.0, ${KL_LOGVAR_MAX}.0)`;
      return {
        value: `0.5 * (a * a + exp(${lv}) - 1.0 - ${lv})`,
        gradA: 'a',
        gradB: `select(0.0, 0.5 * (exp(${lv}) - 1.0), b >= ${KL_LOGVAR_MIN}.0 && b <= ${KL_LOGVAR_MAX}.0)`,
      };
    }
  }
}

/**
 * Uniform block shared by the strided kernels: element count, rank, partial-sum groups, elements per
 * leading index (`inner`), a scale, the broadcast shape, strides of up to four read inputs (two vec4
 * each) and their element offsets.
 */
export const STRIDED_UNIFORMS = `struct Params {
  n: u32, rank: u32, groups: u32, inner: u32,
  scale: f32, pad1: f32, pad2: f32, pad3: f32,
  shape: array<vec4<u32>, 2>,
  strides: array<vec4<u32>, 8>,
  offsets: vec4<u32>,
};
@group(0) @binding(0) var<uniform> u: Params;

// Element offset of flat index i (over the broadcast shape) in read input k.
fn stridedOffset(i: u32, k: u32, contiguous: bool) -> u32 {
  if (contiguous) { return u.offsets[k] + i; }
  var rest = i;
  var off = u.offsets[k];
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let dd = u32(d);
    let dim = u.shape[dd / 4u][dd % 4u];
    off += (rest % dim) * u.strides[k * 2u + dd / 4u][dd % 4u];
    rest = rest / dim;
  }
  return off;
}
`;

/** Builtins of a kernel that uses `chunkedLoop`. */
export const CHUNKED_BUILTINS = '@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>';

/**
 * Loop header over i < n where each workgroup owns one contiguous chunk (a multiple of the workgroup
 * size) and its invocations stride through it together. Loads stay coalesced on GPUs, and on CPU adapters
 * (which run one workgroup at a time per core) each core streams through contiguous memory instead of
 * hopping across the whole buffer as a grid-wide stride would.
 */
export function chunkedLoop(n: string, workgroupSize: number): string {
  const wg = workgroupSize;
  return `let chunk = (${n} + nwg.x * ${wg}u - 1u) / (nwg.x * ${wg}u) * ${wg}u;
  let chunkEnd = min(${n}, wid.x * chunk + chunk);
  for (var i = wid.x * chunk + lid; i < chunkEnd; i += ${wg}u)`;
}

export interface PointwiseShaderOptions {
  op: PointwiseLoss;
  mode: LossMode;
  /** All read inputs are plain contiguous over the broadcast shape (skips the index arithmetic). */
  contiguous: boolean;
  gradA: boolean;
  gradB: boolean;
  /** grad mode: how the upstream gradient is laid out over the broadcast shape. */
  gradLayout: GradLayout;
  /** partial mode: one partial per workgroup via workgroup memory (GPUs), else one per invocation
   *  with no barriers (CPU adapters, where barriers are costly coroutine switches). */
  treeReduce: boolean;
  workgroupSize: number;
}

export function pointwiseLossShader(o: PointwiseShaderOptions): string {
  const wg = o.workgroupSize;
  const arity = LOSS_ARITY[o.op];
  const e = lossExpressions(o.op);
  const reads = ['a', ...(arity === 2 ? ['b'] : []), ...(o.mode === 'grad' ? ['g'] : [])];
  const writes = o.mode === 'partial' ? ['partials'] : o.mode === 'map' ? ['out'] : [...(o.gradA ? ['da'] : []), ...(o.gradB ? ['db'] : [])];
  let binding = 1;
  const decls = [
    ...reads.map((n) => `@group(0) @binding(${binding++}) var<storage, read> ${n}In: array<f32>;`),
    ...writes.map((n) => `@group(0) @binding(${binding++}) var<storage, read_write> ${n}: array<f32>;`),
  ].join('\n');
  const c = o.contiguous ? 'true' : 'false';
  const load = `let a = aIn[stridedOffset(i, 0u, ${c})];
    ${arity === 2 ? `let b = bIn[stridedOffset(i, 1u, ${c})];` : 'let b = 0.0;'}`;
  const gIndex = arity === 2 ? '2u' : '1u';
  if (o.mode === 'partial') {
    return `${STRIDED_UNIFORMS}
${decls}
${o.treeReduce ? `var<workgroup> scratch: array<f32, ${wg}>;` : ''}
@compute @workgroup_size(${wg})
fn main(${CHUNKED_BUILTINS}) {
  var acc = 0.0;
  ${chunkedLoop('u.n', wg)} {
    ${load}
    acc += ${e.value};
  }
  ${
    o.treeReduce
      ? `scratch[lid] = acc;
  workgroupBarrier();
  for (var t = ${wg / 2}u; t > 0u; t = t >> 1u) {
    if (lid < t) { scratch[lid] += scratch[lid + t]; }
    workgroupBarrier();
  }
  if (lid == 0u) { partials[wid.x] = scratch[0]; }`
      : `partials[wid.x * ${wg}u + lid] = acc;`
  }
}
`;
  }
  // A scalar upstream gradient (reductions 'mean'/'sum') skips the index arithmetic.
  const gRead = o.gradLayout === 'scalar' ? `gIn[u.offsets[${gIndex}]]` : `gIn[stridedOffset(i, ${gIndex}, ${o.gradLayout === 'contiguous'})]`;
  const body =
    o.mode === 'map'
      ? `out[i] = ${e.value};`
      : `let gs = ${gRead} * u.scale;
    ${o.gradA ? `da[i] = gs * (${e.gradA});` : ''}
    ${o.gradB ? `db[i] = gs * (${e.gradB});` : ''}`;
  return `${STRIDED_UNIFORMS}
${decls}
@compute @workgroup_size(${wg})
fn main(${CHUNKED_BUILTINS}) {
  ${chunkedLoop('u.n', wg)} {
    ${load}
    ${body}
  }
}
`;
}

/**
 * One workgroup adds `count` partial sums (at `offset`) and writes scale · Σ (or sqrt of it) to out[0].
 * Used to finish the fused loss reductions and the global gradient norm.
 */
export function finishSumShader(o: { sqrt: boolean; workgroupSize: number }): string {
  const wg = o.workgroupSize;
  return `struct Params { count: u32, offset: u32, pad0: u32, pad1: u32, scale: f32 };
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> scratch: array<f32, ${wg}>;
@compute @workgroup_size(${wg})
fn main(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var i = lid; i < u.count; i += ${wg}u) { acc += partials[u.offset + i]; }
  scratch[lid] = acc;
  workgroupBarrier();
  for (var t = ${wg / 2}u; t > 0u; t = t >> 1u) {
    if (lid < t) { scratch[lid] += scratch[lid + t]; }
    workgroupBarrier();
  }
  if (lid == 0u) { out[0] = ${o.sqrt ? 'sqrt(scratch[0] * u.scale)' : 'scratch[0] * u.scale'}; }
}
`;
}

/**
 * Rectified-flow interpolation in one pass: x_t = (1 − t)·x0 + t·x1 and the target velocity x1 − x0,
 * with t read through a broadcast view (`tPerSample`: one value per leading index, read without the
 * general index arithmetic).
 */
export function flowInterpolateShader(o: { contiguous: boolean; tPerSample: boolean; workgroupSize: number }): string {
  const wg = o.workgroupSize;
  const c = o.contiguous ? 'true' : 'false';
  return `${STRIDED_UNIFORMS}
@group(0) @binding(1) var<storage, read> x0In: array<f32>;
@group(0) @binding(2) var<storage, read> x1In: array<f32>;
@group(0) @binding(3) var<storage, read> tIn: array<f32>;
@group(0) @binding(4) var<storage, read_write> xt: array<f32>;
@group(0) @binding(5) var<storage, read_write> velocity: array<f32>;
@compute @workgroup_size(${wg})
fn main(${CHUNKED_BUILTINS}) {
  ${chunkedLoop('u.n', wg)} {
    let x0 = x0In[stridedOffset(i, 0u, ${c})];
    let x1 = x1In[stridedOffset(i, 1u, ${c})];
    let t = ${o.tPerSample ? 'tIn[u.offsets[2] + (i / u.inner) * u.strides[4].x]' : 'tIn[stridedOffset(i, 2u, false)]'};
    xt[i] = (1.0 - t) * x0 + t * x1;
    velocity[i] = x1 - x0;
  }
}
`;
}
