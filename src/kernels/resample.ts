import { record } from '../engine/autograd';
import type { CpuStorage, GpuStorage } from '../engine/backend';
import { empty } from '../engine/create';
import { ShapeError } from '../engine/errors';
import { formatShape, numel } from '../engine/shape';
import type { Tensor } from '../engine/tensor';
import { UniformWriter } from '../engine/uniforms';
import { linearShader, NEAREST_RUN, nearestShader } from '../../shaders/resample.wgsl';
import { linearAxisRef, nearestRef } from './reference/resample';
import { contiguous } from './views';

const WORKGROUP = 256;

const buf = (t: Tensor) => (t.storage as GpuStorage).buffer;

function grid(t: Tensor, threads: number): [number, number] {
  const groups = Math.ceil(threads / WORKGROUP);
  const maxX = t.backend.kind === 'webgpu' ? t.backend.ctx.caps.limits.maxComputeWorkgroupsPerDimension : 65535;
  return [Math.min(groups, maxX), Math.ceil(groups / maxX)];
}

function checkInput(x: Tensor, what: string, minSpatial: number, maxSpatial: number): void {
  x.assertAlive();
  if (x.rank < 2 + minSpatial || x.rank > 2 + maxSpatial) throw new ShapeError(`${what} expects [N, C, ${minSpatial === maxSpatial ? minSpatial : `${minSpatial}-${maxSpatial}`} spatial dims], got ${formatShape(x.shape)}`);
  if (x.dtype !== 'f32') throw new ShapeError(`${what} expects f32, got ${x.dtype}`);
}

/** Runs the nearest kernel (forward: src = x; backward: src = output gradient). */
function nearestPass(src: Tensor, planes: number, dims: number[], scales: number[], outShape: readonly number[], backward: boolean): Tensor {
  const out = empty(src.backend, outShape, 'f32');
  if (out.size === 0) return out;
  if (src.backend.kind === 'cpu') {
    (out.storage as CpuStorage).data.set(nearestRef(src.toFloat64Sync(), planes, dims, scales, backward));
    return out;
  }
  src.backend.ctx.dispatch(
    { key: `nearest:${backward ? 'bwd' : 'fwd'}`, source: () => nearestShader({ backward, workgroupSize: WORKGROUP }), inputs: 1, outputs: 1 },
    {
      inputs: [buf(src)],
      outputs: [buf(out)],
      uniforms: new UniformWriter().u32(planes, ...dims, ...scales, src.offset).finish(),
      // One invocation per run of NEAREST_RUN columns of an output (forward) or input (backward) row.
      workgroups: grid(out, (out.size / out.shape[out.rank - 1]) * Math.ceil(out.shape[out.rank - 1] / NEAREST_RUN)),
    },
  );
  return out;
}

/**
 * Nearest-neighbour upsampling of [N, C, *spatial] (1-3 spatial dims) by integer per-dim scale factors
 * (a number applies to every spatial dim), e.g. the VAE's ×(1, 2, 2) on [B, C, T, H, W].
 */
export function upsampleNearest(x: Tensor, scaleFactors: number | readonly number[]): Tensor {
  checkInput(x, 'upsampleNearest', 1, 3);
  const k = x.rank - 2;
  const scales = typeof scaleFactors === 'number' ? new Array<number>(k).fill(scaleFactors) : [...scaleFactors];
  if (scales.length !== k || scales.some((s) => !Number.isInteger(s) || s < 1)) throw new ShapeError(`upsampleNearest: need ${k} integer scales ≥ 1, got [${scales}]`);
  const spatial = x.shape.slice(2);
  const dims = [...new Array<number>(3 - k).fill(1), ...spatial];
  const scales3 = [...new Array<number>(3 - k).fill(1), ...scales];
  const planes = x.shape[0] * x.shape[1];
  const outShape = [x.shape[0], x.shape[1], ...spatial.map((d, i) => d * scales[i])];
  const xc = contiguous(x);
  const y = nearestPass(xc, planes, dims, scales3, outShape, false);
  xc.dispose();
  return record('upsample_nearest', [x], y, [], (g) => [nearestPass(contiguous(g), planes, dims, scales3, x.shape, true)]);
}

/** Linear resampling of one axis (forward or its backward; sizes are always the forward ones), contiguous src. */
function linearPass(src: Tensor, outer: number, len: number, inner: number, lenOut: number, scale: number, outShape: readonly number[], backward: boolean): Tensor {
  const out = empty(src.backend, outShape, 'f32');
  if (out.size === 0) return out;
  if (src.backend.kind === 'cpu') {
    (out.storage as CpuStorage).data.set(linearAxisRef(src.toFloat64Sync(), outer, len, inner, lenOut, scale, backward));
    return out;
  }
  src.backend.ctx.dispatch(
    { key: `linear_axis:${backward ? 'bwd' : 'fwd'}`, source: () => linearShader({ backward, workgroupSize: WORKGROUP }), inputs: 1, outputs: 1 },
    {
      inputs: [buf(src)],
      outputs: [buf(out)],
      uniforms: new UniformWriter().u32(outer, len, inner, lenOut, src.offset).f32(scale).finish(),
      workgroups: grid(out, out.size),
    },
  );
  return out;
}

/** Linear (align_corners = false) resampling of `axis` to `lenOut`; `scale` maps output to source coordinates. */
function resampleAxis(x: Tensor, axis: number, lenOut: number, scale: number): Tensor {
  const len = x.shape[axis];
  if (len < 1 || lenOut < 1) throw new ShapeError(`linear resampling needs non-empty sizes, got ${len} → ${lenOut}`);
  const outer = numel(x.shape.slice(0, axis));
  const inner = numel(x.shape.slice(axis + 1));
  const outShape = x.shape.map((d, i) => (i === axis ? lenOut : d));
  const xc = contiguous(x);
  const y = linearPass(xc, outer, len, inner, lenOut, scale, outShape, false);
  xc.dispose();
  return record('resample_linear', [x], y, [], (g) => [linearPass(contiguous(g), outer, len, inner, lenOut, scale, x.shape, true)]);
}

export type LinearSize = { size: number } | { scaleFactor: number };

/**
 * PyTorch F.interpolate(x, mode='linear', align_corners=False) on [N, C, L].
 * With `size`, the source coordinate uses L / size. With `scaleFactor`, the output has ⌊L·scaleFactor⌋ steps
 * and the source coordinate uses 1 / scaleFactor (PyTorch's rule when recompute_scale_factor is not set);
 * the two agree whenever L·scaleFactor is an integer (e.g. ×2).
 */
export function interpolateLinear1d(x: Tensor, target: LinearSize): Tensor {
  checkInput(x, 'interpolateLinear1d', 1, 1);
  const len = x.shape[2];
  if ('size' in target) {
    if (!Number.isInteger(target.size) || target.size < 1) throw new ShapeError(`interpolateLinear1d: size must be a positive integer, got ${target.size}`);
    return resampleAxis(x, 2, target.size, len / target.size);
  }
  const f = target.scaleFactor;
  if (!(f > 0)) throw new ShapeError(`interpolateLinear1d: scaleFactor must be positive, got ${f}`);
  const lenOut = Math.floor(len * f);
  if (lenOut < 1) throw new ShapeError(`interpolateLinear1d: ${len} × ${f} leaves no output steps`);
  return resampleAxis(x, 2, lenOut, 1 / f);
}

/**
 * PyTorch F.interpolate(x, size=[H, W], mode='bilinear', align_corners=False) on [N, C, H, W], done as two
 * separable linear passes (W, then H): the same weights as the 2-D formula. Differentiable.
 */
export function resizeBilinear2d(x: Tensor, size: readonly [number, number]): Tensor {
  checkInput(x, 'resizeBilinear2d', 2, 2);
  const [h, w] = size;
  if (![h, w].every((d) => Number.isInteger(d) && d >= 1)) throw new ShapeError(`resizeBilinear2d: size must be two positive integers, got [${size}]`);
  const alongW = resampleAxis(x, 3, w, x.shape[3] / w);
  const out = resampleAxis(alongW, 2, h, x.shape[2] / h);
  alongW.dispose();
  return out;
}
