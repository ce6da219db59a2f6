import type { Backend } from '../engine/backend';
import { addScalar, copyInto, zeros, ones } from '../kernels/elementwise';
import { noGrad } from '../engine/autograd';
import { linear as linearOp } from '../kernels/matmul';
import { convNd } from '../kernels/conv';
import { batchNorm, groupNorm, layerNorm } from '../kernels/norm';
import { attention } from '../kernels/attention';
import { permute, reshape, slice } from '../kernels/views';
import type { Generator } from '../kernels/random';
import type { Tensor } from '../engine/tensor';
import { Module } from './module';
import { constant, defaultBiasInit, defaultWeightInit, xavierUniform, zerosInit, type Init } from './init';

/** What every layer constructor needs: where tensors live and the generator for their initial values. */
export interface InitContext {
  backend: Backend;
  gen: Generator;
}

export interface LinearOptions {
  bias?: boolean;
  weightInit?: Init;
  biasInit?: Init;
}

/** torch.nn.Linear: weight [out, in], bias [out]. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(ctx: InitContext, readonly inFeatures: number, readonly outFeatures: number, options: LinearOptions = {}) {
    super(ctx.backend);
    this.weight = this.parameter('weight', [outFeatures, inFeatures], options.weightInit ?? defaultWeightInit(ctx.gen));
    this.bias = options.bias === false ? this.registerParameter('bias', null) : this.parameter('bias', [outFeatures], options.biasInit ?? defaultBiasInit(ctx.gen, [outFeatures, inFeatures]));
  }
  forward(x: Tensor): Tensor {
    return linearOp(x, this.weight, this.bias);
  }
}

export interface ConvLayerOptions {
  stride?: number | readonly number[];
  padding?: number | readonly number[];
  dilation?: number | readonly number[];
  bias?: boolean;
  weightInit?: Init;
}

/** torch.nn.Conv{1,2,3}d: weight [out, in, *kernel], bias [out]. `kernel` has one entry per spatial dim. */
export class Conv extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(ctx: InitContext, inChannels: number, outChannels: number, kernel: readonly number[], readonly options: ConvLayerOptions = {}) {
    super(ctx.backend);
    const shape = [outChannels, inChannels, ...kernel];
    this.weight = this.parameter('weight', shape, options.weightInit ?? defaultWeightInit(ctx.gen));
    this.bias = options.bias === false ? this.registerParameter('bias', null) : this.parameter('bias', [outChannels], defaultBiasInit(ctx.gen, shape));
  }
  forward(x: Tensor): Tensor {
    return convNd(x, this.weight, this.bias, this.options);
  }
}

const spatial = (k: number | readonly number[], dims: number) => (typeof k === 'number' ? new Array<number>(dims).fill(k) : [...k]);
export const conv1d = (ctx: InitContext, cin: number, cout: number, k: number, o: ConvLayerOptions = {}) => new Conv(ctx, cin, cout, [k], o);
export const conv2d = (ctx: InitContext, cin: number, cout: number, k: number | readonly number[], o: ConvLayerOptions = {}) => new Conv(ctx, cin, cout, spatial(k, 2), o);
export const conv3d = (ctx: InitContext, cin: number, cout: number, k: number | readonly number[], o: ConvLayerOptions = {}) => new Conv(ctx, cin, cout, spatial(k, 3), o);

export interface BatchNormLayerOptions {
  eps?: number;
  momentum?: number;
  weightInit?: Init;
}

/** torch.nn.BatchNorm{1,3}d with running statistics and num_batches_tracked, updated on the GPU. */
export class BatchNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly numBatchesTracked: Tensor;
  constructor(ctx: InitContext, readonly channels: number, readonly options: BatchNormLayerOptions = {}) {
    super(ctx.backend);
    this.weight = this.parameter('weight', [channels], options.weightInit ?? constant(1));
    this.bias = this.parameter('bias', [channels], zerosInit);
    this.runningMean = this.registerBuffer('running_mean', zeros(ctx.backend, [channels]));
    this.runningVar = this.registerBuffer('running_var', ones(ctx.backend, [channels]));
    this.numBatchesTracked = this.registerBuffer('num_batches_tracked', zeros(ctx.backend, []));
  }
  forward(x: Tensor): Tensor {
    if (this.training) {
      noGrad(() => {
        const next = addScalar(this.numBatchesTracked, 1);
        copyInto(this.backend, next, this.numBatchesTracked);
        next.dispose();
      });
    }
    return batchNorm(x, this.runningMean, this.runningVar, this.weight, this.bias, {
      training: this.training,
      momentum: this.options.momentum ?? 0.1,
      eps: this.options.eps ?? 1e-5,
    });
  }
}

/** torch.nn.GroupNorm (affine). */
export class GroupNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(ctx: InitContext, readonly groups: number, readonly channels: number, readonly eps = 1e-6) {
    super(ctx.backend);
    this.weight = this.parameter('weight', [channels], constant(1));
    this.bias = this.parameter('bias', [channels], zerosInit);
  }
  forward(x: Tensor): Tensor {
    return groupNorm(x, this.groups, this.weight, this.bias, this.eps);
  }
}

/** torch.nn.LayerNorm over the last dims; `affine: false` = elementwise_affine=False (no parameters). */
export class LayerNorm extends Module {
  readonly weight: Tensor | null = null;
  readonly bias: Tensor | null = null;
  constructor(ctx: InitContext, readonly normalizedShape: readonly number[], readonly eps = 1e-6, affine = true) {
    super(ctx.backend);
    if (affine) {
      this.weight = this.parameter('weight', normalizedShape, constant(1));
      this.bias = this.parameter('bias', normalizedShape, zerosInit);
    }
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
  }
}

/**
 * torch.nn.MultiheadAttention (batch_first): fused in_proj_weight [3D, D] and in_proj_bias, out_proj.
 * Self-attention when `context` is omitted; cross-attention projects queries from x and keys/values
 * from context with the matching rows of the fused weight. Uses the fused flash-attention kernel.
 */
export class MultiheadAttention extends Module {
  readonly inProjWeight: Tensor;
  readonly inProjBias: Tensor;
  readonly outProj: Linear;
  constructor(ctx: InitContext, readonly dim: number, readonly heads: number) {
    super(ctx.backend);
    this.inProjWeight = this.parameter('in_proj_weight', [3 * dim, dim], xavierUniform(ctx.gen));
    this.inProjBias = this.parameter('in_proj_bias', [3 * dim], zerosInit);
    this.outProj = this.registerModule('out_proj', new Linear(ctx, dim, dim, { biasInit: zerosInit }));
  }

  /** [B, N, D] → [B, heads, N, D/heads] (a view plus one copy inside attention if needed). */
  private splitHeads(t: Tensor): Tensor {
    const [b, n] = t.shape;
    return permute(reshape(t, [b, n, this.heads, this.dim / this.heads]), [0, 2, 1, 3]);
  }

  forward(x: Tensor, context?: Tensor): Tensor {
    const d = this.dim;
    const w = this.inProjWeight;
    const bias = this.inProjBias;
    let q: Tensor;
    let k: Tensor;
    let v: Tensor;
    if (!context) {
      const qkv = linearOp(x, w, bias);
      q = slice(qkv, -1, 0, d);
      k = slice(qkv, -1, d, 2 * d);
      v = slice(qkv, -1, 2 * d, 3 * d);
    } else {
      q = linearOp(x, slice(w, 0, 0, d), slice(bias, 0, 0, d));
      const kv = linearOp(context, slice(w, 0, d, 3 * d), slice(bias, 0, d, 3 * d));
      k = slice(kv, -1, 0, d);
      v = slice(kv, -1, d, 2 * d);
    }
    const o = attention(this.splitHeads(q), this.splitHeads(k), this.splitHeads(v));
    const [b, , n] = o.shape;
    return this.outProj.forward(reshape(permute(o, [0, 2, 1, 3]), [b, n, d]));
  }
}

/** Children named '0', '1', … as torch.nn.Sequential; slots may be parameter-free functions. */
export class Sequential extends Module {
  private readonly steps: ((x: Tensor) => Tensor)[] = [];
  constructor(backend: Backend, ...layers: (Module & { forward(x: Tensor): Tensor } | ((x: Tensor) => Tensor))[]) {
    super(backend);
    layers.forEach((layer, i) => {
      if (layer instanceof Module) {
        this.registerModule(String(i), layer);
        this.steps.push((x) => layer.forward(x));
      } else this.steps.push(layer);
    });
  }
  forward(x: Tensor): Tensor {
    let h = x;
    for (const step of this.steps) h = step(h);
    return h;
  }
}
