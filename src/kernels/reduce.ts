import { record } from '../engine/autograd';
import type { CpuStorage, GpuStorage } from '../engine/backend';
import { empty } from '../engine/create';
import { ShapeError } from '../engine/errors';
import { normalizeAxes, numel, type Shape } from '../engine/shape';
import type { Tensor } from '../engine/tensor';
import { UniformWriter } from '../engine/uniforms';
import { reduceShader, type ReduceOp } from '../../shaders/reduce.wgsl';
import { reduceRef } from './reference/reduce';
import { contiguous, expand, permute, reshape } from './views';
import { div, eq, mapOp, mul, pow, sub } from './elementwise';
import { tidy } from '../engine/scope';

const WORKGROUP = 256;

export interface ReduceOptions {
  keepdim?: boolean;
}

function reducedShape(shape: Shape, axes: number[], keepdim: boolean): number[] {
  return keepdim ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

/** One pass over [outer, R, inner] → [outer, chunks, inner] on the GPU. */
function launchReduce(x: Tensor, op: ReduceOp, outer: number, r: number, inner: number, chunks: number, scale: number, strides: [number, number, number]): Tensor {
  const backend = x.backend;
  if (backend.kind === 'cpu') throw new Error('launchReduce is GPU only');
  const out = empty(backend, [outer * chunks * inner], x.dtype === 'f16' ? 'f16' : 'f32');
  const outputs = outer * chunks * inner;
  const chunkLen = Math.ceil(r / chunks);
  // CPU adapters: one invocation per output whenever there are enough outputs (barriers are costly there).
  const software = backend.ctx.caps.software;
  const perThread = (inner > 1 && outputs >= 1024) || chunkLen <= 32 || (software && outputs >= 64);
  const program = {
    key: `reduce:${op}:${x.dtype}:${perThread ? 't' : 'g'}`,
    source: () => reduceShader({ op, inType: x.dtype, outType: out.dtype, perThread, workgroupSize: WORKGROUP }),
    inputs: 1,
    outputs: 1,
  };
  const groups = perThread ? Math.ceil(outputs / WORKGROUP) : outputs;
  const maxX = backend.ctx.caps.limits.maxComputeWorkgroupsPerDimension;
  backend.ctx.dispatch(program, {
    inputs: [(x.storage as GpuStorage).buffer],
    outputs: [(out.storage as GpuStorage).buffer],
    uniforms: new UniformWriter().u32(outer, r, inner, chunks, chunkLen, x.offset, ...strides).f32(scale).finish(),
    workgroups: [Math.min(groups, maxX), Math.ceil(groups / maxX)],
  });
  return out;
}

/** Reduction without autograd: `op` over `axes`, times `scale` (1/n gives a mean). */
export function reduceRaw(x: Tensor, op: ReduceOp, axesArg: number | readonly number[] | undefined, keepdim: boolean, scale = 1): Tensor {
  x.assertAlive();
  const axes = normalizeAxes(axesArg, x.rank);
  const outShape = reducedShape(x.shape, axes, keepdim);
  if (axes.length === 0) return mapOp('mul_scalar', [x], [scale]);
  if (numel(x.shape) === 0) throw new ShapeError(`cannot reduce an empty tensor of shape [${x.shape}]`);
  // Bring the reduced axes together: a contiguous block [outer, R, inner].
  const adjacent = axes.every((a, i) => i === 0 || a === axes[i - 1] + 1);
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const order = adjacent ? null : [...kept, ...axes];
  const src = order ? contiguous(permute(x, order)) : contiguous(x);
  const first = adjacent ? axes[0] : kept.length;
  const last = adjacent ? axes[axes.length - 1] : x.rank - 1;
  const shape = src.shape;
  const outer = numel(shape.slice(0, first));
  const r = numel(shape.slice(first, last + 1));
  const inner = numel(shape.slice(last + 1));
  let result: Tensor;
  if (x.backend.kind === 'cpu') {
    result = empty(x.backend, outShape, x.dtype);
    (result.storage as CpuStorage).data.set(reduceRef(op, src.toFloat64Sync(), outer, r, inner, scale));
  } else {
    const outputs = outer * inner;
    // Few outputs over a long axis: split the axis into chunks first so the whole GPU takes part.
    const chunks = outputs < 1024 && r > 4096 ? Math.min(1024, Math.ceil(r / 2048)) : 1;
    // (With chunks, the first pass has outer·chunks·inner outputs, enough for the per-invocation path.)
    let flat: Tensor;
    if (chunks > 1) {
      const partial = launchReduce(src, op, outer, r, inner, chunks, 1, [r * inner, inner, 1]);
      flat = launchReduce(partial, op, outer, chunks, inner, 1, scale, [chunks * inner, inner, 1]);
      partial.dispose();
    } else flat = launchReduce(src, op, outer, r, inner, 1, scale, [r * inner, inner, 1]);
    result = reshape(flat, outShape);
    if (result !== flat) flat.dispose();
  }
  if (src !== x) src.dispose();
  return result;
}

/** Sums a broadcast gradient back to `shape` (the inverse of broadcasting). */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g.share();
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  g.shape.forEach((d, i) => {
    if (i < lead || (shape[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  const s = reduceRaw(g, 'sum', axes, true);
  const r = reshape(s, shape);
  if (r !== s) s.dispose();
  return r;
}

function expandGrad(g: Tensor, x: Tensor, axes: number[], keepdim: boolean): Tensor {
  const kd = keepdim ? g : reshape(g, reducedShape(x.shape, axes, true));
  return expand(kd, x.shape);
}

export function sum(x: Tensor, axes?: number | readonly number[], options: ReduceOptions = {}): Tensor {
  const keepdim = options.keepdim ?? false;
  const ax = normalizeAxes(axes, x.rank);
  const y = reduceRaw(x, 'sum', ax, keepdim);
  return record('sum', [x], y, [], (g) => [expandGrad(g, x, ax, keepdim)]);
}

export function mean(x: Tensor, axes?: number | readonly number[], options: ReduceOptions = {}): Tensor {
  const keepdim = options.keepdim ?? false;
  const ax = normalizeAxes(axes, x.rank);
  const n = ax.reduce((p, a) => p * x.shape[a], 1);
  const y = reduceRaw(x, 'sum', ax, keepdim, 1 / n);
  return record('mean', [x], y, [], (g) => [mapOp('mul_scalar', [expandGrad(g, x, ax, keepdim)], [1 / n])]);
}

function extremum(op: 'max' | 'min', x: Tensor, axes: number | readonly number[] | undefined, options: ReduceOptions): Tensor {
  const keepdim = options.keepdim ?? false;
  const ax = normalizeAxes(axes, x.rank);
  const y = reduceRaw(x, op, ax, keepdim);
  // Ties share the gradient evenly (as torch.amax/amin do).
  return record(op, [x], y, [x, y], (g, [sx, sy]) => {
    const yk = keepdim ? sy : reshape(sy, reducedShape(sx.shape, ax, true));
    const mask = eq(sx, yk);
    const count = reduceRaw(mask, 'sum', ax, true);
    return [mul(expandGrad(g, sx, ax, keepdim), div(mask, count))];
  });
}
export const max = (x: Tensor, axes?: number | readonly number[], options: ReduceOptions = {}) => extremum('max', x, axes, options);
export const min = (x: Tensor, axes?: number | readonly number[], options: ReduceOptions = {}) => extremum('min', x, axes, options);

export interface VarianceOptions extends ReduceOptions {
  /** Divide by n − 1 (Bessel's correction) instead of n. Default true, as in PyTorch. */
  unbiased?: boolean;
}

/** Variance over `axes` (two-pass: subtract the mean first, for accuracy). */
export function variance(x: Tensor, axes?: number | readonly number[], options: VarianceOptions = {}): Tensor {
  const ax = normalizeAxes(axes, x.rank);
  const n = ax.reduce((p, a) => p * x.shape[a], 1);
  const unbiased = options.unbiased ?? true;
  return tidy(() => {
    const d = sub(x, mean(x, ax, { keepdim: true }));
    const ss = sum(mul(d, d), ax, { keepdim: options.keepdim });
    return mul(ss, 1 / Math.max(unbiased ? n - 1 : n, 0));
  });
}

export function std(x: Tensor, axes?: number | readonly number[], options: VarianceOptions = {}): Tensor {
  return tidy(() => pow(variance(x, axes, options), 0.5));
}
