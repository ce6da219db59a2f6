/**
 * Stage-2 3D-VAE (REFERENCE_SPEC §4): an LDM-style KL autoencoder with 3-D convolutions that keeps the
 * time axis and compresses space 2^(levels−1)×. State-dict keys are the reference's: encoder_3d.*,
 * decoder.*, quant_conv.*, post_quant_conv.* (the reference checkpoint also holds loss.* — LPIPS and the
 * discriminator — which belong to the training wrapper; see loadCheckpoint).
 */
import type { Backend } from '../engine/backend';
import { tidy } from '../engine/scope';
import type { Tensor } from '../engine/tensor';
import { add, clamp, exp, mul, mulScalar, silu } from '../kernels/elementwise';
import { gaussianKl } from '../kernels/loss';
import { randn, type Generator } from '../kernels/random';
import { reshape, split } from '../kernels/views';
import { Module, type HostTensor, type LoadOptions, type LoadReport } from './module';
import { Conv, GroupNorm, conv3d, type InitContext } from './layers';
import { AttnBlock3D, Downsample3D, ModuleList, ResnetBlock3D, Upsample3D, normalize, type BlockSettings } from './vae3d-blocks';
import { PATCHGAN_CHECKPOINT_PREFIX, PATCHGAN_CONFIGS, type PatchGan3dConfig } from './discriminator3d';
import { LPIPS_CHECKPOINT_PREFIX } from './lpips';

export interface Vae3dConfig {
  inChannels: number;
  outChannels: number;
  /** Base channel count `ch`. */
  ch: number;
  /** Channel multiplier per resolution level (`ch_mult`); every level but the last halves H and W. */
  chMult: readonly number[];
  /** Residual blocks per level in the encoder (`num_res_blocks`) and in the decoder (one more in the reference). */
  encoderResBlocks: number;
  decoderResBlocks: number;
  zChannels: number;
  embedDim: number;
  /** Frame size and frame count the model is built for (informational: the convolutions accept any size divisible by 2^(levels−1)). */
  resolution: number;
  tempRes: number;
  /**
   * Levels (0 = full resolution) whose residual blocks are each followed by an AttnBlock3D, in the
   * encoder and the decoder alike (the reference ignores attn_resolutions and places attention by level).
   * Time is never downsampled (f_t = 0 is the only mode implemented, as in the reference config).
   */
  attentionLevels: readonly number[];
  heads: number;
  groups: number;
  tembChannels: number;
  dropout: number;
  /** The 3-D PatchGAN trained next to the VAE (loss.discriminator in the reference checkpoint). */
  discriminator: PatchGan3dConfig;
}

export const VAE_CONFIGS = {
  /** The released configuration (config/disentangle_vae3d.yaml): 62,639,781 trainable parameters. */
  paper: {
    inChannels: 1, outChannels: 1, ch: 64, chMult: [1, 2, 4, 4], encoderResBlocks: 2, decoderResBlocks: 3,
    zChannels: 4, embedDim: 4, resolution: 96, tempRes: 50, attentionLevels: [2, 3], heads: 8, groups: 32,
    tembChannels: 512, dropout: 0, discriminator: PATCHGAN_CONFIGS.paper,
  },
  /** A narrower model with the same depth pattern and latent geometry, for experiments on small GPUs. */
  small: {
    inChannels: 1, outChannels: 1, ch: 32, chMult: [1, 2, 4, 4], encoderResBlocks: 1, decoderResBlocks: 2,
    zChannels: 4, embedDim: 4, resolution: 96, tempRes: 50, attentionLevels: [3], heads: 8, groups: 32,
    tembChannels: 512, dropout: 0, discriminator: PATCHGAN_CONFIGS.small,
  },
  /**
   * Sized for training on a CPU WebGPU adapter (the `cpu` preset: 12 × 32 × 32 clips → latent 4 × 12 × 8 × 8,
   * 4× spatial compression, none in time, as few latent tokens per frame as the paper's 12 × 12 would have at this size).
   */
  cpu: {
    inChannels: 1, outChannels: 1, ch: 8, chMult: [1, 2, 4], encoderResBlocks: 1, decoderResBlocks: 2,
    zChannels: 4, embedDim: 4, resolution: 32, tempRes: 12, attentionLevels: [], heads: 1, groups: 4,
    tembChannels: 16, dropout: 0, discriminator: PATCHGAN_CONFIGS.cpu,
  },
  /** Test-sized: 2 levels, input 1×4×16×16, latent 4×4×8×8; matches tools/torch_oracle/vae.py. */
  tiny: {
    inChannels: 1, outChannels: 1, ch: 8, chMult: [1, 2], encoderResBlocks: 1, decoderResBlocks: 2,
    zChannels: 4, embedDim: 4, resolution: 16, tempRes: 4, attentionLevels: [1], heads: 4, groups: 4,
    tembChannels: 16, dropout: 0, discriminator: PATCHGAN_CONFIGS.tiny,
  },
} as const satisfies Record<string, Vae3dConfig>;

const blockSettings = (c: Vae3dConfig): BlockSettings => ({ groups: c.groups, tembChannels: c.tembChannels, heads: c.heads, dropout: c.dropout });

/** One resolution level: `block.j`, `attn.j` (empty when the level has no attention), `downsample`/`upsample`. */
class Level extends Module {
  readonly block: ModuleList<ResnetBlock3D>;
  readonly attn: ModuleList<AttnBlock3D>;
  resample: Downsample3D | Upsample3D | null = null;
  constructor(backend: Backend) {
    super(backend);
    this.block = this.registerModule('block', new ModuleList<ResnetBlock3D>(backend));
    this.attn = this.registerModule('attn', new ModuleList<AttnBlock3D>(backend));
  }
  setResample(name: 'downsample' | 'upsample', m: Downsample3D | Upsample3D): void {
    this.resample = this.registerModule(name, m);
  }
  forward(x: Tensor): Tensor {
    let h = x;
    this.block.items.forEach((blk, j) => {
      h = blk.forward(h);
      if (this.attn.length) h = this.attn.items[j].forward(h);
    });
    return this.resample ? this.resample.forward(h) : h;
  }
}

/** mid.block_1 → mid.attn_1 → mid.block_2 at the lowest resolution. */
class MidBlock extends Module {
  readonly block1: ResnetBlock3D;
  readonly attn1: AttnBlock3D;
  readonly block2: ResnetBlock3D;
  constructor(ctx: InitContext, channels: number, s: BlockSettings) {
    super(ctx.backend);
    this.block1 = this.registerModule('block_1', new ResnetBlock3D(ctx, channels, channels, s));
    this.attn1 = this.registerModule('attn_1', new AttnBlock3D(ctx, channels, s));
    this.block2 = this.registerModule('block_2', new ResnetBlock3D(ctx, channels, channels, s));
  }
  forward(x: Tensor): Tensor {
    return this.block2.forward(this.attn1.forward(this.block1.forward(x)));
  }
}

/** (B, in, T, H, W) → moments (B, 2·z, T, H/2^(L−1), W/2^(L−1)) (§4.4). */
export class Encoder3D extends Module {
  readonly convIn: Conv;
  readonly down: ModuleList<Level>;
  readonly mid: MidBlock;
  readonly normOut: GroupNorm;
  readonly convOut: Conv;
  constructor(ctx: InitContext, c: Vae3dConfig) {
    super(ctx.backend);
    const s = blockSettings(c);
    this.convIn = this.registerModule('conv_in', conv3d(ctx, c.inChannels, c.ch, 3, { padding: 1 }));
    this.down = this.registerModule('down', new ModuleList<Level>(ctx.backend));
    let channels = c.ch;
    c.chMult.forEach((mult, level) => {
      const lvl = this.down.push(new Level(ctx.backend));
      for (let j = 0; j < c.encoderResBlocks; j++) {
        lvl.block.push(new ResnetBlock3D(ctx, channels, c.ch * mult, s));
        channels = c.ch * mult;
        if (c.attentionLevels.includes(level)) lvl.attn.push(new AttnBlock3D(ctx, channels, s));
      }
      if (level !== c.chMult.length - 1) lvl.setResample('downsample', new Downsample3D(ctx, channels));
    });
    this.mid = this.registerModule('mid', new MidBlock(ctx, channels, s));
    this.normOut = this.registerModule('norm_out', normalize(ctx, channels, c.groups));
    this.convOut = this.registerModule('conv_out', conv3d(ctx, channels, 2 * c.zChannels, 3, { padding: 1 }));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      let h = this.convIn.forward(x);
      for (const lvl of this.down.items) h = lvl.forward(h);
      h = this.mid.forward(h);
      return this.convOut.forward(silu(this.normOut.forward(h)));
    });
  }
}

/** z (B, z, T, h, w) → (B, out, T, h·2^(L−1), w·2^(L−1)), no output activation (§4.5). */
export class Decoder3D extends Module {
  readonly convIn: Conv;
  readonly mid: MidBlock;
  /** up.i is resolution level i (0 = full resolution), as the reference stores it; run from the last. */
  readonly up: ModuleList<Level>;
  readonly normOut: GroupNorm;
  readonly convOut: Conv;
  constructor(ctx: InitContext, c: Vae3dConfig) {
    super(ctx.backend);
    const s = blockSettings(c);
    let channels = c.ch * c.chMult[c.chMult.length - 1];
    this.convIn = this.registerModule('conv_in', conv3d(ctx, c.zChannels, channels, 3, { padding: 1 }));
    this.mid = this.registerModule('mid', new MidBlock(ctx, channels, s));
    // Built from the lowest resolution up (the reference's construction and init order), stored by level.
    const levels: Level[] = [];
    for (let level = c.chMult.length - 1; level >= 0; level--) {
      const lvl = new Level(ctx.backend);
      for (let j = 0; j < c.decoderResBlocks; j++) {
        lvl.block.push(new ResnetBlock3D(ctx, channels, c.ch * c.chMult[level], s));
        channels = c.ch * c.chMult[level];
        if (c.attentionLevels.includes(level)) lvl.attn.push(new AttnBlock3D(ctx, channels, s));
      }
      if (level !== 0) lvl.setResample('upsample', new Upsample3D(ctx, channels));
      levels.unshift(lvl);
    }
    this.up = this.registerModule('up', new ModuleList(ctx.backend, levels));
    this.normOut = this.registerModule('norm_out', normalize(ctx, channels, c.groups));
    this.convOut = this.registerModule('conv_out', conv3d(ctx, channels, c.outChannels, 3, { padding: 1 }));
  }
  forward(z: Tensor): Tensor {
    return tidy(() => {
      let h = this.mid.forward(this.convIn.forward(z));
      for (let level = this.up.length - 1; level >= 0; level--) h = this.up.items[level].forward(h);
      return this.convOut.forward(silu(this.normOut.forward(h)));
    });
  }
}

/**
 * The diagonal-Gaussian posterior from the moments: mean, logvar clamped to [−30, 20], std = exp(logvar/2).
 * Owns its three tensors (dispose() frees them); sample/mode/kl return new tensors.
 */
export class DiagonalGaussian {
  readonly mean: Tensor;
  readonly logvar: Tensor;
  readonly std: Tensor;
  constructor(moments: Tensor) {
    const parts = tidy(() => {
      const [mean, rawLogvar] = split(moments, moments.shape[1] / 2, 1);
      const logvar = clamp(rawLogvar, -30, 20);
      return { mean, logvar, std: exp(mulScalar(logvar, 0.5)) };
    });
    this.mean = parts.mean;
    this.logvar = parts.logvar;
    this.std = parts.std;
  }
  /** z = μ + σ·ε with ε ~ N(0, I) from `gen` (the reparameterisation: gradients reach μ and logvar). */
  sample(gen: Generator): Tensor {
    return tidy(() => add(this.mean, mul(this.std, randn(this.mean.backend, this.mean.shape, gen))));
  }
  /** μ as a new handle that stays on the autograd graph (share() would drop the history). */
  mode(): Tensor {
    return reshape(this.mean, this.mean.shape);
  }
  /** Per-sample KL to N(0, I): ½ Σ (μ² + σ² − 1 − log σ²) over all non-batch elements → [B]. */
  kl(): Tensor {
    return gaussianKl(this.mean, this.logvar, 'none');
  }
  dispose(): void {
    this.mean.dispose();
    this.logvar.dispose();
    this.std.dispose();
  }
}

export interface VaeForwardOptions {
  /** Decode a reparameterised sample (training, validation in the reference) instead of the mode. Default true. */
  samplePosterior?: boolean;
  /** Required when samplePosterior is true. */
  gen?: Generator;
}

/** True for the checkpoint keys of the reference's training wrapper (LPIPS, discriminator, logvar). */
export const isVaeLossKey = (key: string): boolean => key.startsWith('loss.');

/**
 * Splits a reference VAE checkpoint state dict into the VAE's own keys, the discriminator's
 * (loss.discriminator.* → main.*, for PatchGan3d) and the perceptual loss's (loss.perceptual_loss.* → for
 * Lpips.loadWeights); whatever else is under loss. (loss.logvar) lands in `other`.
 */
export function splitVaeCheckpoint<T>(source: Map<string, T>): { vae: Map<string, T>; discriminator: Map<string, T>; perceptual: Map<string, T>; other: Map<string, T> } {
  const parts = { vae: new Map<string, T>(), discriminator: new Map<string, T>(), perceptual: new Map<string, T>(), other: new Map<string, T>() };
  for (const [key, value] of source) {
    if (key.startsWith(PATCHGAN_CHECKPOINT_PREFIX)) parts.discriminator.set(key.slice(PATCHGAN_CHECKPOINT_PREFIX.length), value);
    else if (key.startsWith(LPIPS_CHECKPOINT_PREFIX)) parts.perceptual.set(key.slice(LPIPS_CHECKPOINT_PREFIX.length), value);
    else if (isVaeLossKey(key)) parts.other.set(key, value);
    else parts.vae.set(key, value);
  }
  return parts;
}

export class VAE3d extends Module {
  readonly encoder: Encoder3D;
  readonly decoder: Decoder3D;
  readonly quantConv: Conv;
  readonly postQuantConv: Conv;
  constructor(ctx: InitContext, readonly config: Vae3dConfig) {
    super(ctx.backend);
    if (config.attentionLevels.some((l) => l < 0 || l >= config.chMult.length)) throw new RangeError(`VAE3d: attention levels [${config.attentionLevels}] outside 0..${config.chMult.length - 1}`);
    this.encoder = this.registerModule('encoder_3d', new Encoder3D(ctx, config));
    this.decoder = this.registerModule('decoder', new Decoder3D(ctx, config));
    this.quantConv = this.registerModule('quant_conv', conv3d(ctx, 2 * config.zChannels, 2 * config.embedDim, 1));
    this.postQuantConv = this.registerModule('post_quant_conv', conv3d(ctx, config.embedDim, config.zChannels, 1));
  }

  /** Spatial downsampling factor of the latent (8 for the paper config). */
  get spatialFactor(): number {
    return 2 ** (this.config.chMult.length - 1);
  }

  /** x (B, in, T, H, W) → posterior over z (B, embedDim, T, H/f, W/f). */
  encode(x: Tensor): DiagonalGaussian {
    const moments = tidy(() => this.quantConv.forward(this.encoder.forward(x)));
    const posterior = new DiagonalGaussian(moments);
    moments.dispose();
    return posterior;
  }

  decode(z: Tensor): Tensor {
    return tidy(() => this.decoder.forward(this.postQuantConv.forward(z)));
  }

  /** Reconstruction and posterior (the caller disposes both). */
  forward(x: Tensor, options: VaeForwardOptions = {}): { reconstruction: Tensor; posterior: DiagonalGaussian } {
    const samplePosterior = options.samplePosterior ?? true;
    if (samplePosterior && !options.gen) throw new RangeError('VAE3d.forward: samplePosterior needs a generator (options.gen)');
    const posterior = this.encode(x);
    const z = samplePosterior ? posterior.sample(options.gen as Generator) : posterior.mode();
    const reconstruction = this.decode(z);
    z.dispose();
    return { reconstruction, posterior };
  }

  /**
   * Loads a reference VAE checkpoint's state dict: every VAE key must be present; the training
   * wrapper's loss.* keys are accepted and ignored (load them into PatchGan3d / Lpips separately).
   */
  loadCheckpoint(source: Map<string, HostTensor> | Record<string, HostTensor>, options: LoadOptions = {}): LoadReport {
    return this.loadStateDict(source, { ...options, ignoreUnexpected: (k) => isVaeLossKey(k) || (options.ignoreUnexpected?.(k) ?? false) });
  }
}
