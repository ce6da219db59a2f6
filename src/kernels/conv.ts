import { noGrad, record } from '../engine/autograd';
import { autocastDtype } from '../engine/autocast';
import type { CpuStorage, GpuStorage, WebGPUBackend } from '../engine/backend';
import { empty } from '../engine/create';
import type { DType } from '../engine/dtype';
import { ShapeError } from '../engine/errors';
import { formatShape } from '../engine/shape';
import type { Tensor } from '../engine/tensor';
import { UniformWriter } from '../engine/uniforms';
import { convDirectShader, convShader, convWgradDirectShader, tapTableSize, type ConvMode, type ConvTiling } from '../../shaders/conv.wgsl';
import { convBackwardDataRef, convBackwardWeightRef, convForwardRef, type ConvGeometry } from './reference/conv';
import { cast } from './elementwise';
import { reduceRaw } from './reduce';
import { reshape } from './views';

export interface ConvOptions {
  /** Per spatial dim, or one number for all. Default 1. */
  stride?: number | readonly number[];
  /** Zero padding on both sides of each spatial dim. Default 0. */
  padding?: number | readonly number[];
  /** Spacing between kernel taps. Default 1. */
  dilation?: number | readonly number[];
}

export type { ConvTiling } from '../../shaders/conv.wgsl';

// ---------------------------------------------------------------------------------------------------
// Geometry: every rank is handled as 3-D, lower ranks get leading size-1 spatial dims.

interface Conv3dGeometry extends ConvGeometry {
  /** Number of spatial dims of the caller's tensors (1, 2 or 3). */
  spatialDims: number;
}

function perDim(v: number | readonly number[] | undefined, dims: number, fallback: number, what: string): number[] {
  const arr = v === undefined ? new Array<number>(dims).fill(fallback) : typeof v === 'number' ? new Array<number>(dims).fill(v) : [...v];
  if (arr.length !== dims || arr.some((n) => !Number.isInteger(n))) throw new ShapeError(`conv ${what} must be an integer or ${dims} integers, got ${JSON.stringify(v)}`);
  return arr;
}

/** Pads per-dim values to three dims (depth, height, width). */
const to3 = (v: readonly number[], fill: number) => [...new Array<number>(3 - v.length).fill(fill), ...v];

function geometryOf(xShape: readonly number[], wShape: readonly number[], opts: ConvOptions): Conv3dGeometry {
  const dims = xShape.length - 2;
  if (dims < 1 || dims > 3) throw new ShapeError(`conv input must be [N, C, ...1-3 spatial dims], got ${formatShape(xShape)}`);
  if (wShape.length !== xShape.length) throw new ShapeError(`conv weight ${formatShape(wShape)} must have the rank of input ${formatShape(xShape)}`);
  if (wShape[1] !== xShape[1]) throw new ShapeError(`conv: weight ${formatShape(wShape)} expects ${wShape[1]} input channels, input ${formatShape(xShape)} has ${xShape[1]}`);
  const stride = perDim(opts.stride, dims, 1, 'stride');
  const padding = perDim(opts.padding, dims, 0, 'padding');
  const dilation = perDim(opts.dilation, dims, 1, 'dilation');
  if (stride.some((s) => s < 1) || dilation.some((d) => d < 1) || padding.some((p) => p < 0)) {
    throw new ShapeError(`conv: stride and dilation must be ≥ 1 and padding ≥ 0 (stride ${stride}, padding ${padding}, dilation ${dilation})`);
  }
  const inSize = xShape.slice(2);
  const kernel = wShape.slice(2);
  const outSize = inSize.map((n, i) => Math.floor((n + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) / stride[i]) + 1);
  if (outSize.some((n) => n < 1) || kernel.some((k) => k < 1)) {
    throw new ShapeError(`conv: kernel ${formatShape(kernel)} (dilation ${dilation}, padding ${padding}) does not fit input ${formatShape(xShape)}`);
  }
  return {
    spatialDims: dims,
    batch: xShape[0],
    cin: xShape[1],
    cout: wShape[0],
    inSize: to3(inSize, 1),
    kernel: to3(kernel, 1),
    stride: to3(stride, 1),
    padding: to3(padding, 0),
    dilation: to3(dilation, 1),
    outSize: to3(outSize, 1),
  };
}

const prod = (v: readonly number[]) => v.reduce((a, b) => a * b, 1);
/** Strides of the spatial dims as three entries (0 for the padded size-1 dims). */
const spatialStrides = (t: Tensor) => to3(t.strides.slice(2), 0);
const gpuBuffer = (t: Tensor) => (t.storage as GpuStorage).buffer;

function requireFloat(...ts: Tensor[]): void {
  for (const t of ts) if (t.dtype !== 'f32' && t.dtype !== 'f16') throw new ShapeError(`conv supports f32 and f16 tensors, got ${t.dtype} ${formatShape(t.shape)}`);
}

// ---------------------------------------------------------------------------------------------------
// Tiling

let tilingOverride: ConvTiling | null = null;
/** Forces a tiling for every conv kernel (benchmarks and tuning); null restores the default choice. */
export function setConvTiling(t: ConvTiling | null): void {
  tilingOverride = t;
}

const isSoftware = (b: WebGPUBackend) => b.ctx.caps.software;
/** Register-block scale on CPU adapters: 2 where 128-output blocks run (lavapipe), 1 elsewhere (SwiftShader). */
const blockScale = (b: WebGPUBackend) => (b.ctx.caps.largeRegisterBlocks ? 2 : 1);

/**
 * Narrow column tiles when there are few output channels, so fewer lanes compute padding. On lavapipe
 * few invocations with big register tiles (8 rows each) beat many small ones: a workgroup runs as a loop
 * over SIMD lanes, so per-invocation work amortizes loads and barriers (measured in bench/conv.bench.ts).
 */
export function defaultConvTiling(cols: number, software = false, scale = 2): ConvTiling {
  if (tilingOverride) return tilingOverride;
  // CPU adapters: the barrier-free kernel (measured 1.5-2.5x faster than the tiled one on lavapipe).
  // Blocks of 128 outputs per invocation (8×16, or 16×8 when there are few columns) measured fastest.
  if (software) return { direct: true, workgroup: 64, bm: 0, bn: 0, bk: 0, tm: (cols <= 8 ? 8 : 4) * scale, tn: cols <= 4 ? 4 : cols <= 8 ? 8 : 16 };
  if (cols <= 8) return { bm: 64, bn: 8, bk: 16, tm: 8, tn: 2 };
  if (cols <= 16) return { bm: 64, bn: 16, bk: 16, tm: 8, tn: 4 };
  if (cols <= 32) return { bm: 64, bn: 32, bk: 16, tm: 8, tn: 4 };
  return { bm: 64, bn: 64, bk: 16, tm: 8, tn: 4 };
}

/** Weight gradient: rows are output channels (few), columns Cin·taps (many). */
function wgradTiling(rows: number, software: boolean, scale = 2): ConvTiling {
  if (tilingOverride) return tilingOverride;
  if (software) return { direct: true, workgroup: 64, bm: 0, bn: 0, bk: 0, tm: rows <= 4 ? 2 : 4 * scale, tn: 8 };
  if (rows <= 16) return { bm: 16, bn: 64, bk: 16, tm: 2, tn: 8 };
  return { bm: 32, bn: 64, bk: 16, tm: 4, tn: 8 };
}

// ---------------------------------------------------------------------------------------------------
// GPU launch: one uniform layout for both shader modes (see shaders/conv.wgsl.ts, struct Params).

interface Tap {
  /** Position offsets added to the row's base position, per spatial dim. */
  dz: number;
  dy: number;
  dx: number;
  /** Element offset of this tap in the A operand (x or gy) and in the weight. */
  offA: number;
  offW: number;
}

interface GemmLaunch {
  mode: ConvMode;
  rows: number;
  cols: number;
  depth: number;
  taps: Tap[];
  /** Row grid (per batch item) of positions, decoded from the row (gemm) or depth (wgrad) index. */
  grid: readonly number[];
  a: { t: Tensor; size: readonly number[] };
  rowStep: readonly number[];
  rowBase: readonly number[];
  b: { t: Tensor; kStride: number; nStride: number };
  bias?: Tensor | null;
  out: Tensor;
  outBatch?: number;
  outChan?: number;
  outStride?: readonly number[];
  outStep?: readonly number[];
  outBase?: readonly number[];
  splits?: number;
  chunk?: number;
  tiling: ConvTiling;
}

function launchConv(backend: WebGPUBackend, l: GemmLaunch): void {
  const maxTaps = tapTableSize(l.taps.length);
  const t = l.tiling;
  const direct = t.direct === true;
  const workgroup = t.workgroup ?? 64;
  const tilesN = Math.ceil(l.cols / (direct ? t.tn : t.bn));
  const tiles = direct ? Math.ceil((tilesN * Math.ceil(l.rows / t.tm)) / workgroup) : tilesN * Math.ceil(l.rows / t.bm);
  const [qd, qh, qw] = l.grid;
  const aStrides = spatialStrides(l.a.t);
  const gStrides = l.mode === 'wgrad' ? spatialStrides(l.b.t) : [0, 0, 0];
  const w = new UniformWriter()
    .u32(l.rows, l.cols, l.depth, Math.max(1, l.taps.length))
    .f32(1 / Math.max(1, l.taps.length), 1 / (qd * qh * qw), 1 / (qh * qw), 1 / qw)
    .u32(qd * qh * qw, qh * qw, qw, tilesN)
    .i32(l.a.t.offset, l.a.t.strides[0], l.a.t.strides[1])
    .u32(l.chunk ?? 0)
    .i32(...aStrides, 0)
    .i32(...l.a.size, 0)
    .i32(...l.rowStep, 0)
    .i32(...l.rowBase, 0)
    .i32(l.b.t.offset, l.b.kStride, l.b.nStride)
    // The bias is a view like any operand (a slice of a fused parameter): its own offset and stride.
    .u32(l.outBatch ?? 0, l.outChan ?? 0, l.bias?.offset ?? 0, l.bias?.strides[0] ?? 0, 0)
    .i32(...gStrides, 0)
    .u32(...(l.outStride ?? [0, 0, 0]), 0)
    .u32(...(l.outStep ?? [0, 0, 0]), 0)
    .u32(...(l.outBase ?? [0, 0, 0]), 0);
  for (let i = 0; i < maxTaps; i++) {
    const tap = l.taps[i];
    w.i32(tap?.dz ?? 0, tap?.dy ?? 0, tap?.dx ?? 0, tap?.offW ?? 0);
  }
  for (let i = 0; i < maxTaps; i++) w.i32(l.taps[i]?.offA ?? 0);
  const hasBias = !!l.bias;
  // Operand storage dtypes (f16 loads are widened to f32); the f32/f32 keys are those of the f32-only kernels.
  const types = { a: l.a.t.dtype, b: l.b.t.dtype };
  const typeKey = types.a === 'f32' && types.b === 'f32' ? '' : `:${types.a},${types.b}`;
  const program = {
    key: direct
      ? `conv-direct:${l.mode}:${hasBias ? 'bias' : ''}:${t.tm}x${t.tn}/${workgroup}:taps${maxTaps}${typeKey}`
      : `conv:${l.mode}:${hasBias ? 'bias' : ''}:${t.bm}x${t.bn}x${t.bk}/${t.tm}x${t.tn}:taps${maxTaps}${typeKey}`,
    source: () => {
      if (!direct) return convShader({ mode: l.mode, bias: hasBias, tiling: t, maxTaps, types });
      return l.mode === 'wgrad' ? convWgradDirectShader({ tm: t.tm, tn: t.tn, workgroup, maxTaps, types }) : convDirectShader({ bias: hasBias, tm: t.tm, tn: t.tn, workgroup, maxTaps, types });
    },
    inputs: hasBias ? 3 : 2,
    outputs: 1,
  };
  const maxX = backend.ctx.caps.limits.maxComputeWorkgroupsPerDimension;
  backend.ctx.dispatch(program, {
    inputs: [l.a.t, l.b.t, ...(l.bias ? [l.bias] : [])].map(gpuBuffer),
    outputs: [gpuBuffer(l.out)],
    uniforms: w.finish(),
    workgroups: [Math.min(tiles, maxX), Math.ceil(tiles / maxX), l.splits ?? 1],
  });
}

/** All kernel taps with forward offsets: position k·dilation, element offsets in x (strides) and w. */
function forwardTaps(g: ConvGeometry, xStrides: readonly number[], wStrides: readonly number[]): Tap[] {
  const [xs0, xs1, xs2] = xStrides;
  const [ws0, ws1, ws2] = wStrides;
  const taps: Tap[] = [];
  for (let kd = 0; kd < g.kernel[0]; kd++)
    for (let kh = 0; kh < g.kernel[1]; kh++)
      for (let kw = 0; kw < g.kernel[2]; kw++) {
        const dz = kd * g.dilation[0];
        const dy = kh * g.dilation[1];
        const dx = kw * g.dilation[2];
        taps.push({ dz, dy, dx, offA: dz * xs0 + dy * xs1 + dx * xs2, offW: kd * ws0 + kh * ws1 + kw * ws2 });
      }
  return taps;
}

// ---------------------------------------------------------------------------------------------------
// Raw (non-recording) ops on either backend.

function outShapeOf(g: Conv3dGeometry, channels: number, spatial: readonly number[]): number[] {
  return [g.batch, channels, ...spatial.slice(3 - g.spatialDims)];
}

function convForwardRaw(x: Tensor, w: Tensor, bias: Tensor | null, g: Conv3dGeometry): Tensor {
  const out = empty(x.backend, outShapeOf(g, g.cout, g.outSize), 'f32');
  if (x.backend.kind === 'cpu') {
    const y = convForwardRef(x.toFloat64Sync(), w.toFloat64Sync(), bias ? bias.toFloat64Sync() : null, g);
    (out.storage as CpuStorage).data.set(y);
    return out;
  }
  const outS = prod(g.outSize);
  launchConv(x.backend as WebGPUBackend, {
    mode: 'gemm',
    rows: g.batch * outS,
    cols: g.cout,
    depth: g.cin * prod(g.kernel),
    taps: forwardTaps(g, spatialStrides(x), spatialStrides(w)),
    grid: g.outSize,
    a: { t: x, size: g.inSize },
    rowStep: g.stride,
    rowBase: g.padding.map((p) => -p),
    b: { t: w, kStride: w.strides[1], nStride: w.strides[0] },
    bias,
    out,
    outBatch: g.cout * outS,
    outChan: outS,
    outStride: [g.outSize[1] * g.outSize[2], g.outSize[2], 1],
    outStep: [1, 1, 1],
    outBase: [0, 0, 0],
    tiling: defaultConvTiling(g.cout, isSoftware(x.backend as WebGPUBackend), blockScale(x.backend as WebGPUBackend)),
  });
  return out;
}

/**
 * Taps of one stride-residue class of the transposed convolution: input positions i ≡ r (mod s) only
 * receive from taps k with (r + p − k·dil) divisible by s, from output position q + (r + p − k·dil)/s
 * where i = r + s·q. Per dim, then the cartesian product.
 */
function residueTaps(g: ConvGeometry, r: readonly number[], gy: Tensor, w: Tensor): Tap[] {
  const perDimTaps = [0, 1, 2].map((d) => {
    const list: { k: number; delta: number }[] = [];
    for (let k = 0; k < g.kernel[d]; k++) {
      const num = r[d] + g.padding[d] - k * g.dilation[d];
      if (((num % g.stride[d]) + g.stride[d]) % g.stride[d] === 0) list.push({ k, delta: num / g.stride[d] });
    }
    return list;
  });
  const [gs0, gs1, gs2] = spatialStrides(gy);
  const [ws0, ws1, ws2] = spatialStrides(w);
  const taps: Tap[] = [];
  for (const a of perDimTaps[0])
    for (const b of perDimTaps[1])
      for (const c of perDimTaps[2]) {
        taps.push({
          dz: a.delta,
          dy: b.delta,
          dx: c.delta,
          offA: a.delta * gs0 + b.delta * gs1 + c.delta * gs2,
          offW: a.k * ws0 + b.k * ws1 + c.k * ws2,
        });
      }
  return taps;
}

function convBackwardDataRaw(gy: Tensor, w: Tensor, g: Conv3dGeometry): Tensor {
  const dx = empty(gy.backend, outShapeOf(g, g.cin, g.inSize), 'f32');
  if (gy.backend.kind === 'cpu') {
    (dx.storage as CpuStorage).data.set(convBackwardDataRef(gy.toFloat64Sync(), w.toFloat64Sync(), g));
    return dx;
  }
  const [D, H, W] = g.inSize;
  const [s0, s1, s2] = g.stride;
  // One implicit GEMM per residue class: every launched tap lands on an integer output position.
  for (let rz = 0; rz < Math.min(s0, D); rz++)
    for (let ry = 0; ry < Math.min(s1, H); ry++)
      for (let rx = 0; rx < Math.min(s2, W); rx++) {
        const grid = [Math.ceil((D - rz) / s0), Math.ceil((H - ry) / s1), Math.ceil((W - rx) / s2)];
        const taps = residueTaps(g, [rz, ry, rx], gy, w);
        launchConv(gy.backend as WebGPUBackend, {
          mode: 'gemm',
          rows: g.batch * prod(grid),
          cols: g.cin,
          depth: g.cout * taps.length,
          taps,
          grid,
          a: { t: gy, size: g.outSize },
          rowStep: [1, 1, 1],
          rowBase: [0, 0, 0],
          b: { t: w, kStride: w.strides[0], nStride: w.strides[1] },
          out: dx,
          outBatch: g.cin * D * H * W,
          outChan: D * H * W,
          outStride: [H * W, W, 1],
          outStep: [s0, s1, s2],
          outBase: [rz, ry, rx],
          tiling: defaultConvTiling(g.cin, isSoftware(gy.backend as WebGPUBackend), blockScale(gy.backend as WebGPUBackend)),
        });
      }
  return dx;
}

function convBackwardWeightRaw(x: Tensor, gy: Tensor, wShape: readonly number[], g: Conv3dGeometry): Tensor {
  const kv = prod(g.kernel);
  if (x.backend.kind === 'cpu') {
    const dw = empty(x.backend, wShape, 'f32');
    (dw.storage as CpuStorage).data.set(convBackwardWeightRef(x.toFloat64Sync(), gy.toFloat64Sync(), g));
    return dw;
  }
  const backend = x.backend as WebGPUBackend;
  const rows = g.cout;
  const cols = g.cin * kv;
  const depth = g.batch * prod(g.outSize);
  const tiling = wgradTiling(rows, isSoftware(backend), blockScale(backend));
  const direct = tiling.direct === true;
  // Direct: a "tile" is one invocation's TM×TN block, and the depth is walked one position at a time.
  const tiles = direct ? Math.ceil(rows / tiling.tm) * Math.ceil(cols / tiling.tn) : Math.ceil(rows / tiling.bm) * Math.ceil(cols / tiling.bn);
  const stepLen = direct ? 1 : tiling.bk;
  // Split the long reduction so enough work runs in parallel; each split keeps ≥ 8 depth steps.
  const targetGroups = direct ? 64 * 64 : isSoftware(backend) ? 32 : 512;
  const steps = Math.ceil(depth / stepLen);
  const wanted = Math.max(1, Math.min(Math.ceil(targetGroups / tiles), Math.floor(steps / 8), 256));
  const chunk = Math.ceil(steps / wanted) * stepLen;
  const splits = Math.ceil(depth / chunk);
  const partial = empty(backend, splits > 1 ? [splits, rows, cols] : wShape, 'f32');
  launchConv(backend, {
    mode: 'wgrad',
    rows,
    cols,
    depth,
    // The gradient is written contiguously at column (ci, tap): no weight offsets needed.
    taps: forwardTaps(g, spatialStrides(x), [0, 0, 0]),
    grid: g.outSize,
    a: { t: x, size: g.inSize },
    rowStep: g.stride,
    rowBase: g.padding.map((p) => -p),
    b: { t: gy, kStride: gy.strides[0], nStride: gy.strides[1] },
    out: partial,
    splits,
    chunk,
    tiling,
  });
  if (splits === 1) return partial;
  const summed = reduceRaw(partial, 'sum', [0], false);
  partial.dispose();
  const dw = reshape(summed, wShape);
  if (dw !== summed) summed.dispose();
  return dw;
}

// ---------------------------------------------------------------------------------------------------
// Public, differentiable ops.

/** `t` in `dtype`: a new handle, converted when the dtype differs (no autograd). */
const asDtype = (t: Tensor, dtype: DType) => (t.dtype === dtype ? t.share() : noGrad(() => cast(t, dtype)));
/** A gradient computed in f32, returned in the dtype of the input it belongs to. */
const gradIn = (g: Tensor | null, dtype: DType) => (g && g.dtype !== dtype ? cast(g, dtype) : g);

/**
 * N-d convolution (1, 2 or 3 spatial dims) with PyTorch layouts: x [N, Cin, *spatial],
 * w [Cout, Cin, *kernel], bias [Cout]. Differentiable in x, w and bias.
 *
 * x and w may be f32 or f16 (f16 loads are widened; accumulation is f32); the output is always f32, and
 * each gradient comes back in its input's dtype. Inside `autocast()` (a device with shader-f16) f32 x and
 * w are converted to f16 copies, which are what the backward pass keeps.
 */
export function convNd(x: Tensor, w: Tensor, bias: Tensor | null | undefined, opts: ConvOptions = {}): Tensor {
  const g = geometryOf(x.shape, w.shape, opts);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== g.cout)) throw new ShapeError(`conv bias must have shape [${g.cout}], got ${formatShape(bias.shape)}`);
  requireFloat(x, w, ...(bias ? [bias] : []));
  const half = autocastDtype(x.backend);
  const xi = asDtype(x, half ?? x.dtype);
  const wi = asDtype(w, half ?? w.dtype);
  const bi = bias ? asDtype(bias, 'f32') : null;
  const y = convForwardRaw(xi, wi, bi, g);
  const inputs = bias ? [x, w, bias] : [x, w];
  // Saved handles carry no autograd flags: decide now which gradients the rule computes.
  const needDx = x.requiresGrad || !!x.gradNode;
  const needDw = w.requiresGrad || !!w.gradNode;
  const dtypes = { x: x.dtype, w: w.dtype, bias: bias?.dtype ?? 'f32' };
  const out = record(`conv${g.spatialDims}d`, inputs, y, [xi, wi], (gy, [sx, sw]) => {
    const dx = needDx ? convBackwardDataRaw(gy, sw, g) : null;
    const dw = needDw ? convBackwardWeightRaw(sx, gy, sw.shape, g) : null;
    const db = bias ? reduceRaw(gy, 'sum', [0, ...Array.from({ length: g.spatialDims }, (_, i) => i + 2)], false) : null;
    return [gradIn(dx, dtypes.x), gradIn(dw, dtypes.w), gradIn(db, dtypes.bias)];
  });
  // The node holds its own handles on what it saved.
  xi.dispose();
  wi.dispose();
  bi?.dispose();
  return out;
}

function checkedRank(name: string, rank: number, x: Tensor, w: Tensor): void {
  if (x.rank !== rank || w.rank !== rank) throw new ShapeError(`${name}: input ${formatShape(x.shape)} and weight ${formatShape(w.shape)} must both have rank ${rank}`);
}

export function conv1d(x: Tensor, w: Tensor, bias?: Tensor | null, opts: ConvOptions = {}): Tensor {
  checkedRank('conv1d', 3, x, w);
  return convNd(x, w, bias, opts);
}
export function conv2d(x: Tensor, w: Tensor, bias?: Tensor | null, opts: ConvOptions = {}): Tensor {
  checkedRank('conv2d', 4, x, w);
  return convNd(x, w, bias, opts);
}
export function conv3d(x: Tensor, w: Tensor, bias?: Tensor | null, opts: ConvOptions = {}): Tensor {
  checkedRank('conv3d', 5, x, w);
  return convNd(x, w, bias, opts);
}

/** Gradient of Σ gy ⊙ conv(x, w) with respect to x, for an input of shape xShape (no autograd). */
export function convBackwardData(gy: Tensor, w: Tensor, xShape: readonly number[], opts: ConvOptions = {}): Tensor {
  const g = geometryOf(xShape, w.shape, opts);
  requireFloat(gy, w);
  requireOutputShape(gy, g, 'convBackwardData');
  return convBackwardDataRaw(gy, w, g);
}

/** Gradient of Σ gy ⊙ conv(x, w) with respect to w, for a weight of shape wShape (no autograd). */
export function convBackwardWeight(x: Tensor, gy: Tensor, wShape: readonly number[], opts: ConvOptions = {}): Tensor {
  const g = geometryOf(x.shape, wShape, opts);
  requireFloat(x, gy);
  requireOutputShape(gy, g, 'convBackwardWeight');
  return convBackwardWeightRaw(x, gy, wShape, g);
}

/** The upstream gradient must have the convolution's output shape: the kernels index it by that geometry. */
function requireOutputShape(gy: Tensor, g: Conv3dGeometry, what: string): void {
  const expected = outShapeOf(g, g.cout, g.outSize);
  if (gy.rank !== expected.length || gy.shape.some((d, i) => d !== expected[i])) {
    throw new ShapeError(`${what}: gradient ${formatShape(gy.shape)} must have the output shape ${formatShape(expected)}`);
  }
}
