import type { DType } from '../src/engine/dtype';
import { enableF16 } from './common.wgsl';

interface IndexedKernelOptions {
  dtype: DType;
  backward: boolean;
  workgroupSize: number;
}

/**
 * Bindings and the per-element prologue shared by index_select and gather; `body` computes dst[e].
 * An index outside [0, n) makes the forward output NaN (the NaN's bits come from a uniform, so no compiler can
 * fold it away): on the device there is no error to throw, and a NaN is what the non-finite checks downstream
 * catch, where reading a neighbouring row would be silent. In the backward pass such an index adds nowhere.
 */
function indexedKernel(o: IndexedKernelOptions, body: string): string {
  const wg = o.workgroupSize;
  const t = o.dtype;
  return `${enableF16([t])}
struct Params { outer: u32, n: u32, inner: u32, count: u32, total: u32, srcOffset: u32, idxOffset: u32, nanBits: u32 };
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> src: array<${t}>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> dst: array<${t}>;
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * ${wg}u;
  if (e >= u.total) { return; }
${body}
}
`;
}

/**
 * index_select along one dim of x viewed as contiguous [outer, n, inner]:
 *   forward   y[o, i, k] = x[o, idx[i], k]
 *   backward dx[o, j, k] = Σ_{i: idx[i] = j} g[o, i, k]   (a gather over idx: deterministic, no atomics)
 */
export function indexSelectShader(o: IndexedKernelOptions): string {
  return indexedKernel(
    o,
    o.backward
    ? `  // dst: [outer, n, inner]; src (the gradient): [outer, count, inner]
  let k = e % u.inner;
  let j = (e / u.inner) % u.n;
  let o = e / (u.inner * u.n);
  var acc = 0.0;
  for (var i = 0u; i < u.count; i++) {
    if (u32(idx[u.idxOffset + i]) == j) { acc += f32(src[u.srcOffset + (o * u.count + i) * u.inner + k]); }
  }
  dst[e] = ${o.dtype}(acc);`
    : `  // dst: [outer, count, inner]
  let k = e % u.inner;
  let i = (e / u.inner) % u.count;
  let o = e / (u.inner * u.count);
  let jr = idx[u.idxOffset + i];
  if (jr < 0 || u32(jr) >= u.n) { dst[e] = ${o.dtype}(bitcast<f32>(u.nanBits)); return; }
  dst[e] = src[u.srcOffset + (o * u.n + u32(jr)) * u.inner + k];`
  );
}

/**
 * gather along one dim (torch.gather): index has x's shape except along the dim (size `count`),
 * both viewed as contiguous [outer, ·, inner].
 *   forward   y[o, i, k] = x[o, idx[o, i, k], k]
 *   backward dx[o, j, k] = Σ_i [idx[o, i, k] = j] · g[o, i, k]   (loop over i: deterministic)
 */
export function gatherShader(o: IndexedKernelOptions): string {
  return indexedKernel(
    o,
    o.backward
    ? `  let k = e % u.inner;
  let j = (e / u.inner) % u.n;
  let o = e / (u.inner * u.n);
  var acc = 0.0;
  for (var i = 0u; i < u.count; i++) {
    let at = (o * u.count + i) * u.inner + k;
    if (u32(idx[u.idxOffset + at]) == j) { acc += f32(src[u.srcOffset + at]); }
  }
  dst[e] = ${o.dtype}(acc);`
    : `  let k = e % u.inner;
  let o = e / (u.inner * u.count);
  let jr = idx[u.idxOffset + e];
  if (jr < 0 || u32(jr) >= u.n) { dst[e] = ${o.dtype}(bitcast<f32>(u.nanBits)); return; }
  dst[e] = src[u.srcOffset + (o * u.n + u32(jr)) * u.inner + k];`
  );
}
