import { CpuBackend, GpuStorage, WebGPUBackend, type Backend } from './backend';
import type { DType } from './dtype';
import { ShapeError } from './errors';
import { formatShape, numel, type Shape } from './shape';
import { f32ToF16, Tensor } from './tensor';

/** An uninitialized tensor (contents undefined; pooled buffers hold old data). */
export function empty(backend: Backend, shape: Shape, dtype: DType = 'f32'): Tensor {
  for (const d of shape) if (!Number.isInteger(d) || d < 0) throw new ShapeError(`invalid shape ${formatShape(shape)}`);
  const n = numel(shape);
  const storage = backend.kind === 'cpu' ? backend.alloc(n) : backend.alloc(n, dtype);
  return new Tensor(backend, storage, shape, dtype);
}

/** Uploads host values; `shape` defaults to [values.length]. */
export function fromArray(backend: Backend, values: ArrayLike<number>, shape: Shape = [values.length], dtype: DType = 'f32'): Tensor {
  if (numel(shape) !== values.length) throw new ShapeError(`${values.length} values cannot fill shape ${formatShape(shape)}`);
  const t = empty(backend, shape, dtype);
  if (backend instanceof CpuBackend) {
    const data = (t.storage as unknown as { data: Float64Array }).data;
    for (let i = 0; i < values.length; i++) data[i] = dtype === 'i32' || dtype === 'u32' ? Math.trunc(values[i]) : values[i];
    return t;
  }
  const storage = t.storage as GpuStorage;
  let bytes: ArrayBufferView;
  if (dtype === 'f16') {
    const h = f32ToF16(values);
    const padded = new Uint16Array(Math.ceil(h.length / 2) * 2);
    padded.set(h);
    bytes = padded;
  } else if (dtype === 'i32') bytes = values instanceof Int32Array ? values : Int32Array.from(values);
  else if (dtype === 'u32') bytes = values instanceof Uint32Array ? values : Uint32Array.from(values);
  else bytes = values instanceof Float32Array ? values : Float32Array.from(values);
  if (bytes.byteLength > 0) {
    // A fresh buffer from the pool is never referenced by unsubmitted work, so no flush is needed.
    (backend as WebGPUBackend).ctx.device.queue.writeBuffer(storage.buffer, 0, bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  return t;
}

/**
 * Overwrites the elements of a contiguous tensor with host values (loading weights, optimizer state).
 * On the GPU the write is queued after all recorded work, which is submitted first.
 */
export function assign(t: Tensor, values: ArrayLike<number>): void {
  t.assertAlive();
  if (values.length !== t.size) throw new ShapeError(`assign: ${values.length} values for ${formatShape(t.shape)}`);
  if (!t.isContiguous) throw new ShapeError('assign needs a contiguous tensor');
  if (t.backend instanceof CpuBackend) {
    const data = (t.storage as unknown as { data: Float64Array }).data;
    for (let i = 0; i < values.length; i++) data[t.offset + i] = values[i];
    return;
  }
  const storage = t.storage as GpuStorage;
  const ctx = (t.backend as WebGPUBackend).ctx;
  if (t.dtype === 'f16') {
    if (t.offset % 2 !== 0 || values.length % 2 !== 0) throw new ShapeError('assign to f16 needs an even offset and length');
    ctx.write(storage.buffer, t.offset * 2, f32ToF16(values));
    return;
  }
  const bytes = t.dtype === 'i32' ? Int32Array.from(values) : t.dtype === 'u32' ? Uint32Array.from(values) : values instanceof Float32Array ? values : Float32Array.from(values);
  ctx.write(storage.buffer, t.offset * 4, bytes);
}
