/**
 * The downstream CMR video encoder: a compact 3-D CNN, chosen over the VAE encoder's architecture because
 * the experiment trains one per arm × mix × seed (dozens of runs) and must run on a CPU adapter; at
 * the default width (16) it has 69,888 parameters (~0.07 M).
 *
 *   clip [B, 1, T, H, W]
 *   → conv3d 3³ (1 → w), stride (1, 2, 2)   → GroupNorm → SiLU     [B, w,  T,   H/2, W/2]
 *   → conv3d 3³ (w → 2w), stride 2          → GroupNorm → SiLU     [B, 2w, T/2, H/4, W/4]
 *   → conv3d 3³ (2w → 4w), stride 2         → GroupNorm → SiLU     [B, 4w, T/4, H/8, W/8]
 *   → mean over (T, H, W)                                           [B, 4w]   (the feature)
 *
 * Heads: a 2-layer MLP projection for the contrastive pretraining (SimCLR's g(·), dropped afterwards) and
 * a linear task head for fine-tuning (classes or standardised phenotypes).
 */
import type { Tensor } from '../engine/tensor';
import { silu } from '../kernels/elementwise';
import { mean } from '../kernels/reduce';
import { Conv, GroupNorm, Linear, type InitContext } from '../models/layers';
import { Module } from '../models/module';

export interface VideoEncoderConfig {
  /** Channels of the first block (then ×2, ×4). */
  width: number;
  /** GroupNorm groups (must divide width). */
  groups: number;
}

export const VIDEO_ENCODER_DEFAULT: VideoEncoderConfig = { width: 16, groups: 4 };

class ConvBlock extends Module {
  readonly conv: Conv;
  readonly norm: GroupNorm;
  constructor(ctx: InitContext, cin: number, cout: number, stride: readonly number[], groups: number) {
    super(ctx.backend);
    this.conv = this.registerModule('conv', new Conv(ctx, cin, cout, [3, 3, 3], { stride, padding: 1 }));
    this.norm = this.registerModule('norm', new GroupNorm(ctx, groups, cout));
  }
  forward(x: Tensor): Tensor {
    return silu(this.norm.forward(this.conv.forward(x)));
  }
}

export class VideoEncoder extends Module {
  readonly blocks: ConvBlock[];
  readonly featureDim: number;
  constructor(ctx: InitContext, readonly config: VideoEncoderConfig = VIDEO_ENCODER_DEFAULT) {
    super(ctx.backend);
    const w = config.width;
    if (!Number.isInteger(w) || w < 1 || w % config.groups !== 0) throw new Error(`video encoder: width ${w} must be a positive multiple of groups ${config.groups}`);
    this.blocks = [
      this.registerModule('block1', new ConvBlock(ctx, 1, w, [1, 2, 2], config.groups)),
      this.registerModule('block2', new ConvBlock(ctx, w, 2 * w, [2, 2, 2], config.groups)),
      this.registerModule('block3', new ConvBlock(ctx, 2 * w, 4 * w, [2, 2, 2], config.groups)),
    ];
    this.featureDim = 4 * w;
  }
  /** [B, 1, T, H, W] → [B, featureDim]. */
  forward(x: Tensor): Tensor {
    let h = x;
    for (const block of this.blocks) h = block.forward(h);
    return mean(h, [2, 3, 4]);
  }
}

/** SimCLR's projection g(h) = W₂ SiLU(W₁ h). */
export class ProjectionHead extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(ctx: InitContext, dim: number, out = dim) {
    super(ctx.backend);
    this.fc1 = this.registerModule('fc1', new Linear(ctx, dim, dim));
    this.fc2 = this.registerModule('fc2', new Linear(ctx, dim, out));
  }
  forward(h: Tensor): Tensor {
    return this.fc2.forward(silu(this.fc1.forward(h)));
  }
}
