import { ShapeError } from './errors';

export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export function isContiguous(shape: Shape, strides: readonly number[]): boolean {
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && strides[i] !== s) return false;
    s *= shape[i];
  }
  return true;
}

/** PyTorch broadcasting: align from the right; each pair of sizes must match or one must be 1. */
export function broadcastShapes(...shapes: Shape[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i];
      if (d === out[o] || d === 1) continue;
      if (out[o] === 1) out[o] = d;
      else throw new ShapeError(`shapes [${shapes.map((x) => x.join(',')).join('] and [')}] cannot be broadcast together`);
    }
  }
  return out;
}

/** Normalizes a possibly negative axis and checks it is in range. */
export function normalizeAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new ShapeError(`axis ${axis} is out of range for rank ${rank}`);
  return a;
}

export function normalizeAxes(axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const out = [...new Set(list.map((a) => normalizeAxis(a, rank)))];
  if (out.length !== list.length) throw new ShapeError(`repeated axis in [${list.join(',')}]`);
  return out.sort((a, b) => a - b);
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/**
 * The smallest-rank description of the same index walk for several views of one shape: size-1 dims are
 * dropped and neighbouring dims d, d+1 merge when every view steps over them as one (stride[d] ==
 * stride[d+1]·shape[d+1]; broadcast zeros merge with zeros). Strided kernels then do fewer div/mod steps per
 * element (costly on CPU adapters). Rank is at least 1.
 */
export function coalesceDims(shape: Shape, stridesList: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = stridesList.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    const merges = last >= 0 && stridesList.every((s, k) => outStrides[k][last] === s[d] * shape[d]);
    if (merges) {
      outShape[last] *= shape[d];
      stridesList.forEach((s, k) => (outStrides[k][last] = s[d]));
    } else {
      outShape.push(shape[d]);
      stridesList.forEach((s, k) => outStrides[k].push(s[d]));
    }
  }
  if (!outShape.length) return { shape: [1], strides: stridesList.map(() => [0]) };
  return { shape: outShape, strides: outStrides };
}
