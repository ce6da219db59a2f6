/**
 * What the training stages (ecg, vae, flow) share: the AdamW and epoch fields of their configurations,
 * the step counts derived from the epoch length, the per-iteration cosine learning rate, the checkpoint
 * form of AdamW state (`<prefix><parameter>.exp_avg[_sq]` tensors plus JSON scalars), model state dicts
 * as host tensors, train/validation subject splits, sample-weighted validation means and mixed precision
 * (StageAmp: autocast + device loss scaling around the step).
 */
import { autocast, supportsF16 } from '../engine/autocast';
import { backward, noGrad } from '../engine/autograd';
import type { Engine } from '../engine/engine';
import { tidy } from '../engine/scope';
import type { Tensor } from '../engine/tensor';
import { stack } from '../kernels/layout';
import { DeviceGradScaler, type DeviceGradScalerState } from '../kernels/grad-scaler';
import { clipGradNorm, cosineLr, type AdamW, type AdamWState } from '../kernels/optimizer';
import { HostTensor } from '../models/io/tensor';
import type { SplitName } from '../data/dataset';
import type { RunOverrides } from './options';
import type { BaseStageConfig, StageBatches } from './stage';

/** Host memory that fixed phantom sets may keep as prepared samples (above it they are regenerated each epoch). */
export const PHANTOM_CACHE_BYTES = 384 * 2 ** 20;

/** AdamW with a cosine learning rate per iteration from `lr` to `minLr`, clipped at global norm `clipNorm`. */
export interface AdamWStageConfig {
  lr: number;
  minLr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  clipNorm: number;
  /** Mixed precision (--amp): f16 autocast of forward + loss, dynamic loss scaling. Absent in older configs = off. */
  amp?: boolean;
}

/** Epochs over fixed training subjects. */
export interface EpochStageConfig {
  epochs: number;
  stepsPerEpoch: number;
  /** Phantom set sizes (ignored with --data, where the dataset's splits decide). */
  trainSubjects: number;
  valSubjects: number;
  /** Samples per validation batch. */
  valBatchSize: number;
  /** Which step counts follow the epoch length (and are recomputed once a dataset's size is known). */
  perEpoch: { totalSteps: boolean; valEvery: boolean; checkpointEvery: boolean };
}

/**
 * The step counts of a run of `epochs` epochs of `stepsPerEpoch` steps, unless overridden: `steps` total,
 * validation every epoch, the `last` checkpoint at every validation; and which of them follow the epoch length.
 */
export function epochSchedule(o: RunOverrides, epochs: number, stepsPerEpoch: number) {
  const totalSteps = o.steps ?? epochs * stepsPerEpoch;
  const valEvery = o.valEvery ?? stepsPerEpoch;
  return {
    steps: { totalSteps, valEvery, checkpointEvery: o.checkpointEvery ?? valEvery, plotEvery: o.plotEvery ?? 25, logEvery: o.logEvery ?? 10 },
    perEpoch: { totalSteps: o.steps === undefined, valEvery: o.valEvery === undefined, checkpointEvery: o.checkpointEvery === undefined && o.valEvery === undefined },
  };
}

/**
 * Batch size, seed and the epoch schedule of a stage whose presets count training subjects (ecg, vae).
 * With --data the split sizes decide the epoch length instead; adoptDatasetEpoch applies that once opened.
 */
export function subjectEpochs(o: RunOverrides, preset: { batchSize: number; trainSubjects: number; epochs: number }) {
  const batchSize = o.batch ?? preset.batchSize;
  const trainSubjects = preset.trainSubjects;
  const stepsPerEpoch = Math.floor(trainSubjects / batchSize);
  const epochs = o.epochs ?? preset.epochs;
  return { batchSize, seed: o.seed ?? 42, trainSubjects, stepsPerEpoch, epochs, schedule: epochSchedule(o, epochs, stepsPerEpoch) };
}

/**
 * With --data the dataset decides the epoch length: when its training batches per epoch differ from the
 * configured ones, the configured epochs are kept and the derived step counts recomputed.
 */
export function adoptDatasetEpoch(config: BaseStageConfig & EpochStageConfig, epochSteps: number, subjects: { train: { length: number }; val: { length: number } }): void {
  if (!config.data || epochSteps === config.stepsPerEpoch) return;
  if (config.perEpoch.valEvery) config.valEvery = epochSteps;
  if (config.perEpoch.checkpointEvery) config.checkpointEvery = epochSteps;
  if (config.perEpoch.totalSteps) config.totalSteps = config.epochs * epochSteps;
  config.stepsPerEpoch = epochSteps;
  config.trainSubjects = subjects.train.length;
  config.valSubjects = subjects.val.length;
}

/** Training and validation subjects: a dataset's splits, or fixed phantom index ranges of the seed (training 0..N-1, validation N..N+M-1). */
export async function subjectSplits<S>(
  config: { data: string | null; seed: number; trainSubjects: number; valSubjects: number },
  open: (dir: string, split: SplitName) => Promise<S>,
  phantom: (seed: number, offset: number, length: number) => S,
): Promise<{ train: S; val: S }> {
  if (config.data) return { train: await open(config.data, 'train'), val: await open(config.data, 'val') };
  return { train: phantom(config.seed, 0, config.trainSubjects), val: phantom(config.seed, config.trainSubjects, config.valSubjects) };
}

/** Sets the optimizer's learning rate for step `step` (cosine per iteration to minLr over totalSteps) and returns it. */
export function scheduleLr(optimizer: AdamW, step: number, c: BaseStageConfig & AdamWStageConfig): number {
  const lr = cosineLr(step, c.totalSteps, c.lr, c.minLr);
  optimizer.lr = lr;
  return lr;
}

/** AdamW scalars and per-parameter step counts, as stored in a checkpoint's metadata. */
export interface OptimizerMeta {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  steps: number[];
  parameterNames: string[];
}

export function optimizerMeta(o: AdamW, names: string[]): OptimizerMeta {
  // Per-parameter step counts; 0 = no state yet (as torch before the first step).
  return { lr: o.lr, betas: [o.beta1, o.beta2], eps: o.eps, weightDecay: o.weightDecay, steps: names.map((_, i) => o.stepOf(i)), parameterNames: names };
}

/** Adds the AdamW moments of `params` (named `names`) to `out` as `<prefix><name>.exp_avg` and `.exp_avg_sq`. */
export async function optimizerTensors(o: AdamW, names: string[], params: Tensor[], prefix: string, out: Map<string, HostTensor>): Promise<void> {
  const state = await o.state();
  state.params.forEach((ps, i) => {
    if (!ps) return;
    const shape = [...params[i].shape];
    out.set(`${prefix}${names[i]}.exp_avg`, new HostTensor('f32', shape, ps.expAvg));
    out.set(`${prefix}${names[i]}.exp_avg_sq`, new HostTensor('f32', shape, ps.expAvgSq));
  });
}

/**
 * Restores what optimizerMeta() and optimizerTensors() stored. `label`, when given, names the optimizer
 * in the error for a parameter list that differs from the model's.
 */
export function loadOptimizer(o: AdamW, names: string[], meta: OptimizerMeta, tensors: Map<string, HostTensor>, prefix: string, label?: string): void {
  if (meta.parameterNames.join('\n') !== names.join('\n')) throw new Error(`checkpoint optimizer state${label === undefined ? '' : ` (${label})`} lists different parameters than the model`);
  const state: AdamWState = {
    lr: meta.lr, betas: meta.betas, eps: meta.eps, weightDecay: meta.weightDecay,
    params: names.map((name, i) => {
      const m = tensors.get(`${prefix}${name}.exp_avg`);
      const v = tensors.get(`${prefix}${name}.exp_avg_sq`);
      if (!m || !v || meta.steps[i] === 0) return null;
      return { step: meta.steps[i], expAvg: m.data as Float32Array, expAvgSq: v.data as Float32Array };
    }),
  };
  o.loadState(state);
}

/** Adds a state dict to `out` under `prefix`. */
export async function hostTensors(named: Iterable<[string, Tensor]>, prefix: string, out: Map<string, HostTensor>): Promise<void> {
  for (const [name, t] of named) {
    // f32 for every entry, integer buffers (num_batches_tracked) included.
    out.set(prefix + name, new HostTensor('f32', [...t.shape], Float32Array.from(await t.data())));
  }
}

/**
 * One pass over the validation batches (epoch 0, in order): `metrics` gives `count` scalars of a batch as
 * a [count] tensor (run under noGrad and tidy); returns their means over the samples, each batch weighted
 * by its size, so a short last batch counts by its size.
 */
export async function validationMeans<B extends { size: number }>(engine: Engine, batches: StageBatches<B>, count: number, metrics: (batch: B) => Tensor): Promise<number[]> {
  const perBatch: Tensor[] = [];
  let samples = 0;
  try {
    for (let i = 0; i < batches.batchesPerEpoch; i++) {
      const batch = await batches.load(0, i);
      samples += batch.size;
      perBatch.push(noGrad(() => tidy(() => metrics(batch))));
      engine.flush();
    }
    const sums = tidy(() => stack(perBatch));
    const host = await sums.data();
    sums.dispose();
    const total = new Array<number>(count).fill(0);
    for (let b = 0; b < perBatch.length; b++) for (let k = 0; k < count; k++) total[k] += host[count * b + k];
    return total.map((v) => v / samples);
  } finally {
    perBatch.forEach((t) => t.dispose());
  }
}

/** Message of the refusal when --amp meets a device without f16 support. */
export const AMP_NEEDS_F16 = "--amp needs a WebGPU device with the 'shader-f16' feature, and this one does not have it; train without --amp";

/**
 * Mixed precision and the non-finite guard of one stage's training step (docs/TRAINING.md § Mixed precision,
 * § Non-finite values). Both use the device loss scaler (DeviceGradScaler), so no step waits for the host:
 * - AMP on: autocast() around forward + loss, backward of the loss times the device-resident scale,
 *   gradients unscaled and tested for Inf/NaN on the device before clipping, the optimizer step gated on
 *   that test, the scale updated once per iteration.
 * - AMP off (guard): no autocast and no scaling (scale 1, never grown or backed off, so unscaling multiplies
 *   by exactly 1 and the arithmetic is the plain step's), but the same device test of the gradients and the
 *   same gated step: a step whose gradients hold Inf/NaN changes no weight, moment or step count. Each
 *   step logs `nonfinite.skipped` (1 when skipped) and `nonfinite.skippedSteps` (the run's total).
 */
export class StageAmp {
  private constructor(readonly scaler: DeviceGradScaler, private readonly mixed: boolean) {}

  /** AMP for a stage config (the guard alone when off); throws AMP_NEEDS_F16 when AMP is requested on a device without shader-f16. */
  static create(engine: Engine, enabled: boolean | undefined): StageAmp {
    if (!enabled) return new StageAmp(new DeviceGradScaler(engine.backend, { initScale: 1, growthFactor: 1, backoffFactor: 1 }), false);
    if (!supportsF16(engine.backend)) throw new Error(AMP_NEEDS_F16);
    return new StageAmp(new DeviceGradScaler(engine.backend), true);
  }

  /** Mixed precision (autocast and loss scaling) is on. */
  get enabled(): boolean {
    return this.mixed;
  }

  /** fn under autocast when AMP is on (synchronous parts of the forward pass and the loss). */
  autocast<T>(fn: () => T): T {
    return this.mixed ? autocast(fn) : fn();
  }

  /** backward(loss), of the scaled loss when AMP is on. */
  backward(loss: Tensor): void {
    if (!this.mixed) return backward(loss);
    const scaled = this.scaler.scale(loss);
    try {
      backward(scaled);
    } finally {
      scaled.dispose();
    }
  }

  /** Unscales the optimizer's gradients and tests them for Inf/NaN (once per iteration; step() does it when not done). */
  unscale(optimizer: AdamW): void {
    this.scaler.unscale(optimizer);
  }

  /** The optimizer step, gated on this iteration's Inf/NaN test. */
  step(optimizer: AdamW): void {
    this.scaler.step(optimizer);
  }

  /** Unscale, clip at `maxNorm` (returns the pre-clip norm), step: the usual tail of a stage's step. */
  clipAndStep(optimizer: AdamW, params: Tensor[], maxNorm: number): Tensor {
    this.unscale(optimizer);
    const norm = clipGradNorm(params, maxNorm);
    this.step(optimizer);
    return norm;
  }

  /**
   * Ends the iteration: updates the scaler and returns its scalars for the step's log. AMP: `amp.scale` used
   * this step, `amp.skipped` 1 when the step was skipped, `amp.skippedSteps` so far. Guard:
   * `nonfinite.skipped` and `nonfinite.skippedSteps`.
   */
  endStep(): Record<string, Tensor> {
    this.scaler.update();
    const s = this.scaler.stepScalars();
    if (this.mixed) return { 'amp.scale': s.scale, 'amp.skipped': s.skipped, 'amp.skippedSteps': s.skippedSteps };
    s.scale.dispose();
    return { 'nonfinite.skipped': s.skipped, 'nonfinite.skippedSteps': s.skippedSteps };
  }

  /** Reads the scaler state back; call in stateTensors(), before metadata() is taken for a checkpoint. */
  async sync(): Promise<void> {
    await this.scaler.sync();
  }

  /** `{ amp: {scale, growthTracker, skippedSteps} }` with AMP, `{ nonfinite: {skippedSteps} }` without. */
  metadata(): { amp?: { [key: string]: number }; nonfinite?: { [key: string]: number } } {
    if (this.mixed) return { amp: { ...this.scaler.state() } };
    return { nonfinite: { skippedSteps: this.scaler.state().skippedSteps } };
  }

  /** Restores the scaler from checkpoint metadata (a checkpoint of an AMP run always has `amp`). */
  load(metadata: { amp?: unknown; nonfinite?: unknown }): void {
    if (this.mixed) {
      if (!metadata.amp) throw new Error('checkpoint has no loss-scaler state (amp), but this run uses --amp');
      this.scaler.loadState(metadata.amp as DeviceGradScalerState);
      return;
    }
    // Checkpoints written before the guard have no count: none were skipped.
    const skippedSteps = (metadata.nonfinite as { skippedSteps?: number } | undefined)?.skippedSteps ?? 0;
    this.scaler.loadState({ scale: 1, growthTracker: 0, skippedSteps });
  }

  dispose(): void {
    this.scaler.dispose();
  }
}
