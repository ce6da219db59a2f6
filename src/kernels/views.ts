import { record } from '../engine/autograd';
import { ShapeError } from '../engine/errors';
import { contiguousStrides, formatShape, normalizeAxis, numel, type Shape } from '../engine/shape';
import { setContiguousHook, Tensor } from '../engine/tensor';
import { empty } from '../engine/create';
import { copyInto, zeros } from './elementwise';
import { sumToShape } from './reduce';

/**
 * View ops: new tensors over the same storage with other shape/strides/offset (no copy), except
 * contiguous() and the reshape of a non-contiguous tensor. Every view is differentiable.
 */
function view(x: Tensor, shape: Shape, strides: readonly number[], offset: number): Tensor {
  x.assertAlive();
  x.storage.retain();
  return new Tensor(x.backend, x.storage, shape, x.dtype, strides, offset);
}

/** A contiguous copy (or a new handle when x is already contiguous). */
export function contiguous(x: Tensor): Tensor {
  if (x.isContiguous) return x.share();
  const out = empty(x.backend, x.shape, x.dtype);
  copyInto(x.backend, x, out);
  return record('contiguous', [x], out, [], (g) => [g.share()]);
}
setContiguousHook(contiguous);

function resolveShape(shape: Shape, total: number): number[] {
  const out = [...shape];
  const infer = out.indexOf(-1);
  if (infer !== out.lastIndexOf(-1)) throw new ShapeError(`only one -1 allowed in ${formatShape(shape)}`);
  if (infer >= 0) {
    const known = out.reduce((p, d, i) => (i === infer ? p : p * d), 1);
    if (known === 0 || total % known !== 0) throw new ShapeError(`cannot infer -1 in ${formatShape(shape)} for ${total} elements`);
    out[infer] = total / known;
  }
  if (numel(out) !== total) throw new ShapeError(`cannot reshape ${total} elements to ${formatShape(shape)}`);
  return out;
}

/** Reshape: a view when x is contiguous, otherwise a copy. */
export function reshape(x: Tensor, shapeArg: Shape): Tensor {
  const shape = resolveShape(shapeArg, x.size);
  const src = x.isContiguous ? x : contiguous(x);
  const out = view(src, shape, contiguousStrides(shape), src.offset);
  if (src !== x) src.dispose();
  return record('reshape', [x], out, [], (g) => [reshape(g, x.shape)]);
}

export const flatten = (x: Tensor, start = 0, end = -1): Tensor => {
  const s = normalizeAxis(start, x.rank);
  const e = normalizeAxis(end, x.rank);
  return reshape(x, [...x.shape.slice(0, s), numel(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)]);
};

export function permute(x: Tensor, dims: readonly number[]): Tensor {
  if (dims.length !== x.rank) throw new ShapeError(`permute needs ${x.rank} dims, got [${dims}]`);
  const d = dims.map((a) => normalizeAxis(a, x.rank));
  if (new Set(d).size !== d.length) throw new ShapeError(`permute: repeated dim in [${dims}]`);
  const out = view(x, d.map((i) => x.shape[i]), d.map((i) => x.strides[i]), x.offset);
  const inverse = new Array<number>(d.length);
  d.forEach((src, i) => (inverse[src] = i));
  return record('permute', [x], out, [], (g) => [permute(g, inverse)]);
}

export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const dims = x.shape.map((_, i) => i);
  const i = normalizeAxis(a, x.rank);
  const j = normalizeAxis(b, x.rank);
  [dims[i], dims[j]] = [dims[j], dims[i]];
  return permute(x, dims);
}

/** Elements start ≤ i < end (step ≥ 1) along `dim`; negative start/end count from the end. */
export function slice(x: Tensor, dim: number, start: number, end: number = x.shape[normalizeAxis(dim, x.rank)], step = 1): Tensor {
  const d = normalizeAxis(dim, x.rank);
  const n = x.shape[d];
  const s = Math.min(Math.max(start < 0 ? start + n : start, 0), n);
  const e = Math.min(Math.max(end < 0 ? end + n : end, s), n);
  if (!Number.isInteger(step) || step < 1) throw new ShapeError(`slice step must be a positive integer, got ${step}`);
  const len = Math.ceil((e - s) / step);
  const shape = [...x.shape];
  shape[d] = len;
  const strides = [...x.strides];
  strides[d] = x.strides[d] * step;
  const out = view(x, shape, strides, x.offset + s * x.strides[d]);
  return record('slice', [x], out, [], (g) => {
    const full = zeros(g.backend, x.shape, g.dtype);
    const fullStrides = contiguousStrides(x.shape);
    const target = { storage: full.storage, shape: g.shape, strides: fullStrides.map((st, i) => (i === d ? st * step : st)), offset: s * fullStrides[d], dtype: g.dtype };
    copyInto(g.backend, g, target);
    return [full];
  });
}

/** Broadcasts size-1 dims (and new leading dims) to `shape` without copying; -1 keeps a size. */
export function expand(x: Tensor, shapeArg: Shape): Tensor {
  const lead = shapeArg.length - x.rank;
  if (lead < 0) throw new ShapeError(`expand: target ${formatShape(shapeArg)} has fewer dims than ${formatShape(x.shape)}`);
  const shape = shapeArg.map((d, i) => (d === -1 ? x.shape[i - lead] : d));
  const strides = shape.map((d, i) => {
    const j = i - lead;
    if (j < 0) return 0;
    if (x.shape[j] === d) return x.strides[j];
    if (x.shape[j] === 1) return 0;
    throw new ShapeError(`expand: cannot expand ${formatShape(x.shape)} to ${formatShape(shape)}`);
  });
  const out = view(x, shape, strides, x.offset);
  return record('expand', [x], out, [], (g) => [sumToShape(g, x.shape)]);
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normalizeAxis(dim, x.rank + 1);
  const shape = [...x.shape];
  shape.splice(d, 0, 1);
  return reshapeView(x, shape);
}

export function squeeze(x: Tensor, dim?: number | readonly number[]): Tensor {
  const dims = dim === undefined ? x.shape.map((_, i) => i).filter((i) => x.shape[i] === 1) : (typeof dim === 'number' ? [dim] : dim).map((a) => normalizeAxis(a, x.rank));
  return reshapeView(x, x.shape.filter((s, i) => !(dims.includes(i) && s === 1)));
}

/** Inserting or removing size-1 dims never needs a copy, even for strided tensors. */
function reshapeView(x: Tensor, shape: number[]): Tensor {
  const kept = x.shape.map((size, i) => ({ size, stride: x.strides[i] })).filter((d) => d.size !== 1);
  let k = 0;
  const strides = shape.map((d) => (d === 1 ? 0 : kept[k++].stride));
  const out = view(x, shape, strides, x.offset);
  return record('reshape', [x], out, [], (g) => [reshape(g, x.shape)]);
}

/** Splits into chunks of `sizes` (or equal chunks of size `sizes`) along dim, as views. */
export function split(x: Tensor, sizes: number | readonly number[], dim = 0): Tensor[] {
  const d = normalizeAxis(dim, x.rank);
  const n = x.shape[d];
  const list = typeof sizes === 'number' ? Array.from({ length: Math.ceil(n / sizes) }, (_, i) => Math.min(sizes, n - i * sizes)) : [...sizes];
  if (list.reduce((a, b) => a + b, 0) !== n) throw new ShapeError(`split sizes [${list}] do not add up to ${n}`);
  let start = 0;
  return list.map((len) => {
    const part = slice(x, d, start, start + len);
    start += len;
    return part;
  });
}

export const chunk = (x: Tensor, chunks: number, dim = 0): Tensor[] => split(x, Math.ceil(x.shape[normalizeAxis(dim, x.rank)] / chunks), dim);

/** The same values with no autograd history (stop-gradient); shares storage. */
export function detach(x: Tensor): Tensor {
  return view(x, x.shape, x.strides, x.offset);
}
