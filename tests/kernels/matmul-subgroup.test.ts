/**
 * The subgroup-matrix (tensor-core) matmul.
 * - planning, layouts, tile geometry and the generated WGSL text: pure TS, always run;
 * - the real WGSL through Tint (parse, types, uniformity) on Dawn's null backend, which exposes the
 *   feature without executing anything: always run where the `webgpu` addon has that backend;
 * - the kernel with the matrix builtins emulated in plain WGSL, through matmul/linear/matmulScaled on this
 *   adapter (lavapipe): staging, offsets, majorness, edges, batches and epilogue against float64;
 * - the real kernel on tensor cores: only where the device has `chromium-experimental-subgroup-matrix`.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import * as ops from '../../src/index';
import type { DeviceCapabilities, Tensor } from '../../src/index';
import type { Engine } from '../../src/engine/engine';
import type { GpuStorage, WebGPUBackend } from '../../src/engine/backend';
import type { SubgroupMatrixConfig } from '../../src/engine/device';
import { UniformWriter } from '../../src/engine/uniforms';
import {
  dispatchSubgroupMatmul,
  operandLayout,
  pickSubgroupConfig,
  planSubgroupMatmul,
  setSubgroupMatmul,
  setSubgroupMatmulEmulation,
  subgroupMatmulDispatches,
  subgroupMatmulKey,
  SUBGROUP_BLOCK_LARGE,
  SUBGROUP_BLOCK_SMALL,
  type PlanOperand,
  type SubgroupMatmulProblem,
} from '../../src/kernels/matmul-subgroup';
import { subgroupMatmulGeometry, subgroupMatmulShader, subgroupTilingError, type SubgroupMatmulTiling } from '../../shaders/matmul-subgroup.wgsl';
import { gpuEngine, randomValues, releaseGpu } from '../helpers/oracle';

const engine = await gpuEngine();
const caps = engine.caps!;
const hasTensorCores = caps.subgroupMatrix;

afterAll(releaseGpu);
afterEach(() => {
  setSubgroupMatmul('auto');
  setSubgroupMatmulEmulation(null);
});

const cfg = (M: number, N: number, K: number, componentType = 'f16', resultComponentType = 'f32'): SubgroupMatrixConfig => ({ componentType, resultComponentType, M, N, K });
/** What Dawn reported on the H100 (ENGINE_NOTES). */
const NVIDIA_CONFIGS = [cfg(16, 16, 16, 'f16', 'f16'), cfg(16, 16, 16), cfg(16, 8, 16, 'f16', 'f16'), cfg(16, 8, 16), cfg(16, 8, 8), cfg(16, 16, 32, 'i8', 'i32')];

/** H100-like caps, with the fields device.ts adds. */
function fakeCaps(over: Record<string, unknown> = {}): DeviceCapabilities {
  return {
    f16: true,
    subgroups: true,
    subgroupMatrix: true,
    timestampQuery: true,
    software: false,
    largeRegisterBlocks: false,
    limits: {
      maxStorageBufferBindingSize: 2 ** 31 - 4,
      maxBufferSize: 2 ** 40,
      maxComputeWorkgroupStorageSize: 49152,
      maxComputeInvocationsPerWorkgroup: 1024,
      maxComputeWorkgroupsPerDimension: 65535,
      maxStorageBuffersPerShaderStage: 16,
      minUniformBufferOffsetAlignment: 256,
    },
    adapter: { vendor: 'nvidia', architecture: 'hopper', device: '', description: '' },
    subgroupMatrixConfigs: NVIDIA_CONFIGS,
    subgroupMinSize: 32,
    subgroupMaxSize: 32,
    ...over,
  } as DeviceCapabilities;
}

const rowMajor = (rows: number, cols: number, extra: Partial<PlanOperand> = {}): PlanOperand => ({ dtype: 'f16', strides: [cols, 1], offset: 0, batchStrides: [], ...extra });
const colMajor = (rows: number, cols: number, extra: Partial<PlanOperand> = {}): PlanOperand => ({ dtype: 'f16', strides: [1, rows], offset: 0, batchStrides: [], ...extra });
const problem = (m: number, n: number, k: number, over: Partial<SubgroupMatmulProblem> = {}): SubgroupMatmulProblem => ({ m, n, k, batch: 1, a: rowMajor(m, k), b: rowMajor(k, n), ...over });

describe('subgroup-matrix matmul: planning (pure)', () => {
  it('picks the f16→f32 16×16×16 config, else the largest usable one, else none', () => {
    expect(pickSubgroupConfig(NVIDIA_CONFIGS)).toEqual(cfg(16, 16, 16));
    expect(pickSubgroupConfig([cfg(16, 8, 8), cfg(16, 8, 16)])).toEqual(cfg(16, 8, 16));
    expect(pickSubgroupConfig([cfg(8, 8, 8, 'f32', 'f32'), cfg(16, 16, 16, 'f16', 'f16')])).toBeNull();
    expect(pickSubgroupConfig([cfg(4, 4, 4)])).toBeNull();
    expect(pickSubgroupConfig([])).toBeNull();
  });

  it('operand layouts: contiguous dim and the widest aligned load', () => {
    // A (M×K): row-major reads along K; transposed along M.
    expect(operandLayout(rowMajor(64, 64), 64, 64, true)).toEqual({ contig: 'k', vec: 8 });
    expect(operandLayout(colMajor(64, 64), 64, 64, true)).toEqual({ contig: 'mn', vec: 8 });
    // B (K×N): row-major reads along N; transposed (a Linear weight) along K.
    expect(operandLayout(rowMajor(64, 64), 64, 64, false)).toEqual({ contig: 'mn', vec: 8 });
    expect(operandLayout(colMajor(64, 64), 64, 64, false)).toEqual({ contig: 'k', vec: 8 });
    expect(operandLayout(rowMajor(64, 12), 64, 12, true)).toEqual({ contig: 'k', vec: 4 });
    expect(operandLayout(rowMajor(64, 45), 64, 45, true)).toEqual({ contig: 'k', vec: 1 });
    expect(operandLayout(rowMajor(64, 64, { offset: 4 }), 64, 64, true)).toEqual({ contig: 'k', vec: 4 });
    expect(operandLayout(rowMajor(64, 64, { batchStrides: [0, 64 * 64] }), 64, 64, true)).toEqual({ contig: 'k', vec: 8 });
    expect(operandLayout(rowMajor(64, 64, { batchStrides: [64 * 64 + 2] }), 64, 64, true)).toEqual({ contig: 'k', vec: 1 });
    // Neither dim contiguous (a stepped slice): scalar loads through both strides.
    expect(operandLayout({ dtype: 'f16', strides: [128, 2], offset: 0, batchStrides: [] }, 64, 64, true).vec).toBe(1);
  });

  it('uses the large block and the expected grid at 4096³', () => {
    const plan = planSubgroupMatmul(fakeCaps(), problem(4096, 4096, 4096), 'auto');
    expect(plan.use).toBe(true);
    if (!plan.use) return;
    expect(plan.tiling).toEqual({ cm: 16, cn: 16, ck: 16, subgroupSize: 32, ...SUBGROUP_BLOCK_LARGE });
    expect(plan.grid).toEqual([32, 32, 1]);
    expect(plan.a).toEqual({ contig: 'k', vec: 8 });
    expect(plan.b).toEqual({ contig: 'mn', vec: 8 });
    expect(plan.emulate).toBe(false);
  });

  it('small problems: the small block, ceil-divided grids, batches in z', () => {
    const plan = planSubgroupMatmul(fakeCaps(), problem(300, 200, 64, { batch: 3 }), 'auto');
    expect(plan.use && plan.tiling.sgM * plan.tiling.tm * 16).toBe(64);
    expect(plan.use && plan.grid).toEqual([Math.ceil(200 / 64), Math.ceil(300 / 64), 3]);
  });

  it('falls back, with a reason, whenever the path does not apply', () => {
    const reason = (p: ReturnType<typeof planSubgroupMatmul>) => (p.use ? 'used' : p.reason);
    expect(reason(planSubgroupMatmul(fakeCaps(), problem(512, 512, 512), 'off'))).toMatch(/disabled/);
    expect(reason(planSubgroupMatmul(fakeCaps({ subgroupMatrix: false }), problem(512, 512, 512), 'auto'))).toMatch(/lacks chromium-experimental-subgroup-matrix/);
    expect(reason(planSubgroupMatmul(fakeCaps({ f16: false }), problem(512, 512, 512), 'auto'))).toMatch(/shader-f16/);
    expect(reason(planSubgroupMatmul(fakeCaps(), problem(512, 512, 512, { a: rowMajor(512, 512, { dtype: 'f32' }) }), 'auto'))).toMatch(/not f16/);
    expect(reason(planSubgroupMatmul(fakeCaps({ subgroupMatrixConfigs: [cfg(16, 16, 16, 'f16', 'f16')] }), problem(512, 512, 512), 'auto'))).toMatch(/no f16→f32/);
    expect(reason(planSubgroupMatmul(fakeCaps({ subgroupMinSize: 8, subgroupMaxSize: 32 }), problem(512, 512, 512), 'auto'))).toMatch(/subgroup size varies/);
    expect(reason(planSubgroupMatmul(fakeCaps({ subgroupMatrixConfigs: undefined }), problem(512, 512, 512), 'auto'))).toMatch(/no f16→f32/);
    expect(reason(planSubgroupMatmul(fakeCaps(), problem(64, 64, 64), 'auto'))).toMatch(/too little work/);
    expect(reason(planSubgroupMatmul(fakeCaps(), problem(16, 4096, 4096), 'auto'))).toMatch(/below the 16×16×16 tile/);
    expect(reason(planSubgroupMatmul(fakeCaps(), problem(512, 512, 512), 'auto', true))).toMatch(/setMatmulTiling/);
    const tinyMemory = fakeCaps({ limits: { ...fakeCaps().limits, maxComputeWorkgroupStorageSize: 8192 } });
    expect(reason(planSubgroupMatmul(tinyMemory, problem(4096, 4096, 4096), 'auto'))).toMatch(/workgroup memory/);
    expect(reason(planSubgroupMatmul(fakeCaps(), problem(4096, 4096, 4096, { batch: 70000 }), 'auto'))).toMatch(/exceeds 65535/);
    expect(reason(planSubgroupMatmul(fakeCaps(), problem(512, 512, 512), { sgM: 2, sgN: 2, tm: 4, tn: 4, bk: 24 }))).toMatch(/multiple of ck/);
  });

  it("'force' ignores the size heuristics and the forced register tiling; a block forces that shape", () => {
    expect(planSubgroupMatmul(fakeCaps(), problem(3, 5, 7), 'force').use).toBe(true);
    expect(planSubgroupMatmul(fakeCaps(), problem(512, 512, 512), 'force', true).use).toBe(true);
    const plan = planSubgroupMatmul(fakeCaps(), problem(512, 512, 512), { sgM: 2, sgN: 4, tm: 4, tn: 2, bk: 64 });
    expect(plan.use && plan.tiling).toMatchObject({ sgM: 2, sgN: 4, tm: 4, tn: 2, bk: 64 });
    expect(plan.use && plan.grid).toEqual([512 / 128, 512 / 128, 1]);
  });

  it('geometry: block, invocations and workgroup memory', () => {
    const t: SubgroupMatmulTiling = { cm: 16, cn: 16, ck: 16, subgroupSize: 32, ...SUBGROUP_BLOCK_LARGE };
    const g = subgroupMatmulGeometry(t, { contig: 'k', vec: 8 }, { contig: 'mn', vec: 8 });
    expect([g.bm, g.bn, g.threads, g.subgroups]).toEqual([128, 128, 128, 4]);
    expect([g.aRows, g.aCols, g.aStride, g.bRows, g.bCols, g.bStride]).toEqual([128, 32, 40, 32, 128, 136]);
    expect(g.workgroupBytes).toBe(2 * (128 * 40 + 32 * 136) + 4 * 4 * 256);
    expect(subgroupTilingError(t, { contig: 'k', vec: 8 }, { contig: 'mn', vec: 8 })).toBeNull();
    expect(subgroupTilingError({ ...t, cm: 12 }, { contig: 'k', vec: 1 }, { contig: 'mn', vec: 1 })).toMatch(/multiples of 8/);
    expect(subgroupTilingError({ ...t, sgM: 1, sgN: 1, tm: 1, tn: 1, bk: 16, subgroupSize: 64 }, { contig: 'k', vec: 8 }, { contig: 'mn', vec: 8 })).toMatch(/does not split/);
  });

  it('generated WGSL: types, majorness, strides, tile sizes and unrolled multiply-accumulates', () => {
    const t: SubgroupMatmulTiling = { cm: 16, cn: 16, ck: 16, subgroupSize: 32, ...SUBGROUP_BLOCK_LARGE };
    const src = subgroupMatmulShader({ out: 'f16', bias: true, tiling: t, a: { contig: 'k', vec: 8 }, b: { contig: 'k', vec: 8 } });
    expect(src).toContain('enable chromium_experimental_subgroup_matrix;');
    expect(src).toContain('@compute @workgroup_size(128, 1, 1)');
    expect(src).toContain('@builtin(subgroup_id) sg: u32');
    expect(src).toContain('var<workgroup> tileA: array<f16, 5120>;'); // 128 rows × (32 + 8)
    expect(src).toContain('var<workgroup> tileB: array<f16, 5120>;'); // B staged [n][k]: 128 × 40
    expect(src).toContain('subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&tileA, (sgRow + 3u * 16u) * 40u + 16u, 40u)');
    expect(src).toContain('subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, col_major>(&tileB, (sgCol + 2u * 16u) * 40u + 0u, 40u)');
    expect(src.match(/subgroupMatrixMultiplyAccumulate/g)!.length).toBe(4 * 4 * 2); // tm·tn per ck, bk/ck = 2
    expect(src.match(/subgroupMatrixStore<row_major>\(&scratch/g)!.length).toBe(16);
    expect(src).toContain('var<storage, read> a: array<vec4<u32>>');
    expect(src).toContain('v += f32(bias[u.biasOffset + cc * u.biasStride]);');
    expect(src).toContain('c[outBase + r * u.n + cc] = f16(v);');
    expect(src).not.toContain('emu');
    // Transposed A / row-major B, and a 16×8×16 config: result<f32, N=8, M=16>, right<f16, N=8, K=16>.
    const t2: SubgroupMatmulTiling = { cm: 16, cn: 8, ck: 16, subgroupSize: 32, sgM: 2, sgN: 2, tm: 2, tn: 2, bk: 32 };
    const src2 = subgroupMatmulShader({ out: 'f32', bias: false, tiling: t2, a: { contig: 'mn', vec: 1 }, b: { contig: 'mn', vec: 4 } });
    expect(src2).toContain('subgroup_matrix_result<f32, 8, 16>()');
    expect(src2).toContain('subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, col_major>(&tileA, 16u * 72u + sgRow + 1u * 16u, 72u)');
    expect(src2).toContain('subgroupMatrixLoad<subgroup_matrix_right<f16, 8, 16>, row_major>(&tileB, 0u * 40u + sgCol + 1u * 8u, 40u)');
    expect(src2).toContain('var<storage, read> a: array<f16>');
    expect(src2).toContain('c[outBase + r * u.n + cc] = v;');
  });

  it('pipeline keys differ for every template value', () => {
    const plan = planSubgroupMatmul(fakeCaps(), problem(4096, 4096, 4096), 'auto');
    if (!plan.use) throw new Error(plan.reason);
    const keys = new Set([
      subgroupMatmulKey(plan, 'f16', null),
      subgroupMatmulKey(plan, 'f32', null),
      subgroupMatmulKey(plan, 'f16', 'f16'),
      subgroupMatmulKey(plan, 'f16', 'f32'),
      subgroupMatmulKey({ ...plan, a: { contig: 'mn', vec: 8 } }, 'f16', null),
      subgroupMatmulKey({ ...plan, b: { contig: 'mn', vec: 4 } }, 'f16', null),
      subgroupMatmulKey({ ...plan, tiling: { ...plan.tiling, bk: 64 } }, 'f16', null),
      subgroupMatmulKey({ ...plan, emulate: true }, 'f16', null),
    ]);
    expect(keys.size).toBe(8);
  });
});

// ---------------------------------------------------------------------------------------------------
// Tint on Dawn's null backend: it advertises chromium-experimental-subgroup-matrix and compiles WGSL
// (parse, resolve, uniformity analysis) without executing it.

interface NullDevice {
  /** Held for the device's lifetime: a collected GPU object takes Dawn's instance down under the device. */
  gpu: GPU;
  device: GPUDevice;
  maxSubgroupSize: number;
}
async function nullDevice(): Promise<NullDevice | null> {
  try {
    const mod = (await import('webgpu')) as unknown as { create: (flags: string[]) => GPU };
    const gpu = mod.create(['backend=null', 'enable-dawn-features=allow_unsafe_apis']);
    const adapter = await gpu.requestAdapter();
    if (!adapter || !adapter.features.has('chromium-experimental-subgroup-matrix')) return null;
    const limits: Record<string, number> = {};
    const al = adapter.limits as unknown as Record<string, number>;
    for (const key in al) if (typeof al[key] === 'number') limits[key] = al[key];
    const device = await adapter.requestDevice({
      requiredFeatures: ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix'] as GPUFeatureName[],
      requiredLimits: limits,
    });
    return { gpu, device, maxSubgroupSize: adapter.info.subgroupMaxSize ?? 0 };
  } catch {
    return null;
  }
}
const nullDev = await nullDevice();

describe.skipIf(!nullDev)('subgroup-matrix matmul: WGSL through Tint (Dawn null backend)', () => {
  const device = nullDev?.device as GPUDevice;
  afterAll(() => device?.destroy());

  async function compile(code: string): Promise<string[]> {
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code });
    const info = await module.getCompilationInfo();
    await device.popErrorScope();
    return info.messages.filter((m) => m.type !== 'info').map((m) => `${m.type} ${m.lineNum}:${m.linePos} ${m.message}`);
  }

  it('Tint rejects what it should (the check is real)', async () => {
    const bad = subgroupMatmulShader({
      out: 'f16',
      bias: false,
      tiling: { cm: 16, cn: 16, ck: 16, subgroupSize: 32, ...SUBGROUP_BLOCK_SMALL },
      a: { contig: 'k', vec: 8 },
      b: { contig: 'mn', vec: 8 },
    }).replace('@builtin(subgroup_id) sg: u32', '@builtin(local_invocation_id) lid: vec3<u32>) {\n  let sg = lid.x / 32u;\n  _ = 0; //');
    const errors = await compile(bad);
    expect(errors.join('\n')).toMatch(/uniform/);
  });

  const tilings: [string, SubgroupMatmulTiling][] = [
    ['16×16×16 large block', { cm: 16, cn: 16, ck: 16, subgroupSize: 32, ...SUBGROUP_BLOCK_LARGE }],
    ['16×16×16 small block', { cm: 16, cn: 16, ck: 16, subgroupSize: 32, ...SUBGROUP_BLOCK_SMALL }],
    ['16×8×16, 2×4 subgroups, bk 64', { cm: 16, cn: 8, ck: 16, subgroupSize: 32, sgM: 2, sgN: 4, tm: 4, tn: 2, bk: 64 }],
    ['16×8×8', { cm: 16, cn: 8, ck: 8, subgroupSize: 32, ...SUBGROUP_BLOCK_SMALL }],
  ];
  for (const [name, tiling] of tilings) {
    it(`${name}: every operand layout, load width, output dtype and bias compiles without warnings`, async () => {
      const problems: string[] = [];
      for (const aContig of ['k', 'mn'] as const)
        for (const bContig of ['k', 'mn'] as const)
          for (const vec of [1, 4, 8] as const)
            for (const [out, bias] of [['f16', false], ['f16', true], ['f32', false], ['f32', true]] as const) {
              const code = subgroupMatmulShader({ out, bias, biasDtype: out, tiling, a: { contig: aContig, vec }, b: { contig: bContig, vec: vec === 1 ? 8 : vec } });
              for (const m of await compile(code)) problems.push(`${aContig}/${bContig}/${vec}/${out}/${bias}: ${m}`);
            }
      expect(problems).toEqual([]);
    });
  }

  it('a pipeline is created where the null device allows it (its subgroups are up to 128 wide)', async () => {
    const tiling: SubgroupMatmulTiling = { cm: 16, cn: 16, ck: 16, subgroupSize: 32, ...SUBGROUP_BLOCK_SMALL };
    const code = subgroupMatmulShader({ out: 'f16', bias: true, tiling, a: { contig: 'k', vec: 8 }, b: { contig: 'k', vec: 8 } });
    const g = subgroupMatmulGeometry(tiling, { contig: 'k', vec: 8 }, { contig: 'k', vec: 8 });
    if (g.threads % nullDev!.maxSubgroupSize !== 0 || g.workgroupBytes > device.limits.maxComputeWorkgroupStorageSize) return;
    device.pushErrorScope('validation');
    device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
    const error = await device.popErrorScope();
    expect(error?.message ?? null).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------------
// Correctness against float64 on f16-rounded inputs.

/** float64 batched matmul of logical row-major values with broadcast batch dims. */
function reference(av: ArrayLike<number>, aShape: readonly number[], bv: ArrayLike<number>, bShape: readonly number[]): { values: Float64Array; shape: number[] } {
  const [m, k] = aShape.slice(-2);
  const n = bShape[bShape.length - 1];
  const ab = aShape.slice(0, -2);
  const bb = bShape.slice(0, -2);
  const rank = Math.max(ab.length, bb.length);
  const pa = [...new Array(rank - ab.length).fill(1), ...ab];
  const pb = [...new Array(rank - bb.length).fill(1), ...bb];
  const batchShape = pa.map((d, i) => Math.max(d, pb[i]));
  const batch = batchShape.reduce((x, y) => x * y, 1);
  const values = new Float64Array(batch * m * n);
  for (let z = 0; z < batch; z++) {
    let rest = z;
    let ia = 0;
    let ib = 0;
    let sa = 1;
    let sb = 1;
    for (let d = rank - 1; d >= 0; d--) {
      const c = rest % batchShape[d];
      rest = Math.floor(rest / batchShape[d]);
      ia += (pa[d] === 1 ? 0 : c) * sa;
      ib += (pb[d] === 1 ? 0 : c) * sb;
      sa *= pa[d];
      sb *= pb[d];
    }
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) s += av[ia * m * k + i * k + q] * bv[ib * k * n + q * n + j];
        values[z * m * n + i * n + j] = s;
      }
  }
  return { values, shape: [...batchShape, m, n] };
}

/** Max error relative to the tolerance |d| ≤ atol + rtol·|ref| (≤ 1 passes). */
function worst(got: ArrayLike<number>, ref: Float64Array, rtol: number, atol: number): number {
  let w = 0;
  for (let i = 0; i < ref.length; i++) w = Math.max(w, Math.abs(got[i] - ref[i]) / (atol + rtol * Math.abs(ref[i])));
  return w;
}

const f16 = (e: Engine, shape: number[], seed: number) => e.tensor(randomValues(shape.reduce((x, y) => x * y, 1), seed), shape, 'f16');

interface MatmulCase {
  name: string;
  /** Builds the operands (views allowed) from f16 leaves. */
  build: (e: Engine) => { a: Tensor; b: Tensor; leaves: Tensor[] };
}
const CASES: MatmulCase[] = [
  { name: 'aligned 64×64×64 (16-byte loads)', build: (e) => { const a = f16(e, [64, 64], 1); const b = f16(e, [64, 64], 2); return { a, b, leaves: [a, b] }; } },
  { name: 'unaligned 67×45×33 (scalar loads, edge tiles)', build: (e) => { const a = f16(e, [67, 45], 3); const b = f16(e, [45, 33], 4); return { a, b, leaves: [a, b] }; } },
  { name: 'edges with 8-byte loads 70×36×20', build: (e) => { const a = f16(e, [70, 36], 5); const b = f16(e, [36, 20], 6); return { a, b, leaves: [a, b] }; } },
  {
    name: 'transposed operands (column-major staging) 72×40×48',
    build: (e) => {
      const at = f16(e, [40, 72], 7);
      const bt = f16(e, [48, 40], 8);
      return { a: ops.transpose(at), b: ops.transpose(bt), leaves: [at, bt] };
    },
  },
  {
    name: 'broadcast batch [2,1,40,24]×[3,24,56] and a batch-offset view',
    build: (e) => {
      const a = f16(e, [2, 1, 40, 24], 9);
      const b0 = f16(e, [4, 24, 56], 10);
      return { a, b: ops.slice(b0, 0, 1, 4), leaves: [a, b0] };
    },
  },
  {
    name: 'stepped slice (no contiguous dim) 33×20×17',
    build: (e) => {
      const a0 = f16(e, [33, 40], 11);
      const b = f16(e, [20, 17], 12);
      return { a: ops.slice(a0, 1, 0, 40, 2), b, leaves: [a0, b] };
    },
  },
];

async function checkCase(e: Engine, c: MatmulCase): Promise<void> {
  const { a, b, leaves } = c.build(e);
  const before = subgroupMatmulDispatches();
  const y = ops.matmul(a, b);
  const [av, bv, yv] = await Promise.all([a.data(), b.data(), y.data()]);
  expect(subgroupMatmulDispatches()).toBe(before + 1);
  expect(y.dtype).toBe('f16');
  const ref = reference(av, a.shape, bv, b.shape);
  expect(y.shape).toEqual(ref.shape);
  // f16 output: half an ulp (2^-11) of rounding; accumulation is f32.
  expect(worst(yv, ref.values, 2 ** -10, 1e-3)).toBeLessThanOrEqual(1);
  for (const t of [y, ...[a, b].filter((v) => !leaves.includes(v)), ...leaves]) t.dispose();
}

// ~35 s on 2 lavapipe cores with a cold shader cache (nearly all of it compiling 9 pipelines); MATMUL_EMULATION=0 skips it.
describe.skipIf(process.env.MATMUL_EMULATION === '0')('subgroup-matrix matmul: the kernel with emulated matrix builtins on this adapter', () => {
  const emulate = (M: number, N: number, K: number) => setSubgroupMatmulEmulation({ config: cfg(M, N, K), subgroupSize: 32 });

  it('8×8×8 matrices, small block: aligned, unaligned, transposed, broadcast batches, strided', async () => {
    emulate(8, 8, 8);
    setSubgroupMatmul('force');
    for (const c of CASES) await checkCase(engine, c);
  });

  it('16×16×16 matrices (the NVIDIA config), small block', async () => {
    emulate(16, 16, 16);
    setSubgroupMatmul('force');
    await checkCase(engine, CASES[3]);
  });

  it('16×8×8 matrices, 2×4 subgroups (non-square tiles and subgroup grid)', async () => {
    emulate(16, 8, 8);
    setSubgroupMatmul({ sgM: 2, sgN: 4, tm: 2, tn: 2, bk: 32 });
    await checkCase(engine, CASES[4]);
  });

  it('linear (bias, transposed weight) and matmulScaled (alpha) keep their semantics', async () => {
    emulate(8, 8, 8);
    setSubgroupMatmul('force');
    const x = f16(engine, [2, 5, 24], 20);
    const w = f16(engine, [40, 24], 21);
    const bias = f16(engine, [40], 22);
    const before = subgroupMatmulDispatches();
    const y = ops.linear(x, w, bias);
    const s = ops.matmulScaled(x, ops.transpose(w), 0.25);
    const [xv, wv, bv, yv, sv] = await Promise.all([x.data(), w.data(), bias.data(), y.data(), s.data()]);
    expect(subgroupMatmulDispatches()).toBe(before + 2);
    const wt = new Float64Array(24 * 40);
    for (let o = 0; o < 40; o++) for (let i = 0; i < 24; i++) wt[i * 40 + o] = wv[o * 24 + i];
    const ref = reference(xv, [2, 5, 24], wt, [24, 40]).values;
    expect(worst(yv, ref.map((v, i) => v + bv[i % 40]), 2 ** -10, 1e-3)).toBeLessThanOrEqual(1);
    expect(worst(sv, ref.map((v) => v * 0.25), 2 ** -10, 1e-3)).toBeLessThanOrEqual(1);
    for (const t of [x, w, bias, y, s]) t.dispose();
  });

  it('f32 output with an f32 bias and alpha (the autocast form), launched directly', async () => {
    emulate(8, 8, 8);
    const [m, k, n] = [37, 24, 41];
    const a = f16(engine, [m, k], 30);
    const b = f16(engine, [n, k], 31); // used transposed: B = bᵀ, k contiguous
    // The bias is a view with an element offset (a slice of a fused parameter, as in DiT's in_proj_bias).
    const biasAll = engine.tensor(randomValues(n + 5, 32), [n + 5]);
    const bias = ops.slice(biasAll, 0, 5);
    const bT = ops.transpose(b);
    const plan = planSubgroupMatmul(caps, problem(m, n, k, { a: rowMajor(m, k), b: colMajor(k, n) }), 'force');
    if (!plan.use) throw new Error(plan.reason);
    expect(plan.b.contig).toBe('k');
    const out = ops.empty(engine.backend, [m, n], 'f32');
    const uniforms = new UniformWriter()
      .u32(m, n, k, 0)
      .u32(k, 1, 1, k)
      .u32(0, 0, 0)
      .f32(0.5)
      .u32(0, 0, 0, 0)
      .u32(0, 0, 0, 0)
      .u32(0, 0, 0, 0)
      .u32(bias.offset, bias.strides[0], 0, 0)
      .finish();
    dispatchSubgroupMatmul(engine.backend as WebGPUBackend, plan, { a, b: bT, bias, out, uniforms });
    expect((out.storage as GpuStorage).buffer).toBeDefined();
    const [av, btv, biv, ov] = await Promise.all([a.data(), bT.data(), bias.data(), out.data()]);
    const ref = reference(av, [m, k], btv, [k, n]).values.map((v, i) => 0.5 * v + biv[i % n]);
    expect(worst(ov, ref, 1e-5, 1e-5)).toBeLessThanOrEqual(1);
    for (const t of [a, b, bT, bias, biasAll, out]) t.dispose();
  });

  it("'off' and f32 operands use the register-tiled kernels", async () => {
    emulate(8, 8, 8);
    setSubgroupMatmul('off');
    const before = subgroupMatmulDispatches();
    const a = f16(engine, [16, 16], 40);
    const y = ops.matmul(a, a);
    setSubgroupMatmul('force');
    const a32 = engine.tensor(randomValues(256, 41), [16, 16]);
    const y32 = ops.matmul(a32, a32);
    await Promise.all([y.data(), y32.data()]);
    expect(subgroupMatmulDispatches()).toBe(before);
    for (const t of [a, y, a32, y32]) t.dispose();
  });
});

describe.skipIf(!hasTensorCores)('subgroup-matrix matmul on tensor cores (needs chromium-experimental-subgroup-matrix; skipped on lavapipe)', () => {
  it('forced on small and edge shapes: aligned, unaligned, transposed, broadcast batches, strided', async () => {
    setSubgroupMatmul('force');
    for (const c of CASES) await checkCase(engine, c);
  });

  it('auto picks it for a 256³ f16 product; large block at 512×512×64 batched', async () => {
    const a = f16(engine, [256, 256], 50);
    const b = f16(engine, [256, 256], 51);
    const before = subgroupMatmulDispatches();
    const y = ops.matmul(a, b);
    const [av, bv, yv] = await Promise.all([a.data(), b.data(), y.data()]);
    expect(subgroupMatmulDispatches()).toBe(before + 1);
    expect(worst(yv, reference(av, [256, 256], bv, [256, 256]).values, 2 ** -10, 1e-2)).toBeLessThanOrEqual(1);
    setSubgroupMatmul(SUBGROUP_BLOCK_LARGE);
    const c = f16(engine, [2, 512, 64], 52);
    const d = f16(engine, [2, 64, 512], 53);
    const z = ops.matmul(c, d);
    const [cv, dv, zv] = await Promise.all([c.data(), d.data(), z.data()]);
    expect(worst(zv, reference(cv, [2, 512, 64], dv, [2, 64, 512]).values, 2 ** -10, 1e-2)).toBeLessThanOrEqual(1);
    for (const t of [a, b, y, c, d, z]) t.dispose();
  });
});
