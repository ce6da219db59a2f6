import { record } from '../engine/autograd';
import type { CpuStorage, GpuStorage } from '../engine/backend';
import { empty } from '../engine/create';
import { ShapeError } from '../engine/errors';
import { formatShape, numel } from '../engine/shape';
import type { Tensor } from '../engine/tensor';
import { UniformWriter } from '../engine/uniforms';
import { APPLY_RUN, l2NormalizeShader, normApplyShader, normFinalizeShader, normReduceShader } from '../../shaders/norm.wgsl';
import { l2NormalizeRef, normApplyRef, normBackwardRef, normStatsRef, type NormIndexMap } from './reference/norm';
import { add, mul, rsqrt } from './elementwise';
import { reduceRaw } from './reduce';
import { contiguous, reshape, slice } from './views';

const WORKGROUP = 256;
/** Reductions use small workgroups: on CPU Vulkan (lavapipe) each barrier of a 256-wide group costs ~4× a 64-wide one. */
const REDUCE_WORKGROUP = 64;
/** Aim for at least this many workgroups in a statistics pass (splitting few large groups into chunks). */
const TARGET_WORKGROUPS = 256;
/** Smallest chunk worth a workgroup of its own. */
const MIN_CHUNK = 2048;
const PER_THREAD_MAX_COUNT = 1024;
const PER_THREAD_MIN_GROUPS = 512;

/** How the elements of each reduction group are enumerated (see shaders/norm.wgsl.ts). */
interface ReduceGeometry {
  groups: number;
  count: number;
  rInner: number;
  rInnerStride: number;
  rOuterStride: number;
  A: number;
  strideA: number;
  B: number;
  strideB: number;
}

/** Groups of `count` consecutive elements starting every `stride`. */
const blockGeometry = (groups: number, count: number, stride = count): ReduceGeometry => ({
  groups, count, rInner: groups, rInnerStride: stride, rOuterStride: 0, A: 1, strideA: 0, B: count, strideB: 1,
});

const buf = (t: Tensor) => (t.storage as GpuStorage).buffer;
const cpuData = (t: Tensor) => (t.storage as CpuStorage).data;

function grid(backend: Tensor['backend'], groups: number): [number, number] {
  const maxX = backend.kind === 'webgpu' ? backend.ctx.caps.limits.maxComputeWorkgroupsPerDimension : 65535;
  return [Math.min(groups, maxX), Math.ceil(groups / maxX)];
}

/** Many short groups (layer norm rows): one invocation per group beats barrier trees, by ~5× on lavapipe. */
const perThreadGroups = (geom: ReduceGeometry) => geom.count <= PER_THREAD_MAX_COUNT && geom.groups >= PER_THREAD_MIN_GROUPS;

function chunking(geom: ReduceGeometry): { chunks: number; chunkLen: number } {
  if (perThreadGroups(geom)) return { chunks: 1, chunkLen: geom.count };
  const wanted = Math.max(1, Math.min(Math.ceil(geom.count / MIN_CHUNK), Math.ceil(TARGET_WORKGROUPS / geom.groups)));
  const chunkLen = Math.ceil(geom.count / wanted);
  // Recount so that no chunk is empty (an empty chunk would have no mean).
  return { chunks: Math.ceil(geom.count / chunkLen), chunkLen };
}

interface GradInputs {
  g: Tensor;
  mean: Tensor;
  rstd: Tensor;
  weight: Tensor | null;
  /** Every element of a reduction group lies in one stat group (all but layer norm's column sums). */
  statPerGroup: boolean;
}

/** Partial sums per (group, chunk): [groups·chunks·2] (see normReduceShader). x, g: contiguous. */
function launchReduce(x: Tensor, geom: ReduceGeometry, map: NormIndexMap, grad: GradInputs | null): { partial: Tensor; chunks: number; chunkLen: number } {
  if (x.backend.kind !== 'webgpu') throw new Error('launchReduce is GPU only');
  const { chunks, chunkLen } = chunking(geom);
  const partial = empty(x.backend, [geom.groups * chunks * 2], 'f32');
  const weighted = !!grad?.weight;
  const mode = grad ? 'grad' : 'stats';
  const contiguousGroups = geom.A === 1 && geom.strideB === 1;
  const statPerGroup = grad?.statPerGroup ?? true;
  const perThread = perThreadGroups(geom);
  if (grad?.weight && !(contiguousGroups && map.chanDiv === 1 && map.chanMod === geom.count)) throw new Error('weighted norm reduction needs row groups aligned with the parameters');
  const uniforms = new UniformWriter()
    .u32(geom.groups, chunks, chunkLen, geom.count, geom.rInner, geom.rInnerStride, geom.rOuterStride, geom.A)
    .u32(geom.strideA, geom.B, geom.strideB, x.offset, grad?.g.offset ?? 0, map.statDiv, map.statMod, map.chanDiv)
    .u32(map.chanMod, grad?.mean.offset ?? 0, grad?.rstd.offset ?? 0, grad?.weight?.offset ?? 0)
    .finish();
  const inputs = grad ? [x, grad.g, grad.mean, grad.rstd, ...(grad.weight ? [grad.weight] : [])] : [x];
  x.backend.ctx.dispatch(
    {
      key: `norm_reduce:${mode}:${weighted ? 'w' : '-'}:${contiguousGroups ? 'c' : 's'}:${statPerGroup ? 'g' : 'e'}:${perThread ? 't' : 'g'}`,
      source: () => normReduceShader({ mode, weighted, contiguousGroups, statPerGroup, perThread, workgroupSize: REDUCE_WORKGROUP }),
      inputs: inputs.length,
      outputs: 1,
    },
    { inputs: inputs.map(buf), outputs: [buf(partial)], uniforms, workgroups: grid(x.backend, perThread ? Math.ceil(geom.groups / REDUCE_WORKGROUP) : geom.groups * chunks) },
  );
  return { partial, chunks, chunkLen };
}

interface RunningStats {
  mean: Tensor;
  variance: Tensor;
  momentum: number;
}

/** Mean and 1/sqrt(var + eps) per group, optionally updating running statistics in place. */
function groupStatistics(x: Tensor, geom: ReduceGeometry, map: NormIndexMap, eps: number, running: RunningStats | null): { mean: Tensor; rstd: Tensor } {
  const mean = empty(x.backend, [geom.groups], 'f32');
  const rstd = empty(x.backend, [geom.groups], 'f32');
  if (x.backend.kind === 'cpu') {
    const stats = normStatsRef(x.toFloat64Sync(), map);
    cpuData(mean).set(stats.mean);
    cpuData(rstd).set(stats.variance.map((v) => 1 / Math.sqrt(v + eps)));
    if (running) {
      const m = running.momentum;
      const rm = cpuData(running.mean);
      const rv = cpuData(running.variance);
      for (let c = 0; c < geom.groups; c++) {
        const im = running.mean.offset + c * running.mean.strides[0];
        const iv = running.variance.offset + c * running.variance.strides[0];
        const unbiased = (stats.variance[c] * stats.count) / Math.max(stats.count - 1, 1);
        // A non-finite batch leaves the running statistics as they were (as on the device; see normFinalizeShader).
        if (!Number.isFinite(stats.mean[c]) || !Number.isFinite(Math.fround(unbiased))) continue;
        rm[im] = (1 - m) * rm[im] + m * stats.mean[c];
        rv[iv] = (1 - m) * rv[iv] + m * unbiased;
      }
    }
    return { mean, rstd };
  }
  const { partial, chunks, chunkLen } = launchReduce(x, geom, map, null);
  const uniforms = new UniformWriter()
    .u32(geom.groups, chunks, chunkLen, geom.count)
    .u32(running?.mean.offset ?? 0, running?.mean.strides[0] ?? 0, running?.variance.offset ?? 0, running?.variance.strides[0] ?? 0)
    .f32(eps, running?.momentum ?? 0)
    .finish();
  const shared = !!running && running.mean.storage === running.variance.storage;
  const outputs = [mean, rstd, ...(running ? (shared ? [running.mean] : [running.mean, running.variance]) : [])];
  x.backend.ctx.dispatch(
    {
      key: `norm_finalize:${running ? 'running' : '-'}:${shared ? 'shared' : '-'}`,
      source: () => normFinalizeShader({ updateRunning: !!running, sharedRunning: shared }),
      inputs: 1,
      outputs: outputs.length,
    },
    { inputs: [buf(partial)], outputs: outputs.map(buf), uniforms, workgroups: grid(x.backend, Math.ceil(geom.groups / 64)) },
  );
  partial.dispose();
  return { mean, rstd };
}

/** Sums chunk partials [groups·chunks·2] to [groups, 2]. */
function sumChunks(p: { partial: Tensor; chunks: number }, groups: number): Tensor {
  const shaped = reshape(p.partial, [groups, p.chunks, 2]);
  p.partial.dispose();
  if (p.chunks === 1) {
    const r = reshape(shaped, [groups, 2]);
    shaped.dispose();
    return r;
  }
  const summed = reduceRaw(shaped, 'sum', 1, false);
  shaped.dispose();
  return summed;
}

type ApplyMode = 'none' | 'inside' | 'outside' | 'fixed';

/** The elementwise pass: normalize + affine (forward) or the input gradient (backward). */
function launchApply(mode: ApplyMode, x: Tensor, map: NormIndexMap, mean: Tensor, rstd: Tensor, extra: { g?: Tensor; weight?: Tensor | null; bias?: Tensor | null; sums?: Tensor; count?: number }): Tensor {
  const out = empty(x.backend, x.shape, 'f32');
  if (x.backend.kind !== 'webgpu') throw new Error('launchApply is GPU only');
  const weight = extra.weight ?? null;
  const bias = mode === 'none' ? (extra.bias ?? null) : null;
  const inputs = [x, ...(extra.g ? [extra.g] : []), mean, rstd, ...(weight ? [weight] : []), ...(bias ? [bias] : []), ...(extra.sums ? [extra.sums] : [])];
  const uniforms = new UniformWriter()
    .u32(x.size, x.offset, extra.g?.offset ?? 0, mean.offset, rstd.offset, weight?.offset ?? 0, bias?.offset ?? 0)
    .u32(map.statDiv, map.statMod, map.chanDiv, map.chanMod)
    .f32(1 / (extra.count ?? 1))
    .finish();
  x.backend.ctx.dispatch(
    {
      key: `norm_apply:${mode}:${weight ? 'w' : '-'}:${bias ? 'b' : '-'}`,
      source: () => normApplyShader({ backward: mode, weighted: !!weight, biased: !!bias, workgroupSize: WORKGROUP }),
      inputs: inputs.length,
      outputs: 1,
    },
    { inputs: inputs.map(buf), outputs: [buf(out)], uniforms, workgroups: grid(x.backend, Math.ceil(x.size / (WORKGROUP * APPLY_RUN))) },
  );
  return out;
}

/** A flat f32 contiguous handle of a parameter (dispose it). */
function flatParam(t: Tensor, channels: number, what: string): Tensor {
  if (t.size !== channels) throw new ShapeError(`${what} has shape ${formatShape(t.shape)}, expected ${channels} elements`);
  if (t.dtype !== 'f32') throw new ShapeError(`${what} must be f32`);
  return contiguous(t);
}

/** Column k of a [groups, 2] tensor as a [groups] tensor. */
function column(t: Tensor, k: number, shape: readonly number[]): Tensor {
  const s = slice(t, 1, k, k + 1);
  const r = reshape(s, shape);
  s.dispose();
  return r;
}

type NormKind = 'batch' | 'group' | 'layer';

interface NormPlan {
  kind: NormKind;
  map: NormIndexMap;
  stat: ReduceGeometry;
  channels: number;
  /** [N, C, S] for batch/group; [rows, D, 1] for layer. */
  dims: [number, number, number];
  groupsPerSample: number;
}

/**
 * The shared forward/backward: statistics (from the batch, or given), normalize + affine, and the
 * fused backward (two reductions and one elementwise pass).
 */
function normalize(name: string, x: Tensor, plan: NormPlan, weightArg: Tensor | null, biasArg: Tensor | null, eps: number, fixed: { mean: Tensor; variance: Tensor } | null, running: RunningStats | null): Tensor {
  x.assertAlive();
  if (x.dtype !== 'f32') throw new ShapeError(`${name} expects f32 input, got ${x.dtype}`);
  if (x.size === 0) throw new ShapeError(`${name}: cannot normalize an empty tensor ${formatShape(x.shape)}`);
  const weight = weightArg ? flatParam(weightArg, plan.channels, `${name} weight`) : null;
  const bias = biasArg ? flatParam(biasArg, plan.channels, `${name} bias`) : null;
  const xc = contiguous(x);
  let mean: Tensor;
  let rstd: Tensor;
  if (fixed) {
    mean = contiguous(fixed.mean);
    const shifted = add(fixed.variance, eps);
    rstd = rsqrt(shifted);
    shifted.dispose();
  } else ({ mean, rstd } = groupStatistics(xc, plan.stat, plan.map, eps, running));
  let y: Tensor;
  if (x.backend.kind === 'cpu') {
    y = empty(x.backend, x.shape, 'f32');
    cpuData(y).set(normApplyRef(xc.toFloat64Sync(), mean.toFloat64Sync(), rstd.toFloat64Sync(), weight?.toFloat64Sync() ?? null, bias?.toFloat64Sync() ?? null, plan.map));
  } else y = launchApply('none', xc, plan.map, mean, rstd, { weight, bias });
  bias?.dispose();
  const inputs = [x, ...(weightArg ? [weightArg] : []), ...(biasArg ? [biasArg] : [])];
  const saved = [xc, mean, rstd, ...(weight ? [weight] : [])];
  const out = record(name, inputs, y, saved, (g, [sx, smean, srstd, sw]) => {
    const grads = normBackward(plan, sx, contiguous(g), smean, srstd, sw ?? null, !!fixed, !!(weightArg || biasArg));
    const result: (Tensor | null)[] = [grads.dx];
    if (weightArg) result.push(reshape(grads.dw!, weightArg.shape));
    if (biasArg) result.push(reshape(grads.db!, biasArg.shape));
    return result;
  });
  // record() took its own handles on what it saves.
  for (const t of saved) t.dispose();
  return out;
}

/** dx, and (when `paramGrads`) dw and db per channel. */
function normBackward(plan: NormPlan, x: Tensor, g: Tensor, mean: Tensor, rstd: Tensor, weight: Tensor | null, fixedStats: boolean, paramGrads: boolean): { dx: Tensor; dw: Tensor | null; db: Tensor | null } {
  const { map, stat, channels } = plan;
  if (x.backend.kind === 'cpu') {
    const r = normBackwardRef(x.toFloat64Sync(), g.toFloat64Sync(), mean.toFloat64Sync(), rstd.toFloat64Sync(), weight?.toFloat64Sync() ?? null, map, fixedStats);
    const mk = (data: Float64Array, shape: number[]) => {
      const t = empty(x.backend, shape, 'f32');
      cpuData(t).set(data);
      return t;
    };
    return { dx: mk(r.dx, [...x.shape]), dw: mk(r.dw, [channels]), db: mk(r.db, [channels]) };
  }
  const grad = (geom: ReduceGeometry, w: Tensor | null, statPerGroup = true) => sumChunks(launchReduce(x, geom, map, { g, mean, rstd, weight: w, statPerGroup }), geom.groups);
  const [n, c, s] = plan.dims;
  if (plan.kind === 'batch') {
    // Stat group == channel: one reduction gives db, dw and (times w) the sums the input gradient needs.
    if (fixedStats && !paramGrads) return { dx: launchApply('fixed', x, map, mean, rstd, { g, weight }), dw: null, db: null };
    const sums = grad(stat, null);
    const dx = fixedStats
      ? launchApply('fixed', x, map, mean, rstd, { g, weight })
      : launchApply('outside', x, map, mean, rstd, { g, weight, sums, count: stat.count });
    return { dx, dw: column(sums, 1, [c]), db: column(sums, 0, [c]) };
  }
  if (plan.kind === 'group') {
    // Per (sample, channel) sums of g and g·x̂; the group sums weight them by w[c].
    const seg = reshape(grad(blockGeometry(n * c, s), null), [n, c, 2]);
    const db = reduceRaw(slice(seg, 2, 0, 1), 'sum', [0, 2], false);
    const dw = reduceRaw(slice(seg, 2, 1, 2), 'sum', [0, 2], false);
    const weighted = weight ? mul(seg, reshape(weight, [1, c, 1])) : seg;
    const sums = reshape(reduceRaw(reshape(weighted, [n, plan.groupsPerSample, c / plan.groupsPerSample, 2]), 'sum', 2, false), [n * plan.groupsPerSample, 2]);
    const dx = launchApply('inside', x, map, mean, rstd, { g, weight, sums, count: stat.count });
    return { dx, dw, db };
  }
  // Layer norm: row sums for dx; column sums (over rows, strided by D) for the affine parameters.
  const rows = n;
  const sums = grad(stat, weight);
  const dx = launchApply('inside', x, map, mean, rstd, { g, weight, sums, count: stat.count });
  if (!paramGrads) return { dx, dw: null, db: null };
  const cols = grad({ groups: c, count: rows, rInner: c, rInnerStride: 1, rOuterStride: 0, A: rows, strideA: c, B: 1, strideB: 0 }, null, false);
  return { dx, dw: column(cols, 1, [c]), db: column(cols, 0, [c]) };
}

export interface BatchNormOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
}

/**
 * BatchNorm over [N, C, *] (PyTorch semantics). Training: normalizes with the biased batch variance and
 * updates runningMean / runningVar in place (unbiased variance, `momentum` weight on the new value).
 * Eval: normalizes with the running statistics (constants for backward).
 */
export function batchNorm(x: Tensor, runningMean: Tensor, runningVar: Tensor, weight: Tensor | null, bias: Tensor | null, options: BatchNormOptions): Tensor {
  if (x.rank < 2) throw new ShapeError(`batchNorm expects [N, C, *], got ${formatShape(x.shape)}`);
  const [n, c] = x.shape;
  const s = numel(x.shape.slice(2));
  for (const [t, what] of [[runningMean, 'runningMean'], [runningVar, 'runningVar']] as const) {
    if (t.rank !== 1 || t.shape[0] !== c || t.dtype !== 'f32') throw new ShapeError(`batchNorm ${what} must be f32 [${c}], got ${formatShape(t.shape)}`);
  }
  if (options.training && n * s < 2) throw new ShapeError(`batchNorm in training needs more than one value per channel, got ${formatShape(x.shape)}`);
  const plan: NormPlan = {
    kind: 'batch',
    map: { statDiv: s, statMod: c, chanDiv: s, chanMod: c },
    stat: { groups: c, count: n * s, rInner: c, rInnerStride: s, rOuterStride: 0, A: n, strideA: c * s, B: s, strideB: 1 },
    channels: c,
    dims: [n, c, s],
    groupsPerSample: c,
  };
  const eps = options.eps ?? 1e-5;
  if (!options.training) return normalize('batch_norm', x, plan, weight, bias, eps, { mean: runningMean, variance: runningVar }, null);
  return normalize('batch_norm', x, plan, weight, bias, eps, null, { mean: runningMean, variance: runningVar, momentum: options.momentum ?? 0.1 });
}

/** GroupNorm over [N, C, *]: statistics per (sample, group of C/groups channels); per-channel affine. */
export function groupNorm(x: Tensor, groups: number, weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-6): Tensor {
  if (x.rank < 2) throw new ShapeError(`groupNorm expects [N, C, *], got ${formatShape(x.shape)}`);
  const [n, c] = x.shape;
  if (!Number.isInteger(groups) || groups < 1 || c % groups !== 0) throw new ShapeError(`groupNorm: ${c} channels do not split into ${groups} groups`);
  const s = numel(x.shape.slice(2));
  const per = (c / groups) * s;
  const plan: NormPlan = {
    kind: 'group',
    map: { statDiv: per, statMod: n * groups, chanDiv: s, chanMod: c },
    stat: blockGeometry(n * groups, per),
    channels: c,
    dims: [n, c, s],
    groupsPerSample: groups,
  };
  return normalize('group_norm', x, plan, weight, bias, eps, null, null);
}

/** LayerNorm over the trailing dims `normalizedShape`; weight and bias (if given) have that shape. */
export function layerNorm(x: Tensor, normalizedShape: readonly number[], weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-6): Tensor {
  const k = normalizedShape.length;
  if (k === 0 || k > x.rank || normalizedShape.some((d, i) => d !== x.shape[x.rank - k + i])) {
    throw new ShapeError(`layerNorm: normalized shape ${formatShape(normalizedShape)} does not end ${formatShape(x.shape)}`);
  }
  const d = numel(normalizedShape);
  const rows = x.size / Math.max(d, 1);
  const plan: NormPlan = {
    kind: 'layer',
    map: { statDiv: d, statMod: rows, chanDiv: 1, chanMod: d },
    stat: blockGeometry(rows, d),
    channels: d,
    dims: [rows, d, 1],
    groupsPerSample: 1,
  };
  return normalize('layer_norm', x, plan, weight, bias, eps, null, null);
}

/** x / (‖x‖₂ over dim 1 + eps) for [N, C, *] (LPIPS normalize_tensor). */
export function l2NormalizeChannels(x: Tensor, eps = 1e-10): Tensor {
  if (x.rank < 2) throw new ShapeError(`l2NormalizeChannels expects [N, C, *], got ${formatShape(x.shape)}`);
  if (x.dtype !== 'f32') throw new ShapeError(`l2NormalizeChannels expects f32, got ${x.dtype}`);
  if (x.size === 0) throw new ShapeError(`l2NormalizeChannels: empty tensor ${formatShape(x.shape)}`);
  const [n, c] = x.shape;
  const s = numel(x.shape.slice(2));
  const run = (xc: Tensor, g: Tensor | null): Tensor => {
    const out = empty(xc.backend, xc.shape, 'f32');
    if (xc.backend.kind === 'cpu') {
      cpuData(out).set(l2NormalizeRef(xc.toFloat64Sync(), g?.toFloat64Sync() ?? null, n, c, s, eps));
      return out;
    }
    const backward = !!g;
    xc.backend.ctx.dispatch(
      {
        key: `l2_normalize:${backward ? 'bwd' : 'fwd'}`,
        source: () => l2NormalizeShader({ backward, workgroupSize: WORKGROUP }),
        inputs: g ? 2 : 1,
        outputs: 1,
      },
      {
        inputs: [buf(xc), ...(g ? [buf(g)] : [])],
        outputs: [buf(out)],
        uniforms: new UniformWriter().u32(n, c, s, xc.offset, g?.offset ?? 0).f32(eps).finish(),
        workgroups: grid(xc.backend, Math.ceil((n * s) / WORKGROUP)),
      },
    );
    return out;
  };
  const xc = contiguous(x);
  const y = run(xc, null);
  const out = record('l2_normalize', [x], y, [xc], (g, [sx]) => [run(sx, contiguous(g))]);
  xc.dispose();
  return out;
}
