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
 * Conv3d k4 s2 p1 (bias) → LReLU(0.2) → [Conv3d (no bias) → BatchNorm3d → LReLU] × 3 → Conv3d (bias) to one
 * logit per patch, with the reference's kernels: k4 s2 p1, k(3,4,4) s2 p1, k(1,4,4) s1 p(0,1,1), and the
 * same k(1,4,4) for the output. Conv weights ~ N(0, 0.02), BN weight ~ N(1, 0.02), BN bias 0; conv biases
 * keep PyTorch's default init (the reference's weights_init leaves them alone). BatchNorm uses batch
 * statistics in train mode (the reference only ever runs it in train mode) and running ones in eval.
 */
export class PatchGan3d extends Module {
  readonly main: Sequential;
  constructor(ctx: InitContext, readonly config: PatchGan3dConfig) {
    super(ctx.backend);
    const { inChannels, ndf } = config;
    const weightInit = normal(ctx.gen, 0, 0.02);
    const bn = (c: number) => new BatchNorm(ctx, c, { weightInit: normal(ctx.gen, 1, 0.02) });
    const lrelu = (x: Tensor) => leakyRelu(x, 0.2);
    this.main = this.registerModule(
      'main',
      new Sequential(
        ctx.backend,
        conv3d(ctx, inChannels, ndf, 4, { stride: 2, padding: 1, weightInit }),
        lrelu,
        conv3d(ctx, ndf, 2 * ndf, 4, { stride: 2, padding: 1, bias: false, weightInit }),
        bn(2 * ndf),
        lrelu,
        conv3d(ctx, 2 * ndf, 4 * ndf, [3, 4, 4], { stride: 2, padding: 1, bias: false, weightInit }),
        bn(4 * ndf),
        lrelu,
        conv3d(ctx, 4 * ndf, 8 * ndf, [1, 4, 4], { stride: 1, padding: [0, 1, 1], bias: false, weightInit }),
        bn(8 * ndf),
        lrelu,
        conv3d(ctx, 8 * ndf, 1, [1, 4, 4], { stride: 1, padding: [0, 1, 1], weightInit }),
      ),
    );
  }

  /** (B, in, T, H, W) → patch logits (B, 1, T', H', W'). */
  forward(x: Tensor): Tensor {
    return tidy(() => this.main.forward(x));
  }
}
