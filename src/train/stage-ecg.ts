/**
 * Stage 1, PA-MAE (REFERENCE_SPEC §3.4–§3.6): the encoder sees the full ECG, its features are masked at
 * ρ = 0.5 (one draw per sample and feature step, from the stage's Generator), and
 * L = 100 · MSE(recon, ecg) + 10 · MSE(phase, [sin φ, cos φ]). AdamW (lr 1e-4, betas (0.9, 0.95), wd 0.05,
 * all parameters), cosine per iteration to 1e-6 with T_max = total steps, gradient clipping at global
 * norm 3, best checkpoint by validation reconstruction MSE (validation masks too, from a generator reset
 * to the same seed before every pass, so validation is deterministic).
 */
import { hashSeed } from '../data/random';
import { tidy } from '../engine/scope';
import type { Tensor } from '../engine/tensor';
import { stack } from '../kernels/layout';
import { mulScalar } from '../kernels/elementwise';
import { AdamW } from '../kernels/optimizer';
import { Generator, type GeneratorState } from '../kernels/random';
import type { HostTensor } from '../models/io/tensor';
import { encoderSteps, PAMAE_CONFIGS, PaMae, type PaMaeConfig } from '../models/pamae';
import { withoutPrefix } from './checkpoint';
import { EcgBatches, NpyEcgSubjects, PhantomEcgSubjects, type EcgBatch, type EcgSubjects } from './ecg-data';
import type { Preset, RunOptions } from './options';
import type { BaseStageConfig, Json, Stage, StageContext, StageFactory, StageMetadata, ValidationResult } from './stage';
import {
  adoptDatasetEpoch, hostTensors, loadOptimizer, optimizerMeta, optimizerTensors, PHANTOM_CACHE_BYTES, scheduleLr, StageAmp, subjectEpochs, subjectSplits, validationMeans,
  type AdamWStageConfig, type EpochStageConfig, type OptimizerMeta,
} from './stage-common';

export interface EcgStageConfig extends BaseStageConfig, AdamWStageConfig, EpochStageConfig {
  stage: 'ecg';
  model: PaMaeConfig;
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
 * so the curve moves within ~50 steps). cpu: the same model trained longer on more subjects (256 steps), the
 * ECG stage of the chain sized for a CPU adapter (see docs/TRAINING.md). small/paper: the paper's optimisation on the half-width and the
 * paper model (batch 32, 100 epochs for paper).
 */
const ECG_PRESETS: Record<Preset, EcgPreset> = {
  tiny: { model: PAMAE_CONFIGS.tiny, batchSize: 8, lr: 1e-3, epochs: 4, trainSubjects: 96, valSubjects: 16 },
  cpu: { model: PAMAE_CONFIGS.tiny, batchSize: 16, lr: 1e-3, epochs: 8, trainSubjects: 512, valSubjects: 32 },
  small: { model: PAMAE_CONFIGS.small, batchSize: 8, lr: 1e-4, epochs: 20, trainSubjects: 1024, valSubjects: 128 },
  paper: { model: PAMAE_CONFIGS.paper, batchSize: 32, lr: 1e-4, epochs: 100, trainSubjects: 4096, valSubjects: 512 },
};

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
  private readonly amp: StageAmp;

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
    this.amp = StageAmp.create(context.engine, config.amp);
  }

  trainStep(batch: EcgBatch, step: number) {
    const { engine } = this.context;
    const c = this.config;
    const lr = scheduleLr(this.optimizer, step, c);
    const ecg = engine.tensor(batch.ecg, [batch.size, 12, batch.length]);
    const target = engine.tensor(batch.phase, [batch.size, 2, batch.steps]);
    const [loss, recon, phase] = tidy(() => {
      const out = this.amp.autocast(() => this.model.loss(ecg, target, { gen: this.maskGen }));
      this.amp.backward(out.loss);
      return [out.loss, out.recon, out.phase];
    });
    const gradNorm = this.amp.clipAndStep(this.optimizer, this.params, c.clipNorm);
    this.optimizer.zeroGrad();
    ecg.dispose();
    target.dispose();
    return { scalars: { loss, recon, phase, gradNorm, ...this.amp.endStep() }, lr };
  }

  async validate(): Promise<ValidationResult> {
    const { engine } = this.context;
    const gen = new Generator(seeds(this.config.seed).valMask);
    this.model.eval();
    try {
      const [recon, phase, loss] = await validationMeans(engine, this.val, 3, (batch) => {
        const ecg = engine.tensor(batch.ecg, [batch.size, 12, batch.length]);
        const target = engine.tensor(batch.phase, [batch.size, 2, batch.steps]);
        const out = this.model.loss(ecg, target, { gen });
        // Sample-weighted sums, so a short last batch counts by its size.
        return mulScalar(stack([out.recon, out.phase, out.loss]), batch.size);
      });
      return { metrics: { recon, phase, loss }, score: recon, scoreName: 'recon' };
    } finally {
      this.model.train();
    }
  }

  private async modelTensors(prefix: string): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    await hostTensors(this.model.stateDict(), prefix, out);
    return out;
  }

  weightTensors(): Promise<Map<string, HostTensor>> {
    return this.modelTensors('');
  }

  async stateTensors(): Promise<Map<string, HostTensor>> {
    const out = await this.modelTensors('model.');
    await optimizerTensors(this.optimizer, this.paramNames, this.params, 'optim.', out);
    await this.amp.sync();
    return out;
  }

  metadata(): StageMetadata {
    return {
      optimizer: optimizerMeta(this.optimizer, this.paramNames) as unknown as Json,
      generators: { init: this.initGen.state() as unknown as Json, mask: this.maskGen.state() as unknown as Json },
      ...this.amp.metadata(),
    };
  }

  loadState(tensors: Map<string, HostTensor>, metadata: StageMetadata): void {
    this.model.loadStateDict(withoutPrefix(tensors, 'model.'));
    loadOptimizer(this.optimizer, this.paramNames, metadata.optimizer as unknown as OptimizerMeta, tensors, 'optim.');
    const gens = metadata.generators as unknown as { init: GeneratorState; mask: GeneratorState };
    this.initGen = Generator.fromState(gens.init);
    this.maskGen = Generator.fromState(gens.mask);
    this.amp.load(metadata);
  }

  dispose(): void {
    this.optimizer.dispose();
    this.model.dispose();
    this.amp.dispose();
  }
}

function subjectsFor(config: EcgStageConfig, context: StageContext): Promise<{ train: EcgSubjects; val: EcgSubjects }> {
  return subjectSplits<EcgSubjects>(config, (dir, split) => NpyEcgSubjects.open(context.fs, dir, split), (seed, offset, length) => new PhantomEcgSubjects(seed, offset, length));
}

export const ecgStage: StageFactory<EcgStageConfig> = {
  name: 'ecg',

  resolveConfig(options: RunOptions): EcgStageConfig {
    const preset = ECG_PRESETS[options.preset];
    const o = options.overrides;
    const { batchSize, seed, trainSubjects, stepsPerEpoch, epochs, schedule } = subjectEpochs(o, preset);
    return {
      stage: 'ecg', preset: options.preset, seed, batchSize, ...schedule.steps,
      data: options.data ?? null,
      model: preset.model, lr: o.lr ?? preset.lr, minLr: 1e-6, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.05, clipNorm: 3,
      ...(options.amp ? { amp: true } : {}),
      epochs, stepsPerEpoch, trainSubjects, valSubjects: preset.valSubjects, valBatchSize: batchSize,
      perEpoch: schedule.perEpoch,
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
    adoptDatasetEpoch(config, train.batchesPerEpoch, subjects);
    return new EcgStage(config, context, model, optimizer, initGen, new Generator(s.mask), train, val);
  },
};
