/**
 * The 3-D PatchGAN discriminator of the VAE stage (REFERENCE_SPEC §4.8), stored in the reference checkpoint
 * as loss.discriminator.main.*: an nn.Sequential whose parameter-free LeakyReLUs take indices too
 * (main.0 conv, main.1 LReLU, main.2 conv, main.3 BN, main.4 LReLU, main.5 conv, main.6 BN, …, main.11 conv).
 */
import { tidy } from '../engine/scope';
import type { Tensor } from '../engine/tensor';
import { leakyRelu } from '../kernels/elementwise';
import { Module } from './module';
import { BatchNorm, Sequential, conv3d, type InitContext } from './layers';
import { normal } from './init';

export interface PatchGan3dConfig {
  inChannels: number;
  /** Width of the first conv; the next ones have 2×, 4×, 8× (64 in the reference). */
  ndf: number;
  /** Strided conv blocks (`n_layers`, 3 in the reference and when absent). */
  nLayers?: number;
}

export const PATCHGAN_CONFIGS = {
  /** 4,208,449 parameters; (B,1,50,96,96) → logits (B,1,6,10,10). */
  paper: { inChannels: 1, ndf: 64 },
  small: { inChannels: 1, ndf: 32 },
  /** For the `cpu` training preset (lavapipe-sized); needs frames of at least 32 × 32. */
  cpu: { inChannels: 1, ndf: 8 },
  /** Matches tools/torch_oracle/vae.py; (2,1,4,32,32) → (2,1,1,2,2). */
  tiny: { inChannels: 1, ndf: 4 },
} as const satisfies Record<string, PatchGan3dConfig>;

/** Key prefix of the discriminator inside a reference VAE checkpoint. */
export const PATCHGAN_CHECKPOINT_PREFIX = 'loss.discriminator.';

/**
 * Conv3d k4 s2 p1 (bias) → LReLU(0.2) → [Conv3d (no bias) → BatchNorm3d → LReLU] × nLayers → Conv3d (bias) to
 * one logit per patch, with the reference's kernels: k4 s2 p1 for the strided convs but the last, k(3,4,4) s2 p1
 * for that one, k(1,4,4) s1 p(0,1,1) for the stride-1 conv, and the same k(1,4,4) for the output (nLayers = 3:
 * the released model). Conv weights ~ N(0, 0.02), BN weight ~ N(1, 0.02), BN bias 0; conv biases
 * keep PyTorch's default init (the reference's weights_init leaves them alone). BatchNorm uses batch
 * statistics in train mode (the reference only ever runs it in train mode) and running ones in eval.
 */
export class PatchGan3d extends Module {
  readonly main: Sequential;
  constructor(ctx: InitContext, readonly config: PatchGan3dConfig) {
    super(ctx.backend);
    const { inChannels, ndf } = config;
    const nLayers = config.nLayers ?? 3;
    if (!Number.isInteger(nLayers) || nLayers < 1) throw new RangeError(`PatchGan3d: nLayers must be an integer >= 1, got ${nLayers}`);
    const weightInit = normal(ctx.gen, 0, 0.02);
    const bn = (c: number) => new BatchNorm(ctx, c, { weightInit: normal(ctx.gen, 1, 0.02) });
    const lrelu = (x: Tensor) => leakyRelu(x, 0.2);
    // Widths ndf·min(2^n, 8) as in the pix2pix PatchGAN; the last strided conv has a depth-3 kernel.
    const width = (n: number) => ndf * Math.min(2 ** n, 8);
    const layers: ((Module & { forward(x: Tensor): Tensor }) | ((x: Tensor) => Tensor))[] = [conv3d(ctx, inChannels, ndf, 4, { stride: 2, padding: 1, weightInit }), lrelu];
    for (let n = 1; n < nLayers; n++) {
      const kernel = n === nLayers - 1 ? [3, 4, 4] : 4;
      layers.push(conv3d(ctx, width(n - 1), width(n), kernel, { stride: 2, padding: 1, bias: false, weightInit }), bn(width(n)), lrelu);
    }
    layers.push(
      conv3d(ctx, width(nLayers - 1), width(nLayers), [1, 4, 4], { stride: 1, padding: [0, 1, 1], bias: false, weightInit }),
      bn(width(nLayers)),
      lrelu,
      conv3d(ctx, width(nLayers), 1, [1, 4, 4], { stride: 1, padding: [0, 1, 1], weightInit }),
    );
    this.main = this.registerModule('main', new Sequential(ctx.backend, ...layers));
  }

  /** (B, in, T, H, W) → patch logits (B, 1, T', H', W'). */
  forward(x: Tensor): Tensor {
    return tidy(() => this.main.forward(x));
  }
}
