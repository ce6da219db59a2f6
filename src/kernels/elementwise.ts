import { record } from '../engine/autograd';
import { setAutogradKernels } from '../engine/autograd';
import type { Backend, CpuStorage, GpuStorage } from '../engine/backend';
import { empty } from '../engine/create';
import { isFloat, type DType } from '../engine/dtype';
import { ShapeError } from '../engine/errors';
import { broadcastShapes, coalesceDims, contiguousStrides, numel, shapesEqual, type Shape } from '../engine/shape';
import type { StridedView, Tensor } from '../engine/tensor';
import { MAX_RANK, RANK_VEC4, UniformWriter } from '../engine/uniforms';
import { elementwiseShader, type ElementwiseOp } from '../../shaders/elementwise.wgsl';
import { elementwiseRef } from './reference/elementwise';
import { sumToShape } from './reduce';

const WORKGROUP = 256;
/** Innermost extent from which CPU adapters walk a strided op row by row (shorter rows: per element). */
const ROW_WALK_MIN = 4;

function sameBackend(tensors: readonly Tensor[]): Backend {
  const b = tensors[0].backend;
  for (const t of tensors) {
    t.assertAlive();
    if (t.backend !== b) throw new ShapeError(`tensors live on different backends (${b.kind} and ${t.backend.kind})`);
  }
  return b;
}

/** A view of `t` broadcast to `shape` (stride 0 on expanded dims); no copy. */
export function broadcastView(t: StridedView, shape: Shape): StridedView {
  const lead = shape.length - t.shape.length;
  const strides = shape.map((d, i) => {
    const j = i - lead;
    if (j < 0) return 0;
    if (t.shape[j] === d) return t.strides[j];
    if (t.shape[j] === 1) return 0;
    throw new ShapeError(`cannot broadcast [${t.shape.join(',')}] to [${shape.join(',')}]`);
  });
  return { storage: t.storage, shape, strides, offset: t.offset, dtype: t.dtype };
}

function isPlainContiguous(v: StridedView, shape: Shape): boolean {
  const c = contiguousStrides(shape);
  return v.shape.length === shape.length && shape.every((d, i) => d === 1 || v.strides[i] === c[i]);
}

/**
 * Runs one elementwise op over views already broadcast to `out.shape`, writing into the (possibly
 * strided) output view. Used by every elementwise op and by copies into slices (concat, pad).
 */
export function launchElementwise(backend: Backend, op: ElementwiseOp, inputs: readonly StridedView[], out: StridedView, params: readonly number[] = []): void {
  const shape = out.shape;
  if (shape.length > MAX_RANK) throw new ShapeError(`rank ${shape.length} exceeds the supported ${MAX_RANK}`);
  const n = numel(shape);
  if (n === 0) return;
  if (backend.kind === 'cpu') {
    const ref = (v: StridedView) => ({ data: (v.storage as CpuStorage).data, strides: v.strides, offset: v.offset });
    elementwiseRef(op, shape, inputs.map(ref), ref(out), params, !isFloat(out.dtype));
    return;
  }
  for (const v of inputs) {
    if (v.storage === out.storage) throw new ShapeError(`elementwise '${op}': the output aliases an input; copy the input first`);
  }
  const contiguous = [out, ...inputs].every((v) => isPlainContiguous(v, shape));
  // The strided kernel walks the fewest dims that describe the same element order.
  const walk = coalesceDims(shape, [out.strides, ...inputs.map((v) => v.strides)]);
  const inner = walk.shape[walk.shape.length - 1];
  const layout = contiguous ? 'contiguous' : backend.ctx.caps.software && inner >= ROW_WALK_MIN ? 'rows' : 'strided';
  const program = {
    key: `elementwise:${op}:${inputs.map((v) => v.dtype).join(',')}>${out.dtype}:${layout[0]}`,
    source: () => elementwiseShader({ op, inputTypes: inputs.map((v) => v.dtype), outputType: out.dtype, layout, workgroupSize: WORKGROUP }),
    inputs: inputs.length,
    outputs: 1,
  };
  const rows = n / inner;
  const w = new UniformWriter().u32(n, walk.shape.length, rows, inner).f32(params[0] ?? 0, params[1] ?? 0, params[2] ?? 0, params[3] ?? 0);
  w.u32Array(walk.shape, RANK_VEC4, 1);
  for (const strides of walk.strides) w.u32Array(strides, RANK_VEC4);
  w.u32Array([out.offset, ...inputs.map((v) => v.offset)], 1);
  const groups = Math.ceil((layout === 'rows' ? rows : n) / WORKGROUP);
  const maxX = backend.ctx.caps.limits.maxComputeWorkgroupsPerDimension;
  backend.ctx.dispatch(program, {
    inputs: inputs.map((v) => (v.storage as GpuStorage).buffer),
    outputs: [(out.storage as GpuStorage).buffer],
    uniforms: w.finish(),
    workgroups: [Math.min(groups, maxX), Math.ceil(groups / maxX)],
  });
}

/** Applies `op` to broadcast inputs into a new tensor (no autograd). */
export function mapOp(op: ElementwiseOp, inputs: readonly Tensor[], params: readonly number[] = [], outDtype?: DType): Tensor {
  const backend = sameBackend(inputs);
  const shape = broadcastShapes(...inputs.map((t) => t.shape));
  const out = empty(backend, shape, outDtype ?? inputs[0].dtype);
  launchElementwise(backend, op, inputs.map((t) => broadcastView(t, shape)), out, params);
  return out;
}

/** A tensor of `shape` filled with `value`. */
export function full(backend: Backend, shape: Shape, value: number, dtype: DType = 'f32'): Tensor {
  const out = empty(backend, shape, dtype);
  launchElementwise(backend, 'fill', [], out, [value]);
  return out;
}
export const zeros = (backend: Backend, shape: Shape, dtype: DType = 'f32') => full(backend, shape, 0, dtype);
export const ones = (backend: Backend, shape: Shape, dtype: DType = 'f32') => full(backend, shape, 1, dtype);
export const zerosLike = (t: Tensor) => full(t.backend, t.shape, 0, t.dtype);
export const onesLike = (t: Tensor) => full(t.backend, t.shape, 1, t.dtype);

/** Copies `src` (broadcast to dst's shape) into the view `dst`, e.g. a slice of a larger tensor. */
export function copyInto(backend: Backend, src: StridedView, dst: StridedView): void {
  launchElementwise(backend, 'identity', [broadcastView(src, dst.shape)], dst);
}

/** Converts to another dtype (float → int truncates toward zero). */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x.share();
  const out = mapOp('identity', [x], [], dtype);
  if (isFloat(dtype) && isFloat(x.dtype)) return record('cast', [x], out, [], (g) => [cast(g, x.dtype)]);
  return out;
}

// ---- differentiable unary ops ---------------------------------------------------------------

type UnaryRule = { grad: ElementwiseOp; uses: 'input' | 'output' } | ((g: Tensor, x: Tensor, y: Tensor, p: readonly number[]) => Tensor);

function unary(op: ElementwiseOp, x: Tensor, rule: UnaryRule | null, params: readonly number[] = []): Tensor {
  const y = mapOp(op, [x], params);
  if (!rule) return y;
  const savesOutput = typeof rule !== 'function' && rule.uses === 'output';
  return record(op, [x], y, [savesOutput ? y : x], (g, [s]) => {
    if (typeof rule === 'function') return [rule(g, s, s, params)];
    return [mapOp(rule.grad, [g, s], params)];
  });
}

export const neg = (x: Tensor) => unary('neg', x, (g) => mapOp('neg', [g]));
export const exp = (x: Tensor) => unary('exp', x, { grad: 'mul', uses: 'output' });
export const log = (x: Tensor) => unary('log', x, { grad: 'div', uses: 'input' });
export const sqrt = (x: Tensor) => unary('sqrt', x, { grad: 'sqrt_grad', uses: 'output' });
export const rsqrt = (x: Tensor) => unary('rsqrt', x, { grad: 'rsqrt_grad', uses: 'output' });
export const abs = (x: Tensor) => unary('abs', x, { grad: 'abs_grad', uses: 'input' });
export const sin = (x: Tensor) => unary('sin', x, { grad: 'sin_grad', uses: 'input' });
export const cos = (x: Tensor) => unary('cos', x, { grad: 'cos_grad', uses: 'input' });
export const erf = (x: Tensor) => unary('erf', x, { grad: 'erf_grad', uses: 'input' });
export const square = (x: Tensor) => pow(x, 2);
export const relu = (x: Tensor) => unary('relu', x, { grad: 'relu_grad', uses: 'input' });
export const leakyRelu = (x: Tensor, slope = 0.01) => unary('leaky_relu', x, { grad: 'leaky_relu_grad', uses: 'input' }, [slope]);
export const silu = (x: Tensor) => unary('silu', x, { grad: 'silu_grad', uses: 'input' });
export const gelu = (x: Tensor) => unary('gelu', x, { grad: 'gelu_grad', uses: 'input' });
export const sigmoid = (x: Tensor) => unary('sigmoid', x, { grad: 'sigmoid_grad', uses: 'output' });
export const tanh = (x: Tensor) => unary('tanh', x, { grad: 'tanh_grad', uses: 'output' });
export const sign = (x: Tensor) => mapOp('sign', [x]);
/** Clamps to [min, max]; the gradient passes where min ≤ x ≤ max (PyTorch's rule). */
export const clamp = (x: Tensor, min = -Infinity, max = Infinity) =>
  unary('clamp', x, { grad: 'clamp_grad', uses: 'input' }, [Math.max(min, -3.4e38), Math.min(max, 3.4e38)]);
export const reciprocal = (x: Tensor) => pow(x, -1);

function scalarOp(op: 'add_scalar' | 'mul_scalar', x: Tensor, s: number): Tensor {
  return unary(op, x, op === 'add_scalar' ? (g) => g.share() : (g) => mapOp('mul_scalar', [g], [s]), [s]);
}
export const addScalar = (x: Tensor, s: number) => scalarOp('add_scalar', x, s);
export const mulScalar = (x: Tensor, s: number) => scalarOp('mul_scalar', x, s);

// ---- differentiable binary ops --------------------------------------------------------------

type Operand = Tensor | number;

function asTensor(v: Operand, like: Tensor): Tensor {
  return typeof v === 'number' ? full(like.backend, [], v, like.dtype) : v;
}

function binary(op: ElementwiseOp, a: Tensor, b: Tensor, rule: (g: Tensor, a: Tensor, b: Tensor) => (Tensor | null)[]): Tensor {
  const y = mapOp(op, [a, b]);
  return record(op, [a, b], y, [a, b], (g, [sa, sb]) => {
    const [ga, gb] = rule(g, sa, sb);
    return [ga && sumToShape(ga, sa.shape), gb && sumToShape(gb, sb.shape)];
  });
}

export function add(a: Operand, b: Operand): Tensor {
  if (typeof b === 'number') return addScalar(a as Tensor, b);
  if (typeof a === 'number') return addScalar(b, a);
  return binary('add', a, b, (g) => [g, g]);
}
export function sub(a: Operand, b: Operand): Tensor {
  if (typeof b === 'number') return addScalar(a as Tensor, -b);
  const ta = asTensor(a, b);
  return binary('sub', ta, b, (g) => [g, mapOp('neg', [g])]);
}
export function mul(a: Operand, b: Operand): Tensor {
  if (typeof b === 'number') return mulScalar(a as Tensor, b);
  if (typeof a === 'number') return mulScalar(b, a);
  return binary('mul', a, b, (g, x, y) => [mapOp('mul', [g, y]), mapOp('mul', [g, x])]);
}
export function div(a: Operand, b: Operand): Tensor {
  if (typeof b === 'number') return mulScalar(a as Tensor, 1 / b);
  const ta = asTensor(a, b);
  return binary('div', ta, b, (g, x, y) => [mapOp('div', [g, y]), mapOp('div_grad_b', [g, x, y])]);
}
export function pow(a: Tensor, b: Operand): Tensor {
  if (typeof b === 'number') return unary('pow_scalar', a, { grad: 'pow_scalar_grad', uses: 'input' }, [b]);
  return binary('pow', a, b, (g, x, y) => [mapOp('pow_grad_a', [g, x, y]), mapOp('pow_grad_b', [g, x, y])]);
}
export function minimum(a: Tensor, b: Operand): Tensor {
  const tb = asTensor(b, a);
  return binary('minimum', a, tb, (g, x, y) => [mapOp('min_grad_a', [g, x, y]), mapOp('min_grad_a', [g, y, x])]);
}
export function maximum(a: Tensor, b: Operand): Tensor {
  const tb = asTensor(b, a);
  return binary('maximum', a, tb, (g, x, y) => [mapOp('max_grad_a', [g, x, y]), mapOp('max_grad_a', [g, y, x])]);
}
/** atan2(y, x), forward only (used by cycle detection). */
export const atan2 = (y: Tensor, x: Tensor) => mapOp('atan2', [y, x]);

/** Comparisons return a float mask of 0/1 (no gradient). */
export const eq = (a: Tensor, b: Operand) => mapOp('eq', [a, asTensor(b, a)]);
export const ne = (a: Tensor, b: Operand) => mapOp('ne', [a, asTensor(b, a)]);
export const lt = (a: Tensor, b: Operand) => mapOp('lt', [a, asTensor(b, a)]);
export const le = (a: Tensor, b: Operand) => mapOp('le', [a, asTensor(b, a)]);
export const gt = (a: Tensor, b: Operand) => mapOp('gt', [a, asTensor(b, a)]);
export const ge = (a: Tensor, b: Operand) => mapOp('ge', [a, asTensor(b, a)]);

/** where(cond, x, y): x where cond ≠ 0, else y; broadcasts all three. */
export function where(cond: Tensor, x: Operand, y: Operand): Tensor {
  const like = typeof x === 'number' ? (typeof y === 'number' ? cond : y) : x;
  const tx = asTensor(x, like);
  const ty = asTensor(y, like);
  const out = mapOp('where', [cond, tx, ty], [], like.dtype === cond.dtype ? like.dtype : tx.dtype);
  return record('where', [cond, tx, ty], out, [cond], (g, [c]) => {
    const zero = full(g.backend, [], 0, g.dtype);
    return [null, sumToShape(mapOp('where', [c, g, zero]), tx.shape), sumToShape(mapOp('where', [c, zero, g]), ty.shape)];
  });
}

setAutogradKernels((a, b) => mapOp('add', [a, b]), onesLike, (t) => mapOp('identity', [t]));

export function assertSameShape(a: Tensor, b: Tensor, what: string): void {
  if (!shapesEqual(a.shape, b.shape)) throw new ShapeError(`${what}: shapes [${a.shape}] and [${b.shape}] differ`);
}
