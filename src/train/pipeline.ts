/**
 * The trained chain for inference: a flow run directory (its config.json points to the VAE and PA-MAE
 * runs) → ECG encoder + ECG_DiT + anatomy template + VAE decoder, and `generate()` from a 12 × 5000
 * recording to a cine clip in [0, 1].
 *
 * Weights: the flow run's `best-weights.safetensors` (`dit.*`, `encoder.*`, `template`), or its `last`
 * checkpoint when no validation has run yet; the VAE from the VAE run's best weights. The ECG encoder is
 * the one fine-tuned with the DiT by default; `stage1Encoder` reloads the PA-MAE run's encoder instead,
 * which is what the reference's `infer_flow.py` does (spec §9.2 item 1), although the DiT was trained on
 * the fine-tuned features. Every model runs in eval mode (BatchNorm running statistics).
 */
import { hashSeed } from '../data/random';
import { joinPath } from '../data/fs';
import { noGrad } from '../engine/autograd';
import type { Engine } from '../engine/engine';
import type { Tensor } from '../engine/tensor';
import { Generator } from '../kernels/random';
import type { HostTensor } from '../models/io/tensor';
import { EcgDiT } from '../models/dit';
import { EcgEncoder } from '../models/pamae';
import { VAE3d } from '../models/vae3d';
import { ALLOW_NON_FINITE_FLAG, checkpointPath, loadCheckpoint, readWeights, withoutPrefix } from './checkpoint';
import { assertFiniteWeights } from './integrity';
import { resizeCine } from './cine-data';
import type { TrainFileSystem } from './files';
import { decodeToUnitRange, sampleLatents, SAMPLE_DEFAULTS, type FlowSampleOptions } from './sampler';
import { ecgModelInput, readTemplate } from './stage-flow-data';
import { encodeEcgTokens, readRunConfig, type FlowStageConfig } from './stage-flow';

export interface PipelineOptions {
  /** Use the PA-MAE run's encoder (the reference's inference) instead of the fine-tuned one. */
  stage1Encoder?: boolean;
  /**
   * Load weights with NaN/Inf values (refused by default, naming the file and tensor). Generation still
   * fails on a non-finite output: this only lets one look at what such weights do.
   */
  allowNonFiniteWeights?: boolean;
}

/** A generated latent or clip with NaN/Inf values: the weights or the input are broken; nothing is written. */
export class NonFiniteOutputError extends Error {
  constructor(readonly what: string, readonly count: number, readonly total: number) {
    super(
      `generation produced ${count} non-finite value(s) of ${total} in the ${what}; refusing to write a clip from it ` +
        '(it would be all black). The weights are probably diverged (check the training run for NaN losses) or the ECG holds NaN/Inf',
    );
    this.name = 'NonFiniteOutputError';
  }
}

/** Throws NonFiniteOutputError when `values` hold NaN/Inf, or values outside [lo, hi]. */
export function assertFiniteOutput(what: string, values: ArrayLike<number>, range?: [number, number]): void {
  let bad = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) bad++;
  if (bad) throw new NonFiniteOutputError(what, bad, values.length);
  if (!range) return;
  for (let i = 0; i < values.length; i++) {
    if (values[i] < range[0] || values[i] > range[1]) throw new Error(`generation: the ${what} has a value ${values[i]} at ${i}, outside [${range[0]}, ${range[1]}]`);
  }
}

/**
 * Decodes latents [B, C, T, h, w] to clips in [0, 1] (decodeToUnitRange), reads both back once and refuses a
 * clip with NaN/Inf or a value outside [0, 1] (NonFiniteOutputError naming `names(b)`): the clamp passes NaN
 * through, and a NaN latent must never become an all-black clip. Consumes `latents`.
 */
export async function decodeAndCheck(vae: VAE3d, latents: Tensor, names: (row: number) => { latent: string; clip: string }): Promise<GeneratedClip[]> {
  let clips: Tensor;
  try {
    clips = decodeToUnitRange(vae, latents);
  } catch (e) {
    latents.dispose();
    throw e;
  }
  const [batch, , frames, height, width] = clips.shape;
  const [clipHost, latentHost] = await Promise.all([clips.data(), latents.data()]);
  clips.dispose();
  latents.dispose();
  const clipSize = frames * height * width;
  const latentSize = latentHost.length / batch;
  return Array.from({ length: batch }, (_, b) => {
    const clip = Float32Array.from(clipHost.subarray(b * clipSize, (b + 1) * clipSize));
    const latent = Float32Array.from(latentHost.subarray(b * latentSize, (b + 1) * latentSize));
    const name = names(b);
    assertFiniteOutput(name.latent, latent);
    assertFiniteOutput(name.clip, clip, [0, 1]);
    return { clip, latent, frames, height, width };
  });
}

export interface GeneratedClip {
  /** (frames, height, width) in [0, 1]. */
  clip: Float32Array;
  /** The sampled latent (C, T, h, w) before decoding. */
  latent: Float32Array;
  frames: number;
  height: number;
  width: number;
}

/** What the checks of a single generated clip call its parts. */
export const SINGLE_CLIP_NAMES = { latent: 'sampled latent', clip: 'decoded clip' };

export class FlowPipeline {
  private constructor(
    private readonly engine: Engine,
    readonly config: FlowStageConfig,
    readonly dit: EcgDiT,
    readonly encoder: EcgEncoder,
    readonly vae: VAE3d,
    readonly template: Tensor,
    /** Where the DiT (and, unless stage1Encoder, the encoder) weights came from. */
    readonly weightsSource: string,
    readonly encoderSource: string,
  ) {}

  static async load(engine: Engine, fs: TrainFileSystem, flowRunDir: string, options: PipelineOptions = {}): Promise<FlowPipeline> {
    const config = (await readRunConfig(fs, flowRunDir, 'flow')) as unknown as FlowStageConfig;
    if (!config.dit || !config.encoder || !config.vae || !config.ecgLength) throw new Error(`${flowRunDir}/config.json: incomplete flow configuration`);
    // Models are built with a throwaway generator: every parameter is overwritten by the stored weights.
    const ctx = { backend: engine.backend, gen: new Generator(0) };
    const dit = new EcgDiT(ctx, config.dit);
    const encoder = new EcgEncoder(ctx, config.encoder);
    const vae = new VAE3d(ctx, config.vae);
    let template: Tensor | null = null;
    try {
      const best = joinPath(flowRunDir, 'best-weights.safetensors');
      let weights: Map<string, HostTensor>;
      let weightsSource: string;
      const allowNonFinite = options.allowNonFiniteWeights;
      if (await fs.exists(best)) {
        weights = (await readWeights(fs, best, { allowNonFinite })).tensors;
        weightsSource = best;
      } else {
        weights = withoutPrefix((await loadCheckpoint(fs, flowRunDir, 'last', { allowNonFinite })).tensors, 'model.');
        weightsSource = checkpointPath(flowRunDir, 'last');
      }
      dit.loadStateDict(withoutPrefix(weights, 'dit.'));
      let encoderSource = weightsSource;
      if (options.stage1Encoder) {
        encoderSource = config.files.ecgWeights;
        encoder.loadStateDict(withoutPrefix((await readWeights(fs, encoderSource, { allowNonFinite })).tensors, 'encoder.'));
      } else encoder.loadStateDict(withoutPrefix(weights, 'encoder.'));
      vae.loadCheckpoint((await readWeights(fs, config.files.vaeWeights, { allowNonFinite })).tensors);
      const templateHost = weights.get('template') ?? (await readTemplate(fs, config.vaeRun));
      assertFiniteWeights([['template', templateHost]], { source: `${flowRunDir} (anatomy template)`, allowNonFinite, optOut: ALLOW_NON_FINITE_FLAG });
      template = engine.tensor(templateHost.toFloat32(), [...templateHost.shape]);
      for (const m of [dit, encoder, vae]) m.eval();
      return new FlowPipeline(engine, config, dit, encoder, vae, template, weightsSource, encoderSource);
    } catch (e) {
      for (const m of [dit, encoder, vae]) m.dispose();
      template?.dispose();
      throw e;
    }
  }

  /** Input length of the ECG encoder (samples per lead). */
  get ecgLength(): number {
    return this.config.ecgLength!;
  }

  /**
   * One recording (12 × 5000 at 500 Hz, as the data layer prepares it) → a clip. The noise of input i
   * comes from Generator(hashSeed(seed, i)), so a clip does not depend on which other inputs ran with it.
   */
  async generate(raw: Float32Array, options: FlowSampleOptions & { index?: number } = {}): Promise<GeneratedClip> {
    const o = { ...SAMPLE_DEFAULTS, ...options };
    const ecg = this.engine.tensor(ecgModelInput(raw, this.ecgLength), [1, 12, this.ecgLength]);
    const tokens = await encodeEcgTokens(this.encoder, ecg, this.config.dit!.numFrames, this.config.cycle, { grad: false });
    ecg.dispose();
    const latent = sampleLatents(this.dit, tokens, this.template, { ...o, seed: hashSeed(o.seed, options.index ?? 0) });
    tokens.dispose();
    return (await decodeAndCheck(this.vae, latent, () => SINGLE_CLIP_NAMES))[0];
  }

  /**
   * The VAE's round trip of a normalised 50 × 96 × 96 cine in [-1, 1] (as the data layer prepares it): resized to
   * the VAE's input as in training, encoded, posterior mode, decoded to [0, 1]. What the chain could reach with
   * a perfect flow: the evaluation's ceiling.
   */
  async reconstruct(cine: Float32Array): Promise<GeneratedClip> {
    const input = this.config.vaeInput;
    if (!input) throw new Error('reconstruct: the flow run does not record the VAE input geometry');
    const x = this.engine.tensor(resizeCine(cine, input), [1, 1, input.frames, input.size, input.size]);
    const { latent, decoded } = noGrad(() => {
      const posterior = this.vae.encode(x);
      const mu = posterior.mode();
      posterior.dispose();
      return { latent: mu, decoded: decodeToUnitRange(this.vae, mu) };
    });
    x.dispose();
    const [clipHost, latentHost] = await Promise.all([decoded.data(), latent.data()]);
    decoded.dispose();
    latent.dispose();
    assertFiniteOutput('encoded latent', latentHost);
    assertFiniteOutput('decoded clip', clipHost, [0, 1]);
    return { clip: Float32Array.from(clipHost), latent: Float32Array.from(latentHost), frames: input.frames, height: input.size, width: input.size };
  }

  dispose(): void {
    for (const m of [this.dit, this.encoder, this.vae]) m.dispose();
    this.template.dispose();
  }
}
