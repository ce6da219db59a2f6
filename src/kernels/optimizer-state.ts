/**
 * What the optimizer kernels (optimizer.ts) and the loss scalers (grad-scaler.ts) share: the workgroup size,
 * buffer access, tensors that outlive scopes, and gradients made safe to update in place. Internal: not part
 * of the public API.
 */
import type { GpuStorage } from '../engine/backend';
import { empty } from '../engine/create';
import { untrackTensor } from '../engine/scope';
import type { Tensor } from '../engine/tensor';
import { copyInto } from './elementwise';

/** Workgroup size of the optimizer and loss-scaler kernels. */
export const WORKGROUP = 256;

export function buffer(t: Tensor): GPUBuffer {
  return (t.storage as GpuStorage).buffer;
}

/** A tensor that outlives every tidy() scope (optimizer state, replaced gradients). */
export function persistent<T extends Tensor>(t: T): T {
  untrackTensor(t);
  return t;
}

/** A contiguous f32 copy of `t` (any strides, offset or float dtype). */
export function contiguousF32Copy(t: Tensor): Tensor {
  const out = empty(t.backend, t.shape, 'f32');
  copyInto(t.backend, t, out);
  return out;
}

export const isPlainF32 = (t: Tensor) => t.dtype === 'f32' && t.isContiguous;

/**
 * The parameters that have gradients, each gradient made safe to modify in place: contiguous f32 and not
 * sharing storage with another gradient of the set (autograd may hand the same buffer to two leaves,
 * e.g. both inputs of an add). Replaced gradients are copies; the old handles are disposed.
 * Assumes, like the rest of the engine, that a leaf's `.grad` is not also held elsewhere by the caller.
 */
export function exclusiveGrads(params: readonly Tensor[]): Tensor[] {
  const seen = new Set<unknown>();
  const out: Tensor[] = [];
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    if (!isPlainF32(g) || seen.has(g.storage)) {
      const copy = persistent(contiguousF32Copy(g));
      g.dispose();
      p.grad = copy;
    }
    seen.add(p.grad!.storage);
    out.push(p);
  }
  return out;
}
