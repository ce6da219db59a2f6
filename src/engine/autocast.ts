import type { Backend } from './backend';
import type { DType } from './dtype';

/**
 * Automatic mixed precision, like torch.autocast(device_type, dtype=torch.float16).
 *
 * Inside `autocast(fn)` the compute-heavy ops — `matmul`, `linear`, convolution (1-3-D) and `attention` —
 * read their floating-point operands as f16 (an f32 operand is converted to an f16 copy; that copy is what
 * the op saves for its backward pass, so their saved activations take half the memory) and accumulate in
 * f32. Their **outputs are f32**, so every other op (normalisation, softmax, losses, elementwise) runs in
 * f32 as on PyTorch's autocast fp32 list, and nothing downstream needs an f16 path. The conversion is part
 * of the op's autograd node: the gradient of each input comes back in that input's own dtype (f32 master
 * weights get f32 gradients), computed with f32 accumulation from the f32 upstream gradient and the saved
 * f16 operands. (Attention's dQ/dK/dV pass through f16 storage, as in PyTorch; that is where loss scaling
 * matters, see `DeviceGradScaler`.)
 *
 * Effective only on a WebGPU device with `shader-f16`: on the float64 CPU reference backend, or on a
 * device without the feature, autocast is a no-op and ops compute as outside it. The flag is global and
 * synchronous, like `noGrad`: `fn` must not be async (wrap the synchronous parts of an async step).
 * Backward rules never consult it (they call the raw kernels), so `backward()` inside or outside the scope
 * gives the same gradients. `autocast(fn, false)` disables it for a nested region.
 */
let autocastEnabled = false;

export function isAutocastEnabled(): boolean {
  return autocastEnabled;
}

/** Runs `fn` with autocast on (or off with `enabled = false`), restoring the previous state afterwards. */
export function autocast<T>(fn: () => T, enabled = true): T {
  const prev = autocastEnabled;
  autocastEnabled = enabled;
  try {
    const result = fn();
    if (result instanceof Promise) throw new Error('autocast(fn): fn returned a Promise; autocast is synchronous, wrap the synchronous parts instead');
    return result;
  } finally {
    autocastEnabled = prev;
  }
}

/** Whether a backend can run f16 operands: a WebGPU device with the `shader-f16` feature. */
export function supportsF16(backend: Backend): boolean {
  return backend.kind === 'webgpu' && backend.ctx.caps.f16;
}

/**
 * The operand dtype an autocast op should use on `backend` right now: 'f16' inside an autocast scope on
 * a device with shader-f16, otherwise null (compute as usual).
 */
export function autocastDtype(backend: Backend): DType | null {
  return autocastEnabled && supportsF16(backend) ? 'f16' : null;
}
