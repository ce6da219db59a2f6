import { CpuBackend, WebGPUBackend, type Backend } from './backend';
import type { KernelProfile } from './profiler';
import type { MemoryStats } from './buffer-pool';
import { fromArray } from './create';
import { createGpuContext, type DeviceOptions } from './device';
import type { DType } from './dtype';
import type { DeviceCapabilities } from './gpu-context';
import type { Shape } from './shape';
import type { Tensor } from './tensor';

/**
 * The entry point: a backend plus device-level controls. `Engine.webgpu()` gives the GPU (Dawn in Node,
 * navigator.gpu in a browser); `Engine.cpu()` gives the float64 reference backend used as the oracle.
 */
export class Engine {
  private constructor(readonly backend: Backend) {}

  static async webgpu(options: DeviceOptions = {}): Promise<Engine> {
    return new Engine(new WebGPUBackend(await createGpuContext(options)));
  }

  static cpu(): Engine {
    return new Engine(new CpuBackend());
  }

  get kind(): 'webgpu' | 'cpu' {
    return this.backend.kind;
  }

  /** Device features and limits (null on the CPU reference backend). */
  get caps(): DeviceCapabilities | null {
    return this.backend.kind === 'webgpu' ? this.backend.ctx.caps : null;
  }

  tensor(values: ArrayLike<number>, shape?: Shape, dtype: DType = 'f32'): Tensor {
    return fromArray(this.backend, values, shape, dtype);
  }

  /** Submits recorded GPU work without waiting. */
  flush(): void {
    if (this.backend.kind === 'webgpu') this.backend.ctx.flush();
  }

  /** Waits for all GPU work and throws any device error (validation, out of memory, device lost). */
  async sync(): Promise<void> {
    if (this.backend.kind === 'webgpu') await this.backend.ctx.sync();
  }

  /**
   * Starts per-kernel GPU timing (timestamp queries; one compute pass per dispatch while it runs, so the
   * total is slower than unprofiled work). Throws on the CPU backend or without `timestamp-query`.
   */
  startProfile(): void {
    if (this.backend.kind !== 'webgpu') throw new Error('kernel profiling needs the WebGPU backend');
    this.backend.ctx.startProfile();
  }

  /** Stops the profile: GPU milliseconds per kernel, slowest first. */
  async stopProfile(): Promise<KernelProfile> {
    if (this.backend.kind !== 'webgpu') throw new Error('kernel profiling needs the WebGPU backend');
    return this.backend.ctx.stopProfile();
  }

  memory(): MemoryStats {
    if (this.backend.kind === 'webgpu') return this.backend.ctx.memory();
    return { liveBytes: 0, peakBytes: 0, pooledBytes: 0, pendingBytes: 0, buffersCreated: 0 };
  }

  resetPeakMemory(): void {
    if (this.backend.kind === 'webgpu') this.backend.ctx.pool.resetPeak();
  }

  /** Dispatch/submit/compile counters (GPU only). */
  get counters() {
    return this.backend.kind === 'webgpu' ? { ...this.backend.ctx.counters } : null;
  }

  /** Releases the device; Node exits cleanly only after this. */
  destroy(): void {
    if (this.backend.kind === 'webgpu') this.backend.ctx.destroy();
  }
}
