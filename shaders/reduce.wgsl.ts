import type { DType } from '../src/engine/dtype';
import { enableF16 } from './common.wgsl';

export type ReduceOp = 'sum' | 'max' | 'min';

const IDENTITY: Record<ReduceOp, string> = { sum: '0.0', max: '-3.402823e38', min: '3.402823e38' };
const COMBINE: Record<ReduceOp, (a: string, b: string) => string> = {
  sum: (a, b) => `${a} + ${b}`,
  max: (a, b) => `max(${a}, ${b})`,
  min: (a, b) => `min(${a}, ${b})`,
};

/**
 * Reduces x viewed as [outer, R, inner] (element (o, r, i) at offset + o·sOuter + r·sR + i·sInner) to
 * [outer, chunks, inner]: each output sums one chunk of R. `perThread`: one invocation per output,
 * coalesced over `inner`. Otherwise one workgroup per output, with a shared-memory tree.
 */
export function reduceShader(o: { op: ReduceOp; inType: DType; outType: DType; perThread: boolean; workgroupSize: number }): string {
  const wg = o.workgroupSize;
  const id = IDENTITY[o.op];
  const comb = COMBINE[o.op];
  const load = o.inType === 'f32' ? 'x[src]' : 'f32(x[src])';
  const store = o.outType === 'f32' ? 'acc' : `${o.outType}(acc)`;
  const header = `${enableF16([o.inType, o.outType])}
struct Params { outer: u32, r: u32, inner: u32, chunks: u32, chunkLen: u32, offset: u32, sOuter: u32, sR: u32, sInner: u32, scale: f32 };
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> x: array<${o.inType}>;
@group(0) @binding(2) var<storage, read_write> y: array<${o.outType}>;
`;
  if (o.perThread) {
    return `${header}
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * ${wg}u;
  if (idx >= u.outer * u.chunks * u.inner) { return; }
  let i = idx % u.inner;
  let c = (idx / u.inner) % u.chunks;
  let o = idx / (u.inner * u.chunks);
  let r0 = c * u.chunkLen;
  let r1 = min(r0 + u.chunkLen, u.r);
  var acc: f32 = ${id};
  var src = u.offset + o * u.sOuter + i * u.sInner + r0 * u.sR;
  for (var r = r0; r < r1; r++) {
    acc = ${comb('acc', load)};
    src += u.sR;
  }
  acc = acc * u.scale;
  y[idx] = ${store};
}
`;
  }
  return `${header}
var<workgroup> partial: array<f32, ${wg}>;
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = wid.x + wid.y * nwg.x;
  let total = u.outer * u.chunks * u.inner;
  let inRange = idx < total;
  let i = idx % u.inner;
  let c = (idx / u.inner) % u.chunks;
  let o = idx / (u.inner * u.chunks);
  let r0 = c * u.chunkLen;
  let r1 = min(r0 + u.chunkLen, u.r);
  var acc: f32 = ${id};
  if (inRange) {
    for (var r = r0 + lid; r < r1; r += ${wg}u) {
      let src = u.offset + o * u.sOuter + i * u.sInner + r * u.sR;
      acc = ${comb('acc', load)};
    }
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { partial[lid] = ${comb('partial[lid]', 'partial[lid + s]')}; }
    workgroupBarrier();
  }
  if (lid == 0u && inRange) {
    acc = partial[0] * u.scale;
    y[idx] = ${store};
  }
}
`;
}
