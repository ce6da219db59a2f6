/**
 * Stage 2, the 3D-VAE with its PatchGAN (REFERENCE_SPEC §4.6–§4.9). Per step: the posterior is sampled
 * (reparameterisation, the stage's Generator), the generator objective of stage-vae-loss.ts is minimised
 * by AdamW over the VAE's trainable parameters (temb_proj has no gradient and is left out), then the
 * discriminator takes its hinge step on the same reconstructions (detached) with its own AdamW. Both use
 * lr 5e-5, betas (0.5, 0.9), weight decay 0.02 and clipping at global norm 3; only the VAE's learning
 * rate follows the cosine per iteration to 1e-6. Validation: L1 (+ LPIPS) of reconstructions from a
 * sampled posterior, drawn from a generator re-created from a fixed seed (deterministic); the `best`
 * checkpoint keeps the lowest. After training, stage-vae-latents.ts dumps the training set's latents
 * and the anatomy template.
 */
import { hashSeed } from '../data/random';
import { tidy } from '../engine/scope';
import type { Tensor } from '../engine/tensor';
import { full, mulScalar } from '../kernels/elementwise';
import { stack } from '../kernels/layout';
import { AdamW, clipGradNorm } from '../kernels/optimizer';
import { Generator, type GeneratorState } from '../kernels/random';
import type { HostTensor } from '../models/io/tensor';
import { readSafetensors } from '../models/io/safetensors';
import { PATCHGAN_CHECKPOINT_PREFIX, PatchGan3d } from '../models/discriminator3d';
import { LPIPS_CHECKPOINT_PREFIX, Lpips, type LpipsConfig } from '../models/lpips';
import { VAE_CONFIGS, VAE3d, type Vae3dConfig } from '../models/vae3d';
import { withoutPrefix } from './checkpoint';
import { CineBatches, NpyCineSubjects, PhantomCineSubjects, type CineBatch, type CineGeometry, type CineSubjects } from './cine-data';
import type { TrainFileSystem } from './files';
import type { Preset, RunOptions } from './options';
import type { BaseStageConfig, Json, Stage, StageContext, StageFactory, StageMetadata, StepOutput, ValidationResult } from './stage';
import {
  adoptDatasetEpoch, hostTensors, loadOptimizer, optimizerMeta, optimizerTensors, PHANTOM_CACHE_BYTES, scheduleLr, StageAmp, subjectEpochs, subjectSplits, validationMeans,
  type AdamWStageConfig, type EpochStageConfig, type OptimizerMeta,
} from './stage-common';
import { discriminatorLoss, generatorLoss, REFERENCE_LOSS_WEIGHTS, type VaeLossWeights } from './stage-vae-loss';
import { writeVaeLatents } from './stage-vae-latents';

export interface VaeStageConfig extends BaseStageConfig, AdamWStageConfig, EpochStageConfig {
  stage: 'vae';
  model: Vae3dConfig;
  /** Model input: frames × size × size. */
  input: CineGeometry;
  /** Base learning rate of both optimizers; the VAE's decays by cosine to minLr, the discriminator's stays. */
  lr: number;
  loss: VaeLossWeights;
  /** First step (0-based) with the adversarial terms (paper: 10,000). */
  discStart: number;
  /** LPIPS weights (safetensors, lpips key layout), or null: the perceptual term is off. */
  lpipsWeights: string | null;
}

interface VaePreset {
  model: Vae3dConfig;
  input: CineGeometry;
  batchSize: number;
  lr: number;
  epochs: number;
  discStart: number;
  trainSubjects: number;
  valSubjects: number;
}

/**
 * tiny: the test-sized VAE on 4 × 32 × 32 clips (32 is the smallest frame the tiny PatchGAN's five
 * convolutions accept), lr 1e-3 (20× the paper's, so the curve moves within ~40 steps), GAN from step 20.
 * cpu: a VAE sized for a CPU adapter on 12 × 32 × 32 clips (latent 4 × 12 × 8 × 8), enough frames and pixels
 * for the LV segmentation of the evaluation; lr 5e-4 (10× the paper's), GAN from step 144 of 192.
 * small: the narrow VAE on 10 × 48 × 48 (latent 4 × 10 × 6 × 6), GAN from step 500 of 1280.
 * paper: the released model and optimisation at 50 × 96 × 96, GAN from step 10,000.
 */
const VAE_PRESETS: Record<Preset, VaePreset> = {
  tiny: { model: VAE_CONFIGS.tiny, input: { frames: 4, size: 32 }, batchSize: 2, lr: 1e-3, epochs: 5, discStart: 20, trainSubjects: 16, valSubjects: 4 },
  cpu: { model: VAE_CONFIGS.cpu, input: { frames: 12, size: 32 }, batchSize: 4, lr: 5e-4, epochs: 3, discStart: 144, trainSubjects: 256, valSubjects: 16 },
  small: { model: VAE_CONFIGS.small, input: { frames: 10, size: 48 }, batchSize: 4, lr: 5e-5, epochs: 10, discStart: 500, trainSubjects: 512, valSubjects: 64 },
  paper: { model: VAE_CONFIGS.paper, input: { frames: 50, size: 96 }, batchSize: 1, lr: 5e-5, epochs: 10, discStart: 10_000, trainSubjects: 4096, valSubjects: 256 },
};

/** Derived seeds, so init, posterior samples, LPIPS dropout, validation samples and data order never share a stream. */
export const vaeSeeds = (seed: number) => ({
  init: hashSeed(seed, 0x7ae1),
  sample: hashSeed(seed, 0x5a3b),
  lpips: hashSeed(seed, 0x1b1f),
  valSample: hashSeed(seed, 0x7a12),
  data: hashSeed(seed, 0xda7b),
});

/** Moves a generator that the model captured (LPIPS dropout) forward to a saved state, in place. */
function advanceTo(gen: Generator, saved: GeneratorState): void {
  if (saved.seed !== gen.seed) throw new Error(`checkpoint generator seed ${saved.seed} differs from the model's ${gen.seed}`);
  gen.take((saved.counter - gen.state().counter) >>> 0);
}

/** LPIPS from a lpips-layout safetensors file; the head widths give the backbone's channels (VGG16 or a test-sized one). */
export async function loadLpips(fs: TrainFileSystem, path: string, backend: VAE3d['backend'], gen: Generator): Promise<Lpips> {
  const file = readSafetensors(await fs.readFile(path), { name: path });
  const keys = [...file.tensors.keys()].some((k) => k.startsWith(LPIPS_CHECKPOINT_PREFIX)) ? withoutPrefix(file.tensors, LPIPS_CHECKPOINT_PREFIX) : file.tensors;
  const channels = [0, 1, 2, 3, 4].map((i) => {
    const head = keys.get(`lin${i}.model.1.weight`);
    if (!head) throw new Error(`${path}: no lin${i}.model.1.weight (expected the lpips key layout: net.slice*, lin0..4)`);
    return head.shape[1];
  }) as unknown as LpipsConfig['channels'];
  const lpips = new Lpips({ backend, gen }, { channels, dropout: 0.5 });
  lpips.loadWeights(new Map([...keys].filter(([k]) => /^(scaling_layer|net\.slice\d|lin\d)\./.test(k))));
  return lpips;
}

const trainable = (named: [string, Tensor][]) => named.filter(([, t]) => t.requiresGrad);

export class VaeStage implements Stage<CineBatch> {
  readonly name = 'vae';
  readonly vaeParams: Tensor[];
  readonly vaeNames: string[];
  readonly discParams: Tensor[];
  readonly discNames: string[];
  /** Mixed precision (--amp): one loss scaler for both optimizers, as the reference's shared GradScaler. */
  private readonly amp: StageAmp;

  constructor(
    readonly config: VaeStageConfig,
    private readonly context: StageContext,
    readonly vae: VAE3d,
    readonly discriminator: PatchGan3d,
    readonly lpips: Lpips | null,
    readonly vaeOptimizer: AdamW,
    readonly discOptimizer: AdamW,
    private initGen: Generator,
    private sampleGen: Generator,
    private readonly lpipsGen: Generator | null,
    readonly train: CineBatches,
    readonly val: CineBatches,
  ) {
    const vaeNamed = trainable(vae.namedParameters());
    this.vaeParams = vaeNamed.map(([, t]) => t);
    this.vaeNames = vaeNamed.map(([n]) => n);
    const discNamed = discriminator.namedParameters();
    this.discParams = discNamed.map(([, t]) => t);
    this.discNames = discNamed.map(([n]) => n);
    this.amp = StageAmp.create(context.engine, config.amp);
  }

  private setDiscriminatorTrainable(on: boolean): void {
    for (const p of this.discParams) p.requiresGrad = on;
  }

  trainStep(batch: CineBatch, step: number): StepOutput {
    const { engine } = this.context;
    const c = this.config;
    const lr = scheduleLr(this.vaeOptimizer, step, c);
    const adversarial = step >= c.discStart;
    const x = engine.tensor(batch.cine, [batch.size, 1, batch.frames, batch.height, batch.width]);

    // Generator step. The discriminator's weights get no gradient here: the reference computes one and
    // zeroes it before the discriminator's own backward, so skipping it changes nothing but the work.
    this.setDiscriminatorTrainable(false);
    let g: ReturnType<typeof generatorLoss> & { detached: Tensor };
    try {
      g = tidy(() => {
        const { out, reconstruction } = this.amp.autocast(() => {
          const { reconstruction, posterior } = this.vae.forward(x, { gen: this.sampleGen });
          const out = generatorLoss({
            x, reconstruction, posterior, lpips: this.lpips, discriminator: adversarial ? this.discriminator : null,
            lastLayer: this.vae.decoder.convOut.weight, weights: c.loss,
          });
          return { out, reconstruction };
        });
        this.amp.backward(out.loss);
        return { ...out, detached: reconstruction.share() };
      });
    } finally {
      this.setDiscriminatorTrainable(true);
    }
    const gradNorm = this.amp.clipAndStep(this.vaeOptimizer, this.vaeParams, c.clipNorm);
    this.vaeOptimizer.zeroGrad();

    // Discriminator step on the same reconstructions.
    let dLoss: Tensor;
    let dGradNorm: Tensor;
    if (adversarial) {
      const d = tidy(() => {
        const out = this.amp.autocast(() => discriminatorLoss(this.discriminator, x, g.detached));
        this.amp.backward(out.loss);
        return out;
      });
      dLoss = d.loss;
      d.logitsReal.dispose();
      d.logitsFake.dispose();
      this.amp.unscale(this.discOptimizer);
      dGradNorm = clipGradNorm(this.discParams, c.clipNorm);
    } else {
      // Before discStart the reference's discriminator loss is multiplied by 0: its gradients are zero,
      // yet AdamW still steps (weight decay shrinks the weights, step counts advance). Zero gradients
      // reproduce that without running the discriminator.
      for (const p of this.discParams) p.grad = full(p.backend, p.shape, 0);
      dLoss = full(x.backend, [], 0);
      dGradNorm = full(x.backend, [], 0);
    }
    this.amp.step(this.discOptimizer);
    this.discOptimizer.zeroGrad();
    g.detached.dispose();
    // Without LPIPS, nll is the L1 tensor itself (logged as l1).
    if (g.nll !== g.l1) g.nll.dispose();
    x.dispose();
    const scalars: Record<string, Tensor> = { loss: g.loss, l1: g.l1 };
    if (g.lpips) scalars.lpips = g.lpips;
    Object.assign(scalars, { kl: g.kl, penalty: g.penalty, gAdv: g.gAdv, wAdv: g.wAdv, dLoss, gradNorm, dGradNorm }, this.amp.endStep());
    return { scalars, lr };
  }

  async validate(): Promise<ValidationResult> {
    const { engine } = this.context;
    const gen = new Generator(vaeSeeds(this.config.seed).valSample);
    this.vae.eval();
    this.lpips?.eval();
    try {
      const [rec, l1, lpips, kl] = await validationMeans(engine, this.val, 4, (batch) => {
        const x = engine.tensor(batch.cine, [batch.size, 1, batch.frames, batch.height, batch.width]);
        // The reference validates on a sampled posterior too (its validation loss is noisy; ours is seeded).
        const { reconstruction, posterior } = this.vae.forward(x, { gen });
        const out = generatorLoss({ x, reconstruction, posterior, lpips: this.lpips, discriminator: null, lastLayer: this.vae.decoder.convOut.weight, weights: this.config.loss });
        // Sample-weighted sums, so a short last batch counts by its size.
        return mulScalar(stack([out.nll, out.l1, out.lpips ?? full(x.backend, [], 0), out.kl]), batch.size);
      });
      const metrics: Record<string, number> = this.lpips ? { rec, l1, lpips, kl } : { rec, l1, kl };
      return { metrics, score: rec, scoreName: 'rec' };
    } finally {
      this.vae.train();
      this.lpips?.train();
    }
  }

  /** The VAE's and the discriminator's weights under the reference checkpoint's names (loss.discriminator.*). */
  async weightTensors(): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    await hostTensors(this.vae.stateDict(), '', out);
    await hostTensors(this.discriminator.stateDict(), PATCHGAN_CHECKPOINT_PREFIX, out);
    return out;
  }

  async stateTensors(): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    await hostTensors(this.vae.stateDict(), 'model.', out);
    await hostTensors(this.discriminator.stateDict(), 'disc.', out);
    await optimizerTensors(this.vaeOptimizer, this.vaeNames, this.vaeParams, 'optim.vae.', out);
    await optimizerTensors(this.discOptimizer, this.discNames, this.discParams, 'optim.disc.', out);
    await this.amp.sync();
    return out;
  }

  metadata(): StageMetadata {
    const generators: { [key: string]: Json } = { init: this.initGen.state() as unknown as Json, sample: this.sampleGen.state() as unknown as Json };
    if (this.lpipsGen) generators.lpips = this.lpipsGen.state() as unknown as Json;
    return {
      optimizers: {
        vae: optimizerMeta(this.vaeOptimizer, this.vaeNames) as unknown as Json,
        disc: optimizerMeta(this.discOptimizer, this.discNames) as unknown as Json,
      },
      generators,
      ...this.amp.metadata(),
    };
  }

  loadState(tensors: Map<string, HostTensor>, metadata: StageMetadata): void {
    this.vae.loadStateDict(withoutPrefix(tensors, 'model.'));
    this.discriminator.loadStateDict(withoutPrefix(tensors, 'disc.'));
    const optimizers = metadata.optimizers as unknown as { vae: OptimizerMeta; disc: OptimizerMeta };
    loadOptimizer(this.vaeOptimizer, this.vaeNames, optimizers.vae, tensors, 'optim.vae.', 'optim.vae.');
    loadOptimizer(this.discOptimizer, this.discNames, optimizers.disc, tensors, 'optim.disc.', 'optim.disc.');
    const gens = metadata.generators as unknown as { init: GeneratorState; sample: GeneratorState; lpips?: GeneratorState };
    this.initGen = Generator.fromState(gens.init);
    this.sampleGen = Generator.fromState(gens.sample);
    if (this.lpipsGen) {
      if (!gens.lpips) throw new Error('checkpoint has no LPIPS dropout generator state, but this run uses LPIPS');
      advanceTo(this.lpipsGen, gens.lpips);
    }
    this.amp.load(metadata);
  }

  dispose(): void {
    this.amp.dispose();
    this.vaeOptimizer.dispose();
    this.discOptimizer.dispose();
    this.vae.dispose();
    this.discriminator.dispose();
    this.lpips?.dispose();
  }
}

/** Training and validation subjects: fixed phantom index ranges of the seed, or a dataset's splits. */
export function vaeSubjects(config: VaeStageConfig, fs: TrainFileSystem): Promise<{ train: CineSubjects; val: CineSubjects }> {
  return subjectSplits<CineSubjects>(config, (dir, split) => NpyCineSubjects.open(fs, dir, split), (seed, offset, length) => new PhantomCineSubjects(seed, offset, length));
}

/** Whether fixed phantom clips at the input size fit the host cache. */
export const cachePhantom = (config: VaeStageConfig) =>
  !config.data && (config.trainSubjects + config.valSubjects) * config.input.frames * config.input.size ** 2 * 4 <= PHANTOM_CACHE_BYTES;

export const vaeStage: StageFactory<VaeStageConfig> & { afterTraining: typeof writeVaeLatents } = {
  name: 'vae',

  resolveConfig(options: RunOptions): VaeStageConfig {
    const preset = VAE_PRESETS[options.preset];
    const o = options.overrides;
    const { batchSize, seed, trainSubjects, stepsPerEpoch, epochs, schedule } = subjectEpochs(o, preset);
    return {
      stage: 'vae', preset: options.preset, seed, batchSize, ...schedule.steps,
      data: options.data ?? null,
      model: preset.model, input: { ...preset.input },
      lr: o.lr ?? preset.lr, minLr: 1e-6, betas: [0.5, 0.9], eps: 1e-8, weightDecay: 0.02, clipNorm: 3,
      ...(options.amp ? { amp: true } : {}),
      loss: { ...REFERENCE_LOSS_WEIGHTS }, discStart: o.discStart ?? preset.discStart, lpipsWeights: options.lpipsWeights ?? null,
      epochs, stepsPerEpoch, trainSubjects, valSubjects: preset.valSubjects, valBatchSize: batchSize,
      perEpoch: schedule.perEpoch,
    };
  },

  async create(config, context): Promise<VaeStage> {
    const { engine, fs } = context;
    const factor = 2 ** (config.model.chMult.length - 1);
    if (config.input.size % factor !== 0) throw new Error(`vae: input size ${config.input.size} is not divisible by the VAE's spatial factor ${factor}`);
    const s = vaeSeeds(config.seed);
    const initGen = new Generator(s.init);
    const ctx = { backend: engine.backend, gen: initGen };
    const vae = new VAE3d(ctx, config.model);
    const discriminator = new PatchGan3d(ctx, config.model.discriminator);
    let lpips: Lpips | null = null;
    let lpipsGen: Generator | null = null;
    if (config.lpipsWeights) {
      lpipsGen = new Generator(s.lpips);
      lpips = await loadLpips(fs, config.lpipsWeights, engine.backend, lpipsGen);
    } else {
      console.warn('vae: no --lpips-weights given; training without the perceptual (LPIPS) term');
    }
    const adamw = { lr: config.lr, betas: config.betas, eps: config.eps, weightDecay: config.weightDecay };
    const vaeOptimizer = new AdamW(trainable(vae.namedParameters()).map(([, t]) => t), adamw);
    const discOptimizer = new AdamW(discriminator.parameters(), adamw);
    const subjects = await vaeSubjects(config, fs);
    const cache = cachePhantom(config);
    const geometry = config.input;
    const train = new CineBatches(subjects.train, { ...geometry, batchSize: config.batchSize, shuffle: true, seed: s.data, cache });
    const val = new CineBatches(subjects.val, { ...geometry, batchSize: config.valBatchSize, shuffle: false, seed: s.data, cache });
    adoptDatasetEpoch(config, train.batchesPerEpoch, subjects);
    return new VaeStage(config, context, vae, discriminator, lpips, vaeOptimizer, discOptimizer, initGen, new Generator(s.sample), lpipsGen, train, val);
  },

  afterTraining: writeVaeLatents,
};
