/**
 * Building blocks of the stage-2 3D-VAE (REFERENCE_SPEC §4.3): ResnetBlock3D, AttnBlock3D (space-time
 * self-attention over all T·H·W tokens), Downsample (space only) and Upsample (nearest ×(1,2,2) + conv).
 * Parameter names follow the reference's state dict (norm1, conv1, temb_proj, norm2, conv2, nin_shortcut;
 * norm, q, k, v, proj_out; downsample.conv / upsample.conv).
 */
import type { Backend } from '../engine/backend';
import { tidy } from '../engine/scope';
import type { Tensor } from '../engine/tensor';
import { attention } from '../kernels/attention';
import { dropout } from '../kernels/dropout';
import type { Generator } from '../kernels/random';
import { add, silu } from '../kernels/elementwise';
import { upsampleNearest } from '../kernels/resample';
import { permute, reshape } from '../kernels/views';
import { Module } from './module';
import { Conv, GroupNorm, Linear, conv3d, type InitContext } from './layers';

/** What every VAE block needs besides the init context. */
export interface BlockSettings {
  /** GroupNorm groups (32 in the reference; smaller in the tiny test configs). */
  groups: number;
  /** Width of the (never used) timestep-embedding input of temb_proj: 512 in the reference. */
  tembChannels: number;
  /** Attention heads (8 in the reference); the channel count must be divisible by it. */
  heads: number;
  /** Dropout inside the residual blocks (0 in the reference). */
  dropout: number;
}

/** GroupNorm with eps 1e-6, affine (the reference's Normalize). */
export const normalize = (ctx: InitContext, channels: number, groups: number) => new GroupNorm(ctx, groups, channels, 1e-6);

/** torch.nn.ModuleList: children named '0', '1', …; iteration in index order. */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[] = [];
  constructor(backend: Backend, items: readonly M[] = []) {
    super(backend);
    for (const m of items) this.push(m);
  }
  push(m: M): M {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
    return m;
  }
  get length(): number {
    return this.items.length;
  }
}

/**
 * GN → SiLU → Conv3d k3 → GN → SiLU → Dropout → Conv3d k3, plus the input (through a 1×1×1 nin_shortcut
 * when the channel count changes). temb_proj exists only so that reference checkpoints load strictly: the
 * reference calls the blocks with temb = None, so it never gets a gradient; it is marked requiresGrad =
 * false here, which keeps it out of the trainable count (and out of AdamW, as in PyTorch where a
 * parameter without a gradient is skipped).
 */
export class ResnetBlock3D extends Module {
  readonly norm1: GroupNorm;
  readonly conv1: Conv;
  readonly tembProj: Linear;
  readonly norm2: GroupNorm;
  readonly conv2: Conv;
  readonly ninShortcut: Conv | null = null;
  private readonly gen: Generator;

  constructor(ctx: InitContext, readonly inChannels: number, readonly outChannels: number, private readonly settings: BlockSettings) {
    super(ctx.backend);
    this.gen = ctx.gen;
    this.norm1 = this.registerModule('norm1', normalize(ctx, inChannels, settings.groups));
    this.conv1 = this.registerModule('conv1', conv3d(ctx, inChannels, outChannels, 3, { padding: 1 }));
    this.tembProj = this.registerModule('temb_proj', new Linear(ctx, settings.tembChannels, outChannels));
    for (const [, p] of this.tembProj.namedParameters()) p.requiresGrad = false;
    this.norm2 = this.registerModule('norm2', normalize(ctx, outChannels, settings.groups));
    this.conv2 = this.registerModule('conv2', conv3d(ctx, outChannels, outChannels, 3, { padding: 1 }));
    if (inChannels !== outChannels) this.ninShortcut = this.registerModule('nin_shortcut', conv3d(ctx, inChannels, outChannels, 1));
  }

  forward(x: Tensor): Tensor {
    return tidy(() => {
      let h = this.conv1.forward(silu(this.norm1.forward(x)));
      h = silu(this.norm2.forward(h));
      h = this.conv2.forward(dropout(h, this.settings.dropout, this.gen, this.training));
      const skip = this.ninShortcut ? this.ninShortcut.forward(x) : x;
      return add(skip, h);
    });
  }
}

/**
 * x + proj_out(MHA(GN(x))): q, k, v are 1×1×1 convs, the T·H·W positions are the tokens, channel
 * c = head·(C/heads) + j, scale 1/√(C/heads). Runs through the flash-attention kernel, so memory stays
 * linear in the token count (28,800 tokens at 24×24×50 in the paper config).
 */
export class AttnBlock3D extends Module {
  readonly norm: GroupNorm;
  readonly q: Conv;
  readonly k: Conv;
  readonly v: Conv;
  readonly projOut: Conv;

  constructor(ctx: InitContext, readonly channels: number, private readonly settings: BlockSettings) {
    super(ctx.backend);
    if (channels % settings.heads !== 0) throw new RangeError(`AttnBlock3D: ${channels} channels do not split into ${settings.heads} heads`);
    this.norm = this.registerModule('norm', normalize(ctx, channels, settings.groups));
    this.q = this.registerModule('q', conv3d(ctx, channels, channels, 1));
    this.k = this.registerModule('k', conv3d(ctx, channels, channels, 1));
    this.v = this.registerModule('v', conv3d(ctx, channels, channels, 1));
    this.projOut = this.registerModule('proj_out', conv3d(ctx, channels, channels, 1));
  }

  forward(x: Tensor): Tensor {
    return tidy(() => {
      const [b, c, ...space] = x.shape;
      const tokens = space.reduce((a, d) => a * d, 1);
      const heads = this.settings.heads;
      const headDim = c / heads;
      const h = this.norm.forward(x);
      // [B, C, T, H, W] → [B, heads, headDim, N] (a view) → [B, heads, N, headDim] (strided view).
      const split = (t: Tensor) => permute(reshape(t, [b, heads, headDim, tokens]), [0, 1, 3, 2]);
      const o = attention(split(this.q.forward(h)), split(this.k.forward(h)), split(this.v.forward(h)));
      const merged = reshape(permute(o, [0, 1, 3, 2]), x.shape);
      return add(x, this.projOut.forward(merged));
    });
  }
}

/** Space-only downsampling (f_t = 0): Conv3d C→C, kernel (1,3,3), stride (1,2,2), padding (0,1,1). */
export class Downsample3D extends Module {
  readonly conv: Conv;
  constructor(ctx: InitContext, channels: number) {
    super(ctx.backend);
    this.conv = this.registerModule('conv', conv3d(ctx, channels, channels, [1, 3, 3], { stride: [1, 2, 2], padding: [0, 1, 1] }));
  }
  forward(x: Tensor): Tensor {
    return this.conv.forward(x);
  }
}

/** Space-only upsampling (f_t = 0): nearest ×(1,2,2), then Conv3d C→C, k3, p1. */
export class Upsample3D extends Module {
  readonly conv: Conv;
  constructor(ctx: InitContext, channels: number) {
    super(ctx.backend);
    this.conv = this.registerModule('conv', conv3d(ctx, channels, channels, 3, { padding: 1 }));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => this.conv.forward(upsampleNearest(x, [1, 2, 2])));
  }
}
