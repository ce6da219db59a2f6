import { noGrad, record } from '../engine/autograd';
import { autocastDtype } from '../engine/autocast';
import type { CpuStorage, GpuStorage, WebGPUBackend } from '../engine/backend';
import { empty } from '../engine/create';
import type { DType } from '../engine/dtype';
import { ShapeError } from '../engine/errors';
import { broadcastShapes, formatShape, numel } from '../engine/shape';
import type { Tensor } from '../engine/tensor';
import { tidy } from '../engine/scope';
import { UniformWriter } from '../engine/uniforms';
import { matmulDirectShader, matmulShader, type MatmulTiling } from '../../shaders/matmul.wgsl';
import { matmulRef } from './reference/matmul';
import { add, cast } from './elementwise';
import { sum, sumToShape } from './reduce';
import { contiguous, expand, reshape, squeeze, transpose, unsqueeze } from './views';
import { dispatchSubgroupMatmul, planSubgroupMatmul } from './matmul-subgroup';

/** Small tiles for CPU adapters (lavapipe: barriers are costly, caches small); big ones for discrete GPUs. */
export function defaultTiling(backend: WebGPUBackend, m: number, n: number): MatmulTiling {
  // CPU adapters: 128 outputs per invocation measured fastest (12-15 GFLOP/s on 2 lavapipe cores vs 7 for 4×8).
  if (backend.ctx.caps.software) {
    if (!backend.ctx.caps.largeRegisterBlocks) return { direct: true, workgroup: 64, bm: 0, bn: 0, bk: 0, tm: 4, tn: 8 };
    return { direct: true, workgroup: 64, bm: 0, bn: 0, bk: 0, tm: m >= 64 ? 16 : 8, tn: m >= 64 ? 8 : 16 };
  }
  if (m >= 1024 && n >= 1024) return { bm: 128, bn: 128, bk: 8, tm: 8, tn: 8 };
  if (m <= 16 || n <= 16) return { bm: 16, bn: 64, bk: 16, tm: 1, tn: 4 };
  return { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 };
}

let tilingOverride: MatmulTiling | null = null;
/** Forces a tiling (benchmarks and tuning); null restores the default choice. */
export function setMatmulTiling(t: MatmulTiling | null): void {
  tilingOverride = t;
}

/**
 * a: [...batchA, M, K], b: [...batchB, K, N] → [...broadcast(batchA, batchB), M, N], times alpha, plus
 * an optional bias over N. Operands may be any strided views (transposes are free). The output is f16 when
 * both operands are, otherwise f32, unless `outDtype` says otherwise (autocast: f16 operands, f32 output).
 */
function matmulRaw(a: Tensor, b: Tensor, bias: Tensor | null, alpha: number, outDtype?: DType): Tensor {
  const m = a.shape[a.rank - 2];
  const k = a.shape[a.rank - 1];
  const n = b.shape[b.rank - 1];
  if (b.shape[b.rank - 2] !== k) throw new ShapeError(`matmul: ${formatShape(a.shape)} × ${formatShape(b.shape)}: inner sizes differ`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== n)) throw new ShapeError(`matmul bias must have shape [${n}], got ${formatShape(bias.shape)}`);
  const batchShape = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const outShape = [...batchShape, m, n];
  const backend = a.backend;
  const batch = numel(batchShape);
  if (backend.kind === 'cpu') {
    const ac = contiguous(expand(a, [...batchShape, m, k]));
    const bc = contiguous(expand(b, [...batchShape, k, n]));
    const out = empty(backend, outShape, a.dtype);
    const data = matmulRef(ac.toFloat64Sync(), bc.toFloat64Sync(), batch, m, k, n);
    const biasData = bias?.toFloat64Sync();
    for (let i = 0; i < data.length; i++) data[i] = data[i] * alpha + (biasData ? biasData[i % n] : 0);
    (out.storage as CpuStorage).data.set(data);
    ac.dispose();
    bc.dispose();
    return out;
  }
  if (batchShape.length > 4) throw new ShapeError(`matmul supports up to 4 batch dims, got ${formatShape(batchShape)}`);
  const batchStrides = (t: Tensor) => {
    const lead = batchShape.length - (t.rank - 2);
    return batchShape.map((d, i) => (i < lead || t.shape[i - lead] === 1 ? 0 : t.strides[i - lead]));
  };
  outDtype ??= a.dtype === 'f16' && b.dtype === 'f16' ? 'f16' : 'f32';
  const out = empty(backend, outShape, outDtype);
  const tiling = tilingOverride ?? defaultTiling(backend, m, n);
  const direct = tiling.direct ?? false;
  const wgDirect = tiling.workgroup ?? 64;
  const program = {
    key: direct
      ? `matmul-direct:${a.dtype},${b.dtype}>${outDtype}:${bias ? `bias-${bias.dtype}` : ''}:${tiling.tm}x${tiling.tn}/${wgDirect}`
      : `matmul:${a.dtype},${b.dtype}>${outDtype}:${bias ? `bias-${bias.dtype}` : ''}:${tiling.bm}x${tiling.bn}x${tiling.bk}/${tiling.tm}x${tiling.tn}`,
    source: () =>
      direct
        ? matmulDirectShader({ a: a.dtype, b: b.dtype, out: outDtype, bias: !!bias, biasDtype: bias?.dtype, tm: tiling.tm, tn: tiling.tn, workgroup: wgDirect })
        : matmulShader({ a: a.dtype, b: b.dtype, out: outDtype, bias: !!bias, biasDtype: bias?.dtype, tiling }),
    inputs: bias ? 3 : 2,
    outputs: 1,
  };
  const uniforms = matmulUniforms({ m, n, k, alpha, batchShape, a, b, bias, aBatch: batchStrides(a), bBatch: batchStrides(b) });
  const maxZ = backend.ctx.caps.limits.maxComputeWorkgroupsPerDimension;
  if (batch > maxZ) throw new ShapeError(`matmul batch ${batch} exceeds ${maxZ}`);
  // --- Tensor cores: f16×f16 on devices with subgroup matrices (matmul-subgroup.ts decides; else fall through).
  if (a.dtype === 'f16' && b.dtype === 'f16') {
    const operand = (t: Tensor) => ({ dtype: t.dtype, strides: [t.strides[t.rank - 2], t.strides[t.rank - 1]] as [number, number], offset: t.offset, batchStrides: batchStrides(t) });
    const plan = planSubgroupMatmul(backend.ctx.caps, { m, n, k, batch, a: operand(a), b: operand(b) }, undefined, tilingOverride !== null);
    if (plan.use) {
      dispatchSubgroupMatmul(backend, plan, { a, b, bias, out, uniforms });
      return out;
    }
  }
  // --- end tensor cores
  backend.ctx.dispatch(program, {
    inputs: [a, b, ...(bias ? [bias] : [])].map((t) => (t.storage as GpuStorage).buffer),
    outputs: [(out.storage as GpuStorage).buffer],
    uniforms,
    workgroups: direct ? directGrid(Math.ceil(m / tiling.tm) * Math.ceil(n / tiling.tn), wgDirect, maxZ, batch) : [Math.ceil(n / tiling.bn), Math.ceil(m / tiling.bm), batch],
  });
  return out;
}

/**
 * The uniform block of every matmul kernel (`MATMUL_PARAMS` in shaders/matmul.wgsl.ts): sizes, the matrix
 * strides and element offsets of A and B, alpha, the broadcast batch walk, and the bias view's element
 * offset and stride (a bias may be a slice of a fused parameter, or a stepped view).
 */
export function matmulUniforms(p: {
  m: number;
  n: number;
  k: number;
  alpha: number;
  batchShape: readonly number[];
  a: Tensor;
  b: Tensor;
  bias: Tensor | null;
  aBatch: readonly number[];
  bBatch: readonly number[];
}): Uint32Array {
  const pad4 = (v: readonly number[]) => [...v, 0, 0, 0, 0].slice(0, 4);
  const { a, b, bias } = p;
  return new UniformWriter()
    .u32(p.m, p.n, p.k, p.batchShape.length)
    .u32(a.strides[a.rank - 2], a.strides[a.rank - 1], b.strides[b.rank - 2], b.strides[b.rank - 1])
    .u32(a.offset, b.offset, 0)
    .f32(p.alpha)
    .u32(...pad4(p.batchShape))
    .u32(...pad4(p.aBatch))
    .u32(...pad4(p.bBatch))
    .u32(bias?.offset ?? 0, bias?.strides[0] ?? 0, 0, 0)
    .finish();
}

function directGrid(blocks: number, workgroup: number, maxDim: number, batch: number): [number, number, number] {
  const groups = Math.ceil(blocks / workgroup);
  return [Math.min(groups, maxDim), Math.ceil(groups / maxDim), batch];
}

/** `t` converted to `dtype` without autograd (a new handle either way). */
const asDtype = (t: Tensor, dtype: DType) => (t.dtype === dtype ? t.share() : noGrad(() => cast(t, dtype)));
/** A gradient returned in the dtype of the input it belongs to. */
const gradIn = (g: Tensor | null, dtype: DType) => (g && g.dtype !== dtype ? cast(g, dtype) : g);

/**
 * Under autocast (see engine/autocast.ts): both operands as f16 (converted copies, which the node saves), f32
 * output, gradients in the dtype of each original input. The backward products read the f32 upstream
 * gradient and the saved f16 operands, so they accumulate and store in f32.
 */
function autocastMatmul(a: Tensor, b: Tensor): Tensor {
  const ai = asDtype(a, 'f16');
  const bi = asDtype(b, 'f16');
  const y = matmulRaw(ai, bi, null, 1, 'f32');
  const dtypes = [a.dtype, b.dtype];
  const out = record('matmul', [a, b], y, [ai, bi], (g, [sa, sb]) => [
    gradIn(sumToShape(matmulRaw(g, transpose(sb), null, 1), sa.shape), dtypes[0]),
    gradIn(sumToShape(matmulRaw(transpose(sa), g, null, 1), sb.shape), dtypes[1]),
  ]);
  ai.dispose();
  bi.dispose();
  return out;
}

/**
 * Matrix product with PyTorch semantics: 1-D operands are promoted (and the added dim removed),
 * batch dims broadcast. Inside `autocast()` the operands are read as f16 and the result is f32.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.rank === 0 || b.rank === 0) throw new ShapeError('matmul needs at least 1-D operands');
  if (a.rank === 1 || b.rank === 1) {
    return tidy(() => {
      const a2 = a.rank === 1 ? unsqueeze(a, 0) : a;
      const b2 = b.rank === 1 ? unsqueeze(b, -1) : b;
      let y = matmul(a2, b2);
      if (a.rank === 1) y = squeeze(y, -2);
      if (b.rank === 1) y = squeeze(y, -1);
      return y;
    });
  }
  if (autocastDtype(a.backend)) return autocastMatmul(a, b);
  const y = matmulRaw(a, b, null, 1);
  return record('matmul', [a, b], y, [a, b], (g, [sa, sb]) => [
    sumToShape(matmulRaw(g, transpose(sb), null, 1), sa.shape),
    sumToShape(matmulRaw(transpose(sa), g, null, 1), sb.shape),
  ]);
}

/**
 * y = x·Wᵀ + b, with W of shape [out, in] (PyTorch's Linear layout); x: [..., in]. Inside `autocast()`
 * x and W are read as f16 (the node saves the f16 copies), the bias stays f32 and the result is f32.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const inF = weight.shape[1];
  const outF = weight.shape[0];
  if (x.shape[x.rank - 1] !== inF) throw new ShapeError(`linear: input ${formatShape(x.shape)} does not end in ${inF}`);
  if (autocastDtype(x.backend)) return autocastLinear(x, weight, bias ?? null);
  const lead = x.shape.slice(0, -1);
  const x2 = x.rank === 2 ? x : reshape(x, [-1, inF]);
  const y2 = matmulRaw(x2, transpose(weight), bias ?? null, 1);
  if (x2 !== x) x2.dispose();
  let y = y2;
  if (x.rank !== 2) {
    y = reshape(y2, [...lead, outF]);
    y2.dispose();
  }
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record('linear', inputs, y, [x, weight], (g, [sx, sw]) => {
    const g2 = reshape(g, [-1, outF]);
    const xs = reshape(sx, [-1, inF]);
    const gx = reshape(matmulRaw(g2, sw, null, 1), sx.shape);
    const gw = matmulRaw(transpose(g2), xs, null, 1);
    const gb = bias ? sum(g2, 0) : null;
    return [gx, gw, gb];
  });
}

/** linear() under autocast: f16 operands, f32 bias and output, gradients in each input's dtype. */
function autocastLinear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  const inF = weight.shape[1];
  const outF = weight.shape[0];
  const xi = asDtype(x, 'f16');
  const wi = asDtype(weight, 'f16');
  const bi = bias ? asDtype(bias, 'f32') : null;
  const x2 = reshape(xi, [-1, inF]);
  const y2 = matmulRaw(x2, transpose(wi), bi, 1, 'f32');
  x2.dispose();
  const y = reshape(y2, [...x.shape.slice(0, -1), outF]);
  y2.dispose();
  const dtypes = { x: x.dtype, w: weight.dtype, bias: bias?.dtype ?? 'f32' };
  const out = record('linear', bias ? [x, weight, bias] : [x, weight], y, [xi, wi], (g, [sx, sw]) => {
    const g2 = reshape(g, [-1, outF]);
    const xs = reshape(sx, [-1, inF]);
    const gx = reshape(matmulRaw(g2, sw, null, 1), sx.shape);
    const gw = matmulRaw(transpose(g2), xs, null, 1);
    const gb = bias ? sum(g2, 0) : null;
    return [gradIn(gx, dtypes.x), gradIn(gw, dtypes.w), gradIn(gb, dtypes.bias)];
  });
  xi.dispose();
  wi.dispose();
  bi?.dispose();
  return out;
}

/** alpha·(a·b) without autograd (attention scores, kernels that compose GEMMs). */
export function matmulScaled(a: Tensor, b: Tensor, alpha: number): Tensor {
  return matmulRaw(a, b, null, alpha);
}
