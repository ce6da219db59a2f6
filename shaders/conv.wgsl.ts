import type { DType } from '../src/engine/dtype';
import { enableF16, loadF32, type GemmTiling } from './common.wgsl';

/** Conv kernels tile like a GEMM; the direct variant exists for gemm mode and the weight gradient. */
export type ConvTiling = GemmTiling;

/**
 * 'gemm': the forward convolution, and the backward-data convolution of one stride-residue class, as an
 * implicit GEMM: rows = (batch, position on a 3-D row grid), cols = output channels, depth =
 * (channel, kernel tap). 'wgrad': the weight gradient, rows = Cout, cols = (Cin, tap), depth =
 * (batch, output position), split over workgroup z into partial sums.
 */
export type ConvMode = 'gemm' | 'wgrad';

/**
 * Storage dtypes of the two operand bindings (f16 needs shader-f16): srcA is x (forward, weight gradient) or
 * gy (backward data), srcB the weight (forward, backward data) or gy (weight gradient). Loads are widened to
 * f32 and all arithmetic and the output stay f32. With both f32 the WGSL is exactly the f32-only kernel's.
 */
export interface ConvOperandTypes {
  a: DType;
  b: DType;
}
const F32_OPERANDS: ConvOperandTypes = { a: 'f32', b: 'f32' };

/** Vec4 entries of the kernel-tap table: 64, or a larger power of two (one bucket for all common kernels, fewer pipelines to compile). */
export function tapTableSize(taps: number): number {
  let size = 64;
  while (size < taps) size *= 2;
  return size;
}

/**
 * Uniform block shared by both modes; the TS side writes it field for field (see conv.ts). Every vec4
 * starts on a 16-byte boundary because scalar fields come in groups of four.
 */
const paramsStruct = (maxTaps: number) => `
struct Params {
  rows: u32, cols: u32, depth: u32, numTaps: u32,
  invTaps: f32, invQ: f32, invQHW: f32, invQW: f32,
  q: u32, qhw: u32, qw: u32, tilesN: u32,
  aOffset: i32, aBatch: i32, aChan: i32, chunk: u32,
  aStride: vec4<i32>,
  aSize: vec4<i32>,
  rowStep: vec4<i32>,
  rowBase: vec4<i32>,
  bOffset: i32, bKStride: i32, bNStride: i32, outBatch: u32,
  outChan: u32, biasOffset: u32, biasStride: u32, pad2: u32,
  gStride: vec4<i32>,
  outStride: vec4<u32>,
  outStep: vec4<u32>,
  outBase: vec4<u32>,
  taps: array<vec4<i32>, ${maxTaps}>,
  tapA: array<vec4<i32>, ${maxTaps / 4}>,
};
@group(0) @binding(0) var<uniform> u: Params;
`;

/** n / d for n < 2^23 without an integer divide (slow and unvectorized on CPU adapters). */
const HELPERS = `
const INVALID: i32 = -1073741824;
fn divFast(n: u32, d: u32, inv: f32) -> u32 {
  var q = u32(f32(n) * inv);
  let r = i32(n) - i32(q * d);
  if (r < 0) { q -= 1u; } else if (r >= i32(d)) { q += 1u; }
  return q;
}
fn tapOffsetA(t: u32) -> i32 { return u.tapA[t / 4u][t % 4u]; }
fn inside(z: i32, y: i32, x: i32) -> bool {
  return u32(z) < u32(u.aSize.x) && u32(y) < u32(u.aSize.y) && u32(x) < u32(u.aSize.z);
}
`;

/** `count` copies of a statement template, `#` replaced by the copy index (unrolled in the WGSL text). */
export const unroll = (count: number, stmt: (i: number) => string, sep = '\n    ') => Array.from({ length: count }, (_, i) => stmt(i)).join(sep);

const bindings = (bias: boolean, types: ConvOperandTypes) => `@group(0) @binding(1) var<storage, read> srcA: array<${types.a}>;
@group(0) @binding(2) var<storage, read> srcB: array<${types.b}>;
${bias ? '@group(0) @binding(3) var<storage, read> bias: array<f32>;\n@group(0) @binding(4) var<storage, read_write> dst: array<f32>;' : '@group(0) @binding(3) var<storage, read_write> dst: array<f32>;'}`;

/** GEMM rows (batch, position on the row grid) → base position rowZ/Y/X and element offset rowOff in A. */
const rowPositions = (count: number, rowExpr: (j: number) => string) =>
  unroll(count, (j) => `
  var rowZ${j} = INVALID;
  var rowY${j} = 0;
  var rowX${j} = 0;
  var rowOff${j} = 0;
  {
    let r = ${rowExpr(j)};
    if (r < u.rows) {${decodeGrid('', 'r')}
      rowZ${j} = i32(qz) * u.rowStep.x + u.rowBase.x;
      rowY${j} = i32(qy) * u.rowStep.y + u.rowBase.y;
      rowX${j} = i32(qx) * u.rowStep.z + u.rowBase.z;
      rowOff${j} = u.aOffset + i32(b) * u.aBatch + rowZ${j} * u.aStride.x + rowY${j} * u.aStride.y + rowX${j} * u.aStride.z;
    }
  }`, '');

/** Weight-gradient columns (input channel, tap) → tap position colZ/Y/X and element offset colOff in x. */
const tapColumns = (count: number, colExpr: (j: number) => string) =>
  unroll(count, (j) => `
  var colZ${j} = INVALID;
  var colY${j} = 0;
  var colX${j} = 0;
  var colOff${j} = 0;
  {
    let c = ${colExpr(j)};
    if (c < u.cols) {
      let ci = divFast(c, u.numTaps, u.invTaps);
      let tap = c - ci * u.numTaps;
      let e = u.taps[tap];
      colZ${j} = e.x;
      colY${j} = e.y;
      colX${j} = e.z;
      colOff${j} = i32(ci) * u.aChan + tapOffsetA(tap);
    }
  }`, '');

/**
 * Register-tile multiply of one staged BK step (identical in both modes): the register tile is unrolled
 * into scalars (lavapipe puts dynamically indexed private arrays in scratch memory), the BK loop is not
 * (fully unrolled steps make LLVM compile times explode on lavapipe).
 */
function computeStep(t: ConvTiling, tx: number, ty: number): string {
  return `for (var s = 0u; s < ${t.bk}u; s++) {
      ${unroll(t.tm, (i) => `let a${i} = tileA[s * ${t.bm}u + lid.y + ${i * ty}u];`, '\n      ')}
      ${unroll(t.tn, (j) => `let b${j} = tileB[s * ${t.bn}u + lid.x + ${j * tx}u];`, '\n      ')}
      ${unroll(t.tm * t.tn, (n) => `acc${Math.floor(n / t.tn)}_${n % t.tn} = fma(a${Math.floor(n / t.tn)}, b${n % t.tn}, acc${Math.floor(n / t.tn)}_${n % t.tn});`, '\n      ')}
    }`;
}

export function convShader(o: { mode: ConvMode; bias: boolean; tiling: ConvTiling; maxTaps: number; types?: ConvOperandTypes }): string {
  const t = o.tiling;
  const types = o.types ?? F32_OPERANDS;
  const tx = t.bn / t.tn;
  const ty = t.bm / t.tm;
  const threads = tx * ty;
  // Loader layout: invocation `tid` always stages depth index kk = tid % BK, and rows/cols
  // lane + j·LANES; so row and column decoding is hoisted out of the depth loop and each step decodes
  // one depth index per invocation.
  const lanes = threads / t.bk;
  const aLoads = t.bm / lanes;
  const bLoads = t.bn / lanes;
  if (threads % t.bk !== 0 || t.bm % lanes !== 0 || t.bn % lanes !== 0) throw new Error(`conv tiling ${JSON.stringify(t)} does not divide evenly`);
  const head = `${enableF16([types.a, types.b])}${paramsStruct(o.maxTaps)}
${bindings(o.bias, types)}
${HELPERS}
var<workgroup> tileA: array<f32, ${t.bk * t.bm}>;
var<workgroup> tileB: array<f32, ${t.bk * t.bn}>;

@compute @workgroup_size(${tx}, ${ty}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let tile = wid.x + wid.y * nwg.x;
  let tileN = tile % u.tilesN;
  let tileM = tile / u.tilesN;
  let row0 = tileM * ${t.bm}u;
  let col0 = tileN * ${t.bn}u;
  let tid = lid.y * ${tx}u + lid.x;
  let kk = tid % ${t.bk}u;
  let lane = tid / ${t.bk}u;
  ${accumulators(t)}
`;
  return o.mode === 'gemm' ? head + gemmBody(o.bias, t, tx, ty, lanes, aLoads, bLoads, types) : head + wgradBody(t, tx, ty, lanes, aLoads, bLoads, types);
}

const accumulators = (t: ConvTiling) => unroll(t.tm * t.tn, (n) => `var acc${Math.floor(n / t.tn)}_${n % t.tn} = 0.0;`, '\n  ');

/** Row r of the row grid → (b, qz, qy, qx), exact decode with divFast. */
const decodeGrid = (v: string, n: string) => `
      let b${v} = divFast(${n}, u.q, u.invQ);
      let qq${v} = ${n} - b${v} * u.q;
      let qz${v} = divFast(qq${v}, u.qhw, u.invQHW);
      let rem${v} = qq${v} - qz${v} * u.qhw;
      let qy${v} = divFast(rem${v}, u.qw, u.invQW);
      let qx${v} = rem${v} - qy${v} * u.qw;`;

function gemmBody(hasBias: boolean, t: ConvTiling, tx: number, ty: number, lanes: number, aLoads: number, bLoads: number, types: ConvOperandTypes): string {
  // Rows: (batch, qz, qy, qx) on the row grid → A base position and element offset, decoded once.
  const rowState = rowPositions(aLoads, (j) => `row0 + lane + ${j * lanes}u`);
  const colState = unroll(bLoads, (j) => `
  let colOk${j} = col0 + lane + ${j * lanes}u < u.cols;
  let colOff${j} = u.bOffset + i32(col0 + lane + ${j * lanes}u) * u.bNStride;`, '');
  const loadA = unroll(aLoads, (j) => `
    {
      var v = 0.0;
      if (inside(rowZ${j} + dz, rowY${j} + dy, rowX${j} + dx)) { v = ${loadF32(types.a, `srcA[u32(rowOff${j} + aK)]`)}; }
      tileA[kk * ${t.bm}u + lane + ${j * lanes}u] = v;
    }`, '');
  const loadB = unroll(bLoads, (j) => `
    {
      var v = 0.0;
      if (kOk && colOk${j}) { v = ${loadF32(types.b, `srcB[u32(colOff${j} + bK)]`)}; }
      tileB[kk * ${t.bn}u + lane + ${j * lanes}u] = v;
    }`, '');
  const store = unroll(t.tm, (i) => `
  {
    let r = row0 + lid.y + ${i * ty}u;
    if (r < u.rows) {${decodeGrid('', 'r')}
      let outRow = b * u.outBatch + (u.outBase.x + qz * u.outStep.x) * u.outStride.x
        + (u.outBase.y + qy * u.outStep.y) * u.outStride.y + (u.outBase.z + qx * u.outStep.z) * u.outStride.z;
      ${unroll(t.tn, (j) => `
      {
        let c = col0 + lid.x + ${j * tx}u;
        if (c < u.cols) { dst[outRow + c * u.outChan] = acc${i}_${j}${hasBias ? ' + bias[u.biasOffset + c * u.biasStride]' : ''}; }
      }`, '')}
    }
  }`, '');
  return `${rowState}
${colState}
  for (var k0 = 0u; k0 < u.depth; k0 += ${t.bk}u) {
    let k = k0 + kk;
    let kOk = k < u.depth;
    var dz = INVALID;
    var dy = 0;
    var dx = 0;
    var aK = 0;
    var bK = 0;
    if (kOk) {
      let kc = divFast(k, u.numTaps, u.invTaps);
      let tap = k - kc * u.numTaps;
      let e = u.taps[tap];
      dz = e.x;
      dy = e.y;
      dx = e.z;
      aK = i32(kc) * u.aChan + tapOffsetA(tap);
      bK = i32(kc) * u.bKStride + e.w;
    }
    ${loadA}
    ${loadB}
    workgroupBarrier();
    ${computeStep(t, tx, ty)}
    workgroupBarrier();
  }
  ${store}
}
`;
}

/**
 * Weight gradient: dW[co, (ci, tap)] = Σ_m gy[m, co] · im2col(x)[m, (ci, tap)], m = (batch, output
 * position) in this split's chunk. A tile: gy (rows co), B tile: x (cols (ci, tap)); both keyed by m.
 */
function wgradBody(t: ConvTiling, tx: number, ty: number, lanes: number, aLoads: number, bLoads: number, types: ConvOperandTypes): string {
  const rowState = unroll(aLoads, (j) => `
  let coOk${j} = row0 + lane + ${j * lanes}u < u.rows;
  let coOff${j} = i32(row0 + lane + ${j * lanes}u) * u.bNStride;`, '');
  const colState = tapColumns(bLoads, (j) => `col0 + lane + ${j * lanes}u`);
  const loadA = unroll(aLoads, (j) => `
    {
      var v = 0.0;
      if (mOk && coOk${j}) { v = ${loadF32(types.b, `srcB[u32(gBase + coOff${j})]`)}; }
      tileA[kk * ${t.bm}u + lane + ${j * lanes}u] = v;
    }`, '');
  const loadB = unroll(bLoads, (j) => `
    {
      var v = 0.0;
      if (inside(pz + colZ${j}, py + colY${j}, px + colX${j})) { v = ${loadF32(types.a, `srcA[u32(xBase + colOff${j})]`)}; }
      tileB[kk * ${t.bn}u + lane + ${j * lanes}u] = v;
    }`, '');
  const store = unroll(t.tm, (i) => `
  {
    let r = row0 + lid.y + ${i * ty}u;
    if (r < u.rows) {
      ${unroll(t.tn, (j) => `
      {
        let c = col0 + lid.x + ${j * tx}u;
        if (c < u.cols) { dst[outBase + r * u.cols + c] = acc${i}_${j}; }
      }`, '')}
    }
  }`, '');
  return `${rowState}
${colState}
  let mStart = wid.z * u.chunk;
  let mEnd = min(u.depth, mStart + u.chunk);
  for (var m0 = mStart; m0 < mEnd; m0 += ${t.bk}u) {
    let m = m0 + kk;
    let mOk = m < mEnd;
    var pz = INVALID;
    var py = 0;
    var px = 0;
    var xBase = 0;
    var gBase = 0;
    if (mOk) {${decodeGrid('', 'm')}
      pz = i32(qz) * u.rowStep.x + u.rowBase.x;
      py = i32(qy) * u.rowStep.y + u.rowBase.y;
      px = i32(qx) * u.rowStep.z + u.rowBase.z;
      xBase = u.aOffset + i32(b) * u.aBatch + pz * u.aStride.x + py * u.aStride.y + px * u.aStride.z;
      gBase = u.bOffset + i32(b) * u.bKStride + i32(qz) * u.gStride.x + i32(qy) * u.gStride.y + i32(qx) * u.gStride.z;
    }
    ${loadA}
    ${loadB}
    workgroupBarrier();
    ${computeStep(t, tx, ty)}
    workgroupBarrier();
  }
  let outBase = wid.z * u.rows * u.cols;
  ${store}
}
`;
}

/**
 * The forward / backward-data implicit GEMM without workgroup memory, for CPU adapters (lavapipe): each
 * invocation owns TM consecutive rows × TN consecutive columns and walks the depth as
 * (channel, tap) directly, so there are no barriers and no index division inside the loop.
 */
export function convDirectShader(o: { bias: boolean; tm: number; tn: number; workgroup: number; maxTaps: number; types?: ConvOperandTypes }): string {
  const { tm, tn } = o;
  const types = o.types ?? F32_OPERANDS;
  const rowState = rowPositions(tm, (i) => `row0 + ${i}u`);
  // Columns past the end read the last valid column (a valid address); their sums are never stored.
  const colState = unroll(tn, (j) => `
  let colOff${j} = u.bOffset + i32(min(col0 + ${j}u, u.cols - 1u)) * u.bNStride;`, '');
  const loads = `${unroll(tm, (i) => `var a${i} = 0.0;
        if (inside(rowZ${i} + e.x, rowY${i} + e.y, rowX${i} + e.z)) { a${i} = ${loadF32(types.a, `srcA[u32(rowOff${i} + aK)]`)}; }`, '\n        ')}
        ${unroll(tn, (j) => `let b${j} = ${loadF32(types.b, `srcB[u32(colOff${j} + bK)]`)};`, '\n        ')}
        ${unroll(tm * tn, (n) => `acc${Math.floor(n / tn)}_${n % tn} = fma(a${Math.floor(n / tn)}, b${n % tn}, acc${Math.floor(n / tn)}_${n % tn});`, '\n        ')}`;
  const store = unroll(tm, (i) => `
  {
    let r = row0 + ${i}u;
    if (r < u.rows) {${decodeGrid('', 'r')}
      let outRow = b * u.outBatch + (u.outBase.x + qz * u.outStep.x) * u.outStride.x
        + (u.outBase.y + qy * u.outStep.y) * u.outStride.y + (u.outBase.z + qx * u.outStep.z) * u.outStride.z;
      ${unroll(tn, (j) => `
      {
        let c = col0 + ${j}u;
        if (c < u.cols) { dst[outRow + c * u.outChan] = acc${i}_${j}${o.bias ? ' + bias[u.biasOffset + c * u.biasStride]' : ''}; }
      }`, '')}
    }
  }`, '');
  return `${enableF16([types.a, types.b])}${paramsStruct(o.maxTaps)}
${bindings(o.bias, types)}
${HELPERS}
@compute @workgroup_size(${o.workgroup})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let block = gid.x + gid.y * nwg.x * ${o.workgroup}u;
  let colBlock = block % u.tilesN;
  let row0 = (block / u.tilesN) * ${tm}u;
  let col0 = colBlock * ${tn}u;
  if (row0 >= u.rows) { return; }
  ${unroll(tm * tn, (n) => `var acc${Math.floor(n / tn)}_${n % tn} = 0.0;`, '\n  ')}
  ${rowState}
  ${colState}
  let channels = u.depth / u.numTaps;
  for (var kc = 0u; kc < channels; kc++) {
    for (var tap = 0u; tap < u.numTaps; tap++) {
      let e = u.taps[tap];
      let aK = i32(kc) * u.aChan + tapOffsetA(tap);
      let bK = i32(kc) * u.bKStride + e.w;
      {
        ${loads}
      }
    }
  }
  ${store}
}
`;
}

/**
 * Weight gradient without workgroup memory (CPU adapters): each invocation owns TM output channels ×
 * TN (channel, tap) columns and walks its split's chunk of (batch, output position) in order, stepping
 * the position counters instead of dividing.
 */
export function convWgradDirectShader(o: { tm: number; tn: number; workgroup: number; maxTaps: number; types?: ConvOperandTypes }): string {
  const { tm, tn } = o;
  const types = o.types ?? F32_OPERANDS;
  // Rows past the end read the last valid row (a valid address); their sums are never stored.
  const rowState = unroll(tm, (i) => `
  let coOff${i} = i32(min(row0 + ${i}u, u.rows - 1u)) * u.bNStride;`, '');
  const colState = tapColumns(tn, (j) => `col0 + ${j}u`);
  const store = unroll(tm, (i) => `
  if (row0 + ${i}u < u.rows) {
    ${unroll(tn, (j) => `if (col0 + ${j}u < u.cols) { dst[outBase + (row0 + ${i}u) * u.cols + col0 + ${j}u] = acc${i}_${j}; }`, '\n    ')}
  }`, '');
  return `${enableF16([types.a, types.b])}${paramsStruct(o.maxTaps)}
${bindings(false, types)}
${HELPERS}
@compute @workgroup_size(${o.workgroup})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let block = gid.x + gid.y * nwg.x * ${o.workgroup}u;
  let row0 = (block / u.tilesN) * ${tm}u;
  let col0 = (block % u.tilesN) * ${tn}u;
  if (row0 >= u.rows) { return; }
  ${unroll(tm * tn, (n) => `var acc${Math.floor(n / tn)}_${n % tn} = 0.0;`, '\n  ')}
  ${rowState}
  ${colState}
  let mStart = wid.z * u.chunk;
  let mEnd = min(u.depth, mStart + u.chunk);
  if (mStart >= mEnd) { return; }
  let qd = u.q / u.qhw;
  let qh = u.qhw / u.qw;
  ${decodeGrid('', 'mStart').replace(/let /g, 'var ')}
  for (var m = mStart; m < mEnd; m++) {
    let pz = i32(qz) * u.rowStep.x + u.rowBase.x;
    let py = i32(qy) * u.rowStep.y + u.rowBase.y;
    let px = i32(qx) * u.rowStep.z + u.rowBase.z;
    let xBase = u.aOffset + i32(b) * u.aBatch + pz * u.aStride.x + py * u.aStride.y + px * u.aStride.z;
    let gBase = u.bOffset + i32(b) * u.bKStride + i32(qz) * u.gStride.x + i32(qy) * u.gStride.y + i32(qx) * u.gStride.z;
    ${unroll(tm, (i) => `let a${i} = ${loadF32(types.b, `srcB[u32(gBase + coOff${i})]`)};`, '\n    ')}
    ${unroll(tn, (j) => `var b${j} = 0.0;
    if (inside(pz + colZ${j}, py + colY${j}, px + colX${j})) { b${j} = ${loadF32(types.a, `srcA[u32(xBase + colOff${j})]`)}; }`, '\n    ')}
    ${unroll(tm * tn, (n) => `acc${Math.floor(n / tn)}_${n % tn} = fma(a${Math.floor(n / tn)}, b${n % tn}, acc${Math.floor(n / tn)}_${n % tn});`, '\n    ')}
    // Next output position: step x, carry into y, z and the batch.
    qx++;
    if (qx == u.qw) { qx = 0u; qy++; if (qy == qh) { qy = 0u; qz++; if (qz == qd) { qz = 0u; b++; } } }
  }
  let outBase = wid.z * u.rows * u.cols;
  ${store}
}
`;
}
