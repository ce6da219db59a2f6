import type { DType } from '../src/engine/dtype';
import { enableF16 } from './common.wgsl';

/**
 * Flash attention (forward and the three backward passes) for q [B,H,Nq,D], k/v [B,H,Nk,D] read through
 * arbitrary strides. One invocation owns one row (a query in forward/dQ, a key in dK/dV) and keeps that
 * row and its accumulators in registers as vec4s; the rows it meets are staged a tile at a time in
 * workgroup memory, so the N×N score matrix never exists. Scores are kept in base 2: q is pre-multiplied
 * by scale·log2(e), so exp2 replaces exp and the saved log-sum-exp is converted once per row.
 *
 * Template values: head dim D (any size, padded to a multiple of 4 with zeros), rows per workgroup, rows
 * per staged tile, storage dtypes. Shapes, strides, offsets and the scale are uniforms.
 */
export interface AttentionShaderOptions {
  headDim: number;
  /** Invocations per workgroup = rows owned by a workgroup. */
  rowsPerGroup: number;
  /** Rows of the other operand staged per loop step. */
  tileRows: number;
  /** Storage dtype of q, k, v (and of O and the gradients written). */
  io: DType;
  /** Storage dtype of the upstream gradient dO (backward kernels). */
  grad: DType;
}

/** A finite "minus infinity": exp2 of it underflows to 0 without producing NaN from (-inf) − (-inf). */
const NEG_BIG = '-1.0e30';
/** ln 2: converts a base-2 log-sum-exp back to natural units. */
const LN2 = '0.6931471805599453';

const params = /* wgsl */ `
struct Params {
  nq: u32, nk: u32, heads: u32, batchHeads: u32,
  scaleLog2: f32, scale: f32, pad0: u32, pad1: u32,
  // Strides (elements) over [B, H, N, D] and the element offset (in w) of each operand.
  qStrides: vec4<u32>,
  kStrides: vec4<u32>,
  vStrides: vec4<u32>,
  gStrides: vec4<u32>,
  offsets: vec4<u32>,
};
@group(0) @binding(0) var<uniform> u: Params;
`;

function common(o: AttentionShaderOptions): string {
  const d4 = Math.ceil(o.headDim / 4);
  return `${enableF16([o.io, o.grad])}${params}
const D = ${o.headDim}u;
const D4 = ${d4}u;
const ROWS = ${o.rowsPerGroup}u;
const TILE = ${o.tileRows}u;
const NEG_BIG = ${NEG_BIG};
`;
}

/** WGSL fn `name(base, row, stride) -> vec4<f32>` loading 4 consecutive head-dim entries of row (zeros past D). */
function rowLoader(fnName: string, buffer: string, strides: string, dtype: DType): string {
  const conv = (e: string) => (dtype === 'f32' ? e : `f32(${e})`);
  return `
fn ${fnName}(base: u32, row: u32, d4: u32) -> vec4<f32> {
  let start = base + row * u.${strides}.z;
  var r = vec4<f32>(0.0);
  for (var c = 0u; c < 4u; c++) {
    let d = d4 * 4u + c;
    if (d < D) { r[c] = ${conv(`${buffer}[start + d * u.${strides}.w]`)}; }
  }
  return r;
}`;
}

/** Workgroup memory for one staged tile of K and V rows (vec4 chunks of the head dim). */
const keyValueTiles = (o: AttentionShaderOptions) => `var<workgroup> kTile: array<vec4<f32>, ${o.tileRows * Math.ceil(o.headDim / 4)}>;
var<workgroup> vTile: array<vec4<f32>, ${o.tileRows * Math.ceil(o.headDim / 4)}>;`;

/** Stages keys/values k0 .. k0+TILE of this (b, h) into kTile/vTile (zeros past Nk), then syncs. */
const STAGE_KEY_VALUE_TILE = `for (var t = lid; t < TILE * D4; t += ROWS) {
      let j = k0 + t / D4;
      var kv = vec4<f32>(0.0);
      var vv = vec4<f32>(0.0);
      if (j < u.nk) { kv = loadK(kBase, j, t % D4); vv = loadV(vBase, j, t % D4); }
      kTile[t] = kv;
      vTile[t] = vv;
    }
    workgroupBarrier();`;

const hsum = (v: string) => `dot(${v}, vec4<f32>(1.0))`;

/** Element offset of the [b, h] slice of an operand with strides `s` and base offset `off`. */
const headBase = (strides: string, off: string) => `u.offsets.${off} + b * u.${strides}.x + h * u.${strides}.y`;

const prologue = `
  let bh = wid.y;
  let b = bh / u.heads;
  let h = bh % u.heads;`;

/**
 * Forward: a workgroup owns ROWS queries of one (b, h) and streams K/V tiles through workgroup memory with
 * an online softmax (running max m, running sum l, rescaled accumulator o). Writes O and L = logsumexp.
 * (Fully unrolled variants compiled for tens of seconds on lavapipe and ran slower: keep loops.)
 */
export function attentionForwardShader(o: AttentionShaderOptions): string {
  return `${common(o)}
@group(0) @binding(1) var<storage, read> q: array<${o.io}>;
@group(0) @binding(2) var<storage, read> k: array<${o.io}>;
@group(0) @binding(3) var<storage, read> v: array<${o.io}>;
@group(0) @binding(4) var<storage, read_write> out: array<${o.io}>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
${rowLoader('loadQ', 'q', 'qStrides', o.io)}
${rowLoader('loadK', 'k', 'kStrides', o.io)}
${rowLoader('loadV', 'v', 'vStrides', o.io)}

${keyValueTiles(o)}

@compute @workgroup_size(${o.rowsPerGroup})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${prologue}
  let qBase = ${headBase('qStrides', 'x')};
  let kBase = ${headBase('kStrides', 'y')};
  let vBase = ${headBase('vStrides', 'z')};
  let row = wid.x * ROWS + lid;
  let rowValid = row < u.nq;
  var qr: array<vec4<f32>, D4>;
  var acc: array<vec4<f32>, D4>;
  for (var d = 0u; d < D4; d++) {
    acc[d] = vec4<f32>(0.0);
    qr[d] = vec4<f32>(0.0);
    if (rowValid) { qr[d] = loadQ(qBase, row, d) * u.scaleLog2; }
  }
  var m = NEG_BIG;
  var l = 0.0;
  var s: array<f32, TILE>;
  for (var k0 = 0u; k0 < u.nk; k0 += TILE) {
    ${STAGE_KEY_VALUE_TILE}
    let count = min(TILE, u.nk - k0);
    var tileMax = m;
    // Runtime trip counts (count, not TILE): LLVM would otherwise unroll TILE × D4 and compile for minutes.
    for (var j = 0u; j < count; j++) {
      var dotv = vec4<f32>(0.0);
      for (var d = 0u; d < D4; d++) { dotv = fma(qr[d], kTile[j * D4 + d], dotv); }
      let sj = ${hsum('dotv')};
      s[j] = sj;
      tileMax = max(tileMax, sj);
    }
    let correction = exp2(m - tileMax);
    l *= correction;
    for (var d = 0u; d < D4; d++) { acc[d] *= correction; }
    for (var j = 0u; j < count; j++) {
      let p = exp2(s[j] - tileMax);
      l += p;
      for (var d = 0u; d < D4; d++) { acc[d] = fma(vec4<f32>(p), vTile[j * D4 + d], acc[d]); }
    }
    m = tileMax;
    workgroupBarrier();
  }
  if (!rowValid) { return; }
  let inv = 1.0 / l;
  let outStart = (bh * u.nq + row) * D;
  for (var d = 0u; d < D4; d++) {
    let r = acc[d] * inv;
    for (var c = 0u; c < 4u; c++) {
      if (d * 4u + c < D) { out[outStart + d * 4u + c] = ${o.io === 'f32' ? 'r[c]' : `${o.io}(r[c])`}; }
    }
  }
  lse[bh * u.nq + row] = (m + log2(l)) * ${LN2};
}
`;
}

/** Δ_i = Σ_d dO[i,d]·O[i,d], one invocation per row (O is contiguous, dO any strides). */
export function attentionDeltaShader(o: AttentionShaderOptions & { workgroupSize: number }): string {
  const conv = (e: string, t: DType) => (t === 'f32' ? e : `f32(${e})`);
  return `${common(o)}
@group(0) @binding(1) var<storage, read> out: array<${o.io}>;
@group(0) @binding(2) var<storage, read> g: array<${o.grad}>;
@group(0) @binding(3) var<storage, read_write> delta: array<f32>;

@compute @workgroup_size(${o.workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let flat = gid.x + gid.y * nwg.x * ${o.workgroupSize}u;
  if (flat >= u.batchHeads * u.nq) { return; }
  let bh = flat / u.nq;
  let row = flat % u.nq;
  let b = bh / u.heads;
  let h = bh % u.heads;
  let gStart = ${headBase('gStrides', 'w')} + row * u.gStrides.z;
  var total = 0.0;
  for (var d = 0u; d < D; d++) {
    total += ${conv('out[flat * D + d]', o.io)} * ${conv('g[gStart + d * u.gStrides.w]', o.grad)};
  }
  delta[flat] = total;
}
`;
}

/**
 * dQ: a workgroup owns ROWS queries and streams K/V tiles. With p = exp2(s − L₂) recomputed from the
 * saved log-sum-exp: dS = p·(dO·v − Δ), dQ = scale·Σ_j dS·k_j. Loops stop at the tile's real key count.
 */
export function attentionGradQueryShader(o: AttentionShaderOptions): string {
  return `${common(o)}
@group(0) @binding(1) var<storage, read> q: array<${o.io}>;
@group(0) @binding(2) var<storage, read> k: array<${o.io}>;
@group(0) @binding(3) var<storage, read> v: array<${o.io}>;
@group(0) @binding(4) var<storage, read> g: array<${o.grad}>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> delta: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<${o.io}>;
${rowLoader('loadQ', 'q', 'qStrides', o.io)}
${rowLoader('loadK', 'k', 'kStrides', o.io)}
${rowLoader('loadV', 'v', 'vStrides', o.io)}
${rowLoader('loadG', 'g', 'gStrides', o.grad)}

${keyValueTiles(o)}

@compute @workgroup_size(${o.rowsPerGroup})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${prologue}
  let qBase = ${headBase('qStrides', 'x')};
  let kBase = ${headBase('kStrides', 'y')};
  let vBase = ${headBase('vStrides', 'z')};
  let gBase = ${headBase('gStrides', 'w')};
  let row = wid.x * ROWS + lid;
  let rowValid = row < u.nq;
  var qr: array<vec4<f32>, D4>;
  var gr: array<vec4<f32>, D4>;
  var acc: array<vec4<f32>, D4>;
  var lse2 = 0.0;
  var deltaRow = 0.0;
  for (var d = 0u; d < D4; d++) {
    acc[d] = vec4<f32>(0.0);
    qr[d] = vec4<f32>(0.0);
    gr[d] = vec4<f32>(0.0);
    if (rowValid) { qr[d] = loadQ(qBase, row, d) * u.scaleLog2; gr[d] = loadG(gBase, row, d); }
  }
  if (rowValid) {
    lse2 = lse[bh * u.nq + row] * ${1 / Math.LN2};
    deltaRow = delta[bh * u.nq + row];
  }
  for (var k0 = 0u; k0 < u.nk; k0 += TILE) {
    ${STAGE_KEY_VALUE_TILE}
    let count = min(TILE, u.nk - k0);
    for (var j = 0u; j < count; j++) {
      var sv = vec4<f32>(0.0);
      var dpv = vec4<f32>(0.0);
      for (var d = 0u; d < D4; d++) {
        sv = fma(qr[d], kTile[j * D4 + d], sv);
        dpv = fma(gr[d], vTile[j * D4 + d], dpv);
      }
      let p = exp2(sv.x + sv.y + sv.z + sv.w - lse2);
      let ds = p * (dpv.x + dpv.y + dpv.z + dpv.w - deltaRow);
      for (var d = 0u; d < D4; d++) { acc[d] = fma(vec4<f32>(ds), kTile[j * D4 + d], acc[d]); }
    }
    workgroupBarrier();
  }
  if (!rowValid) { return; }
  for (var d = 0u; d < D4; d++) {
    let r = acc[d] * u.scale;
    for (var c = 0u; c < 4u; c++) {
      let dd = d * 4u + c;
      if (dd < D) { dq[(bh * u.nq + row) * D + dd] = ${o.io === 'f32' ? 'r[c]' : `${o.io}(r[c])`}; }
    }
  }
}
`;
}

/**
 * dK, dV: a workgroup owns ROWS keys and streams tiles of queries (pre-scaled q, dO, L, Δ). For each query
 * i: p = exp2(s − L₂), dV_j += p·dO_i, dS = p·(dO_i·v_j − Δ_i), dK_j += scale·dS·q_i. Padding queries get
 * L = +big so p = 0.
 */
export function attentionGradKeyValueShader(o: AttentionShaderOptions): string {
  const cast = (e: string) => (o.io === 'f32' ? e : `${o.io}(${e})`);
  return `${common(o)}
@group(0) @binding(1) var<storage, read> q: array<${o.io}>;
@group(0) @binding(2) var<storage, read> k: array<${o.io}>;
@group(0) @binding(3) var<storage, read> v: array<${o.io}>;
@group(0) @binding(4) var<storage, read> g: array<${o.grad}>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> delta: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<${o.io}>;
@group(0) @binding(8) var<storage, read_write> dv: array<${o.io}>;
${rowLoader('loadQ', 'q', 'qStrides', o.io)}
${rowLoader('loadK', 'k', 'kStrides', o.io)}
${rowLoader('loadV', 'v', 'vStrides', o.io)}
${rowLoader('loadG', 'g', 'gStrides', o.grad)}

var<workgroup> qTile: array<vec4<f32>, ${o.tileRows * Math.ceil(o.headDim / 4)}>;
var<workgroup> gTile: array<vec4<f32>, ${o.tileRows * Math.ceil(o.headDim / 4)}>;
var<workgroup> lseTile: array<f32, ${o.tileRows}>;
var<workgroup> deltaTile: array<f32, ${o.tileRows}>;

@compute @workgroup_size(${o.rowsPerGroup})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${prologue}
  let qBase = ${headBase('qStrides', 'x')};
  let kBase = ${headBase('kStrides', 'y')};
  let vBase = ${headBase('vStrides', 'z')};
  let gBase = ${headBase('gStrides', 'w')};
  let row = wid.x * ROWS + lid;
  let rowValid = row < u.nk;
  var kr: array<vec4<f32>, D4>;
  var vr: array<vec4<f32>, D4>;
  var dkAcc: array<vec4<f32>, D4>;
  var dvAcc: array<vec4<f32>, D4>;
  for (var d = 0u; d < D4; d++) {
    kr[d] = vec4<f32>(0.0);
    vr[d] = vec4<f32>(0.0);
    dkAcc[d] = vec4<f32>(0.0);
    dvAcc[d] = vec4<f32>(0.0);
    if (rowValid) { kr[d] = loadK(kBase, row, d); vr[d] = loadV(vBase, row, d); }
  }
  for (var i0 = 0u; i0 < u.nq; i0 += TILE) {
    for (var t = lid; t < TILE * D4; t += ROWS) {
      let i = i0 + t / D4;
      var qv = vec4<f32>(0.0);
      var gv = vec4<f32>(0.0);
      if (i < u.nq) { qv = loadQ(qBase, i, t % D4) * u.scaleLog2; gv = loadG(gBase, i, t % D4); }
      qTile[t] = qv;
      gTile[t] = gv;
    }
    for (var t = lid; t < TILE; t += ROWS) {
      let i = i0 + t;
      var l2 = -NEG_BIG;
      var dl = 0.0;
      if (i < u.nq) { l2 = lse[bh * u.nq + i] * ${1 / Math.LN2}; dl = delta[bh * u.nq + i]; }
      lseTile[t] = l2;
      deltaTile[t] = dl;
    }
    workgroupBarrier();
    let count = min(TILE, u.nq - i0);
    for (var i = 0u; i < count; i++) {
      var sv = vec4<f32>(0.0);
      var dpv = vec4<f32>(0.0);
      for (var d = 0u; d < D4; d++) {
        sv = fma(qTile[i * D4 + d], kr[d], sv);
        dpv = fma(gTile[i * D4 + d], vr[d], dpv);
      }
      let p = exp2(sv.x + sv.y + sv.z + sv.w - lseTile[i]);
      let ds = p * (dpv.x + dpv.y + dpv.z + dpv.w - deltaTile[i]);
      for (var d = 0u; d < D4; d++) {
        dvAcc[d] = fma(vec4<f32>(p), gTile[i * D4 + d], dvAcc[d]);
        dkAcc[d] = fma(vec4<f32>(ds), qTile[i * D4 + d], dkAcc[d]);
      }
    }
    workgroupBarrier();
  }
  if (!rowValid) { return; }
  // qTile holds q·scale·log2(e): dK = scale·Σ dS·q = ln2 · Σ dS·qTile.
  for (var d = 0u; d < D4; d++) {
    let rk = dkAcc[d] * ${LN2};
    let rv = dvAcc[d];
    for (var c = 0u; c < 4u; c++) {
      let dd = d * 4u + c;
      if (dd < D) {
        dk[(bh * u.nk + row) * D + dd] = ${cast('rk[c]')};
        dv[(bh * u.nk + row) * D + dd] = ${cast('rv[c]')};
      }
    }
  }
}
`;
}
