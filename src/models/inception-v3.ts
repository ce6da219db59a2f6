/**
 * torchvision's Inception-v3 (`torchvision.models.inception_v3`) as the FID feature network, forward only:
 * the classifier is removed, so an image gives the 2048-d average-pooled Mixed_7c features
 * (REFERENCE_SPEC §7.1). State-dict keys are torchvision's: `Conv2d_1a_3x3.conv.weight`,
 * `Conv2d_1a_3x3.bn.{weight,bias,running_mean,running_var,num_batches_tracked}`, `Mixed_5b.branch1x1.conv.weight`,
 * …; the file's `AuxLogits.*` (training-only head) and `fc.*` (classifier) are accepted and ignored.
 * Eval mode only: BatchNorm (eps 0.001) with running statistics, no auxiliary head, dropout off.
 *
 * `transform_input`: loading the IMAGENET1K_V1 weights makes torchvision build the model with
 * transform_input=True, so the network first maps its ImageNet-normalised input back per channel,
 * x_c · (std_c / 0.5) + (mean_c − 0.5) / 0.5 — i.e. to the [−1, 1] scaling the ported Google weights were
 * trained with. FID code that feeds ImageNet-normalised images therefore runs the network on 2x − 1; we
 * reproduce the two steps literally (option `transformInput`, default true as with those weights).
 */
import { noGrad } from '../engine/autograd';
import { tidy } from '../engine/scope';
import type { Tensor } from '../engine/tensor';
import { add, mul, relu } from '../kernels/elementwise';
import { concat } from '../kernels/layout';
import { avgPool2d, maxPool2d } from '../kernels/pool';
import { mean } from '../kernels/reduce';
import { fromArray } from '../engine/create';
import { Module, type HostTensor, type LoadReport } from './module';
import { BatchNorm, type Conv, conv2d, type InitContext } from './layers';

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;
/** Smallest input torchvision accepts (Inception_V3_Weights meta min_size). */
export const INCEPTION_MIN_SIZE = 75;
export const INCEPTION_FEATURES = 2048;

/** Feature networks always load their weights from a file: skip filling them at construction. */
export const noInit = () => {};

/**
 * Runs `stages` one after the other inside their own scopes and frees each intermediate as soon as the next
 * stage has consumed it, so a deep network holds only about one stage's tensors at a time.
 */
export function runStages(x: Tensor, stages: readonly ((h: Tensor) => Tensor)[]): Tensor {
  let h = x;
  for (const stage of stages) {
    const next = tidy(() => stage(h));
    if (h !== x) h.dispose();
    h = next;
  }
  return h;
}

interface ConvGeometry {
  stride?: number;
  padding?: number | readonly [number, number];
}

/** torchvision BasicConv2d: conv (no bias) → BatchNorm2d(eps 0.001) → ReLU. */
class BasicConv2d extends Module {
  readonly conv: Conv;
  readonly bn: BatchNorm;
  constructor(ctx: InitContext, cin: number, cout: number, kernel: number | readonly [number, number], geometry: ConvGeometry = {}) {
    super(ctx.backend);
    this.conv = this.registerModule('conv', conv2d(ctx, cin, cout, kernel, { ...geometry, bias: false, weightInit: noInit }));
    this.bn = this.registerModule('bn', new BatchNorm(ctx, cout, { eps: 0.001 }));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => relu(this.bn.forward(this.conv.forward(x))));
  }
}

/** One chain of BasicConv2d children registered under torchvision's names. */
type Chain = BasicConv2d[];
const runChain = (chain: Chain, x: Tensor) => runStages(x, chain.map((c) => (h: Tensor) => c.forward(h)));
/** avg_pool2d(kernel 3, stride 1, padding 1) with count_include_pad=True (our avgPool2d's only mode). */
const poolSame = (x: Tensor) => avgPool2d(x, { kernel: 3, stride: 1, padding: 1 });

abstract class InceptionBlock extends Module {
  protected constructor(private readonly ctx: InitContext) {
    super(ctx.backend);
  }
  protected conv(name: string, cin: number, cout: number, kernel: number | readonly [number, number], geometry: ConvGeometry = {}): BasicConv2d {
    return this.registerModule(name, new BasicConv2d(this.ctx, cin, cout, kernel, geometry));
  }
  abstract forward(x: Tensor): Tensor;
}

class InceptionA extends InceptionBlock {
  private readonly b1: Chain;
  private readonly b5: Chain;
  private readonly b3: Chain;
  private readonly pool: BasicConv2d;
  constructor(ctx: InitContext, cin: number, poolFeatures: number) {
    super(ctx);
    this.b1 = [this.conv('branch1x1', cin, 64, 1)];
    this.b5 = [this.conv('branch5x5_1', cin, 48, 1), this.conv('branch5x5_2', 48, 64, 5, { padding: 2 })];
    this.b3 = [this.conv('branch3x3dbl_1', cin, 64, 1), this.conv('branch3x3dbl_2', 64, 96, 3, { padding: 1 }), this.conv('branch3x3dbl_3', 96, 96, 3, { padding: 1 })];
    this.pool = this.conv('branch_pool', cin, poolFeatures, 1);
  }
  forward(x: Tensor): Tensor {
    return tidy(() => concat([runChain(this.b1, x), runChain(this.b5, x), runChain(this.b3, x), this.pool.forward(poolSame(x))], 1));
  }
}

class InceptionB extends InceptionBlock {
  private readonly b3: Chain;
  private readonly b3dbl: Chain;
  constructor(ctx: InitContext, cin: number) {
    super(ctx);
    this.b3 = [this.conv('branch3x3', cin, 384, 3, { stride: 2 })];
    this.b3dbl = [this.conv('branch3x3dbl_1', cin, 64, 1), this.conv('branch3x3dbl_2', 64, 96, 3, { padding: 1 }), this.conv('branch3x3dbl_3', 96, 96, 3, { stride: 2 })];
  }
  forward(x: Tensor): Tensor {
    return tidy(() => concat([runChain(this.b3, x), runChain(this.b3dbl, x), maxPool2d(x, { kernel: 3, stride: 2 })], 1));
  }
}

class InceptionC extends InceptionBlock {
  private readonly b1: Chain;
  private readonly b7: Chain;
  private readonly b7dbl: Chain;
  private readonly pool: BasicConv2d;
  constructor(ctx: InitContext, cin: number, c7: number) {
    super(ctx);
    const row = { padding: [0, 3] as const };
    const col = { padding: [3, 0] as const };
    this.b1 = [this.conv('branch1x1', cin, 192, 1)];
    this.b7 = [this.conv('branch7x7_1', cin, c7, 1), this.conv('branch7x7_2', c7, c7, [1, 7], row), this.conv('branch7x7_3', c7, 192, [7, 1], col)];
    this.b7dbl = [
      this.conv('branch7x7dbl_1', cin, c7, 1),
      this.conv('branch7x7dbl_2', c7, c7, [7, 1], col),
      this.conv('branch7x7dbl_3', c7, c7, [1, 7], row),
      this.conv('branch7x7dbl_4', c7, c7, [7, 1], col),
      this.conv('branch7x7dbl_5', c7, 192, [1, 7], row),
    ];
    this.pool = this.conv('branch_pool', cin, 192, 1);
  }
  forward(x: Tensor): Tensor {
    return tidy(() => concat([runChain(this.b1, x), runChain(this.b7, x), runChain(this.b7dbl, x), this.pool.forward(poolSame(x))], 1));
  }
}

class InceptionD extends InceptionBlock {
  private readonly b3: Chain;
  private readonly b7x3: Chain;
  constructor(ctx: InitContext, cin: number) {
    super(ctx);
    this.b3 = [this.conv('branch3x3_1', cin, 192, 1), this.conv('branch3x3_2', 192, 320, 3, { stride: 2 })];
    this.b7x3 = [
      this.conv('branch7x7x3_1', cin, 192, 1),
      this.conv('branch7x7x3_2', 192, 192, [1, 7], { padding: [0, 3] }),
      this.conv('branch7x7x3_3', 192, 192, [7, 1], { padding: [3, 0] }),
      this.conv('branch7x7x3_4', 192, 192, 3, { stride: 2 }),
    ];
  }
  forward(x: Tensor): Tensor {
    return tidy(() => concat([runChain(this.b3, x), runChain(this.b7x3, x), maxPool2d(x, { kernel: 3, stride: 2 })], 1));
  }
}

class InceptionE extends InceptionBlock {
  private readonly b1: BasicConv2d;
  private readonly b3: BasicConv2d;
  private readonly b3a: BasicConv2d;
  private readonly b3b: BasicConv2d;
  private readonly b3dbl: Chain;
  private readonly b3dblA: BasicConv2d;
  private readonly b3dblB: BasicConv2d;
  private readonly pool: BasicConv2d;
  constructor(ctx: InitContext, cin: number) {
    super(ctx);
    this.b1 = this.conv('branch1x1', cin, 320, 1);
    this.b3 = this.conv('branch3x3_1', cin, 384, 1);
    this.b3a = this.conv('branch3x3_2a', 384, 384, [1, 3], { padding: [0, 1] });
    this.b3b = this.conv('branch3x3_2b', 384, 384, [3, 1], { padding: [1, 0] });
    this.b3dbl = [this.conv('branch3x3dbl_1', cin, 448, 1), this.conv('branch3x3dbl_2', 448, 384, 3, { padding: 1 })];
    this.b3dblA = this.conv('branch3x3dbl_3a', 384, 384, [1, 3], { padding: [0, 1] });
    this.b3dblB = this.conv('branch3x3dbl_3b', 384, 384, [3, 1], { padding: [1, 0] });
    this.pool = this.conv('branch_pool', cin, 192, 1);
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const split = (h: Tensor, a: BasicConv2d, b: BasicConv2d) => concat([a.forward(h), b.forward(h)], 1);
      const b3 = this.b3.forward(x);
      const b3dbl = runChain(this.b3dbl, x);
      return concat([this.b1.forward(x), split(b3, this.b3a, this.b3b), split(b3dbl, this.b3dblA, this.b3dblB), this.pool.forward(poolSame(x))], 1);
    });
  }
}

export interface InceptionV3Options {
  /** torchvision's transform_input; true with the IMAGENET1K_V1 weights (see the file comment). */
  transformInput?: boolean;
}

/** Inception-v3 up to the global average pool: [N, 3, H, W] (ImageNet-normalised, H, W ≥ 75) → [N, 2048]. */
export class InceptionV3 extends Module {
  private readonly stages: ((x: Tensor) => Tensor)[];
  private readonly transformScale: Tensor;
  private readonly transformShift: Tensor;
  readonly transformInput: boolean;

  constructor(ctx: InitContext, options: InceptionV3Options = {}) {
    super(ctx.backend);
    this.transformInput = options.transformInput ?? true;
    const conv = (name: string, cin: number, cout: number, k: number, g: ConvGeometry = {}) => this.registerModule(name, new BasicConv2d(ctx, cin, cout, k, g));
    const pool = (x: Tensor) => maxPool2d(x, { kernel: 3, stride: 2 });
    const layers: (Module & { forward(x: Tensor): Tensor } | ((x: Tensor) => Tensor))[] = [
      conv('Conv2d_1a_3x3', 3, 32, 3, { stride: 2 }),
      conv('Conv2d_2a_3x3', 32, 32, 3),
      conv('Conv2d_2b_3x3', 32, 64, 3, { padding: 1 }),
      pool,
      conv('Conv2d_3b_1x1', 64, 80, 1),
      conv('Conv2d_4a_3x3', 80, 192, 3),
      pool,
      this.registerModule('Mixed_5b', new InceptionA(ctx, 192, 32)),
      this.registerModule('Mixed_5c', new InceptionA(ctx, 256, 64)),
      this.registerModule('Mixed_5d', new InceptionA(ctx, 288, 64)),
      this.registerModule('Mixed_6a', new InceptionB(ctx, 288)),
      this.registerModule('Mixed_6b', new InceptionC(ctx, 768, 128)),
      this.registerModule('Mixed_6c', new InceptionC(ctx, 768, 160)),
      this.registerModule('Mixed_6d', new InceptionC(ctx, 768, 160)),
      this.registerModule('Mixed_6e', new InceptionC(ctx, 768, 192)),
      this.registerModule('Mixed_7a', new InceptionD(ctx, 768)),
      this.registerModule('Mixed_7b', new InceptionE(ctx, 1280)),
      this.registerModule('Mixed_7c', new InceptionE(ctx, 2048)),
    ];
    this.stages = layers.map((l) => (l instanceof Module ? (x: Tensor) => l.forward(x) : l));
    // x_c · std_c / 0.5 + (mean_c − 0.5) / 0.5, as [1, 3, 1, 1] constants outside the state dict.
    const channel = (values: number[]) => fromArray(ctx.backend, values, [1, 3, 1, 1]);
    this.transformScale = this.registerBuffer('transform_scale', channel(IMAGENET_STD.map((s) => s / 0.5)), false);
    this.transformShift = this.registerBuffer('transform_shift', channel(IMAGENET_MEAN.map((m) => (m - 0.5) / 0.5)), false);
    for (const p of this.parameters()) p.requiresGrad = false;
    this.train(false);
  }

  /** torchvision's `_transform_input` (identity when transformInput is false). */
  applyTransformInput(x: Tensor): Tensor {
    return this.transformInput ? add(mul(x, this.transformScale), this.transformShift) : x.share();
  }

  /** [N, 3, H, W] ImageNet-normalised images → [N, 2048] pooled features (no gradients are recorded). */
  features(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== 3) throw new Error(`InceptionV3 expects [N, 3, H, W], got [${x.shape}]`);
    if (Math.min(x.shape[2], x.shape[3]) < INCEPTION_MIN_SIZE) throw new Error(`InceptionV3 needs images of at least ${INCEPTION_MIN_SIZE}x${INCEPTION_MIN_SIZE}, got ${x.shape[2]}x${x.shape[3]}`);
    return noGrad(() => {
      const h = runStages(x, [(v) => this.applyTransformInput(v), ...this.stages]);
      // AdaptiveAvgPool2d((1, 1)), dropout (inactive in eval), flatten; fc is the removed classifier.
      const pooled = tidy(() => mean(h, [2, 3]));
      h.dispose();
      return pooled;
    });
  }

  /** Strict load of torchvision keys; AuxLogits.* and fc.* may be present and are ignored. */
  loadWeights(source: Map<string, HostTensor>): LoadReport {
    return this.loadStateDict(source, { ignoreUnexpected: (key) => key.startsWith('AuxLogits.') || key.startsWith('fc.') });
  }
}

/** The largest single activation of one image at `size`×`size` in bytes (Conv2d_2b_3x3's 64 channels). */
export function inceptionPeakActivationBytes(size: number): number {
  const afterStem = Math.floor((size - 3) / 2) + 1 - 2;
  return 4 * Math.max(3 * size * size, 64 * afterStem * afterStem);
}
