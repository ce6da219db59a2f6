import { record } from '../engine/autograd';
import type { CpuStorage, GpuStorage } from '../engine/backend';
import { empty } from '../engine/create';
import { ShapeError } from '../engine/errors';
import { formatShape } from '../engine/shape';
import type { Tensor } from '../engine/tensor';
import { UniformWriter } from '../engine/uniforms';
import { POOL_BACKWARD_RUN, poolBackwardShader, poolForwardShader } from '../../shaders/pool.wgsl';
import { poolBackwardRef, poolForwardRef, type PoolGeometry } from './reference/pool';
import { contiguous } from './views';

const WORKGROUP = 256;

export interface PoolOptions {
  kernel: number | readonly number[];
  /** Defaults to the kernel size (PyTorch). */
  stride?: number | readonly number[];
  padding?: number | readonly number[];
}

type PoolOp = 'max' | 'avg';

function perDim(v: number | readonly number[], k: number, what: string): number[] {
  const arr = typeof v === 'number' ? new Array<number>(k).fill(v) : [...v];
  if (arr.length !== k || arr.some((d) => !Number.isInteger(d))) throw new ShapeError(`pool ${what} must be an integer or ${k} integers, got [${arr}]`);
  return arr;
}

/** Resolves [N, C, *spatial(k)] and the options into a [planes, D, H, W] geometry (ceil_mode false). */
function geometry(x: Tensor, k: number, options: PoolOptions): PoolGeometry {
  if (x.rank !== k + 2) throw new ShapeError(`${k}-D pooling expects [N, C, ${k} spatial dims], got ${formatShape(x.shape)}`);
  const kernel = perDim(options.kernel, k, 'kernel');
  const stride = perDim(options.stride ?? kernel, k, 'stride');
  const padding = perDim(options.padding ?? 0, k, 'padding');
  const spatial = x.shape.slice(2);
  const output = spatial.map((size, d) => {
    if (kernel[d] < 1 || stride[d] < 1 || padding[d] < 0) throw new ShapeError(`pool: kernel and stride must be ≥ 1 and padding ≥ 0`);
    if (padding[d] * 2 > kernel[d]) throw new ShapeError(`pool: padding ${padding[d]} must be at most half the kernel ${kernel[d]}`);
    const o = Math.floor((size + 2 * padding[d] - kernel[d]) / stride[d]) + 1;
    if (o < 1) throw new ShapeError(`pool: kernel ${kernel[d]} does not fit input ${formatShape(x.shape)} with padding ${padding[d]}`);
    return o;
  });
  const pad3 = (v: number[], fill: number) => [...new Array<number>(3 - k).fill(fill), ...v] as [number, number, number];
  return {
    planes: x.shape[0] * x.shape[1],
    input: pad3(spatial, 1),
    output: pad3(output, 1),
    kernel: pad3(kernel, 1),
    stride: pad3(stride, 1),
    padding: pad3(padding, 0),
  };
}

function uniforms(p: PoolGeometry, xOffset: number, gOffset: number, iOffset: number): Uint32Array {
  return new UniformWriter()
    .u32(p.planes, ...p.input, ...p.output, ...p.kernel, ...p.stride, ...p.padding)
    .u32(xOffset, gOffset, iOffset)
    .finish();
}

function grid(t: Tensor, threads: number): [number, number] {
  const groups = Math.ceil(threads / WORKGROUP);
  const maxX = t.backend.kind === 'webgpu' ? t.backend.ctx.caps.limits.maxComputeWorkgroupsPerDimension : 65535;
  return [Math.min(groups, maxX), Math.ceil(groups / maxX)];
}

const buf = (t: Tensor) => (t.storage as GpuStorage).buffer;

function poolForward(op: PoolOp, k: number, x: Tensor, p: PoolGeometry, outShape: number[]): { y: Tensor; argmax: Tensor | null } {
  const y = empty(x.backend, outShape, 'f32');
  const argmax = op === 'max' ? empty(x.backend, outShape, 'i32') : null;
  if (y.size === 0) return { y, argmax };
  if (x.backend.kind === 'cpu') {
    const r = poolForwardRef(op, x.toFloat64Sync(), p);
    (y.storage as CpuStorage).data.set(r.y);
    if (argmax) (argmax.storage as CpuStorage).data.set(r.argmax);
    return { y, argmax };
  }
  x.backend.ctx.dispatch(
    { key: `pool_fwd:${op}:${k}`, source: () => poolForwardShader({ op, spatialRank: k, workgroupSize: WORKGROUP }), inputs: 1, outputs: argmax ? 2 : 1 },
    { inputs: [buf(x)], outputs: [buf(y), ...(argmax ? [buf(argmax)] : [])], uniforms: uniforms(p, x.offset, 0, 0), workgroups: grid(x, y.size) },
  );
  return { y, argmax };
}

function poolBackward(op: PoolOp, k: number, g: Tensor, argmax: Tensor | null, p: PoolGeometry, inShape: readonly number[]): Tensor {
  const dx = empty(g.backend, inShape, 'f32');
  if (dx.size === 0) return dx;
  if (g.backend.kind === 'cpu') {
    (dx.storage as CpuStorage).data.set(poolBackwardRef(op, g.toFloat64Sync(), argmax ? argmax.toFloat64Sync() : [], p));
    return dx;
  }
  g.backend.ctx.dispatch(
    { key: `pool_bwd:${op}:${k}`, source: () => poolBackwardShader({ op, spatialRank: k, workgroupSize: WORKGROUP }), inputs: argmax ? 2 : 1, outputs: 1 },
    {
      inputs: [buf(g), ...(argmax ? [buf(argmax)] : [])],
      outputs: [buf(dx)],
      uniforms: uniforms(p, 0, g.offset, argmax?.offset ?? 0),
      // One invocation per run of POOL_BACKWARD_RUN input columns.
      workgroups: grid(g, (dx.size / p.input[2]) * Math.ceil(p.input[2] / POOL_BACKWARD_RUN)),
    },
  );
  return dx;
}

function pool(op: PoolOp, k: number, x: Tensor, options: PoolOptions): Tensor {
  x.assertAlive();
  if (x.dtype !== 'f32') throw new ShapeError(`${op}Pool${k}d expects f32 input, got ${x.dtype}`);
  const p = geometry(x, k, options);
  const outShape = [x.shape[0], x.shape[1], ...p.output.slice(3 - k)];
  const xc = contiguous(x);
  const { y, argmax } = poolForward(op, k, xc, p, outShape);
  xc.dispose();
  const out = record(`${op}_pool${k}d`, [x], y, argmax ? [argmax] : [], (g, saved) => {
    const gc = contiguous(g);
    return [poolBackward(op, k, gc, saved[0] ?? null, p, x.shape)];
  });
  argmax?.dispose();
  return out;
}

/** PyTorch MaxPool{1,2,3}d (ceil_mode false, dilation 1): padding never wins, ties go to the first maximum. */
export const maxPool1d = (x: Tensor, options: PoolOptions) => pool('max', 1, x, options);
export const maxPool2d = (x: Tensor, options: PoolOptions) => pool('max', 2, x, options);
export const maxPool3d = (x: Tensor, options: PoolOptions) => pool('max', 3, x, options);
/** PyTorch AvgPool{1,2,3}d with count_include_pad true (the divisor is always the kernel volume). */
export const avgPool1d = (x: Tensor, options: PoolOptions) => pool('avg', 1, x, options);
export const avgPool2d = (x: Tensor, options: PoolOptions) => pool('avg', 2, x, options);
export const avgPool3d = (x: Tensor, options: PoolOptions) => pool('avg', 3, x, options);
