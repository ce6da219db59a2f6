import type { DType } from './dtype';
import { bytesPerElement } from './dtype';
import type { GpuContext } from './gpu-context';
import { GpuOutOfMemoryError } from './errors';

/**
 * Reference-counted memory behind one or more tensor views. A GPU storage returns its buffer to the pool
 * when the last view is disposed; a CPU storage (the float64 reference backend) just drops its array.
 */
export abstract class Storage {
  private refs = 1;
  abstract readonly byteLength: number;
  get alive(): boolean {
    return this.refs > 0;
  }
  /** Number of tensor handles using this storage. */
  get refCount(): number {
    return this.refs;
  }
  retain(): void {
    this.refs++;
  }
  release(): void {
    if (--this.refs === 0) this.free();
  }
  protected abstract free(): void;
}

export class GpuStorage extends Storage {
  constructor(
    private readonly ctx: GpuContext,
    readonly buffer: GPUBuffer,
    readonly byteLength: number,
  ) {
    super();
  }
  protected free(): void {
    this.ctx.pool.release(this.buffer);
  }
}

export class CpuStorage extends Storage {
  constructor(readonly data: Float64Array) {
    super();
  }
  get byteLength(): number {
    return this.data.byteLength;
  }
  protected free(): void {}
}

/** The WebGPU backend: tensors live in GPU buffers, ops record dispatches. */
export class WebGPUBackend {
  readonly kind = 'webgpu' as const;
  constructor(readonly ctx: GpuContext) {}

  alloc(numel: number, dtype: DType): GpuStorage {
    // f16 tensors are stored two per 32-bit word; pad so odd lengths stay addressable.
    const bytes = Math.max(4, Math.ceil((numel * bytesPerElement(dtype)) / 4) * 4);
    const limit = this.ctx.caps.limits.maxStorageBufferBindingSize;
    if (bytes > limit) {
      throw new GpuOutOfMemoryError(
        `a tensor of ${numel} ${dtype} elements (${bytes} bytes) exceeds this device's maxStorageBufferBindingSize ` +
          `(${limit} bytes); split the batch or the work into smaller tensors`,
      );
    }
    return new GpuStorage(this.ctx, this.ctx.pool.acquire(bytes), bytes);
  }
}

/** The float64 CPU reference backend: the oracle every GPU kernel is tested against. */
export class CpuBackend {
  readonly kind = 'cpu' as const;
  alloc(numel: number): CpuStorage {
    return new CpuStorage(new Float64Array(numel));
  }
}

export type Backend = WebGPUBackend | CpuBackend;
