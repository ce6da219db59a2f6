import type { DType } from '../src/engine/dtype';
import { ADD_BIAS, BATCH_BASES, MATMUL_PARAMS } from './matmul.wgsl';

/**
 * Tiling of the subgroup-matrix (tensor-core) matmul. One subgroup-matrix config of the device gives the
 * hardware tile: left cm×ck, right ck×cn, result cm×cn (16×16×16 f16→f32 on NVIDIA). A workgroup has
 * sgM×sgN subgroups of `subgroupSize` invocations; each subgroup accumulates tm×tn result tiles in
 * registers, so the workgroup computes a BM×BN = (sgM·tm·cm)×(sgN·tn·cn) block of C, staging BM×bk of A
 * and bk×BN of B per step in workgroup memory as f16.
 */
export interface SubgroupMatmulTiling {
  cm: number;
  cn: number;
  ck: number;
  subgroupSize: number;
  sgM: number;
  sgN: number;
  tm: number;
  tn: number;
  bk: number;
}

/**
 * How one operand is read from global memory. `contig`: which of its two matrix dims has stride 1:
 * 'k' (A row-major / B transposed) or 'mn' (A transposed / B row-major); with `vec` 1 any strides work.
 * `vec`: f16 elements per load (8: 16-byte loads, 4: 8-byte loads, 1: scalar) along the contiguous dim.
 */
export interface SubgroupOperand {
  contig: 'k' | 'mn';
  vec: 1 | 4 | 8;
}

export interface SubgroupMatmulShaderOptions {
  out: DType;
  bias: boolean;
  /** Storage type of the bias (default: the output dtype). */
  biasDtype?: DType;
  tiling: SubgroupMatmulTiling;
  a: SubgroupOperand;
  b: SubgroupOperand;
  /**
   * Replace the subgroup-matrix types and builtins by plain WGSL with their specified semantics (one
   * invocation per subgroup updates its result tiles, kept in workgroup memory; `subgroup_id` = invocation
   * index / subgroupSize). Runs on any device, slowly: it tests the kernel's staging, offsets, majorness,
   * edges and epilogue where no tensor cores exist.
   */
  emulate?: boolean;
}

/** f16 elements of padding per staged row: keeps rows 16-byte aligned and off the same banks. */
export const SUBGROUP_TILE_PAD = 8;

/** Derived sizes of a tiling and operand layout (the TS side uses them for grids and memory checks). */
export function subgroupMatmulGeometry(t: SubgroupMatmulTiling, a: SubgroupOperand, b: SubgroupOperand) {
  const bm = t.sgM * t.tm * t.cm;
  const bn = t.sgN * t.tn * t.cn;
  const subgroups = t.sgM * t.sgN;
  const threads = subgroups * t.subgroupSize;
  // Staged tiles in "storage order": rows × cols with the operand's contiguous dim along cols.
  const aRows = a.contig === 'k' ? bm : t.bk;
  const aCols = a.contig === 'k' ? t.bk : bm;
  const bRows = b.contig === 'mn' ? t.bk : bn;
  const bCols = b.contig === 'mn' ? bn : t.bk;
  const aStride = aCols + SUBGROUP_TILE_PAD;
  const bStride = bCols + SUBGROUP_TILE_PAD;
  const scratch = subgroups * t.cm * t.cn;
  const workgroupBytes = 2 * (aRows * aStride + bRows * bStride) + 4 * scratch;
  /** Extra workgroup memory of the emulated variant (its result tiles). */
  const emulationBytes = 4 * subgroups * t.tm * t.tn * t.cm * t.cn;
  return { bm, bn, subgroups, threads, aRows, aCols, bRows, bCols, aStride, bStride, scratch, workgroupBytes, emulationBytes };
}

/** Why a tiling/layout cannot be generated, or null when it can. */
export function subgroupTilingError(t: SubgroupMatmulTiling, a: SubgroupOperand, b: SubgroupOperand): string | null {
  const g = subgroupMatmulGeometry(t, a, b);
  for (const [name, v] of Object.entries(t)) if (!Number.isInteger(v) || v <= 0) return `${name} must be a positive integer`;
  if (t.cm % 8 || t.cn % 8 || t.ck % 8) return 'matrix config dims must be multiples of 8 (16-byte aligned rows)';
  if (t.bk % t.ck) return `bk ${t.bk} must be a multiple of ck ${t.ck}`;
  if ((g.aRows * g.aCols) % (a.vec * g.threads)) return `A tile ${g.aRows}×${g.aCols} does not split into ${a.vec}-wide loads over ${g.threads} invocations`;
  if ((g.bRows * g.bCols) % (b.vec * g.threads)) return `B tile ${g.bRows}×${g.bCols} does not split into ${b.vec}-wide loads over ${g.threads} invocations`;
  if (g.aCols % a.vec || g.bCols % b.vec) return 'vector width must divide the staged rows';
  return null;
}

/** Storage element type of an operand binding for a load width. */
function bindingType(vec: 1 | 4 | 8): string {
  return vec === 8 ? 'vec4<u32>' : vec === 4 ? 'vec2<u32>' : 'f16';
}

/** The same uniform block as the register-tiled matmul (shaders/matmul.wgsl.ts), so launches share it. */
function bindings(o: SubgroupMatmulShaderOptions): string {
  const lines = [
    'enable f16;',
    ...(o.emulate ? [] : ['enable chromium_experimental_subgroup_matrix;']),
    '',
    MATMUL_PARAMS,
    '@group(0) @binding(0) var<uniform> u: Params;',
    `@group(0) @binding(1) var<storage, read> a: array<${bindingType(o.a.vec)}>;`,
    `@group(0) @binding(2) var<storage, read> b: array<${bindingType(o.b.vec)}>;`,
  ];
  if (o.bias) lines.push(`@group(0) @binding(3) var<storage, read> bias: array<${o.biasDtype ?? o.out}>;`);
  lines.push(`@group(0) @binding(${o.bias ? 4 : 3}) var<storage, read_write> c: array<${o.out}>;`);
  return lines.join('\n');
}

/** Zero value of a prefetch register. */
function zeroOf(vec: 1 | 4 | 8): string {
  return vec === 8 ? 'vec4<u32>()' : vec === 4 ? 'vec2<u32>()' : 'f16()';
}

/**
 * WGSL that loads this invocation's share of one operand tile (k step `k0`) into registers
 * `${name}0..`: vectors along the contiguous dim, consecutive invocations on consecutive vectors
 * (coalesced), zeros outside the matrix.
 */
function prefetch(op: 'a' | 'b', o: SubgroupMatmulShaderOptions, k0: string): string {
  const t = o.tiling;
  const g = subgroupMatmulGeometry(t, o.a, o.b);
  const layout = op === 'a' ? o.a : o.b;
  const cols = op === 'a' ? g.aCols : g.bCols;
  const rows = op === 'a' ? g.aRows : g.bRows;
  const perRow = cols / layout.vec;
  const count = (rows * cols) / layout.vec / g.threads;
  const out: string[] = [];
  for (let q = 0; q < count; q++) {
    // (r, cc): position in the staged tile; (outer, kk): the matrix coordinates it stands for.
    const mnIsRow = (op === 'a' && layout.contig === 'k') || (op === 'b' && layout.contig === 'k');
    const mn = mnIsRow ? 'r' : 'cc';
    const kk = mnIsRow ? 'cc' : 'r';
    const check = op === 'a' ? `row0 + ${mn} < u.m && ${k0} + ${kk} < u.k` : `col0 + ${mn} < u.n && ${k0} + ${kk} < u.k`;
    const index =
      op === 'a' ? `aBase + (row0 + ${mn}) * u.aRow + (${k0} + ${kk}) * u.aCol` : `bBase + (${k0} + ${kk}) * u.bRow + (col0 + ${mn}) * u.bCol`;
    out.push(`{
      let l = tid + ${q * g.threads}u;
      let r = l / ${perRow}u;
      let cc = (l % ${perRow}u) * ${layout.vec}u;
      if (${check}) { ${op}r${q} = ${op}[(${index}) / ${layout.vec}u]; } else { ${op}r${q} = ${zeroOf(layout.vec)}; }
    }`);
  }
  return out.join('\n    ');
}

/** WGSL that writes the prefetch registers of one operand into its workgroup tile (as f16). */
function stage(op: 'a' | 'b', o: SubgroupMatmulShaderOptions): string {
  const g = subgroupMatmulGeometry(o.tiling, o.a, o.b);
  const layout = op === 'a' ? o.a : o.b;
  const cols = op === 'a' ? g.aCols : g.bCols;
  const rows = op === 'a' ? g.aRows : g.bRows;
  const stride = op === 'a' ? g.aStride : g.bStride;
  const perRow = cols / layout.vec;
  const count = (rows * cols) / layout.vec / g.threads;
  const tile = op === 'a' ? 'tileA' : 'tileB';
  const out: string[] = [];
  for (let q = 0; q < count; q++) {
    const reg = `${op}r${q}`;
    const head = `let l = tid + ${q * g.threads}u;
      let o = (l / ${perRow}u) * ${stride}u + (l % ${perRow}u) * ${layout.vec}u;`;
    // Each u32 holds two f16s. Not `bitcast<vec4<f16>>(vec2<u32>)`: Naga (wgpu) types that result as f32
    // ("automatic conversions cannot convert f32 to f16"); unpack2x16float is exact for f16 values.
    const words = layout.vec === 8 ? ['x', 'y', 'z', 'w'] : ['x', 'y'];
    const body =
      layout.vec === 1
        ? `${tile}[o] = ${reg};`
        : words
            .map((w, i) => `let h${i} = vec2<f16>(unpack2x16float(${reg}.${w})); ${tile}[o + ${2 * i}u] = h${i}.x; ${tile}[o + ${2 * i + 1}u] = h${i}.y;`)
            .join('\n      ');
    out.push(`{
      ${head}
      ${body}
    }`);
  }
  return out.join('\n    ');
}

/**
 * Plain-WGSL stand-ins for the subgroup-matrix builtins (emulate), with the semantics of Dawn's spec:
 * row-major entry [r, c] at offset + stride·r + c, column-major at offset + stride·c + r; left is M×K,
 * right K×N, result M×N; multiply-accumulate = left·right + acc. The tm·tn result tiles of each subgroup
 * live in `emuAcc` (workgroup memory), updated by the subgroup's first invocation. Loop bounds come from
 * private variables the compiler cannot fold, so CPU drivers do not unroll them into huge code (this path
 * is for correctness, not speed).
 */
function emulationHelpers(t: SubgroupMatmulTiling): string {
  const { cm, cn } = t;
  const tile = cm * cn;
  return `
// Emulated result tiles: tm·tn per subgroup, in workgroup memory so that nothing large stays live across
// barriers (CPU drivers compile that slowly). One invocation per subgroup updates them (emuLead).
var<workgroup> emuAcc: array<f32, ${t.sgM * t.sgN * t.tm * t.tn * tile}>;
var<private> emuM: u32;
var<private> emuN: u32;
var<private> emuK: u32;
var<private> emuLead: bool;
var<private> emuSg: u32;
fn emuIndex(colMajor: bool, off: u32, stride: u32, r: u32, c: u32) -> u32 {
  return select(off + stride * r + c, off + stride * c + r, colMajor);
}
// result tile \`tile\` of this subgroup += left(tileA at aOff) · right(tileB at bOff)
fn emuMma(tile: u32, aColMajor: bool, aOff: u32, aStride: u32, bColMajor: bool, bOff: u32, bStride: u32) {
  if (!emuLead) { return; }
  let base = (emuSg * ${t.tm * t.tn}u + tile) * ${tile}u;
  for (var r = 0u; r < emuM; r++) {
    for (var c = 0u; c < emuN; c++) {
      var s = emuAcc[base + r * ${cn}u + c];
      for (var k = 0u; k < emuK; k++) {
        s = fma(f32(tileA[emuIndex(aColMajor, aOff, aStride, r, k)]), f32(tileB[emuIndex(bColMajor, bOff, bStride, k, c)]), s);
      }
      emuAcc[base + r * ${cn}u + c] = s;
    }
  }
}
// row-major store of this subgroup's result tile \`tile\` into scratch
fn emuStoreScratch(tile: u32, off: u32, stride: u32) {
  if (!emuLead) { return; }
  let base = (emuSg * ${t.tm * t.tn}u + tile) * ${tile}u;
  for (var r = 0u; r < emuM; r++) {
    for (var c = 0u; c < emuN; c++) { scratch[off + stride * r + c] = emuAcc[base + r * ${cn}u + c]; }
  }
}
`;
}

/** A WGSL u32 expression: numbers become literals, strings pass through. */
const ux = (v: number | string) => (typeof v === 'number' ? `${v}u` : `(${v})`);

/**
 * Batched C = alpha·A·B (+ bias) on subgroup matrices: f16 operands, f32 accumulation, f32 or f16 output.
 * Per k step of bk: every invocation prefetches its share of the next A/B tiles into registers (global
 * latency overlaps the multiply-accumulates), the tiles are staged in workgroup memory as f16 with zero
 * padding at the matrix edges (any M, N, K), and each subgroup loads tm left and tn right matrices per
 * ck and issues tm·tn multiply-accumulates. Results leave through a per-subgroup f32 scratch tile, where
 * alpha, bias, bounds and the output dtype are applied.
 *
 * All subgroup-matrix calls take workgroup-uniform arguments (workgroup id, `subgroup_id`, uniforms,
 * constants), as the `chromium_experimental_subgroup_matrix` uniformity rule requires; the workgroup
 * size is a multiple of the subgroup size. With `emulate` the same staging, offsets and epilogue run
 * with the matrix operations in plain WGSL (loops instead of unrolled calls).
 */
export function subgroupMatmulShader(o: SubgroupMatmulShaderOptions): string {
  const err = subgroupTilingError(o.tiling, o.a, o.b);
  if (err) throw new Error(`subgroup matmul tiling: ${err}`);
  const t = o.tiling;
  const g = subgroupMatmulGeometry(t, o.a, o.b);
  const emu = !!o.emulate;
  const countA = (g.aRows * g.aCols) / o.a.vec / g.threads;
  const countB = (g.bRows * g.bCols) / o.b.vec / g.threads;
  const regs = [
    ...Array.from({ length: countA }, (_, q) => `var ar${q}: ${bindingType(o.a.vec)};`),
    ...Array.from({ length: countB }, (_, q) => `var br${q}: ${bindingType(o.b.vec)};`),
  ].join('\n  ');

  // Offsets of the i-th left / j-th right matrix of this subgroup at depth kk in the staged tiles.
  // A staged [m][k] (contig 'k') is a row-major left matrix; staged [k][m] a column-major one.
  // B staged [k][n] (contig 'mn') is a row-major right matrix; staged [n][k] a column-major one.
  const aCol = o.a.contig !== 'k';
  const bCol = o.b.contig !== 'mn';
  const aOffset = (i: number | string, kk: number | string) =>
    aCol ? `${ux(kk)} * ${g.aStride}u + sgRow + ${ux(i)} * ${t.cm}u` : `(sgRow + ${ux(i)} * ${t.cm}u) * ${g.aStride}u + ${ux(kk)}`;
  const bOffset = (j: number | string, kk: number | string) =>
    bCol ? `(sgCol + ${ux(j)} * ${t.cn}u) * ${g.bStride}u + ${ux(kk)}` : `${ux(kk)} * ${g.bStride}u + sgCol + ${ux(j)} * ${t.cn}u`;

  let accs = '';
  let compute: string;
  if (!emu) {
    const left = `subgroup_matrix_left<f16, ${t.ck}, ${t.cm}>`;
    const right = `subgroup_matrix_right<f16, ${t.cn}, ${t.ck}>`;
    const result = `subgroup_matrix_result<f32, ${t.cn}, ${t.cm}>`;
    const aMajor = aCol ? 'col_major' : 'row_major';
    const bMajor = bCol ? 'col_major' : 'row_major';
    const decl: string[] = [];
    for (let i = 0; i < t.tm; i++) for (let j = 0; j < t.tn; j++) decl.push(`var acc${i}_${j} = ${result}();`);
    accs = decl.join('\n  ');
    // Unrolled: tm left and tn right matrices per ck slice, tm·tn multiply-accumulates.
    const steps: string[] = [];
    for (let kk = 0; kk < t.bk; kk += t.ck) {
      const lines: string[] = [];
      for (let i = 0; i < t.tm; i++) lines.push(`let l${i} = subgroupMatrixLoad<${left}, ${aMajor}>(&tileA, ${aOffset(i, kk)}, ${g.aStride}u);`);
      for (let j = 0; j < t.tn; j++) {
        lines.push(`let r${j} = subgroupMatrixLoad<${right}, ${bMajor}>(&tileB, ${bOffset(j, kk)}, ${g.bStride}u);`);
        for (let i = 0; i < t.tm; i++) lines.push(`acc${i}_${j} = subgroupMatrixMultiplyAccumulate(l${i}, r${j}, acc${i}_${j});`);
      }
      steps.push(`{\n      ${lines.join('\n      ')}\n    }`);
    }
    compute = steps.join('\n    ');
  } else {
    compute = `for (var kk = 0u; kk < ${t.bk}u; kk += ${t.ck}u) {
      for (var i = 0u; i < ${t.tm}u; i++) {
        for (var j = 0u; j < ${t.tn}u; j++) {
          emuMma(i * ${t.tn}u + j, ${aCol}, ${aOffset('i', 'kk')}, ${g.aStride}u, ${bCol}, ${bOffset('j', 'kk')}, ${g.bStride}u);
        }
      }
    }`;
  }

  // Epilogue: each result tile goes through the subgroup's scratch tile; all invocations of the
  // workgroup then write every subgroup's tile (no assumption on how invocations map to subgroups).
  const tileElems = t.cm * t.cn;
  const convert = o.out === 'f32' ? 'v' : `${o.out}(v)`;
  const writeTile = (i: number | string, j: number | string) => `workgroupBarrier();
  for (var e = tid; e < ${g.scratch}u; e += ${g.threads}u) {
    let s = e / ${tileElems}u;
    let w = e % ${tileElems}u;
    let r = row0 + (s / ${t.sgN}u) * ${t.tm * t.cm}u + ${ux(i)} * ${t.cm}u + w / ${t.cn}u;
    let cc = col0 + (s % ${t.sgN}u) * ${t.tn * t.cn}u + ${ux(j)} * ${t.cn}u + w % ${t.cn}u;
    if (r < u.m && cc < u.n) {
      var v = scratch[e] * u.alpha;${o.bias ? `\n      ${ADD_BIAS}` : ''}
      c[outBase + r * u.n + cc] = ${convert};
    }
  }
  workgroupBarrier();`;
  let epilogue: string;
  if (!emu) {
    const parts: string[] = [];
    for (let i = 0; i < t.tm; i++)
      for (let j = 0; j < t.tn; j++) parts.push(`subgroupMatrixStore<row_major>(&scratch, sg * ${tileElems}u, acc${i}_${j}, ${t.cn}u);\n  ${writeTile(i, j)}`);
    epilogue = parts.join('\n  ');
  } else {
    epilogue = `for (var i = 0u; i < ${t.tm}u; i++) {
  for (var j = 0u; j < ${t.tn}u; j++) {
  emuStoreScratch(i * ${t.tn}u + j, sg * ${tileElems}u, ${t.cn}u);
  ${writeTile('i', 'j')}
  }
  }`;
  }

  const prologue = emu
    ? `let sg = tid / ${t.subgroupSize}u;
  emuSg = sg;
  emuLead = tid % ${t.subgroupSize}u == 0u;
  for (var e = tid; e < ${g.subgroups * t.tm * t.tn * t.cm * t.cn}u; e += ${g.threads}u) { emuAcc[e] = 0.0; }
  let opaque = u.m == 0xffffffffu;
  emuM = select(${t.cm}u, 0u, opaque);
  emuN = select(${t.cn}u, 0u, opaque);
  emuK = select(${t.ck}u, 0u, opaque);`
    : '';

  return `${bindings(o)}

// A tile: ${g.aRows}×${g.aCols} (+${SUBGROUP_TILE_PAD} pad) f16, B tile: ${g.bRows}×${g.bCols} (+${SUBGROUP_TILE_PAD} pad) f16, block ${g.bm}×${g.bn}×${t.bk}.
var<workgroup> tileA: array<f16, ${g.aRows * g.aStride}>;
var<workgroup> tileB: array<f16, ${g.bRows * g.bStride}>;
// One ${t.cm}×${t.cn} f32 result tile per subgroup on its way out.
var<workgroup> scratch: array<f32, ${g.scratch}>;
${emu ? emulationHelpers(t) : ''}
@compute @workgroup_size(${g.threads}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32${emu ? '' : ', @builtin(subgroup_id) sg: u32'}) {
  ${prologue}
  ${BATCH_BASES}
  let outBase = u.outOffset + wid.z * u.m * u.n;
  let row0 = wid.y * ${g.bm}u;
  let col0 = wid.x * ${g.bn}u;
  // This subgroup's ${t.tm * t.cm}×${t.tn * t.cn} share of the block.
  let sgRow = (sg / ${t.sgN}u) * ${t.tm * t.cm}u;
  let sgCol = (sg % ${t.sgN}u) * ${t.tn * t.cn}u;
  ${accs}
  ${regs}
  {
    let k0 = 0u;
    ${prefetch('a', o, 'k0')}
    ${prefetch('b', o, 'k0')}
  }
  for (var k0 = 0u; k0 < u.k; k0 += ${t.bk}u) {
    ${stage('a', o)}
    ${stage('b', o)}
    workgroupBarrier();
    let kn = k0 + ${t.bk}u;
    ${prefetch('a', o, 'kn')}
    ${prefetch('b', o, 'kn')}
    ${compute}
    workgroupBarrier();
  }
  ${epilogue}
}
`;
}
