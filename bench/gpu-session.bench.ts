/**
 * The suites bench/gpu-session.sh runs when a GPU is lent (bench/run.ts registers them as gpu-matmul,
 * gpu-conv, gpu-attention, gpu-vae, gpu-train). Each is sized for an H100 and shrinks to tiny shapes with
 * `--smoke`, so the whole session can be rehearsed on lavapipe. Rows carry extra detail in `info`.
 */
import type { Engine } from '../src/engine/engine';
import { backward, noGrad } from '../src/engine/autograd';
import type { SubgroupMatrixCaps } from '../src/engine/device';
import { tidy } from '../src/engine/scope';
import type { Tensor } from '../src/engine/tensor';
import { attention } from '../src/kernels/attention';
import { convBackwardData, convBackwardWeight, convNd } from '../src/kernels/conv';
import { cast } from '../src/kernels/elementwise';
import { gaussianKl, l1Loss } from '../src/kernels/loss';
import { matmul } from '../src/kernels/matmul';
import {
  planSubgroupMatmul,
  setSubgroupMatmul,
  setSubgroupMatmulEmulation,
  subgroupMatmulDispatches,
  SUBGROUP_BLOCK_LARGE,
  SUBGROUP_BLOCK_SMALL,
  type SubgroupBlock,
} from '../src/kernels/matmul-subgroup';
import { AdamW } from '../src/kernels/optimizer';
import { Generator, randn } from '../src/kernels/random';
import { add, mulScalar } from '../src/kernels/elementwise';
import { DIT_CONFIGS, EcgDiT } from '../src/models/dit';
import { PAMAE_CONFIGS } from '../src/models/pamae';
import { EcgEncoder } from '../src/models/pamae-encoder';
import { VAE_CONFIGS, VAE3d } from '../src/models/vae3d';
import { MemoryTrainFileSystem } from '../src/train/files';
import { parseRunArgs } from '../src/train/options';
import { encodeEcgTokens, flowLoss } from '../src/train/stage-flow';
import { STAGES } from '../src/train/stages';
import { attentionTrainStep } from './attention.bench';
import { row, timeGpu, type BenchRow } from './harness';

/** Options bench/run.ts passes to every suite (the older suites read `quick` only). */
export interface SuiteOptions {
  quick: boolean;
  /** Tiny shapes everywhere: rehearses a GPU session on a CPU adapter. */
  smoke?: boolean;
  /** Matrix sizes (gpu-matmul). */
  sizes?: number[];
  /** Case filter, suite-specific (gpu-train: stage:preset, e.g. vae:paper). */
  cases?: string[];
  /** Run the subgroup-matrix kernel with emulated builtins where the device has none (smoke tests of gpu-matmul). */
  emulateSubgroupMatrix?: boolean;
}

/** A row with free-form details (serialized into the JSON as they are). */
export type SessionRow = BenchRow & { info?: Record<string, unknown> };

const MiB = 2 ** 20;

/** Median ms per call of `fn`, `reps` calls recorded per sample (amortizes the per-sample queue wait). */
async function timeReps(engine: Engine, fn: () => Tensor, reps: number, budgetMs: number): Promise<number> {
  const ms = await timeGpu(engine, () => Array.from({ length: reps }, fn), { warmup: 1, iters: 10, budgetMs });
  return ms / reps;
}

/** Peak pool growth (MiB) over one call of fn after the queue drained. */
async function peakMiB(engine: Engine, fn: () => void | Promise<void>): Promise<number> {
  await engine.sync();
  engine.resetPeakMemory();
  const before = engine.memory().liveBytes;
  await fn();
  await engine.sync();
  return (engine.memory().peakBytes - before) / MiB;
}

const tflops = (flop: number, ms: number) => flop / ms / 1e9;

// ------------------------------------------------------------------------------------------ gpu-matmul

/**
 * f32 (register-tiled), f16 through the register-tiled kernel and f16 on subgroup matrices (tensor cores),
 * at `sizes` (default 4096³). Before any tensor-core timing, the path is checked at 512³ against the f32
 * kernel on the same f16-rounded inputs (max error relative to max |C|), and that it really ran.
 * Then a sweep of block shapes, so one session finds the best one.
 */
export async function runMatmul(engine: Engine, options: SuiteOptions): Promise<SessionRow[]> {
  const rows: SessionRow[] = [];
  const caps = engine.caps!;
  const gen = new Generator(0);
  const sizes = options.sizes ?? (options.smoke ? [96] : [4096]);
  const budgetMs = options.smoke ? 300 : 1500;
  const reps = options.smoke ? 1 : 5;
  const emulate = !caps.subgroupMatrix && !!options.emulateSubgroupMatrix;
  if (emulate) setSubgroupMatmulEmulation({ config: { componentType: 'f16', resultComponentType: 'f32', M: 8, N: 8, K: 8 }, subgroupSize: 32 });
  const sgInfo = caps as typeof caps & Partial<SubgroupMatrixCaps>;
  const tensorCores = caps.subgroupMatrix || emulate;
  try {
    // 1. Correctness of the tensor-core path before timing it.
    let checked = false;
    if (tensorCores && caps.f16) {
      const n = options.smoke ? 64 : 512;
      const a16 = tidy(() => cast(randn(engine.backend, [n, n], gen), 'f16'));
      const b16 = tidy(() => cast(randn(engine.backend, [n, n], gen), 'f16'));
      try {
        setSubgroupMatmul('off');
        const ref = tidy(() => matmul(cast(a16, 'f32'), cast(b16, 'f32')));
        setSubgroupMatmul('force');
        const before = subgroupMatmulDispatches();
        const got = matmul(a16, b16);
        const [rv, gv] = await Promise.all([ref.data(), got.data()]);
        const ran = subgroupMatmulDispatches() - before;
        let maxAbs = 0;
        let maxRef = 0;
        for (let i = 0; i < rv.length; i++) {
          maxAbs = Math.max(maxAbs, Math.abs(gv[i] - rv[i]));
          maxRef = Math.max(maxRef, Math.abs(rv[i]));
        }
        const relErr = maxAbs / maxRef;
        // f16 output: ~2^-11 of |C| from rounding, plus f32 summation-order noise (NaN fails too).
        checked = ran === 1 && relErr < 4e-3;
        rows.push({ suite: 'gpu-matmul', name: `check tensor cores vs f32 kernel (${checked ? 'pass' : 'FAIL'})`, shape: `${n}³`, ms: 0, info: { relErr, ran, emulated: emulate } });
        console.log(`tensor-core check ${n}³: max |err| / max |C| = ${relErr.toExponential(2)}, dispatches ${ran} → ${checked ? 'pass' : 'FAIL'}`);
        [ref, got].forEach((t) => t.dispose());
      } catch (e) {
        rows.push({ suite: 'gpu-matmul', name: 'check tensor cores vs f32 kernel (ERROR)', shape: `${n}³`, ms: 0, info: { error: String((e as Error).stack ?? e) } });
        console.error(`tensor-core check failed: ${(e as Error).stack}`);
      } finally {
        setSubgroupMatmul('auto');
        [a16, b16].forEach((t) => t.dispose());
      }
    }

    // 2. Timings.
    for (const n of sizes) {
      const flop = 2 * n ** 3;
      const a = randn(engine.backend, [n, n], gen);
      const b = randn(engine.backend, [n, n], gen);
      const ms32 = await timeReps(engine, () => matmul(a, b), reps, budgetMs);
      rows.push(row({ suite: 'gpu-matmul', name: 'matmul f32 (register-tiled)', shape: `${n}³`, ms: ms32, gflops: flop / ms32 / 1e6 }));
      console.log(`matmul f32 ${n}³: ${ms32.toFixed(3)} ms, ${tflops(flop, ms32).toFixed(1)} TFLOP/s`);
      if (caps.f16) {
        const a16 = cast(a, 'f16');
        const b16 = cast(b, 'f16');
        setSubgroupMatmul('off');
        const ms16 = await timeReps(engine, () => matmul(a16, b16), reps, budgetMs);
        rows.push(row({ suite: 'gpu-matmul', name: 'matmul f16 (register-tiled, f32 accumulate)', shape: `${n}³`, ms: ms16, gflops: flop / ms16 / 1e6 }));
        console.log(`matmul f16 tiled ${n}³: ${ms16.toFixed(3)} ms, ${tflops(flop, ms16).toFixed(1)} TFLOP/s`);
        if (checked) {
          const blocks: [string, SubgroupBlock | 'auto'][] = [
            ['auto', 'auto'],
            ['large 2×2 sg, 4×4 tiles, bk 32', SUBGROUP_BLOCK_LARGE],
            ['large, bk 64', { ...SUBGROUP_BLOCK_LARGE, bk: 64 }],
            ['2×4 sg, 4×2 tiles, bk 32', { sgM: 2, sgN: 4, tm: 4, tn: 2, bk: 32 }],
            ['4×2 sg, 2×4 tiles, bk 32', { sgM: 4, sgN: 2, tm: 2, tn: 4, bk: 32 }],
            ['2×2 sg, 2×4 tiles, bk 32', { sgM: 2, sgN: 2, tm: 2, tn: 4, bk: 32 }],
            ['small 2×2 sg, 2×2 tiles', SUBGROUP_BLOCK_SMALL],
          ];
          for (const [label, block] of options.smoke ? blocks.slice(0, 2) : blocks) {
            setSubgroupMatmul(block === 'auto' ? 'force' : block);
            const problem = { m: n, n, k: n, batch: 1, a: { dtype: 'f16' as const, strides: [n, 1] as [number, number], offset: 0, batchStrides: [] }, b: { dtype: 'f16' as const, strides: [n, 1] as [number, number], offset: 0, batchStrides: [] } };
            const plan = planSubgroupMatmul(caps, problem);
            if (!plan.use) {
              rows.push({ suite: 'gpu-matmul', name: `matmul f16 tensor cores ${label}: not run`, shape: `${n}³`, ms: 0, info: { reason: plan.reason } });
              continue;
            }
            try {
              const before = subgroupMatmulDispatches();
              const ms = await timeReps(engine, () => matmul(a16, b16), reps, budgetMs);
              const ran = subgroupMatmulDispatches() > before;
              rows.push({ ...row({ suite: 'gpu-matmul', name: `matmul f16 tensor cores ${label}${emulate ? ' (emulated)' : ''}`, shape: `${n}³`, ms, gflops: flop / ms / 1e6 }), info: { tiling: plan.tiling, a: plan.a, b: plan.b, ran } });
              console.log(`matmul f16 tensor cores ${label} ${n}³: ${ms.toFixed(3)} ms, ${tflops(flop, ms).toFixed(1)} TFLOP/s`);
            } catch (e) {
              rows.push({ suite: 'gpu-matmul', name: `matmul f16 tensor cores ${label}: error`, shape: `${n}³`, ms: 0, info: { error: String(e) } });
            }
          }
        }
        [a16, b16].forEach((t) => t.dispose());
      }
      [a, b].forEach((t) => t.dispose());
    }
    rows.push({ suite: 'gpu-matmul', name: 'subgroup-matrix caps', shape: '', ms: 0, info: { subgroupMatrix: caps.subgroupMatrix, configs: sgInfo.subgroupMatrixConfigs, subgroupMinSize: sgInfo.subgroupMinSize, subgroupMaxSize: sgInfo.subgroupMaxSize } });
  } finally {
    setSubgroupMatmul('auto');
    setSubgroupMatmulEmulation(null);
  }
  return rows;
}

// -------------------------------------------------------------------------------------------- gpu-conv

/** conv3d 2×64×16×64×64, k3 p1, 64→64 (PyTorch cuDNN fp32: 40.8 TFLOP/s on the H100): forward, data and weight gradients. */
export async function runConv(engine: Engine, options: SuiteOptions): Promise<SessionRow[]> {
  const [n, c, d, h, w] = options.smoke ? [1, 8, 4, 8, 8] : [2, 64, 16, 64, 64];
  const gen = new Generator(1);
  const x = randn(engine.backend, [n, c, d, h, w], gen);
  const wt = randn(engine.backend, [c, c, 3, 3, 3], gen, 0, 0.05);
  const gy = randn(engine.backend, [n, c, d, h, w], gen);
  const flop = 2 * n * c * d * h * w * c * 27;
  const opts = { padding: 1 };
  const budgetMs = options.smoke ? 300 : 3000;
  const rows: SessionRow[] = [];
  const shape = `x[${[n, c, d, h, w]}] w[${[c, c, 3, 3, 3]}]`;
  for (const [name, fn] of [
    ['conv3d k3 fwd', () => convNd(x, wt, null, opts)],
    ['conv3d k3 dgrad', () => convBackwardData(gy, wt, [n, c, d, h, w], opts)],
    ['conv3d k3 wgrad', () => convBackwardWeight(x, gy, [c, c, 3, 3, 3], opts)],
  ] as [string, () => Tensor][]) {
    const ms = await timeGpu(engine, fn, { warmup: 1, iters: 10, budgetMs });
    rows.push(row({ suite: 'gpu-conv', name, shape, ms, gflops: flop / ms / 1e6 }));
    console.log(`${name} ${shape}: ${ms.toFixed(3)} ms, ${tflops(flop, ms).toFixed(2)} TFLOP/s`);
  }
  [x, wt, gy].forEach((t) => t.dispose());
  return rows;
}

// --------------------------------------------------------------------------------------- gpu-attention

/** Flash attention forward and forward+backward at 28,800 tokens × 8 heads (D 32, the VAE's) and b8 h8 n1024 d64. */
export async function runAttention(engine: Engine, options: SuiteOptions): Promise<SessionRow[]> {
  const cases = options.smoke
    ? [{ b: 1, h: 2, n: 256, d: 32 }, { b: 2, h: 2, n: 64, d: 64 }]
    : [{ b: 1, h: 8, n: 28_800, d: 32 }, { b: 8, h: 8, n: 1024, d: 64 }];
  const rows: SessionRow[] = [];
  const gen = new Generator(2);
  for (const { b, h, n, d } of cases) {
    const [q, k, v] = [0, 1, 2].map(() => randn(engine.backend, [b, h, n, d], gen));
    const fwdFlop = 4 * b * h * n * n * d;
    const label = `B${b} H${h} N${n} D${d}`;
    const timing = { warmup: 1, iters: n >= 7200 ? 3 : 10, budgetMs: options.smoke ? 300 : 4000 };
    const fwdPeak = await peakMiB(engine, () => attention(q, k, v).dispose());
    const fwd = await timeGpu(engine, () => attention(q, k, v), timing);
    rows.push({ ...row({ suite: 'gpu-attention', name: 'flash attention fwd f32', shape: label, ms: fwd, gflops: fwdFlop / fwd / 1e6 }), info: { peakMiB: fwdPeak } });
    for (const t of [q, k, v]) t.requiresGrad = true;
    const step = () => attentionTrainStep(q, k, v);
    const trainPeak = await peakMiB(engine, step);
    const train = await timeGpu(engine, step, timing);
    rows.push({ ...row({ suite: 'gpu-attention', name: 'flash attention fwd+bwd f32', shape: label, ms: train, gflops: (3.5 * fwdFlop) / train / 1e6 }), info: { peakMiB: trainPeak } });
    console.log(`attention ${label}: fwd ${fwd.toFixed(2)} ms (${tflops(fwdFlop, fwd).toFixed(1)} TFLOP/s), fwd+bwd ${train.toFixed(2)} ms, peak ${trainPeak.toFixed(0)} MiB`);
    [q, k, v].forEach((t) => t.dispose());
  }
  return rows;
}

// --------------------------------------------------------------------------------------------- gpu-vae

/** The paper VAE (tiny with --smoke) on one 50×96×96 clip: forward, forward+backward (L1 + KL), peak memory. */
export async function runVae(engine: Engine, options: SuiteOptions): Promise<SessionRow[]> {
  const preset = options.smoke ? 'tiny' : 'paper';
  const config = VAE_CONFIGS[preset];
  const [frames, size] = options.smoke ? [config.tempRes, config.resolution] : [50, 96];
  const gen = new Generator(3);
  const vae = new VAE3d({ backend: engine.backend, gen }, config);
  vae.train();
  const x = randn(engine.backend, [1, 1, frames, size, size], gen);
  const forward = () => {
    const { reconstruction, posterior } = vae.forward(x, { gen });
    const loss = tidy(() => add(l1Loss(reconstruction, x), mulScalar(gaussianKl(posterior.mean, posterior.logvar, 'mean'), 1e-6)));
    reconstruction.dispose();
    posterior.dispose();
    return loss;
  };
  const step = () => {
    const loss = forward();
    backward(loss);
    loss.dispose();
    for (const p of vae.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  };
  const rows: SessionRow[] = [];
  const shape = `${preset} 1×1×${frames}×${size}×${size}`;
  const fwdPeak = await peakMiB(engine, () => noGrad(() => forward().dispose()));
  const fwdMs = await timeGpu(engine, () => noGrad(forward), { warmup: 1, iters: 5, budgetMs: options.smoke ? 500 : 6000 });
  rows.push({ suite: 'gpu-vae', name: 'VAE forward (no grad)', shape, ms: fwdMs, info: { peakMiB: fwdPeak } });
  console.log(`VAE ${shape} forward: ${fwdMs.toFixed(1)} ms, peak +${fwdPeak.toFixed(0)} MiB`);
  const trainPeak = await peakMiB(engine, step);
  const trainMs = await timeGpu(engine, step, { warmup: 0, iters: 5, budgetMs: options.smoke ? 500 : 10000 });
  const live = engine.memory().liveBytes / MiB;
  rows.push({ suite: 'gpu-vae', name: 'VAE forward+backward (L1 + KL)', shape, ms: trainMs, info: { peakMiB: trainPeak, liveMiB: live } });
  console.log(`VAE ${shape} forward+backward: ${trainMs.toFixed(1)} ms, peak +${trainPeak.toFixed(0)} MiB over ${live.toFixed(0)} MiB live (PyTorch fp32: 1518 ms, 11.8 GiB)`);
  x.dispose();
  vae.dispose();
  return rows;
}

// ------------------------------------------------------------------------------------------- gpu-train

/**
 * Training steps per second of each stage. ecg and vae: the real stage (phantom data, optimizer, schedule)
 * through the Stage API. flow: its step's work (ECG encoder → tokens, DiT flow loss, backward, AdamW) on
 * random inputs of the preset's latent geometry, as the real stage needs trained VAE/PA-MAE runs on disk.
 */
export async function runTrain(engine: Engine, options: SuiteOptions): Promise<SessionRow[]> {
  const cases = options.cases ?? (options.smoke ? ['ecg:tiny', 'vae:tiny', 'flow:tiny'] : ['ecg:small', 'vae:small', 'flow:small', 'ecg:paper', 'vae:paper', 'flow:paper']);
  const steps = options.smoke ? 2 : 4;
  const rows: SessionRow[] = [];
  for (const c of cases) {
    const [stage, preset] = c.split(':');
    try {
      const result = stage === 'flow' ? await flowSteps(engine, preset, steps) : await stageSteps(engine, stage, preset, steps);
      rows.push({ suite: 'gpu-train', name: `${stage} training step`, shape: preset, ms: result.ms, info: { stepsPerSecond: 1000 / result.ms, peakMiB: result.peakMiB, firstStepMs: result.firstMs, steps } });
      console.log(`train ${stage}:${preset}: ${result.ms.toFixed(1)} ms/step (${(1000 / result.ms).toFixed(2)} steps/s), first step ${result.firstMs.toFixed(0)} ms, peak ${result.peakMiB.toFixed(0)} MiB`);
    } catch (e) {
      rows.push({ suite: 'gpu-train', name: `${stage} training step: error`, shape: preset, ms: 0, info: { error: String((e as Error).stack ?? e) } });
      console.error(`train ${c} failed: ${(e as Error).stack}`);
    }
  }
  return rows;
}

interface StepTiming {
  ms: number;
  firstMs: number;
  peakMiB: number;
}

async function timeSteps(engine: Engine, steps: number, step: (i: number) => Promise<Tensor[]>): Promise<StepTiming> {
  await engine.sync();
  engine.resetPeakMemory();
  const base = engine.memory().liveBytes;
  let t0 = performance.now();
  (await step(0)).forEach((t) => t.dispose());
  await engine.sync();
  const firstMs = performance.now() - t0;
  t0 = performance.now();
  for (let i = 1; i <= steps; i++) {
    (await step(i)).forEach((t) => t.dispose());
    engine.flush();
  }
  await engine.sync();
  const ms = (performance.now() - t0) / steps;
  return { ms, firstMs, peakMiB: (engine.memory().peakBytes - base) / MiB };
}

async function stageSteps(engine: Engine, name: string, preset: string, steps: number): Promise<StepTiming> {
  const factory = STAGES[name];
  if (!factory) throw new Error(`unknown stage ${name}`);
  const config = factory.resolveConfig(parseRunArgs(['--stage', name, '--config', preset, '--steps', String(steps + 1), '--quiet']));
  const stage = await factory.create(config, { engine, fs: new MemoryTrainFileSystem() });
  try {
    const bpe = stage.train.batchesPerEpoch;
    const batches = await Promise.all(Array.from({ length: Math.min(steps + 1, bpe) }, (_, i) => stage.train.load(0, i)));
    return await timeSteps(engine, steps, async (i) => Object.values((await stage.trainStep(batches[i % batches.length], i)).scalars));
  } finally {
    stage.dispose();
  }
}

async function flowSteps(engine: Engine, preset: string, steps: number): Promise<StepTiming> {
  const key = preset === 'paper' || preset === 'small' ? preset : 'tiny';
  const paMae = PAMAE_CONFIGS[key];
  const dit = { ...DIT_CONFIGS[key], ecgDim: paMae.encoder.featureDim };
  const gen = new Generator(4);
  const ctx = { backend: engine.backend, gen };
  const model = new EcgDiT(ctx, dit);
  const encoder = new EcgEncoder(ctx, paMae.encoder);
  encoder.train();
  const params = [...model.parameters(), ...encoder.parameters()];
  const optimizer = new AdamW(params, { lr: 1e-4, weightDecay: 1e-4 });
  const batch = 4;
  const latent = [dit.latentChannels, dit.numFrames, ...dit.latentSize];
  const ecg = randn(engine.backend, [batch, 12, paMae.ecgLength], gen);
  const x1 = randn(engine.backend, [batch, ...latent], gen);
  const template = randn(engine.backend, [1, dit.latentChannels, 1, ...dit.latentSize], gen);
  try {
    return await timeSteps(engine, steps, async () => {
      const tokens = await encodeEcgTokens(encoder, ecg, dit.numFrames, 'faithful');
      const loss = tidy(() => {
        const l = flowLoss(model, tokens, x1, template, 0.8, 0.1, gen);
        backward(l);
        return l;
      });
      optimizer.step();
      optimizer.zeroGrad();
      tokens.dispose();
      return [loss];
    });
  } finally {
    [ecg, x1, template].forEach((t) => t.dispose());
    model.dispose();
    encoder.dispose();
  }
}
