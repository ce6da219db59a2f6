/**
 * The subgroup-matrix (tensor-core) matmul: f16 operands, f32 accumulation, on devices with
 * `chromium-experimental-subgroup-matrix` (NVIDIA through Dawn/Vulkan with the toggles in device.ts).
 * `matmulRaw` (matmul.ts) asks `planSubgroupMatmul` first and falls back to the register-tiled kernels
 * whenever the plan says no. The WGSL lives in shaders/matmul-subgroup.wgsl.ts.
 */
import type { GpuStorage, WebGPUBackend } from '../engine/backend';
import type { SubgroupMatrixCaps, SubgroupMatrixConfig } from '../engine/device';
import type { DType } from '../engine/dtype';
import type { DeviceCapabilities } from '../engine/gpu-context';
import type { Tensor } from '../engine/tensor';
import {
  subgroupMatmulGeometry,
  subgroupMatmulShader,
  subgroupTilingError,
  type SubgroupMatmulTiling,
  type SubgroupOperand,
} from '../../shaders/matmul-subgroup.wgsl';

export type { SubgroupMatmulTiling, SubgroupOperand } from '../../shaders/matmul-subgroup.wgsl';

/** Block shape of a tiling without the hardware tile (filled in from the device's config). */
export type SubgroupBlock = Pick<SubgroupMatmulTiling, 'sgM' | 'sgN' | 'tm' | 'tn' | 'bk'>;

/** 2×2 subgroups of 4×4 tiles of 16×16: a 128×128 block, 16 accumulators per subgroup. */
export const SUBGROUP_BLOCK_LARGE: SubgroupBlock = { sgM: 2, sgN: 2, tm: 4, tn: 4, bk: 32 };
/** 2×2 subgroups of 2×2 tiles: a 64×64 block for problems too small to fill the GPU with 128×128 blocks. */
export const SUBGROUP_BLOCK_SMALL: SubgroupBlock = { sgM: 2, sgN: 2, tm: 2, tn: 2, bk: 32 };

/**
 * 'auto': the tensor-core path where it suits the shape (default); 'off': never; 'force': whenever the
 * device and operands allow it, regardless of size; a block: force with that block shape (tuning).
 */
export type SubgroupMatmulMode = 'auto' | 'off' | 'force' | SubgroupBlock;

let mode: SubgroupMatmulMode = 'auto';
/** Selects when matmul uses subgroup matrices (benchmarks, tuning, tests). Returns the previous mode. */
export function setSubgroupMatmul(next: SubgroupMatmulMode): SubgroupMatmulMode {
  const prev = mode;
  mode = next;
  return prev;
}
export function subgroupMatmulMode(): SubgroupMatmulMode {
  return mode;
}

/** A device that has no subgroup matrices, pretending it has this one config (tests; see setSubgroupMatmulEmulation). */
export interface SubgroupMatmulEmulation {
  config: SubgroupMatrixConfig;
  subgroupSize: number;
}
let emulation: SubgroupMatmulEmulation | null = null;
/**
 * Runs the subgroup-matrix kernel with the matrix builtins emulated in plain WGSL (shaders/matmul-subgroup.wgsl.ts,
 * `emulate`), as if the device had `config` and subgroups of `subgroupSize`: the tile arithmetic, staging,
 * edges and epilogue are then tested on any adapter, lavapipe included. Slow; null switches it off.
 */
export function setSubgroupMatmulEmulation(e: SubgroupMatmulEmulation | null): void {
  emulation = e;
}

let dispatches = 0;
/** How many matmuls ran on subgroup matrices in this process (tests and benchmarks check the path ran). */
export function subgroupMatmulDispatches(): number {
  return dispatches;
}

/** The subgroup-matrix fields device.ts adds to the caps (absent on caps built elsewhere: treated as none). */
function sgCaps(caps: DeviceCapabilities): SubgroupMatrixCaps {
  if (emulation) return { subgroupMatrixConfigs: [emulation.config], subgroupMinSize: emulation.subgroupSize, subgroupMaxSize: emulation.subgroupSize };
  const c = caps as DeviceCapabilities & Partial<SubgroupMatrixCaps>;
  return { subgroupMatrixConfigs: c.subgroupMatrixConfigs ?? [], subgroupMinSize: c.subgroupMinSize ?? 0, subgroupMaxSize: c.subgroupMaxSize ?? 0 };
}

/**
 * The f16 → f32 config to build on: 16×16×16 when offered (NVIDIA), else the one with the most work per
 * multiply-accumulate among those whose dims are multiples of 8 (16-byte aligned rows). Null if none.
 */
export function pickSubgroupConfig(configs: readonly SubgroupMatrixConfig[]): SubgroupMatrixConfig | null {
  const usable = configs.filter((c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M % 8 === 0 && c.N % 8 === 0 && c.K % 8 === 0);
  const square = usable.find((c) => c.M === 16 && c.N === 16 && c.K === 16);
  if (square) return square;
  return usable.sort((x, y) => y.M * y.N * y.K - x.M * x.N * x.K)[0] ?? null;
}

/** Operand description for the planner: its matrix strides, element offset and batch strides (0 = broadcast). */
export interface PlanOperand {
  dtype: DType;
  /** [stride of the row dim, stride of the column dim] of the last two dims. */
  strides: [number, number];
  offset: number;
  batchStrides: number[];
}

export interface SubgroupMatmulProblem {
  m: number;
  n: number;
  k: number;
  batch: number;
  a: PlanOperand;
  b: PlanOperand;
}

export type SubgroupMatmulPlan =
  | { use: true; tiling: SubgroupMatmulTiling; a: SubgroupOperand; b: SubgroupOperand; grid: [number, number, number]; emulate: boolean }
  | { use: false; reason: string };

/**
 * How an operand is loaded. `rows`/`cols` are its matrix dims (A: M×K, B: K×N); `kIsCol` says whether
 * K is the column dim (A) or the row dim (B). The widest vector (8, 4, 1 f16) whose alignment holds for
 * the offset, the non-contiguous stride, the batch strides and the contiguous extent.
 */
export function operandLayout(op: PlanOperand, rows: number, cols: number, kIsCol: boolean): SubgroupOperand {
  const [rowStride, colStride] = op.strides;
  const colContig = colStride === 1 || cols === 1;
  const rowContig = !colContig && (rowStride === 1 || rows === 1);
  // Contiguous along columns: A row-major ('k') or B row-major ('mn'); along rows: the transposes.
  const contig: 'k' | 'mn' = colContig ? (kIsCol ? 'k' : 'mn') : rowContig ? (kIsCol ? 'mn' : 'k') : kIsCol ? 'k' : 'mn';
  if (!colContig && !rowContig) return { contig, vec: 1 };
  const extent = colContig ? cols : rows;
  const other = colContig ? rowStride : colStride;
  for (const vec of [8, 4] as const) {
    const aligned = (v: number) => v % vec === 0;
    if (aligned(extent) && aligned(op.offset) && aligned(other) && op.batchStrides.every(aligned)) return { contig, vec };
  }
  return { contig, vec: 1 };
}

/** Work below which the register-tiled kernel is used in 'auto' mode (launch and edge waste dominate). */
const AUTO_MIN_FLOPS = 2 * 128 ** 3;

/**
 * Decides whether a matmul runs on subgroup matrices, and how. Pure (no GPU): unit-tested on any machine.
 * `explicitTiling`: a register tiling was forced with setMatmulTiling, which wins over 'auto'.
 */
export function planSubgroupMatmul(
  caps: DeviceCapabilities,
  p: SubgroupMatmulProblem,
  requested: SubgroupMatmulMode = mode,
  explicitTiling = false,
): SubgroupMatmulPlan {
  if (requested === 'off') return { use: false, reason: 'disabled (setSubgroupMatmul off)' };
  if (requested === 'auto' && explicitTiling) return { use: false, reason: 'a register tiling was forced (setMatmulTiling)' };
  if (!caps.subgroupMatrix && !emulation) return { use: false, reason: 'device lacks chromium-experimental-subgroup-matrix' };
  if (!caps.f16) return { use: false, reason: 'device lacks shader-f16' };
  if (p.a.dtype !== 'f16' || p.b.dtype !== 'f16') return { use: false, reason: `operands are ${p.a.dtype}×${p.b.dtype}, not f16×f16` };
  const sc = sgCaps(caps);
  const config = pickSubgroupConfig(sc.subgroupMatrixConfigs);
  if (!config) return { use: false, reason: 'no f16→f32 subgroup-matrix config' };
  // Subgroups are assigned tiles by subgroup_id: their count per workgroup must be known at compile time.
  if (sc.subgroupMaxSize <= 0 || sc.subgroupMinSize !== sc.subgroupMaxSize) {
    return { use: false, reason: `subgroup size varies (${sc.subgroupMinSize}-${sc.subgroupMaxSize})` };
  }
  const { m, n, k, batch } = p;
  if (m === 0 || n === 0 || k === 0) return { use: false, reason: 'empty product' };
  if (requested === 'auto') {
    if (2 * m * n * k * batch < AUTO_MIN_FLOPS) return { use: false, reason: 'too little work for tensor cores' };
    if (m < 2 * config.M || n < 2 * config.N || k < config.K) return { use: false, reason: `M, N or K below the ${config.M}×${config.N}×${config.K} tile` };
  }
  const block = typeof requested === 'object' ? requested : chooseBlock(caps, m, n, batch, config);
  const tiling: SubgroupMatmulTiling = { cm: config.M, cn: config.N, ck: config.K, subgroupSize: sc.subgroupMaxSize, ...block };
  const a = operandLayout(p.a, m, k, true);
  const b = operandLayout(p.b, k, n, false);
  const err = subgroupTilingError(tiling, a, b);
  if (err) return { use: false, reason: `tiling: ${err}` };
  const g = subgroupMatmulGeometry(tiling, a, b);
  if (g.threads > caps.limits.maxComputeInvocationsPerWorkgroup) return { use: false, reason: `${g.threads} invocations per workgroup exceed the limit` };
  const bytes = g.workgroupBytes + (emulation ? g.emulationBytes : 0);
  if (bytes > caps.limits.maxComputeWorkgroupStorageSize) return { use: false, reason: `${bytes} B of workgroup memory exceed the limit` };
  const grid: [number, number, number] = [Math.ceil(n / g.bn), Math.ceil(m / g.bm), batch];
  const maxDim = caps.limits.maxComputeWorkgroupsPerDimension;
  if (grid.some((d) => d > maxDim)) return { use: false, reason: `grid ${grid.join('×')} exceeds ${maxDim} per dimension` };
  return { use: true, tiling, a, b, grid, emulate: emulation !== null };
}

/** The large block when it still gives every multiprocessor a few workgroups; else the small one. */
function chooseBlock(caps: DeviceCapabilities, m: number, n: number, batch: number, config: SubgroupMatrixConfig): SubgroupBlock {
  const bm = SUBGROUP_BLOCK_LARGE.sgM * SUBGROUP_BLOCK_LARGE.tm * config.M;
  const bn = SUBGROUP_BLOCK_LARGE.sgN * SUBGROUP_BLOCK_LARGE.tn * config.N;
  // ~132 SMs on an H100: under ~256 large blocks the small ones keep more of them busy.
  const largeBlocks = Math.ceil(m / bm) * Math.ceil(n / bn) * batch;
  return largeBlocks >= 256 ? SUBGROUP_BLOCK_LARGE : SUBGROUP_BLOCK_SMALL;
}

/** Pipeline cache key: every template value of the shader. */
export function subgroupMatmulKey(plan: Extract<SubgroupMatmulPlan, { use: true }>, out: DType, bias: DType | null): string {
  const t = plan.tiling;
  return `matmul-sgmat:${out}:${bias ? `bias-${bias}` : ''}:${t.cm}x${t.cn}x${t.ck}/${t.subgroupSize}:${t.sgM}x${t.sgN}:${t.tm}x${t.tn}:${t.bk}:a${plan.a.contig}${plan.a.vec}:b${plan.b.contig}${plan.b.vec}${plan.emulate ? ':emulated' : ''}`;
}

/**
 * Records the subgroup-matrix matmul into `out` ([batch, M, N] contiguous, dtype f16 or f32) with the
 * register-tiled kernel's uniform block (matmul.ts builds it).
 */
export function dispatchSubgroupMatmul(
  backend: WebGPUBackend,
  plan: Extract<SubgroupMatmulPlan, { use: true }>,
  args: { a: Tensor; b: Tensor; bias: Tensor | null; out: Tensor; uniforms: Uint32Array },
): void {
  const { a, b, bias, out } = args;
  const program = {
    key: subgroupMatmulKey(plan, out.dtype, bias?.dtype ?? null),
    source: () => subgroupMatmulShader({ out: out.dtype, bias: !!bias, biasDtype: bias?.dtype, tiling: plan.tiling, a: plan.a, b: plan.b, emulate: plan.emulate }),
    inputs: bias ? 3 : 2,
    outputs: 1,
  };
  backend.ctx.dispatch(program, {
    inputs: [a, b, ...(bias ? [bias] : [])].map((t) => (t.storage as GpuStorage).buffer),
    outputs: [(out.storage as GpuStorage).buffer],
    uniforms: args.uniforms,
    workgroups: plan.grid,
  });
  dispatches++;
}
