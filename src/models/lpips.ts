/**
 * LPIPS with VGG16 features (REFERENCE_SPEC §4.8), the perceptual term of the VAE stage. Frozen: no
 * parameter requires grad, but the gradient flows to the first input (the reconstruction).
 *
 * Weights never come from the network: load a user-supplied state dict with the lpips/taming key layout
 *   scaling_layer.shift, scaling_layer.scale        [1,3,1,1] buffers (optional: defaults below)
 *   net.slice1.{0,2}.{weight,bias}                  conv1_1, conv1_2
 *   net.slice2.{5,7}.*   net.slice3.{10,12,14}.*   net.slice4.{17,19,21}.*   net.slice5.{24,26,28}.*
 *   lin{0..4}.model.1.weight                        [1, C_tap, 1, 1] heads (no bias)
 * (torchvision's vgg16().features indices are kept; `lpipsFromTorchvisionVgg16` renames features.N.*).
 * Inside a reference VAE checkpoint the same keys sit under loss.perceptual_loss.
 */
import { tidy } from '../engine/scope';
import type { Tensor } from '../engine/tensor';
import { fromArray } from '../engine/create';
import { add, div, relu, square, sub } from '../kernels/elementwise';
import { dropout } from '../kernels/dropout';
import { maxPool2d } from '../kernels/pool';
import { l2NormalizeChannels } from '../kernels/norm';
import { mean } from '../kernels/reduce';
import type { Generator } from '../kernels/random';
import { permute, reshape } from '../kernels/views';
import { Module, type HostTensor, type LoadOptions, type LoadReport } from './module';
import { Conv, conv2d, type InitContext } from './layers';

export interface LpipsConfig {
  /** Output channels of the five VGG16 stages (tapped at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3). */
  channels: readonly [number, number, number, number, number];
  /** Dropout before each linear head; active in train mode (the reference trains with it on). */
  dropout: number;
}

export const LPIPS_CONFIGS = {
  vgg16: { channels: [64, 128, 256, 512, 512], dropout: 0.5 },
  /** Reduced-channel VGG-like stack for parity tests (tools/torch_oracle/vae.py). */
  tiny: { channels: [4, 8, 8, 8, 8], dropout: 0.5 },
} as const satisfies Record<string, LpipsConfig>;

export const LPIPS_SHIFT = [-0.03, -0.088, -0.188];
export const LPIPS_SCALE = [0.458, 0.448, 0.45];
/** Key prefix of the perceptual loss inside a reference VAE checkpoint. */
export const LPIPS_CHECKPOINT_PREFIX = 'loss.perceptual_loss.';
/** Convolutions per VGG16 stage; stages 2-5 start with a 2×2 max-pool. */
const CONVS_PER_STAGE = [2, 2, 3, 3, 3];

/** An nn.Sequential whose children keep given (global) indices, as the lpips slices do. */
class IndexedSequential extends Module {
  private readonly steps: ((x: Tensor) => Tensor)[] = [];
  add(index: number, layer: Conv | ((x: Tensor) => Tensor)): void {
    if (layer instanceof Conv) {
      this.registerModule(String(index), layer);
      this.steps.push((x) => layer.forward(x));
    } else this.steps.push(layer);
  }
  forward(x: Tensor): Tensor {
    return this.steps.reduce((h, step) => step(h), x);
  }
}

/** (x − shift) / scale per RGB channel; a 1-channel (grey) input broadcasts to 3 channels. */
export class ScalingLayer extends Module {
  readonly shift: Tensor;
  readonly scale: Tensor;
  constructor(ctx: InitContext) {
    super(ctx.backend);
    this.shift = this.registerBuffer('shift', fromArray(ctx.backend, LPIPS_SHIFT, [1, 3, 1, 1]));
    this.scale = this.registerBuffer('scale', fromArray(ctx.backend, LPIPS_SCALE, [1, 3, 1, 1]));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => div(sub(x, this.shift), this.scale));
  }
}

/** vgg16().features cut into slice1..slice5 at the five taps, torchvision indices kept. */
class Vgg16Features extends Module {
  readonly slices: IndexedSequential[] = [];
  constructor(ctx: InitContext, channels: readonly number[]) {
    super(ctx.backend);
    let index = 0;
    let inChannels = 3;
    CONVS_PER_STAGE.forEach((convs, stage) => {
      const slice = this.registerModule(`slice${stage + 1}`, new IndexedSequential(ctx.backend));
      if (stage > 0) slice.add(index++, (x) => maxPool2d(x, { kernel: 2, stride: 2 }));
      for (let j = 0; j < convs; j++) {
        slice.add(index++, conv2d(ctx, inChannels, channels[stage], 3, { padding: 1 }));
        slice.add(index++, relu);
        inChannels = channels[stage];
      }
      this.slices.push(slice);
    });
  }
  /** The five tap activations. */
  forward(x: Tensor): Tensor[] {
    const taps: Tensor[] = [];
    let h = x;
    for (const slice of this.slices) taps.push((h = slice.forward(h)));
    return taps;
  }
}

/** lin{i}.model = Sequential(Dropout, Conv2d C→1 k1 without bias). */
class NetLinLayer extends Module {
  readonly conv: Conv;
  readonly model: IndexedSequential;
  constructor(ctx: InitContext, channels: number, p: number, gen: Generator) {
    super(ctx.backend);
    this.model = this.registerModule('model', new IndexedSequential(ctx.backend));
    this.model.add(0, (x) => dropout(x, p, gen, this.training));
    this.conv = conv2d(ctx, channels, 1, 1, { bias: false });
    this.model.add(1, this.conv);
  }
  forward(x: Tensor): Tensor {
    return this.model.forward(x);
  }
}

export class Lpips extends Module {
  readonly scalingLayer: ScalingLayer;
  readonly net: Vgg16Features;
  readonly lins: NetLinLayer[];

  /** `ctx.gen` draws the dropout masks in train mode; weights start random: load real ones with loadWeights. */
  constructor(ctx: InitContext, readonly config: LpipsConfig = LPIPS_CONFIGS.vgg16) {
    super(ctx.backend);
    this.scalingLayer = this.registerModule('scaling_layer', new ScalingLayer(ctx));
    this.net = this.registerModule('net', new Vgg16Features(ctx, config.channels));
    this.lins = config.channels.map((c, i) => this.registerModule(`lin${i}`, new NetLinLayer(ctx, c, config.dropout, ctx.gen)));
    for (const p of this.parameters()) p.requiresGrad = false;
  }

  /** Images a, b: [N, 1 or 3, H, W] in [−1, 1] → distance [N, 1, 1, 1]. Gradients flow to a and b, never to the weights. */
  forward(a: Tensor, b: Tensor): Tensor {
    return tidy(() =>
      lpipsDistance(this.net.forward(this.scalingLayer.forward(a)), this.net.forward(this.scalingLayer.forward(b)), (diff, i) => this.lins[i].forward(diff)),
    );
  }

  /** Per-frame LPIPS of two clips (B, C, T, H, W) → (B, 1, T, 1, 1), as the VAE loss broadcasts it (§4.8). */
  video(a: Tensor, b: Tensor): Tensor {
    return tidy(() => {
      const [batch, channels, frames, h, w] = a.shape;
      const frames2d = (v: Tensor) => reshape(permute(v, [0, 2, 1, 3, 4]), [batch * frames, channels, h, w]);
      return reshape(this.forward(frames2d(a), frames2d(b)), [batch, 1, frames, 1, 1]);
    });
  }

  /**
   * Loads the lpips-layout state dict (see the file comment). The scaling_layer buffers may be absent
   * (the lpips package's vgg.pth holds only the heads); then the standard constants stay.
   */
  loadWeights(source: Map<string, HostTensor>, options: LoadOptions = {}): LoadReport {
    return this.loadStateDict(withDefaultScaling(source), options);
  }
}

/**
 * Σ over the taps of mean_hw(head_i((unit-normalised fa_i − unit-normalised fb_i)²)): the LPIPS distance
 * [N, 1, 1, 1] of two images' tap activations. Call inside tidy().
 */
export function lpipsDistance(fa: Tensor[], fb: Tensor[], head: (diff: Tensor, i: number) => Tensor): Tensor {
  const perTap = fa.map((ta, i) => {
    const diff = square(sub(l2NormalizeChannels(ta, 1e-10), l2NormalizeChannels(fb[i], 1e-10)));
    return mean(head(diff, i), [2, 3], { keepdim: true });
  });
  return perTap.reduce((acc, t) => add(acc, t));
}

/** A copy of an lpips-layout state dict with the standard scaling_layer constants where it has none. */
export function withDefaultScaling(source: Map<string, HostTensor>): Map<string, HostTensor> {
  const full = new Map(source);
  if (!full.has('scaling_layer.shift')) full.set('scaling_layer.shift', { shape: [1, 3, 1, 1], data: LPIPS_SHIFT });
  if (!full.has('scaling_layer.scale')) full.set('scaling_layer.scale', { shape: [1, 3, 1, 1], data: LPIPS_SCALE });
  return full;
}

/** Copies the LPIPS heads (lin{i}.model.1.weight) of `heads` into `out`. */
export function copyLpipsHeads(heads: Map<string, HostTensor>, out: Map<string, HostTensor>): void {
  for (const [key, t] of heads) if (/^lin\d\.model\.1\.weight$/.test(key)) out.set(key, t);
}

/**
 * Merges torchvision's vgg16 state dict (features.N.weight/bias; the classifier is dropped) and the
 * LPIPS heads (lin{i}.model.1.weight, e.g. the lpips package's weights/v0.1/vgg.pth) into the LPIPS layout.
 */
export function lpipsFromTorchvisionVgg16(vgg16: Map<string, HostTensor>, heads: Map<string, HostTensor>): Map<string, HostTensor> {
  const sliceStarts = [0, 4, 9, 16, 23, 30];
  const out = new Map<string, HostTensor>();
  for (const [key, t] of vgg16) {
    const m = /^features\.(\d+)\.(weight|bias)$/.exec(key);
    if (!m) continue;
    const index = Number(m[1]);
    const slice = sliceStarts.findIndex((s, i) => index >= s && index < sliceStarts[i + 1]) + 1;
    if (slice > 0) out.set(`net.slice${slice}.${index}.${m[2]}`, t);
  }
  copyLpipsHeads(heads, out);
  return out;
}
