/**
 * Stage 1, PA-MAE (REFERENCE_SPEC §3.4–§3.6): the encoder sees the full ECG, its features are masked at
 * ρ = 0.5 (one draw per sample and feature step, from the stage's Generator), and
 * L = 100 · MSE(recon, ecg) + 10 · MSE(phase, [sin φ, cos φ]). AdamW (lr 1e-4, betas (0.9, 0.95), wd 0.05,
 * all parameters), cosine per iteration to 1e-6 with T_max = total steps, gradient clipping at global
 * norm 3, best checkpoint by validation reconstruction MSE (validation masks too, from a generator reset
 * to the same seed before every pass, so validation is deterministic).
 */
import { hashSeed } from '../data/random';
import { noGrad } from '../engine/autograd';
import { tidy } from '../engine/scope';
import type { Tensor } from '../engine/tensor';
import { backward } from '../engine/autograd';
import { stack } from '../kernels/layout';
import { mulScalar } from '../kernels/elementwise';
import { AdamW, clipGradNorm, cosineLr, type AdamWState } from '../kernels/optimizer';
import { Generator, type GeneratorState } from '../kernels/random';
import { HostTensor } from '../models/io/tensor';
import { encoderSteps, PAMAE_CONFIGS, PaMae, type PaMaeConfig } from '../models/pamae';
import { withoutPrefix } from './checkpoint';
import { EcgBatches, NpyEcgSubjects, PhantomEcgSubjects, type EcgBatch, type EcgSubjects } from './ecg-data';
import type { Preset, RunOptions } from './options';
import type { BaseStageConfig, Json, Stage, StageContext, StageFactory, StageMetadata, ValidationResult } from './stage';

export interface EcgStageConfig extends BaseStageConfig {
  stage: 'ecg';
  model: PaMaeConfig;
  lr: number;
  minLr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  clipNorm: number;
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

interface EcgPreset {
  model: PaMaeConfig;
  batchSize: number;
  lr: number;
  epochs: number;
  trainSubjects: number;
  valSubjects: number;
}

/**
 * tiny: the 12 × 400 tiny model on 96 phantom subjects, 4 epochs of 12 steps; lr 1e-3 (10× the paper's,
 * so the curve moves within ~50 steps). small/paper: the paper's optimisation on the half-width and the
 * paper model (batch 32, 100 epochs for paper).
 */
const ECG_PRESETS: Record<Preset, EcgPreset> = {
  tiny: { model: PAMAE_CONFIGS.tiny, batchSize: 8, lr: 1e-3, epochs: 4, trainSubjects: 96, valSubjects: 16 },
  small: { model: PAMAE_CONFIGS.small, batchSize: 8, lr: 1e-4, epochs: 20, trainSubjects: 1024, valSubjects: 128 },
  paper: { model: PAMAE_CONFIGS.paper, batchSize: 32, lr: 1e-4, epochs: 100, trainSubjects: 4096, valSubjects: 512 },
};

const PHANTOM_CACHE_BYTES = 384 * 2 ** 20;

/** Derived seeds, so model init, masks, validation masks and data order never share a stream. */
const seeds = (seed: number) => ({
  init: hashSeed(seed, 0x1417),
  mask: hashSeed(seed, 0x3a5c),
  valMask: hashSeed(seed, 0x7a11),
  data: hashSeed(seed, 0xda7a),
});

class EcgStage implements Stage<EcgBatch> {
  readonly name = 'ecg';
  private readonly params: Tensor[];
  private readonly paramNames: string[];

  constructor(
    readonly config: EcgStageConfig,
    private readonly context: StageContext,
    readonly model: PaMae,
    readonly optimizer: AdamW,
    private initGen: Generator,
    private maskGen: Generator,
    readonly train: EcgBatches,
    readonly val: EcgBatches,
  ) {
    const named = model.namedParameters();
    this.params = named.map(([, t]) => t);
    this.paramNames = named.map(([n]) => n);
  }

  trainStep(batch: EcgBatch, step: number) {
    const { engine } = this.context;
    const c = this.config;
    const lr = cosineLr(step, c.totalSteps, c.lr, c.minLr);
    this.optimizer.lr = lr;
    const ecg = engine.tensor(batch.ecg, [batch.size, 12, batch.length]);
    const target = engine.tensor(batch.phase, [batch.size, 2, batch.steps]);
    const [loss, recon, phase] = tidy(() => {
      const out = this.model.loss(ecg, target, { gen: this.maskGen });
      backward(out.loss);
      return [out.loss, out.recon, out.phase];
    });
    const gradNorm = clipGradNorm(this.params, c.clipNorm);
    this.optimizer.step();
    this.optimizer.zeroGrad();
    ecg.dispose();
    target.dispose();
    return { scalars: { loss, recon, phase, gradNorm }, lr };
  }

  async validate(): Promise<ValidationResult> {
    const { engine } = this.context;
    const gen = new Generator(seeds(this.config.seed).valMask);
    this.model.eval();
    const perBatch: Tensor[] = [];
    let count = 0;
    try {
      for (let i = 0; i < this.val.batchesPerEpoch; i++) {
        const batch = await this.val.load(0, i);
        count += batch.size;
        perBatch.push(
          noGrad(() =>
            tidy(() => {
              const ecg = engine.tensor(batch.ecg, [batch.size, 12, batch.length]);
              const target = engine.tensor(batch.phase, [batch.size, 2, batch.steps]);
              const out = this.model.loss(ecg, target, { gen });
              // Sample-weighted sums, so a short last batch counts by its size.
              return mulScalar(stack([out.recon, out.phase, out.loss]), batch.size);
            }),
          ),
        );
        engine.flush();
      }
      const sums = tidy(() => stack(perBatch));
      const host = await sums.data();
      sums.dispose();
      const total = [0, 0, 0];
      for (let b = 0; b < perBatch.length; b++) for (let k = 0; k < 3; k++) total[k] += host[3 * b + k];
      const [recon, phase, loss] = total.map((v) => v / count);
      return { metrics: { recon, phase, loss }, score: recon, scoreName: 'recon' };
    } finally {
      perBatch.forEach((t) => t.dispose());
      this.model.train();
    }
  }

  private async modelTensors(prefix: string): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const [name, t] of this.model.stateDict()) {
      const data = Float32Array.from(await t.data());
      out.set(prefix + name, new HostTensor('f32', [...t.shape], data));
    }
    return out;
  }

  weightTensors(): Promise<Map<string, HostTensor>> {
    return this.modelTensors('');
  }

  async stateTensors(): Promise<Map<string, HostTensor>> {
    const out = await this.modelTensors('model.');
    const state = await this.optimizer.state();
    state.params.forEach((ps, i) => {
      if (!ps) return;
      const shape = [...this.params[i].shape];
      out.set(`optim.${this.paramNames[i]}.exp_avg`, new HostTensor('f32', shape, ps.expAvg));
      out.set(`optim.${this.paramNames[i]}.exp_avg_sq`, new HostTensor('f32', shape, ps.expAvgSq));
    });
    return out;
  }

  metadata(): StageMetadata {
    const o = this.optimizer;
    return {
      optimizer: {
        lr: o.lr, betas: [o.beta1, o.beta2], eps: o.eps, weightDecay: o.weightDecay,
        // Per-parameter step counts; 0 = no state yet (as torch before the first step).
        steps: this.params.map((_, i) => o.stepOf(i)),
        parameterNames: this.paramNames,
      },
      generators: { init: this.initGen.state() as unknown as Json, mask: this.maskGen.state() as unknown as Json },
    };
  }

  loadState(tensors: Map<string, HostTensor>, metadata: StageMetadata): void {
    this.model.loadStateDict(withoutPrefix(tensors, 'model.'));
    const meta = metadata.optimizer as { lr: number; betas: [number, number]; eps: number; weightDecay: number; steps: number[]; parameterNames: string[] };
    if (meta.parameterNames.join('\n') !== this.paramNames.join('\n')) throw new Error('checkpoint optimizer state lists different parameters than the model');
    const state: AdamWState = {
      lr: meta.lr, betas: meta.betas, eps: meta.eps, weightDecay: meta.weightDecay,
      params: this.paramNames.map((name, i) => {
        const m = tensors.get(`optim.${name}.exp_avg`);
        const v = tensors.get(`optim.${name}.exp_avg_sq`);
        if (!m || !v || meta.steps[i] === 0) return null;
        return { step: meta.steps[i], expAvg: m.data as Float32Array, expAvgSq: v.data as Float32Array };
      }),
    };
    this.optimizer.loadState(state);
    const gens = metadata.generators as unknown as { init: GeneratorState; mask: GeneratorState };
    this.initGen = Generator.fromState(gens.init);
    this.maskGen = Generator.fromState(gens.mask);
  }

  dispose(): void {
    this.optimizer.dispose();
    this.model.dispose();
  }
}

async function subjectsFor(config: EcgStageConfig, context: StageContext): Promise<{ train: EcgSubjects; val: EcgSubjects }> {
  if (config.data) {
    return { train: await NpyEcgSubjects.open(context.fs, config.data, 'train'), val: await NpyEcgSubjects.open(context.fs, config.data, 'val') };
  }
  // Fixed phantom sets: training subjects 0..N-1, validation subjects N..N+M-1 of the same seed.
  return {
    train: new PhantomEcgSubjects(config.seed, 0, config.trainSubjects),
    val: new PhantomEcgSubjects(config.seed, config.trainSubjects, config.valSubjects),
  };
}

export const ecgStage: StageFactory<EcgStageConfig> = {
  name: 'ecg',

  resolveConfig(options: RunOptions): EcgStageConfig {
    const preset = ECG_PRESETS[options.preset];
    const o = options.overrides;
    const batchSize = o.batch ?? preset.batchSize;
    const seed = o.seed ?? 42;
    // With --data the split sizes decide the epoch length; the factory checks it again once opened.
    const trainSubjects = preset.trainSubjects;
    const stepsPerEpoch = Math.floor(trainSubjects / batchSize);
    const epochs = o.epochs ?? preset.epochs;
    const totalSteps = o.steps ?? epochs * stepsPerEpoch;
    const valEvery = o.valEvery ?? stepsPerEpoch;
    return {
      stage: 'ecg', preset: options.preset, seed, batchSize, totalSteps, valEvery,
      checkpointEvery: o.checkpointEvery ?? valEvery, plotEvery: o.plotEvery ?? 25, logEvery: o.logEvery ?? 10,
      data: options.data ?? null,
      model: preset.model, lr: o.lr ?? preset.lr, minLr: 1e-6, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.05, clipNorm: 3,
      epochs, stepsPerEpoch, trainSubjects, valSubjects: preset.valSubjects, valBatchSize: batchSize,
      perEpoch: { totalSteps: o.steps === undefined, valEvery: o.valEvery === undefined, checkpointEvery: o.checkpointEvery === undefined && o.valEvery === undefined },
    };
  },

  async create(config, context): Promise<Stage> {
    const { engine } = context;
    const s = seeds(config.seed);
    const initGen = new Generator(s.init);
    const model = new PaMae({ backend: engine.backend, gen: initGen }, config.model);
    const optimizer = new AdamW(model.parameters(), { lr: config.lr, betas: config.betas, eps: config.eps, weightDecay: config.weightDecay });
    const length = config.model.ecgLength;
    const steps = encoderSteps(config.model.encoder, length);
    const subjects = await subjectsFor(config, context);
    // Phantom sets are fixed, so prepared samples are kept, unless that would hold too much host memory
    // (the paper preset's 4096 × 12 × 5000 floats): then they are regenerated each epoch (≈30 ms each).
    const cache = !config.data && (config.trainSubjects + config.valSubjects) * 12 * length * 4 <= PHANTOM_CACHE_BYTES;
    const train = new EcgBatches(subjects.train, { batchSize: config.batchSize, length, steps, shuffle: true, seed: s.data, cache });
    const val = new EcgBatches(subjects.val, { batchSize: config.valBatchSize, length, steps, shuffle: false, seed: s.data, cache });
    if (config.data && train.batchesPerEpoch !== config.stepsPerEpoch) {
      // The dataset decides the epoch length: keep the configured epochs, recompute derived step counts.
      const epochSteps = train.batchesPerEpoch;
      if (config.perEpoch.valEvery) config.valEvery = epochSteps;
      if (config.perEpoch.checkpointEvery) config.checkpointEvery = epochSteps;
      if (config.perEpoch.totalSteps) config.totalSteps = config.epochs * epochSteps;
      config.stepsPerEpoch = epochSteps;
      config.trainSubjects = subjects.train.length;
      config.valSubjects = subjects.val.length;
    }
    return new EcgStage(config, context, model, optimizer, initGen, new Generator(s.mask), train, val);
  },
};
