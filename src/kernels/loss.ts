import { noGrad, record } from '../engine/autograd';
import type { Backend, CpuStorage, GpuStorage } from '../engine/backend';
import { empty } from '../engine/create';
import { ShapeError } from '../engine/errors';
import { broadcastShapes, contiguousStrides, numel, type Shape } from '../engine/shape';
import type { StridedView, Tensor } from '../engine/tensor';
import { MAX_RANK, UniformWriter } from '../engine/uniforms';
import { finishSumShader, flowInterpolateShader, LOSS_ARITY, pointwiseLossShader, type GradLayout, type LossMode, type PointwiseLoss } from '../../shaders/loss.wgsl';
import { flowInterpolateRef, pointwiseLossGradRef, pointwiseLossMapRef, pointwiseLossSumRef } from './reference/loss';
import { add, broadcastView, cast, mapOp, mulScalar, neg, relu, sub } from './elementwise';
import { mean, std, sum, sumToShape } from './reduce';
import { expand, reshape } from './views';

const WORKGROUP = 256;
/** Grid-stride workgroup caps (measured on lavapipe, 2 cores: fewer, longer-running groups win). */
const GRID_GROUPS_CPU = 64;
const GRID_GROUPS_GPU = 4096;
/** Barrier-free partial sums on CPU adapters: one partial per invocation of a few small groups. */
const FLAT_PARTIAL_WORKGROUP = 64;
const FLAT_PARTIAL_GROUPS = 16;

export type Reduction = 'mean' | 'sum' | 'none';

// ---- launch helpers (shared with the optimizer kernels) -------------------------------------------

function isPlainContiguous(v: StridedView, shape: Shape): boolean {
  const c = contiguousStrides(shape);
  return v.shape.length === shape.length && shape.every((d, i) => d === 1 || v.strides[i] === c[i]);
}

/** Uniforms of the strided kernels (STRIDED_UNIFORMS): views must already be broadcast to `shape`. */
function stridedUniforms(shape: Shape, views: readonly StridedView[], groups: number, scale: number): Uint32Array {
  const inner = shape.length > 0 && shape[0] > 0 ? numel(shape) / shape[0] : 1;
  if (shape.length > MAX_RANK) throw new ShapeError(`rank ${shape.length} exceeds the supported ${MAX_RANK}`);
  if (views.length > 4) throw new Error('strided kernels read at most four inputs');
  const strides: number[] = [];
  for (const v of views) for (let d = 0; d < 8; d++) strides.push(d < v.strides.length ? v.strides[d] : 0);
  return new UniformWriter()
    .u32(numel(shape), shape.length, groups, inner)
    .f32(scale, 0, 0, 0)
    .u32Array(shape, 2, 1)
    .u32Array(strides, 8)
    .u32Array(views.map((v) => v.offset), 1)
    .finish();
}

function gpuBuffer(v: StridedView): GPUBuffer {
  return (v.storage as GpuStorage).buffer;
}

/**
 * Workgroups for a grid-stride kernel over n elements: at least `perThread` elements per invocation, and
 * on CPU adapters only a few groups (each workgroup launch costs more there than a GPU's whole dispatch).
 */
export function gridGroups(backend: Backend & { kind: 'webgpu' }, n: number, perThread = 4): number {
  const cap = backend.ctx.caps.software ? GRID_GROUPS_CPU : GRID_GROUPS_GPU;
  return Math.max(1, Math.min(cap, Math.ceil(n / (WORKGROUP * perThread))));
}

/** Adds `count` partials from `partials` (starting at `offset`) into out[0] · scale (or its sqrt). */
export function launchFinishSum(backend: Backend & { kind: 'webgpu' }, partials: GPUBuffer, offset: number, count: number, out: GPUBuffer, scale: number, sqrt: boolean): void {
  backend.ctx.dispatch(
    { key: `loss:finish:${sqrt ? 'sqrt' : 'sum'}`, source: () => finishSumShader({ sqrt, workgroupSize: WORKGROUP }), inputs: 1, outputs: 1 },
    { inputs: [partials], outputs: [out], uniforms: new UniformWriter().u32(count, offset, 0, 0).f32(scale).finish(), workgroups: [1] },
  );
}

/** Float64 values of `t` broadcast to `shape` (CPU reference backend). */
function denseF64(t: Tensor, shape: Shape): Float64Array {
  return noGrad(() => {
    const e = expand(t, shape);
    const v = e.toFloat64Sync();
    e.dispose();
    return v;
  });
}

/** The tensor itself when f32 (keeps its autograd identity), else a differentiable cast. */
function asF32(t: Tensor): Tensor {
  return t.dtype === 'f32' ? t : cast(t, 'f32');
}

function disposeCasts(made: readonly Tensor[], originals: readonly Tensor[]): void {
  made.forEach((t, i) => {
    if (t !== originals[i]) t.dispose();
  });
}

const needsGrad = (t: Tensor | undefined) => !!t && (t.requiresGrad || t.gradNode !== null);

// ---- the fused pointwise kernels -----------------------------------------------------------------

function pointwiseProgram(op: PointwiseLoss, mode: LossMode, contiguous: boolean, gradA: boolean, gradB: boolean, gradLayout: GradLayout, inputs: number, outputs: number, treeReduce = true) {
  const workgroupSize = treeReduce ? WORKGROUP : FLAT_PARTIAL_WORKGROUP;
  return {
    key: `loss:${op}:${mode}:${contiguous ? 'c' : 's'}:${gradA ? 'a' : ''}${gradB ? 'b' : ''}:${gradLayout}:${treeReduce ? 't' : 'f'}`,
    source: () => pointwiseLossShader({ op, mode, contiguous, gradA, gradB, gradLayout, treeReduce, workgroupSize }),
    inputs,
    outputs,
  };
}

/** scale · Σ f(a, b) as a scalar tensor (no autograd): one partial-sum pass plus a one-workgroup finish. */
function pointwiseSum(op: PointwiseLoss, inputs: Tensor[], shape: Shape, scale: number): Tensor {
  const backend = inputs[0].backend;
  const out = empty(backend, [], 'f32');
  const n = numel(shape);
  if (backend.kind === 'cpu') {
    const [a, b] = inputs.map((t) => denseF64(t, shape));
    (out.storage as CpuStorage).data[0] = pointwiseLossSumRef(op, a, b ?? null, scale);
    return out;
  }
  const views = inputs.map((t) => broadcastView(t, shape));
  const contiguous = views.every((v) => isPlainContiguous(v, shape));
  const tree = !backend.ctx.caps.software;
  const groups = tree ? gridGroups(backend, n) : Math.max(1, Math.min(FLAT_PARTIAL_GROUPS, Math.ceil(n / (FLAT_PARTIAL_WORKGROUP * 4))));
  const count = tree ? groups : groups * FLAT_PARTIAL_WORKGROUP;
  const partials = empty(backend, [count], 'f32');
  backend.ctx.dispatch(pointwiseProgram(op, 'partial', contiguous, false, false, 'strided', views.length, 1, tree), {
    inputs: views.map(gpuBuffer),
    outputs: [gpuBuffer(partials)],
    uniforms: stridedUniforms(shape, views, groups, 1),
    workgroups: [groups],
  });
  launchFinishSum(backend, gpuBuffer(partials), 0, count, gpuBuffer(out), scale, false);
  partials.dispose();
  return out;
}

/** Per-element f(a, b) over the broadcast shape (no autograd). */
function pointwiseMap(op: PointwiseLoss, inputs: Tensor[], shape: Shape): Tensor {
  const backend = inputs[0].backend;
  const out = empty(backend, shape, 'f32');
  if (out.size === 0) return out;
  if (backend.kind === 'cpu') {
    const [a, b] = inputs.map((t) => denseF64(t, shape));
    (out.storage as CpuStorage).data.set(pointwiseLossMapRef(op, a, b ?? null));
    return out;
  }
  const views = inputs.map((t) => broadcastView(t, shape));
  const contiguous = views.every((v) => isPlainContiguous(v, shape));
  backend.ctx.dispatch(pointwiseProgram(op, 'map', contiguous, false, false, 'strided', views.length, 1), {
    inputs: views.map(gpuBuffer),
    outputs: [gpuBuffer(out)],
    uniforms: stridedUniforms(shape, views, 0, 1),
    workgroups: [gridGroups(backend, out.size)],
  });
  return out;
}

/** g · scale · ∂f/∂(a, b) over the broadcast shape; null for inputs that need no gradient. */
function pointwiseGrad(op: PointwiseLoss, inputs: readonly Tensor[], g: Tensor, shape: Shape, scale: number, want: [boolean, boolean]): [Tensor | null, Tensor | null] {
  const backend = inputs[0].backend;
  const [wantA, wantB] = want;
  const da = wantA ? empty(backend, shape, 'f32') : null;
  const db = wantB ? empty(backend, shape, 'f32') : null;
  if (numel(shape) === 0) return [da, db];
  if (backend.kind === 'cpu') {
    const [a, b] = inputs.map((t) => denseF64(t, shape));
    const [ra, rb] = pointwiseLossGradRef(op, a, b ?? null, denseF64(g, shape), scale);
    if (da) (da.storage as CpuStorage).data.set(ra);
    if (db) (db.storage as CpuStorage).data.set(rb);
    return [da, db];
  }
  const views = inputs.map((t) => broadcastView(t, shape));
  const contiguous = views.every((v) => isPlainContiguous(v, shape));
  const outs = [da, db].filter((t): t is Tensor => t !== null);
  const gView = broadcastView(g, shape);
  const gradLayout: GradLayout = gView.strides.every((st) => st === 0) ? 'scalar' : isPlainContiguous(gView, shape) ? 'contiguous' : 'strided';
  backend.ctx.dispatch(pointwiseProgram(op, 'grad', contiguous, wantA, wantB, gradLayout, views.length + 1, outs.length), {
    inputs: [...views, gView].map(gpuBuffer),
    outputs: outs.map(gpuBuffer),
    uniforms: stridedUniforms(shape, [...views, gView], 0, scale),
    workgroups: [gridGroups(backend, numel(shape))],
  });
  return [da, db];
}

/**
 * A differentiable fused pointwise loss. `scaleOf(n)` gives the factor of the summed loss for the
 * reductions 'mean' / 'sum'; 'none' returns the per-element loss over the broadcast shape.
 */
function pointwiseLoss(op: PointwiseLoss, rawInputs: Tensor[], reduction: Reduction, scaleOf: (n: number) => number): Tensor {
  if (rawInputs.length !== LOSS_ARITY[op]) throw new Error(`${op} takes ${LOSS_ARITY[op]} inputs`);
  for (const t of rawInputs) t.assertAlive();
  if (rawInputs.some((t) => t.backend !== rawInputs[0].backend)) throw new ShapeError(`${op}: inputs live on different backends`);
  const shape = broadcastShapes(...rawInputs.map((t) => t.shape));
  const n = numel(shape);
  const scale = reduction === 'none' ? 1 : scaleOf(n);
  // Kernels read f32: other float dtypes go through a (differentiable) cast.
  const inputs = rawInputs.map(asF32);
  const y = reduction === 'none' ? pointwiseMap(op, inputs, shape) : pointwiseSum(op, inputs, shape, scale);
  const want: [boolean, boolean] = [needsGrad(inputs[0]), needsGrad(inputs[1])];
  const result = record(`${op}_loss`, inputs, y, inputs, (g, saved) => {
    const grads = pointwiseGrad(op, saved, g, shape, scale, want);
    return saved.map((s, i) => {
      const gi = grads[i];
      if (!gi) return null;
      const reduced = sumToShape(gi, s.shape);
      gi.dispose();
      return reduced;
    });
  });
  disposeCasts(inputs, rawInputs);
  return result;
}

const meanScale = (n: number) => (n === 0 ? NaN : 1 / n);
const scaleFor = (reduction: Reduction) => (reduction === 'mean' ? meanScale : () => 1);

/** Mean (or sum / per-element) squared error, one fused elementwise + reduce pass. Broadcasts a and b. */
export function mseLoss(a: Tensor, b: Tensor, reduction: Reduction = 'mean'): Tensor {
  return pointwiseLoss('mse', [a, b], reduction, scaleFor(reduction));
}

/** Mean (or sum / per-element) absolute error, fused. Gradient sign(a − b) (0 at a = b, as PyTorch). */
export function l1Loss(a: Tensor, b: Tensor, reduction: Reduction = 'mean'): Tensor {
  return pointwiseLoss('l1', [a, b], reduction, scaleFor(reduction));
}

/** Discriminator hinge loss ½·(mean relu(1 − D(x)) + mean relu(1 + D(x̂))) (spec §4.8): two fused reductions. */
export function hingeDiscriminatorLoss(logitsReal: Tensor, logitsFake: Tensor): Tensor {
  const real = pointwiseLoss('hinge_real', [logitsReal], 'mean', (n) => 0.5 * meanScale(n));
  const fake = pointwiseLoss('hinge_fake', [logitsFake], 'mean', (n) => 0.5 * meanScale(n));
  const total = add(real, fake);
  real.dispose();
  fake.dispose();
  return total;
}

/** Generator adversarial term −mean D(x̂) (spec §4.8); composite of mean and neg. */
export function hingeGeneratorLoss(logitsFake: Tensor): Tensor {
  const m = mean(logitsFake);
  const out = neg(m);
  m.dispose();
  return out;
}

/**
 * KL of the diagonal Gaussian posterior N(μ, exp(logvar)) to N(0, I), spec §4.6/§4.8:
 * KL_b = ½ Σ (μ² + σ² − 1 − log σ²) over every non-batch element, with logvar clamped to [−30, 20]
 * as DiagonalGaussianDistribution does. 'mean' = (1/B) Σ_b KL_b (the spec's batch mean; dim 0 is the
 * batch), 'sum' = Σ_b KL_b, 'none' = the per-sample vector [B]. One fused kernel for 'mean'/'sum'.
 */
export function gaussianKl(mu: Tensor, logvar: Tensor, reduction: Reduction = 'mean'): Tensor {
  if (mu.rank === 0) throw new ShapeError('gaussianKl: the posterior needs a batch dim');
  if (mu.shape.length !== logvar.shape.length || mu.shape.some((d, i) => d !== logvar.shape[i])) {
    throw new ShapeError(`gaussianKl: mean [${mu.shape}] and logvar [${logvar.shape}] differ`);
  }
  const batch = mu.shape[0];
  if (reduction !== 'none') return pointwiseLoss('kl', [mu, logvar], 'sum', () => (reduction === 'mean' ? 1 / batch : 1));
  const perElement = pointwiseLoss('kl', [mu, logvar], 'none', () => 1);
  const axes = mu.shape.map((_, i) => i).slice(1);
  const perSample = sum(perElement, axes);
  perElement.dispose();
  return perSample;
}

/**
 * Pixel-outlier penalty (spec §4.8): mean relu(x̂ − μ_HW(x̂) − radius·σ_HW(x̂)), with μ and the unbiased σ
 * taken over the last two dims (H, W) per leading index. Composite of reduce/elementwise ops (a few
 * passes over a small tensor; the gradient flows through μ and σ as in the reference).
 */
export function pixelOutlierPenalty(xhat: Tensor, radius = 3): Tensor {
  if (xhat.rank < 2) throw new ShapeError(`pixelOutlierPenalty needs (…, H, W), got [${xhat.shape}]`);
  const muHW = mean(xhat, [-2, -1], { keepdim: true });
  const sigmaHW = std(xhat, [-2, -1], { keepdim: true, unbiased: true });
  const scaled = mulScalar(sigmaHW, radius);
  const threshold = add(muHW, scaled);
  const excess = sub(xhat, threshold);
  const over = relu(excess);
  const out = mean(over);
  for (const t of [muHW, sigmaHW, scaled, threshold, excess, over]) t.dispose();
  return out;
}

// ---- rectified flow --------------------------------------------------------------------------------

/** t of shape [B] (or already broadcastable) as a view broadcastable against samples of shape [B, …]. */
function perSampleView(t: Tensor, sampleShape: Shape): Tensor {
  if (t.rank === 1 && sampleShape.length > 1 && t.shape[0] === sampleShape[0]) return reshape(t, [t.shape[0], ...sampleShape.slice(1).map(() => 1)]);
  return reshape(t, t.shape);
}

/**
 * One pass computing the rectified-flow interpolant and its target (spec §5.1):
 * x_t = (1 − t)·x0 + t·x1, target = x1 − x0, with t per sample ([B], broadcast over the other dims).
 * Gradients: x_t → x0: (1 − t), x1: t, t: Σ g·(x1 − x0); target → x1: +g, x0: −g.
 */
export function flowInterpolate(x0: Tensor, x1: Tensor, t: Tensor): { xt: Tensor; target: Tensor } {
  for (const v of [x0, x1, t]) v.assertAlive();
  const tView = perSampleView(t, broadcastShapes(x0.shape, x1.shape));
  const shape = broadcastShapes(x0.shape, x1.shape, tView.shape);
  const backend = x0.backend;
  const [a, b, tt] = [x0, x1, tView].map(asF32);
  const xt = empty(backend, shape, 'f32');
  const target = empty(backend, shape, 'f32');
  if (backend.kind === 'cpu') {
    const [rx, rv] = flowInterpolateRef(denseF64(a, shape), denseF64(b, shape), denseF64(tt, shape));
    (xt.storage as CpuStorage).data.set(rx);
    (target.storage as CpuStorage).data.set(rv);
  } else if (numel(shape) > 0) {
    const views = [a, b, tt].map((v) => broadcastView(v, shape));
    const contiguous = isPlainContiguous(views[0], shape) && isPlainContiguous(views[1], shape);
    const tPerSample = views[2].strides.every((st, d) => d === 0 || st === 0);
    backend.ctx.dispatch(
      { key: `loss:flow:${contiguous ? 'c' : 's'}:${tPerSample ? 't1' : 'tn'}`, source: () => flowInterpolateShader({ contiguous, tPerSample, workgroupSize: WORKGROUP }), inputs: 3, outputs: 2 },
      { inputs: views.map(gpuBuffer), outputs: [gpuBuffer(xt), gpuBuffer(target)], uniforms: stridedUniforms(shape, views, 0, 1), workgroups: [gridGroups(backend, numel(shape))] },
    );
  }
  const xtOut = record('flow_interpolate', [a, b, tt], xt, [a, b, tt], (g, [sa, sb, st]) => {
    const oneMinusT = mapOp('add_scalar', [mapOp('neg', [st])], [1]);
    const diff = mapOp('sub', [sb, sa]);
    return [sumToShape(mapOp('mul', [g, oneMinusT]), sa.shape), sumToShape(mapOp('mul', [g, st]), sb.shape), sumToShape(mapOp('mul', [g, diff]), st.shape)];
  });
  const targetOut = record('flow_target', [a, b], target, [a, b], (g, [sa, sb]) => [sumToShape(mapOp('neg', [g]), sa.shape), sumToShape(g, sb.shape)]);
  disposeCasts([a, b, tt], [x0, x1, tView]);
  tView.dispose();
  return { xt: xtOut, target: targetOut };
}

/**
 * L_AMDF = mean (v_θ(x_t) − (x1 − x0))² (spec §5.1). The model stays outside: `predict` maps x_t to the
 * velocity. One fused interpolation pass, the model, one fused MSE pass. Returns the loss and the
 * interpolant (callers that need x_t for logging can keep it; dispose it otherwise).
 */
export function rectifiedFlowLoss(predict: (xt: Tensor) => Tensor, x0: Tensor, x1: Tensor, t: Tensor): { loss: Tensor; xt: Tensor } {
  const { xt, target } = flowInterpolate(x0, x1, t);
  const v = predict(xt);
  const loss = mseLoss(v, target);
  v.dispose();
  target.dispose();
  return { loss, xt };
}
