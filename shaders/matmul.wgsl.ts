import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import type { DType } from '../src/engine/dtype';
import { enableF16, type GemmTiling } from './common.wgsl';

export type MatmulTiling = GemmTiling;

type Operands = { a: DType; b: DType; out: DType; bias: boolean; /** Storage type of the bias (default: the output dtype). */ biasDtype?: DType };

/**
 * The uniform block of every matmul kernel (register-tiled, direct and subgroup-matrix), built by
 * `matmulUniforms` in src/kernels/matmul.ts. The bias is a view like any operand: a slice of a fused
 * parameter (DiT's `in_proj_bias` split into q and kv) has its own element offset and stride.
 */
export const MATMUL_PARAMS = `struct Params {
  m: u32, n: u32, k: u32, batchRank: u32,
  aRow: u32, aCol: u32, bRow: u32, bCol: u32,
  aOffset: u32, bOffset: u32, outOffset: u32, alpha: f32,
  batchShape: vec4<u32>,
  aBatch: vec4<u32>,
  bBatch: vec4<u32>,
  biasOffset: u32, biasStride: u32, pad0: u32, pad1: u32,
};`;

/** Adds the bias of output column `cc` (through the bias view's offset and stride) to `v`. */
export const ADD_BIAS = 'v += f32(bias[u.biasOffset + cc * u.biasStride]);';

/** Uniform struct and bindings shared by both matmul kernels (binding 3 is the bias when present). */
function matmulBindings(o: Operands): string {
  return wgsl`${enableF16([o.a, o.b, o.out, o.biasDtype ?? o.out])}
${MATMUL_PARAMS}
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> a: array<${o.a}>;
@group(0) @binding(2) var<storage, read> b: array<${o.b}>;
#if ${o.bias}
@group(0) @binding(3) var<storage, read> bias: array<${o.biasDtype ?? o.out}>;
@group(0) @binding(4) var<storage, read_write> c: array<${o.out}>;
#else
@group(0) @binding(3) var<storage, read_write> c: array<${o.out}>;
#endif
`;
}

/** Batch index wid.z → element offsets aBase, bBase of this batch in A and B (stride 0 where broadcast). */
export const BATCH_BASES = `var rest = wid.z;
  var aBase = u.aOffset;
  var bBase = u.bOffset;
  for (var d = i32(u.batchRank) - 1; d >= 0; d--) {
    let extent = u.batchShape[d];
    let coord = rest % extent;
    rest = rest / extent;
    aBase += coord * u.aBatch[d];
    bBase += coord * u.bBatch[d];
  }`;

/** Stores accumulator `acc` as output (r, cc) of batch wid.z: times alpha, plus bias, in the output dtype. */
const storeOutput = (o: Operands, acc: string) =>
  `var v = ${acc} * u.alpha;${o.bias ? `\n      ${ADD_BIAS}` : ''}
      c[u.outOffset + wid.z * u.m * u.n + r * u.n + cc] = ${o.out === 'f32' ? 'v' : `${o.out}(v)`};`;

/**
 * Batched C = A·B (+ bias) with register tiling: each workgroup stages BM×BK of A and BK×BN of B in
 * shared memory, each invocation accumulates a TM×TN block in registers. A and B are read through
 * arbitrary strides, so transposed operands and broadcast batches cost no copy.
 */
export function matmulShader(o: Operands & { tiling: MatmulTiling }): string {
  const { bm, bn, bk, tm, tn } = o.tiling;
  const tx = bn / tn;
  const ty = bm / tm;
  const threads = tx * ty;
  const loadA = o.a === 'f32' ? 'a[idx]' : 'f32(a[idx])';
  const loadB = o.b === 'f32' ? 'b[idx]' : 'f32(b[idx])';
  return `${matmulBindings(o)}
var<workgroup> tileA: array<f32, ${bk * bm}>;
var<workgroup> tileB: array<f32, ${bk * bn}>;

@compute @workgroup_size(${tx}, ${ty}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${BATCH_BASES}
  let row0 = wid.y * ${bm}u;
  let col0 = wid.x * ${bn}u;
  let tid = lid.y * ${tx}u + lid.x;
  var acc: array<f32, ${tm * tn}>;
  for (var i = 0u; i < ${tm * tn}u; i++) { acc[i] = 0.0; }
  var aReg: array<f32, ${tm}>;
  var bReg: array<f32, ${tn}>;
  for (var k0 = 0u; k0 < u.k; k0 += ${bk}u) {
    for (var l = tid; l < ${bm * bk}u; l += ${threads}u) {
      let r = l / ${bk}u;
      let kk = l % ${bk}u;
      let gr = row0 + r;
      let gk = k0 + kk;
      var v = 0.0;
      if (gr < u.m && gk < u.k) { let idx = aBase + gr * u.aRow + gk * u.aCol; v = ${loadA}; }
      tileA[kk * ${bm}u + r] = v;
    }
    for (var l = tid; l < ${bk * bn}u; l += ${threads}u) {
      let kk = l / ${bn}u;
      let cc = l % ${bn}u;
      let gc = col0 + cc;
      let gk = k0 + kk;
      var v = 0.0;
      if (gc < u.n && gk < u.k) { let idx = bBase + gk * u.bRow + gc * u.bCol; v = ${loadB}; }
      tileB[kk * ${bn}u + cc] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${bk}u; kk++) {
      // Rows and columns interleave across invocations (stride ty/tx) so neighbours read neighbouring words.
      for (var i = 0u; i < ${tm}u; i++) { aReg[i] = tileA[kk * ${bm}u + lid.y + i * ${ty}u]; }
      for (var j = 0u; j < ${tn}u; j++) { bReg[j] = tileB[kk * ${bn}u + lid.x + j * ${tx}u]; }
      for (var i = 0u; i < ${tm}u; i++) {
        for (var j = 0u; j < ${tn}u; j++) { acc[i * ${tn}u + j] = fma(aReg[i], bReg[j], acc[i * ${tn}u + j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < ${tm}u; i++) {
    let r = row0 + lid.y + i * ${ty}u;
    if (r >= u.m) { continue; }
    for (var j = 0u; j < ${tn}u; j++) {
      let cc = col0 + lid.x + j * ${tx}u;
      if (cc >= u.n) { continue; }
      ${storeOutput(o, `acc[i * ${tn}u + j]`)}
    }
  }
}
`;
}

/** `count` statements, one per index, for unrolled WGSL. */
const each = (count: number, stmt: (i: number) => string) => Array.from({ length: count }, (_, i) => stmt(i)).join('\n    ');

/**
 * The same product without workgroup memory or barriers, for CPU adapters (lavapipe, SwiftShader):
 * there a barrier splits the shader into costly continuations and the CPU caches already provide the
 * reuse that shared memory gives a GPU. Each invocation accumulates a TM×TN block straight from memory.
 */
export function matmulDirectShader(o: Operands & { tm: number; tn: number; workgroup: number }): string {
  const { tm, tn } = o;
  const loadA = (idx: string) => (o.a === 'f32' ? `a[${idx}]` : `f32(a[${idx}])`);
  const loadB = (idx: string) => (o.b === 'f32' ? `b[${idx}]` : `f32(b[${idx}])`);
  return `${matmulBindings(o)}
@compute @workgroup_size(${o.workgroup})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  ${BATCH_BASES}
  let blocksN = (u.n + ${tn - 1}u) / ${tn}u;
  let block = gid.x + gid.y * nwg.x * ${o.workgroup}u;
  let row0 = (block / blocksN) * ${tm}u;
  let col0 = (block % blocksN) * ${tn}u;
  if (row0 >= u.m) { return; }
  var acc: array<f32, ${tm * tn}>;
  for (var i = 0u; i < ${tm * tn}u; i++) { acc[i] = 0.0; }
  // Clamp edge rows/cols to valid addresses; their results are discarded at the store.
  var aRows: array<u32, ${tm}>;
  for (var i = 0u; i < ${tm}u; i++) { aRows[i] = aBase + min(row0 + i, u.m - 1u) * u.aRow; }
  var bCols: array<u32, ${tn}>;
  for (var j = 0u; j < ${tn}u; j++) { bCols[j] = bBase + min(col0 + j, u.n - 1u) * u.bCol; }
  // The k loop body is unrolled with constant indices: with loop-indexed local arrays, lavapipe ran Naga's
  // SPIR-V of this kernel 3.7× slower than Tint's (wgpu vs Dawn, 256³); unrolled, both run it alike.
  for (var kk = 0u; kk < u.k; kk++) {
    ${each(tn, (j) => `let b${j} = ${loadB(`bCols[${j}] + kk * u.bRow`)};`)}
    ${each(tm, (i) => `let a${i} = ${loadA(`aRows[${i}] + kk * u.aCol`)};`)}
    ${each(tm * tn, (n) => `acc[${n}] = fma(a${Math.floor(n / tn)}, b${n % tn}, acc[${n}]);`)}
  }
  for (var i = 0u; i < ${tm}u; i++) {
    let r = row0 + i;
    if (r >= u.m) { continue; }
    for (var j = 0u; j < ${tn}u; j++) {
      let cc = col0 + j;
      if (cc >= u.n) { continue; }
      ${storeOutput(o, `acc[i * ${tn}u + j]`)}
    }
  }
}
`;
}
