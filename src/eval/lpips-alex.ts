/**
 * LPIPS with AlexNet features (the reference evaluation's backbone, lpips v0.1 'alex'), forward only.
 * Same key layout as the lpips package, torchvision alexnet().features indices kept:
 *   scaling_layer.shift, scaling_layer.scale        [1,3,1,1] (optional: standard constants)
 *   net.slice1.0    conv 3→64,   k11 s4 p2, ReLU
 *   net.slice2.3    maxpool 3/2, conv 64→192,  k5 p2, ReLU
 *   net.slice3.6    maxpool 3/2, conv 192→384, k3 p1, ReLU
 *   net.slice4.8    conv 384→256, k3 p1, ReLU
 *   net.slice5.10   conv 256→256, k3 p1, ReLU
 *   lin{0..4}.model.1.weight   [1, C, 1, 1] heads (no bias); the dropout before them is inactive in eval
 * Distance = Σ_taps mean_hw( head( (unit-normalised f_a - unit-normalised f_b)^2 ) ).
 */
import { tidy } from '../engine/scope';
import type { Tensor } from '../engine/tensor';
import { div, relu, sub } from '../kernels/elementwise';
import { maxPool2d } from '../kernels/pool';
import { Module, type HostTensor, type LoadOptions, type LoadReport } from '../models/module';
import { type Conv, conv2d, type InitContext } from '../models/layers';
import { copyLpipsHeads, lpipsDistance, ScalingLayer, withDefaultScaling } from '../models/lpips';

export interface AlexLpipsConfig {
  channels: readonly [number, number, number, number, number];
}

export const ALEX_LPIPS_CONFIGS = {
  alex: { channels: [64, 192, 384, 256, 256] },
  /** Reduced channels for fast tests; same geometry. */
  tiny: { channels: [4, 6, 8, 6, 6] },
} as const satisfies Record<string, AlexLpipsConfig>;

/** One stage: optional leading max-pool, one convolution registered under its torchvision index, ReLU. */
class AlexSlice extends Module {
  readonly conv: Conv;
  constructor(ctx: InitContext, index: number, readonly pool: boolean, cin: number, cout: number, kernel: number, stride: number, padding: number) {
    super(ctx.backend);
    this.conv = this.registerModule(String(index), conv2d(ctx, cin, cout, kernel, { stride, padding }));
  }
  forward(x: Tensor): Tensor {
    const h = this.pool ? maxPool2d(x, { kernel: 3, stride: 2 }) : x;
    return relu(this.conv.forward(h));
  }
}

/** lin{i}.model: index 0 is the parameter-free Dropout (inactive in eval), index 1 the 1x1 head. */
class HeadModel extends Module {
  readonly conv: Conv;
  constructor(ctx: InitContext, channels: number) {
    super(ctx.backend);
    this.conv = this.registerModule('1', conv2d(ctx, channels, 1, 1, { bias: false }));
  }
}

class Head extends Module {
  readonly model: HeadModel;
  constructor(ctx: InitContext, channels: number) {
    super(ctx.backend);
    this.model = this.registerModule('model', new HeadModel(ctx, channels));
  }
}

class AlexFeatures extends Module {
  readonly slices: AlexSlice[];
  constructor(ctx: InitContext, c: readonly number[]) {
    super(ctx.backend);
    const specs: [number, boolean, number, number, number, number, number][] = [
      [0, false, 3, c[0], 11, 4, 2],
      [3, true, c[0], c[1], 5, 1, 2],
      [6, true, c[1], c[2], 3, 1, 1],
      [8, false, c[2], c[3], 3, 1, 1],
      [10, false, c[3], c[4], 3, 1, 1],
    ];
    this.slices = specs.map((s, i) => this.registerModule(`slice${i + 1}`, new AlexSlice(ctx, ...s)));
  }
}

export class AlexLpips extends Module {
  readonly scaling: ScalingLayer;
  readonly net: AlexFeatures;
  readonly lins: Head[];
  constructor(ctx: InitContext, readonly config: AlexLpipsConfig = ALEX_LPIPS_CONFIGS.alex) {
    super(ctx.backend);
    this.scaling = this.registerModule('scaling_layer', new ScalingLayer(ctx));
    this.net = this.registerModule('net', new AlexFeatures(ctx, config.channels));
    this.lins = config.channels.map((ch, i) => this.registerModule(`lin${i}`, new Head(ctx, ch)));
    for (const p of this.parameters()) p.requiresGrad = false;
    this.train(false);
  }

  private features(x: Tensor): Tensor[] {
    const taps: Tensor[] = [];
    let h = div(sub(x, this.scaling.shift), this.scaling.scale);
    for (const slice of this.net.slices) taps.push((h = slice.forward(h)));
    return taps;
  }

  /** Images [N, 1 or 3, H, W] in [-1, 1] (grey broadcasts to RGB) → [N, 1, 1, 1]. */
  forward(a: Tensor, b: Tensor): Tensor {
    return tidy(() => {
      const fa = this.features(a);
      const fb = this.features(b);
      return lpipsDistance(fa, fb, (diff, i) => this.lins[i].model.conv.forward(diff));
    });
  }

  loadWeights(source: Map<string, HostTensor>, options: LoadOptions = {}): LoadReport {
    return this.loadStateDict(withDefaultScaling(source), options);
  }
}

/**
 * Merges torchvision's alexnet state dict (features.{0,3,6,8,10}.*; the classifier is dropped) and the
 * lpips heads (lin{i}.model.1.weight, the lpips package's weights/v0.1/alex.pth) into the layout above.
 */
export function alexLpipsFromTorchvision(alexnet: Map<string, HostTensor>, heads: Map<string, HostTensor>): Map<string, HostTensor> {
  const sliceOf: Record<string, number> = { 0: 1, 3: 2, 6: 3, 8: 4, 10: 5 };
  const out = new Map<string, HostTensor>();
  for (const [key, t] of alexnet) {
    const m = /^features\.(\d+)\.(weight|bias)$/.exec(key);
    if (m && sliceOf[m[1]]) out.set(`net.slice${sliceOf[m[1]]}.${m[1]}.${m[2]}`, t);
  }
  copyLpipsHeads(heads, out);
  return out;
}
