/**
 * Conformance cases for the in-place updates (AdamW, gradient clipping, the device loss scaler): the same
 * steps run on the GPU and on the float64 reference backend, then every parameter is compared.
 */
import type { Engine } from '../../src/engine/engine';
import type { Tensor } from '../../src/engine/tensor';
import { AdamW, clipGradNorm, cosineLr } from '../../src/kernels/optimizer';
import { DeviceGradScaler } from '../../src/kernels/grad-scaler';
import { permute } from '../../src/kernels/views';
import { mulScalar } from '../../src/kernels/elementwise';
import { assertClose, ConformanceFailure, seededValues, type ConformanceContext, type CustomCase } from './harness';

const shapes = [[3, 5], [7], [2, 2], [1]];
const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
/** Parameter 1 never gets a gradient, parameter 2 only on even steps: both must be left as the reference leaves them. */
const hasGrad = (i: number, step: number) => i !== 1 && (i !== 2 || step % 2 === 0);
const gradValues = (i: number, step: number, scale = 1) => seededValues(sizes[i], 100 * step + i, -2 * scale, 2 * scale);

function parameters(e: Engine): Tensor[] {
  return shapes.map((s, i) => {
    const t = e.tensor(seededValues(sizes[i], 50 + i), s);
    t.requiresGrad = true;
    return t;
  });
}

/** Sets step `step`'s gradients; parameter 0's arrives as a transposed view at step 3 (the optimizer must copy it). */
function setGrads(e: Engine, params: Tensor[], step: number, scale = 1): void {
  params.forEach((p, i) => {
    if (!hasGrad(i, step)) return;
    const values = gradValues(i, step, scale);
    if (i === 0 && step === 3) {
      const transposed = new Float64Array(15);
      for (let r = 0; r < 3; r++) for (let c = 0; c < 5; c++) transposed[c * 3 + r] = values[r * 5 + c];
      const stored = e.tensor(transposed, [5, 3]);
      p.grad = permute(stored, [1, 0]);
      stored.dispose();
    } else p.grad = e.tensor(values, p.shape);
  });
}

async function compareParams(gpu: Tensor[], ref: Tensor[], rtol: number, atol: number): Promise<void> {
  for (let i = 0; i < gpu.length; i++) assertClose(await gpu[i].dataF64(), await ref[i].dataF64(), rtol, atol, `parameter ${i}`);
}

type Steps = (e: Engine, params: Tensor[]) => Promise<Tensor[]>;

/** Runs `steps` on both backends from the same start and compares the parameters (and any tensors it returns). */
async function onBoth(ctx: ConformanceContext, steps: Steps, rtol: number, atol: number): Promise<void> {
  const runs: { params: Tensor[]; extra: Tensor[] }[] = [];
  for (const e of [ctx.gpu, ctx.cpu]) {
    const params = parameters(e);
    runs.push({ params, extra: await steps(e, params) });
  }
  const [g, r] = runs;
  try {
    await compareParams(g.params, r.params, rtol, atol);
    for (let i = 0; i < g.extra.length; i++) assertClose(await g.extra[i].dataF64(), await r.extra[i].dataF64(), rtol, atol, `result ${i}`);
  } finally {
    for (const run of runs) for (const t of [...run.params, ...run.extra]) t.dispose();
  }
}

const adamwSteps: Steps = async (e, params) => {
  const opt = new AdamW(params, { lr: 1, betas: [0.9, 0.95], weightDecay: 0.05 });
  for (let step = 0; step < 5; step++) {
    opt.zeroGrad();
    setGrads(e, params, step);
    opt.lr = cosineLr(step, 6, 1e-2, 1e-4);
    opt.step();
  }
  const counts = [0, 1, 2, 3].map((i) => opt.stepOf(i)).join(',');
  opt.zeroGrad();
  opt.dispose();
  if (counts !== '5,0,3,5') throw new ConformanceFailure(`${e.kind}: AdamW step counts ${counts}, expected 5,0,3,5`);
  return [];
};

const clippedSteps: Steps = async (e, params) => {
  const opt = new AdamW(params, { lr: 1e-2, betas: [0.9, 0.999], weightDecay: 0.01 });
  const norms: Tensor[] = [];
  for (let step = 0; step < 3; step++) {
    opt.zeroGrad();
    setGrads(e, params, step, 4);
    norms.push(clipGradNorm(params, 1.0));
    opt.step();
  }
  opt.zeroGrad();
  opt.dispose();
  return norms;
};

/** Scaled gradients with an overflow at step 1: that update is skipped and the scale backs off, on both backends. */
const scaledSteps: Steps = async (e, params) => {
  const opt = new AdamW(params, { lr: 1e-2, betas: [0.9, 0.999], weightDecay: 0.01 });
  const scaler = new DeviceGradScaler(e.backend, { initScale: 1024, growthInterval: 2 });
  const scalars: Tensor[] = [];
  for (let step = 0; step < 4; step++) {
    opt.zeroGrad();
    setGrads(e, params, step === 3 ? 4 : step);
    params.forEach((p) => {
      if (!p.grad) return;
      const scaled = step === 1 ? mulScalar(p.grad, Infinity) : scaler.scale(p.grad);
      p.grad.dispose();
      p.grad = scaled;
    });
    scaler.unscale(opt);
    scaler.step(opt);
    scaler.update();
    // A copy of the scale this update used: the device state itself changes with the next update.
    const { scale, skipped, skippedSteps } = scaler.stepScalars();
    skipped.dispose();
    scalars.push(scale, skippedSteps);
  }
  opt.zeroGrad();
  opt.dispose();
  scaler.dispose();
  return scalars;
};

export const optimizerCases: CustomCase[] = [
  { name: 'AdamW 5 steps: weight decay, bias correction, cosine schedule, missing and strided gradients', run: (ctx) => onBoth(ctx, adamwSteps, 1e-5, 1e-6) },
  { name: 'clipGradNorm then AdamW, 3 steps (returned norms compared too)', run: (ctx) => onBoth(ctx, clippedSteps, 1e-5, 1e-6) },
  // β₂ = 0.999: the f32 bias correction 1 - β₂ᵗ carries ~3e-5 relative error into early updates, hence the looser tolerance.
  { name: 'DeviceGradScaler: unscale, overflow skip, backoff and growth', run: (ctx) => onBoth(ctx, scaledSteps, 2e-4, 1e-6) },
];
