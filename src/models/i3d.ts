/**
 * The PyTorch I3D (Inception-v1 inflated to 3-D, Kinetics-400) of VideoGPT's FVD code
 * (`videogpt/fvd/pytorch_i3d.py`, a copy of piergiaj/pytorch-i3d; weights `i3d_pretrained_400.pt`) as the
 * FVD feature network (REFERENCE_SPEC §7.1), forward only. State-dict keys as in that file:
 * `Conv3d_1a_7x7.conv3d.weight`, `Conv3d_1a_7x7.bn.{weight,bias,running_mean,running_var,num_batches_tracked}`,
 * `Mixed_3b.b0.conv3d.weight`, … (Inception branches b0, b1a → b1b, b2a → b2b, b3a = 3×3×3 max pool → b3b);
 * `logits.conv3d.{weight,bias}` (the 400-way classifier) is accepted and ignored.
 *
 * Unit3D = TF-"SAME" zero padding computed from the input size per dim (pad = max(k − s, 0) when
 * size % s == 0, else max(k − size % s, 0); front = ⌊pad/2⌋, back = the rest) → Conv3d (no bias) →
 * BatchNorm3d (running statistics) → ReLU. The max pools pad the same way with zeros first. BatchNorm eps
 * is 1e-5 as in VideoGPT's copy (option `bnEps`; piergiaj's original has 1e-3).
 * Features (`extract_features`): AvgPool3d((2, 7, 7), stride 1) on Mixed_5c, then the mean over the
 * remaining positions (time; at 224×224 the pool leaves one spatial position) → [N, 1024].
 */
import { noGrad } from '../engine/autograd';
import { tidy } from '../engine/scope';
import type { Tensor } from '../engine/tensor';
import { convNd } from '../kernels/conv';
import { relu } from '../kernels/elementwise';
import { concat, pad } from '../kernels/layout';
import { avgPool3d, maxPool3d } from '../kernels/pool';
import { mean } from '../kernels/reduce';
import { Module, type HostTensor, type LoadReport } from './module';
import { BatchNorm, type Conv, conv3d, type InitContext } from './layers';
import { noInit, runStages } from './inception-v3';

export const I3D_FEATURES = 1024;
/** The final average pool of `extract_features` (time, height, width). */
export const I3D_HEAD_POOL = [2, 7, 7] as const;

type Triple = readonly [number, number, number];

/** TF "SAME" padding of one dim, as pytorch_i3d's compute_pad: [front, back]. */
export function samePadding(size: number, kernel: number, stride: number): [number, number] {
  const total = size % stride === 0 ? Math.max(kernel - stride, 0) : Math.max(kernel - (size % stride), 0);
  const front = Math.floor(total / 2);
  return [front, total - front];
}

/** [front, back] per spatial dim of [N, C, T, H, W]. */
function samePads(x: Tensor, kernel: Triple, stride: Triple): [number, number][] {
  return [0, 1, 2].map((d) => samePadding(x.shape[2 + d], kernel[d], stride[d]));
}

/** Zero padding in F.pad's order (last dim first). */
const padSame = (x: Tensor, pads: [number, number][]) => pad(x, [pads[2][0], pads[2][1], pads[1][0], pads[1][1], pads[0][0], pads[0][1]]);

/** MaxPool3dSamePadding: explicit zero padding (not −∞), then an unpadded max pool. */
function maxPoolSame(x: Tensor, kernel: Triple, stride: Triple): Tensor {
  return tidy(() => {
    const pads = samePads(x, kernel, stride);
    const padded = pads.some(([f, b]) => f || b) ? padSame(x, pads) : x;
    return maxPool3d(padded, { kernel: [...kernel], stride: [...stride] });
  });
}

class Unit3D extends Module {
  readonly conv3d: Conv;
  readonly bn: BatchNorm;
  constructor(ctx: InitContext, cin: number, cout: number, readonly kernel: Triple = [1, 1, 1], readonly stride: Triple = [1, 1, 1], bnEps = 1e-5) {
    super(ctx.backend);
    this.conv3d = this.registerModule('conv3d', conv3d(ctx, cin, cout, [...kernel], { stride: [...stride], bias: false, weightInit: noInit }));
    this.bn = this.registerModule('bn', new BatchNorm(ctx, cout, { eps: bnEps }));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const pads = samePads(x, this.kernel, this.stride);
      const stride = [...this.stride];
      // Symmetric padding is the convolution's own zero padding; asymmetric padding needs a padded copy.
      const y = pads.every(([f, b]) => f === b)
        ? convNd(x, this.conv3d.weight, null, { stride, padding: pads.map(([f]) => f) })
        : convNd(padSame(x, pads), this.conv3d.weight, null, { stride });
      return relu(this.bn.forward(y));
    });
  }
}

/** `channels` = [b0, b1a, b1b, b2a, b2b, b3b] output channels, as pytorch_i3d's InceptionModule. */
class InceptionModule extends Module {
  private readonly b0: Unit3D;
  private readonly b1a: Unit3D;
  private readonly b1b: Unit3D;
  private readonly b2a: Unit3D;
  private readonly b2b: Unit3D;
  private readonly b3b: Unit3D;
  readonly outChannels: number;
  constructor(ctx: InitContext, cin: number, channels: readonly number[], bnEps: number) {
    super(ctx.backend);
    const unit = (name: string, a: number, b: number, k: Triple = [1, 1, 1]) => this.registerModule(name, new Unit3D(ctx, a, b, k, [1, 1, 1], bnEps));
    this.b0 = unit('b0', cin, channels[0]);
    this.b1a = unit('b1a', cin, channels[1]);
    this.b1b = unit('b1b', channels[1], channels[2], [3, 3, 3]);
    this.b2a = unit('b2a', cin, channels[3]);
    this.b2b = unit('b2b', channels[3], channels[4], [3, 3, 3]);
    this.b3b = unit('b3b', cin, channels[5]);
    this.outChannels = channels[0] + channels[2] + channels[4] + channels[5];
  }
  forward(x: Tensor): Tensor {
    return tidy(() => concat([
      this.b0.forward(x),
      this.b1b.forward(this.b1a.forward(x)),
      this.b2b.forward(this.b2a.forward(x)),
      this.b3b.forward(maxPoolSame(x, [3, 3, 3], [1, 1, 1])),
    ], 1));
  }
}

/** Mixed blocks: name, input channels, [b0, b1a, b1b, b2a, b2b, b3b] (pytorch_i3d.py). */
export const I3D_MIXED: readonly [string, number, readonly number[]][] = [
  ['Mixed_3b', 192, [64, 96, 128, 16, 32, 32]],
  ['Mixed_3c', 256, [128, 128, 192, 32, 96, 64]],
  ['Mixed_4b', 480, [192, 96, 208, 16, 48, 64]],
  ['Mixed_4c', 512, [160, 112, 224, 24, 64, 64]],
  ['Mixed_4d', 512, [128, 128, 256, 24, 64, 64]],
  ['Mixed_4e', 512, [112, 144, 288, 32, 64, 64]],
  ['Mixed_4f', 528, [256, 160, 320, 32, 128, 128]],
  ['Mixed_5b', 832, [256, 160, 320, 32, 128, 128]],
  ['Mixed_5c', 832, [384, 192, 384, 48, 128, 128]],
];

export interface I3dOptions {
  /** BatchNorm3d eps: 1e-5 in VideoGPT's pytorch_i3d.py (default), 1e-3 in piergiaj's original. */
  bnEps?: number;
}

export interface I3dFeatureOptions {
  /**
   * When Mixed_5c is smaller than the 2×7×7 pool (clips under 9 frames, or inputs under 193×193), clip the
   * pool to the map instead of failing. PyTorch would fail; only for non-reference smoke tests.
   */
  clipHeadPool?: boolean;
}

/** I3D: [N, 3, T, H, W] in [−1, 1] → Mixed_5c [N, 1024, T', H', W'] → pooled features [N, 1024]. */
export class I3d extends Module {
  private readonly stages: ((x: Tensor) => Tensor)[];
  readonly bnEps: number;

  constructor(ctx: InitContext, options: I3dOptions = {}) {
    super(ctx.backend);
    const eps = (this.bnEps = options.bnEps ?? 1e-5);
    const unit = (name: string, cin: number, cout: number, k: Triple, s: Triple = [1, 1, 1]) => this.registerModule(name, new Unit3D(ctx, cin, cout, k, s, eps));
    const mixed = (name: string) => {
      const [, cin, channels] = I3D_MIXED.find(([n]) => n === name)!;
      return this.registerModule(name, new InceptionModule(ctx, cin, channels, eps));
    };
    const pool = (k: Triple, s: Triple) => (x: Tensor) => maxPoolSame(x, k, s);
    const layers: (Module & { forward(x: Tensor): Tensor } | ((x: Tensor) => Tensor))[] = [
      unit('Conv3d_1a_7x7', 3, 64, [7, 7, 7], [2, 2, 2]),
      pool([1, 3, 3], [1, 2, 2]), // MaxPool3d_2a_3x3
      unit('Conv3d_2b_1x1', 64, 64, [1, 1, 1]),
      unit('Conv3d_2c_3x3', 64, 192, [3, 3, 3]),
      pool([1, 3, 3], [1, 2, 2]), // MaxPool3d_3a_3x3
      mixed('Mixed_3b'),
      mixed('Mixed_3c'),
      pool([3, 3, 3], [2, 2, 2]), // MaxPool3d_4a_3x3
      mixed('Mixed_4b'),
      mixed('Mixed_4c'),
      mixed('Mixed_4d'),
      mixed('Mixed_4e'),
      mixed('Mixed_4f'),
      pool([2, 2, 2], [2, 2, 2]), // MaxPool3d_5a_2x2
      mixed('Mixed_5b'),
      mixed('Mixed_5c'),
    ];
    this.stages = layers.map((l) => (l instanceof Module ? (x: Tensor) => l.forward(x) : l));
    for (const p of this.parameters()) p.requiresGrad = false;
    this.train(false);
  }

  /** Every end point up to Mixed_5c: [N, 3, T, H, W] → [N, 1024, ⌈T/8⌉, ⌈H/32⌉, ⌈W/32⌉]. */
  trunk(x: Tensor): Tensor {
    if (x.rank !== 5 || x.shape[1] !== 3) throw new Error(`I3D expects [N, 3, T, H, W], got [${x.shape}]`);
    return noGrad(() => runStages(x, this.stages));
  }

  /** extract_features' AvgPool3d((2, 7, 7), stride 1), then the mean over the remaining positions. */
  static head(mixed5c: Tensor, options: I3dFeatureOptions = {}): Tensor {
    const map = mixed5c.shape.slice(2);
    const small = map.some((size, d) => size < I3D_HEAD_POOL[d]);
    if (small && !options.clipHeadPool) {
      throw new Error(`I3D: the final ${I3D_HEAD_POOL.join('x')} average pool does not fit the Mixed_5c map ${map.join('x')}: ` +
        'clips need at least 9 frames at 193x193 or more (the reference uses 224x224)');
    }
    const kernel = map.map((size, d) => Math.min(size, I3D_HEAD_POOL[d]));
    return noGrad(() => tidy(() => mean(avgPool3d(mixed5c, { kernel, stride: 1 }), [2, 3, 4])));
  }

  /** [N, 3, T, H, W] in [−1, 1] → [N, 1024]. */
  features(x: Tensor, options: I3dFeatureOptions = {}): Tensor {
    const h = this.trunk(x);
    try {
      return I3d.head(h, options);
    } finally {
      h.dispose();
    }
  }

  /** Strict load of pytorch_i3d keys; the classifier logits.conv3d.* may be present and is ignored. */
  loadWeights(source: Map<string, HostTensor>): LoadReport {
    return this.loadStateDict(source, { ignoreUnexpected: (key) => key.startsWith('logits.') });
  }
}

/** Frames after each temporal halving (Conv3d_1a, MaxPool3d_4a, MaxPool3d_5a use stride 2 in time). */
export const i3dMixed5cFrames = (frames: number) => Math.ceil(Math.ceil(Math.ceil(frames / 2) / 2) / 2);

/** The largest single activation of one clip of `frames` frames at `size`×`size` in bytes (Conv3d_1a's output or Conv3d_2c's). */
export function i3dPeakActivationBytes(frames: number, size: number): number {
  const t = Math.ceil(frames / 2);
  const s1 = Math.ceil(size / 2);
  const s2 = Math.ceil(s1 / 2);
  return 4 * Math.max(3 * (frames + 6) * (size + 6) ** 2, 64 * t * s1 * s1, 192 * t * s2 * s2);
}
