/**
 * Stage 3, AMDF (REFERENCE_SPEC §5): rectified flow in the VAE latent space from an anatomy-anchored
 * source x₀ = template + α·ε (α = 0.8) to the stored latent x₁ (mode μ) of the subject, conditioned on
 * its ECG. t ~ U(0, 1) per sample, x_t = (1 − t)·x₀ + t·x₁, loss = MSE(v_θ(x_t, t, c), x₁ − x₀).
 *
 * The ECG encoder starts from the PA-MAE run's best weights and is fine-tuned jointly, in train mode
 * (BatchNorm batch statistics), in default mode: cycle selection from its phase head (one read-back
 * per step, the algorithm needs it), then the ROI resize of the features to the DiT's frame count. Its
 * tokens are zeroed per sample with p = 0.1 (the null condition of classifier-free guidance). AdamW
 * over DiT + encoder, lr 1e-4, betas (0.9, 0.999), wd 1e-4, clip 1.0, cosine per iteration to 1e-6.
 * Validation: the flow loss on the validation subjects with noise and t from a generator reset to a
 * fixed seed, no condition drop, encoder in eval mode → best checkpoint.
 */
import { hashSeed } from '../data/random';
import type { CycleMode, CycleWindow } from '../data/ecg-phase';
import { joinPath } from '../data/fs';
import { autocast } from '../engine/autocast';
import { noGrad } from '../engine/autograd';
import { tidy } from '../engine/scope';
import type { Tensor } from '../engine/tensor';
import type { Backend } from '../engine/backend';
import type { Engine } from '../engine/engine';
import { add, gt, mul, mulScalar } from '../kernels/elementwise';
import { flowInterpolate, mseLoss } from '../kernels/loss';
import { stack } from '../kernels/layout';
import { AdamW } from '../kernels/optimizer';
import { Generator, rand, randn, type GeneratorState } from '../kernels/random';
import { HostTensor } from '../models/io/tensor';
import { DIT_CONFIGS, EcgDiT, type DitConfig } from '../models/dit';
import { alignTokens, cycleWindowsFromHost, EcgEncoder, type EcgEncoderConfig } from '../models/pamae';
import type { PaMaeConfig } from '../models/pamae-config';
import { VAE3d, type Vae3dConfig } from '../models/vae3d';
import { ALLOW_NON_FINITE_FLAG, readWeights, withoutPrefix } from './checkpoint';
import { assertFiniteWeights } from './integrity';
import { resizeCine, type CineGeometry } from './cine-data';
import { ecgModelInput, FlowBatches, readLatentFile, readTemplate, SubjectReader, VAE_RUN_FILES, type FlowBatch, type LatentSet, type SubjectRef } from './stage-flow-data';
import type { TrainFileSystem } from './files';
import { UsageError, type Preset, type RunOptions } from './options';
import type { BaseStageConfig, Json, Stage, StageContext, StageFactory, StageMetadata, ValidationResult } from './stage';
import { epochSchedule, hostTensors, loadOptimizer, optimizerMeta, optimizerTensors, scheduleLr, StageAmp, type AdamWStageConfig, type EpochStageConfig, type OptimizerMeta } from './stage-common';

/** The DiT's own hyper-parameters; its geometry (channels, h × w, frames, ECG width) follows the VAE and encoder. */
export type DitWidth = Pick<DitConfig, 'hiddenSize' | 'depth' | 'numHeads' | 'mlpRatio' | 'frequencyEmbeddingSize'>;

export interface FlowStageConfig extends BaseStageConfig, AdamWStageConfig, EpochStageConfig {
  stage: 'flow';
  vaeRun: string;
  ecgRun: string;
  /** Files the run was built from (inside the two run directories). */
  files: { latents: string; template: string; vaeWeights: string; ecgWeights: string };
  ditWidth: DitWidth;
  /** Filled in once the runs are read (null in a config that was only resolved). */
  dit: DitConfig | null;
  vae: Vae3dConfig | null;
  /** The VAE run's clip geometry (frames × size × size), for validation clips and ground truths. */
  vaeInput: CineGeometry | null;
  encoder: EcgEncoderConfig | null;
  ecgLength: number | null;
  /** 'faithful' (the reference's atan2 wrap) or 'fixed' (R peak to R peak), spec §2.5. */
  cycle: CycleMode;
  /** Noise scale of the source x₀ = template + α·ε (training default 0.8, spec §5.1). */
  alpha: number;
  /** Per-sample probability of zeroing the ECG tokens (spec §5.3). */
  conditionDrop: number;
}

interface FlowPreset {
  ditWidth: DitWidth;
  batchSize: number;
  lr: number;
  epochs: number;
  valSubjects: number;
}

const widthOf = (c: DitConfig): DitWidth => ({ hiddenSize: c.hiddenSize, depth: c.depth, numHeads: c.numHeads, mlpRatio: c.mlpRatio, frequencyEmbeddingSize: c.frequencyEmbeddingSize });

/**
 * tiny: the golden-test DiT width on whatever latents the VAE run produced, lr 1e-3 (10× the paper's, so
 * a curve moves within tens of steps). cpu: a 64-wide, 3-block DiT for the `cpu` chain (lavapipe-sized).
 * small/paper: the paper's optimisation (10 epochs; batch 4 as [S1]
 * reports, the code's 2 LMDB files being of unknown subject count).
 */
const FLOW_PRESETS: Record<Preset, FlowPreset> = {
  tiny: { ditWidth: widthOf(DIT_CONFIGS.tiny), batchSize: 4, lr: 1e-3, epochs: 4, valSubjects: 8 },
  cpu: { ditWidth: { hiddenSize: 64, depth: 3, numHeads: 4, mlpRatio: 4, frequencyEmbeddingSize: 64 }, batchSize: 8, lr: 5e-4, epochs: 32, valSubjects: 16 },
  small: { ditWidth: widthOf(DIT_CONFIGS.small), batchSize: 4, lr: 1e-4, epochs: 10, valSubjects: 64 },
  paper: { ditWidth: widthOf(DIT_CONFIGS.paper), batchSize: 4, lr: 1e-4, epochs: 10, valSubjects: 256 },
};

const seeds = (seed: number) => ({
  init: hashSeed(seed, 0xf10e),
  noise: hashSeed(seed, 0x2a15),
  valNoise: hashSeed(seed, 0x7a12),
  data: hashSeed(seed, 0xda7b),
});

/** A stored run configuration (config.json) as far as this stage reads it. */
export interface RunConfigJson {
  stage?: string;
  seed: number;
  data: string | null;
  model?: unknown;
  [key: string]: unknown;
}

export async function readRunConfig(fs: TrainFileSystem, runDir: string, stage: string): Promise<RunConfigJson> {
  const path = joinPath(runDir, 'config.json');
  if (!(await fs.exists(path))) throw new Error(`${path}: not found (is ${runDir} a '${stage}' run directory?)`);
  const config = JSON.parse(new TextDecoder().decode(await fs.readFile(path))) as RunConfigJson;
  if (config.stage && config.stage !== stage) throw new Error(`${runDir} holds a '${config.stage}' run, expected '${stage}'`);
  return config;
}

/** The VAE configuration of a VAE run (its `model`, or `vae`, field). */
export function vaeConfigOf(run: RunConfigJson, runDir: string): Vae3dConfig {
  const model = (run.model ?? run.vae) as Vae3dConfig | undefined;
  if (!model || !Array.isArray(model.chMult)) throw new Error(`${runDir}/config.json: no VAE model configuration`);
  return model;
}

export function paMaeConfigOf(run: RunConfigJson, runDir: string): PaMaeConfig {
  const model = run.model as PaMaeConfig | undefined;
  if (!model?.encoder || !model.ecgLength) throw new Error(`${runDir}/config.json: no PA-MAE model configuration`);
  return model;
}

/** The DiT built on the latent geometry [C, T, h, w] and the encoder's feature width. */
export function ditConfigFor(width: DitWidth, latentShape: readonly number[], ecgDim: number): DitConfig {
  const [latentChannels, numFrames, h, w] = latentShape;
  return { ...width, latentChannels, numFrames, latentSize: [h, w], ecgDim };
}

/** Keep-mask [B, 1, 1] of the ECG tokens: 1 with probability 1 − p, one draw per sample. */
export function conditionKeepMask(backend: Backend, batch: number, dropProbability: number, gen: Generator): Tensor {
  return tidy(() => gt(rand(backend, [batch, 1, 1], gen), dropProbability));
}

/**
 * ECG → tokens [B, frames, featureDim] in default mode: the raw encoder forward, one read-back of the
 * phase for the per-sample cycle window (non-differentiable, as the reference), the differentiable
 * ROI resize to `frames`. Call outside tidy(); the result stays on the autograd graph. `autocast`: both
 * synchronous parts run under autocast (mixed precision training).
 */
export async function encodeEcgTokens(encoder: EcgEncoder, ecg: Tensor, frames: number, cycle: CycleMode, options: { grad?: boolean; autocast?: boolean } = {}): Promise<Tensor> {
  return (await encodeEcgTokensWithWindows(encoder, ecg, frames, cycle, options)).tokens;
}

/** encodeEcgTokens, also returning the cycle window of each sample (in the encoder's `featureSteps`). */
export async function encodeEcgTokensWithWindows(
  encoder: EcgEncoder, ecg: Tensor, frames: number, cycle: CycleMode, options: { grad?: boolean; autocast?: boolean } = {},
): Promise<{ tokens: Tensor; windows: CycleWindow[]; featureSteps: number }> {
  // noGrad() and autocast() are synchronous, so the parts before and after the read-back are wrapped separately.
  const cast = <T>(fn: () => T): T => (options.autocast ? autocast(fn) : fn());
  const run = <T>(fn: () => T): T => (options.grad === false ? noGrad(() => cast(fn)) : cast(fn));
  const { features, phase } = run(() => encoder.forwardRaw(ecg));
  try {
    const windows = cycleWindowsFromHost(await phase.data(), phase.shape, cycle);
    return { tokens: run(() => alignTokens(features, windows, frames)), windows, featureSteps: phase.shape[2] };
  } finally {
    features.dispose();
    phase.dispose();
  }
}

/**
 * The flow loss of one batch: x₀ = template + α·ε, t ~ U(0, 1), tokens ⊙ keep, MSE(v, x₁ − x₀). Draws, in
 * this order, the keep mask (when `dropProbability` > 0), ε and t from `gen`.
 */
export function flowLoss(dit: EcgDiT, tokens: Tensor, x1: Tensor, template: Tensor, alpha: number, dropProbability: number, gen: Generator): Tensor {
  return tidy(() => {
    const b = x1.shape[0];
    const condition = dropProbability > 0 ? mul(tokens, conditionKeepMask(x1.backend, b, dropProbability, gen)) : tokens;
    const x0 = add(template, mulScalar(randn(x1.backend, x1.shape, gen), alpha));
    const t = rand(x1.backend, [b], gen);
    const { xt, target } = flowInterpolate(x0, x1, t);
    return mseLoss(dit.forward(xt, t, condition), target);
  });
}

class FlowStage implements Stage<FlowBatch> {
  readonly name = 'flow';
  private readonly params: Tensor[];
  private readonly paramNames: string[];
  private readonly dit: EcgDiT;
  private readonly encoder: EcgEncoder;
  private readonly amp: StageAmp;

  constructor(
    readonly config: FlowStageConfig,
    private readonly context: StageContext,
    models: { dit: EcgDiT; encoder: EcgEncoder },
    private readonly template: Tensor,
    readonly optimizer: AdamW,
    private initGen: Generator,
    private noiseGen: Generator,
    readonly train: FlowBatches,
    private readonly valLatents: LatentSet,
    private readonly reader: SubjectReader,
  ) {
    this.dit = models.dit;
    this.encoder = models.encoder;
    const named = [...this.dit.namedParameters('dit.'), ...this.encoder.namedParameters('encoder.')];
    this.params = named.map(([, t]) => t);
    this.paramNames = named.map(([n]) => n);
    this.amp = StageAmp.create(context.engine, config.amp);
  }

  /** Prepared encoder inputs of the validation subjects, kept across validations (12 × length floats each). */
  private readonly valEcgCache = new Map<number, Promise<Float32Array>>();
  private valEcg(row: number): Promise<Float32Array> {
    let hit = this.valEcgCache.get(row);
    if (!hit) {
      hit = this.reader.ecg(this.valLatents.subjects[row]).then((raw) => ecgModelInput(raw, this.config.ecgLength!));
      this.valEcgCache.set(row, hit);
    }
    return hit;
  }

  private get latentShape(): number[] {
    const d = this.config.dit!;
    return [d.latentChannels, d.numFrames, d.latentSize[0], d.latentSize[1]];
  }

  async trainStep(batch: FlowBatch, step: number) {
    const { engine } = this.context;
    const c = this.config;
    const lr = scheduleLr(this.optimizer, step, c);
    const ecg = engine.tensor(batch.ecg, [batch.size, 12, c.ecgLength!]);
    const x1 = engine.tensor(batch.latents, [batch.size, ...this.latentShape]);
    const tokens = await encodeEcgTokens(this.encoder, ecg, c.dit!.numFrames, c.cycle, { autocast: this.amp.enabled });
    const loss = tidy(() => {
      const out = this.amp.autocast(() => flowLoss(this.dit, tokens, x1, this.template, c.alpha, c.conditionDrop, this.noiseGen));
      this.amp.backward(out);
      return out;
    });
    const gradNorm = this.amp.clipAndStep(this.optimizer, this.params, c.clipNorm);
    this.optimizer.zeroGrad();
    for (const t of [ecg, x1, tokens]) t.dispose();
    return { scalars: { loss, gradNorm, ...this.amp.endStep() }, lr };
  }

  async validate(): Promise<ValidationResult> {
    const { engine } = this.context;
    const c = this.config;
    const gen = new Generator(seeds(c.seed).valNoise);
    const n = this.valLatents.subjects.length;
    const sampleSize = this.latentShape.reduce((a, b) => a * b, 1);
    this.encoder.eval();
    const perBatch: Tensor[] = [];
    try {
      for (let start = 0; start < n; start += c.valBatchSize) {
        const rows = Array.from({ length: Math.min(c.valBatchSize, n - start) }, (_, i) => start + i);
        const ecgs = await Promise.all(rows.map((r) => this.valEcg(r)));
        const ecgData = new Float32Array(rows.length * 12 * c.ecgLength!);
        ecgs.forEach((input, i) => ecgData.set(input, i * 12 * c.ecgLength!));
        const ecg = engine.tensor(ecgData, [rows.length, 12, c.ecgLength!]);
        const x1 = engine.tensor(this.valLatents.data.subarray(start * sampleSize, (start + rows.length) * sampleSize), [rows.length, ...this.latentShape]);
        const tokens = await encodeEcgTokens(this.encoder, ecg, c.dit!.numFrames, c.cycle, { grad: false });
        // Sample-weighted, so a short last batch counts by its size; no condition drop in validation.
        perBatch.push(noGrad(() => tidy(() => mulScalar(flowLoss(this.dit, tokens, x1, this.template, c.alpha, 0, gen), rows.length))));
        tokens.dispose();
        ecg.dispose();
        x1.dispose();
        engine.flush();
      }
      const sums = tidy(() => stack(perBatch));
      const host = await sums.data();
      sums.dispose();
      let total = 0;
      for (let i = 0; i < host.length; i++) total += host[i];
      const loss = total / n;
      return { metrics: { loss }, score: loss, scoreName: 'loss' };
    } finally {
      perBatch.forEach((t) => t.dispose());
      this.encoder.train();
    }
  }

  private async modelTensors(prefix: string): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const [part, model] of [['dit.', this.dit], ['encoder.', this.encoder]] as const) await hostTensors(model.stateDict(), prefix + part, out);
    return out;
  }

  /** `dit.*` (ECG_DiT keys), `encoder.*` (the fine-tuned PA-MAE encoder keys) and the `template` used. */
  async weightTensors(): Promise<Map<string, HostTensor>> {
    const out = await this.modelTensors('');
    out.set('template', new HostTensor('f32', [...this.template.shape], Float32Array.from(await this.template.data())));
    return out;
  }

  async stateTensors(): Promise<Map<string, HostTensor>> {
    const out = await this.modelTensors('model.');
    await optimizerTensors(this.optimizer, this.paramNames, this.params, 'optim.', out);
    await this.amp.sync();
    return out;
  }

  metadata(): StageMetadata {
    return {
      // The phase head gets no gradient in this stage: its step count stays 0 (no state, as torch).
      optimizer: optimizerMeta(this.optimizer, this.paramNames) as unknown as Json,
      generators: { init: this.initGen.state() as unknown as Json, noise: this.noiseGen.state() as unknown as Json },
      ...this.amp.metadata(),
    };
  }

  loadState(tensors: Map<string, HostTensor>, metadata: StageMetadata): void {
    this.dit.loadStateDict(withoutPrefix(tensors, 'model.dit.'));
    this.encoder.loadStateDict(withoutPrefix(tensors, 'model.encoder.'));
    loadOptimizer(this.optimizer, this.paramNames, metadata.optimizer as unknown as OptimizerMeta, tensors, 'optim.');
    const gens = metadata.generators as unknown as { init: GeneratorState; noise: GeneratorState };
    this.initGen = Generator.fromState(gens.init);
    this.noiseGen = Generator.fromState(gens.noise);
    this.amp.load(metadata);
  }

  dispose(): void {
    this.amp.dispose();
    this.optimizer.dispose();
    this.dit.dispose();
    this.encoder.dispose();
    this.template.dispose();
  }
}

/** Latents of the validation subjects: stored by the VAE run, or encoded here (mode μ) with its weights. */
async function validationLatents(config: FlowStageConfig, context: StageContext, train: LatentSet, reader: SubjectReader): Promise<LatentSet> {
  const { fs, engine } = context;
  const stored = joinPath(config.vaeRun, VAE_RUN_FILES.valLatents);
  if (await fs.exists(stored)) {
    const run = await readRunConfig(fs, config.vaeRun, 'vae');
    const set = await readLatentFile(fs, stored, { seed: run.seed, data: run.data });
    if (set.subjects[0]?.kind === 'dataset') set.subjects = set.subjects.map((s) => ({ ...s, split: 'val' as const }));
    return { ...set, data: set.data.slice(0, config.valSubjects * set.sampleShape.reduce((a, b) => a * b, 1)), subjects: set.subjects.slice(0, config.valSubjects) };
  }
  const subjects = await reader.validationSubjects(train.subjects, config.valSubjects);
  const vae = new VAE3d({ backend: engine.backend, gen: new Generator(0) }, config.vae!);
  try {
    vae.loadCheckpoint((await readWeights(fs, config.files.vaeWeights, { allowNonFinite: context.allowNonFiniteWeights })).tensors);
    const data = await encodeSubjectModes(engine, vae, reader, subjects, config.vaeInput!, train.sampleShape.reduce((a, b) => a * b, 1));
    return { data, sampleShape: train.sampleShape, subjects };
  } finally {
    vae.dispose();
  }
}

/**
 * Posterior modes μ of the subjects' clips (resized to the VAE run's `input`), one at a time, with the VAE
 * switched to eval mode: `sampleSize` values each, concatenated in order.
 */
export async function encodeSubjectModes(engine: Engine, vae: VAE3d, reader: SubjectReader, subjects: readonly SubjectRef[], input: CineGeometry, sampleSize: number): Promise<Float32Array> {
  vae.eval();
  const data = new Float32Array(subjects.length * sampleSize);
  for (let i = 0; i < subjects.length; i++) {
    const clip = resizeCine(await reader.cine(subjects[i]), input);
    const mu = noGrad(() => {
      const x = engine.tensor(clip, [1, 1, input.frames, input.size, input.size]);
      const posterior = vae.encode(x);
      const mode = posterior.mode();
      posterior.dispose();
      x.dispose();
      return mode;
    });
    const host = await mu.data();
    mu.dispose();
    if (host.length !== sampleSize) throw new Error(`VAE latent of ${host.length} values does not match the stored latents' ${sampleSize}`);
    data.set(host, i * sampleSize);
  }
  return data;
}

export const flowStage: StageFactory<FlowStageConfig> = {
  name: 'flow',

  resolveConfig(options: RunOptions): FlowStageConfig {
    if (!options.vaeRun || !options.ecgRun) throw new UsageError('stage flow needs --vae-run DIR (a trained VAE run) and --ecg-run DIR (a trained PA-MAE run)');
    if (options.data) throw new UsageError("stage flow trains on the VAE run's subjects; drop --data (the VAE run's data is used)");
    const preset = FLOW_PRESETS[options.preset];
    const o = options.overrides;
    const batchSize = o.batch ?? preset.batchSize;
    const epochs = o.epochs ?? preset.epochs;
    // The epoch length is known once the latents are read (create() fills it in); until then 1 step.
    const schedule = epochSchedule(o, epochs, 1);
    return {
      stage: 'flow', preset: options.preset, seed: o.seed ?? 42, batchSize, ...schedule.steps, data: null,
      vaeRun: options.vaeRun, ecgRun: options.ecgRun,
      files: {
        latents: joinPath(options.vaeRun, VAE_RUN_FILES.latents), template: joinPath(options.vaeRun, VAE_RUN_FILES.template),
        vaeWeights: joinPath(options.vaeRun, VAE_RUN_FILES.weights), ecgWeights: joinPath(options.ecgRun, 'best-weights.safetensors'),
      },
      ditWidth: preset.ditWidth, dit: null, vae: null, vaeInput: null, encoder: null, ecgLength: null,
      cycle: 'faithful', alpha: 0.8, conditionDrop: 0.1,
      lr: o.lr ?? preset.lr, minLr: 1e-6, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-4, clipNorm: 1,
      ...(options.amp ? { amp: true } : {}),
      epochs, stepsPerEpoch: 1, trainSubjects: 0, valSubjects: preset.valSubjects, valBatchSize: batchSize,
      perEpoch: schedule.perEpoch,
    };
  },

  async create(config, context): Promise<Stage> {
    const { engine, fs } = context;
    const vaeRunConfig = await readRunConfig(fs, config.vaeRun, 'vae');
    const ecgRunConfig = await readRunConfig(fs, config.ecgRun, 'ecg');
    const vae = vaeConfigOf(vaeRunConfig, config.vaeRun);
    const paMae = paMaeConfigOf(ecgRunConfig, config.ecgRun);
    for (const path of Object.values(config.files)) if (!(await fs.exists(path))) throw new Error(`${path}: not found (stage flow needs the finished VAE and PA-MAE runs)`);
    const reader = new SubjectReader(fs);
    const latents = await readLatentFile(fs, config.files.latents, { seed: vaeRunConfig.seed, data: vaeRunConfig.data });
    const dit = ditConfigFor(config.ditWidth, latents.sampleShape, paMae.encoder.featureDim);
    if (config.dit && JSON.stringify(config.dit) !== JSON.stringify(dit)) throw new Error(`the latents in ${config.files.latents} no longer match the run's DiT (${JSON.stringify(config.dit.latentSize)} × ${config.dit.numFrames})`);
    const vaeInput = (vaeRunConfig.input as CineGeometry | undefined) ?? { frames: vae.tempRes, size: vae.resolution };
    Object.assign(config, { dit, vae, vaeInput, encoder: paMae.encoder, ecgLength: paMae.ecgLength });

    const s = seeds(config.seed);
    const train = new FlowBatches(latents, reader, { batchSize: config.batchSize, ecgLength: paMae.ecgLength, shuffle: true, seed: s.data });
    if (config.trainSubjects === 0) {
      // First creation: the latent count decides the epoch length (recorded in config.json).
      const epochSteps = train.batchesPerEpoch;
      config.stepsPerEpoch = epochSteps;
      config.trainSubjects = latents.subjects.length;
      if (config.perEpoch.valEvery) config.valEvery = epochSteps;
      if (config.perEpoch.checkpointEvery) config.checkpointEvery = config.valEvery;
      if (config.perEpoch.totalSteps) config.totalSteps = config.epochs * epochSteps;
    } else if (config.trainSubjects !== latents.subjects.length) {
      throw new Error(`${config.files.latents} holds ${latents.subjects.length} latents; the run was started with ${config.trainSubjects}`);
    }
    const valLatents = await validationLatents(config, context, latents, reader);

    const initGen = new Generator(s.init);
    const ctx = { backend: engine.backend, gen: initGen };
    const ditModel = new EcgDiT(ctx, dit);
    const encoder = new EcgEncoder(ctx, paMae.encoder);
    const ecgWeights = (await readWeights(fs, config.files.ecgWeights, { allowNonFinite: context.allowNonFiniteWeights })).tensors;
    encoder.loadStateDict(withoutPrefix(ecgWeights, 'encoder.'));
    encoder.train();
    const templateHost = await readTemplate(fs, config.vaeRun);
    assertFiniteWeights([['template', templateHost]], { source: joinPath(config.vaeRun, VAE_RUN_FILES.template), allowNonFinite: context.allowNonFiniteWeights, optOut: ALLOW_NON_FINITE_FLAG });
    const [, c, , h, w] = templateHost.shape;
    if (c !== dit.latentChannels || h !== dit.latentSize[0] || w !== dit.latentSize[1]) throw new Error(`template (${templateHost.shape.join(', ')}) does not match the latents (${latents.sampleShape.join(', ')})`);
    const template = engine.tensor(templateHost.toFloat32(), [...templateHost.shape]);
    const optimizer = new AdamW([...ditModel.parameters(), ...encoder.parameters()], { lr: config.lr, betas: config.betas, eps: config.eps, weightDecay: config.weightDecay });
    return new FlowStage(config, context, { dit: ditModel, encoder }, template, optimizer, initGen, new Generator(s.noise), train, valLatents, reader);
  },
};
