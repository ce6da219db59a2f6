import { BufferPool, type MemoryStats } from './buffer-pool';
import { GpuDeviceLostError, GpuOutOfMemoryError, GpuValidationError, ShapeError } from './errors';
import { KernelProfiler, type KernelProfile } from './profiler';

/** A compute program: WGSL plus the shape of its bindings. Binding 0 is the uniform block,
 *  then `inputs` read-only storage buffers, then `outputs` read-write storage buffers. */
export interface Program {
  /** Cache key: kernel name plus every template value that changes the WGSL. */
  key: string;
  /** Builds the WGSL; called once per key. */
  source: () => string;
  inputs: number;
  outputs: number;
}

export interface Launch {
  inputs: GPUBuffer[];
  outputs: GPUBuffer[];
  uniforms: Uint32Array;
  workgroups: readonly [number, number?, number?];
}

interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

export interface DeviceCapabilities {
  f16: boolean;
  subgroups: boolean;
  subgroupMatrix: boolean;
  timestampQuery: boolean;
  /** A CPU implementation (lavapipe, SwiftShader): kernels pick shapes that suit CPUs. */
  software: boolean;
  /**
   * CPU adapter that runs kernels with 128 unrolled accumulators per invocation fastest (lavapipe).
   * SwiftShader (Chromium's software WebGPU) loses the device on them, so it gets smaller blocks.
   */
  largeRegisterBlocks: boolean;
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupsPerDimension: number;
    maxStorageBuffersPerShaderStage: number;
    minUniformBufferOffsetAlignment: number;
  };
  adapter: { vendor: string; architecture: string; device: string; description: string };
}

const UNIFORM_ARENA_BYTES = 1 << 20;
/** Dispatches recorded before a submit is forced: bounds memory held by pending buffers. */
const MAX_DISPATCHES_PER_SUBMIT = 512;

/**
 * Records dispatches into one command encoder and compute pass, and submits them in batches.
 * Uniforms of all dispatches in a batch live in one arena buffer, written once before the submit.
 */
export class GpuContext {
  readonly pool: BufferPool;
  private pipelines = new Map<string, CachedPipeline>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private arena: GPUBuffer;
  private arenaHost = new Uint8Array(UNIFORM_ARENA_BYTES);
  private arenaCursor = 0;
  private dispatches = 0;
  private errors: Error[] = [];
  private lostReason: string | null = null;
  private stagingPool = new Map<number, GPUBuffer[]>();
  private profiler: KernelProfiler | null = null;
  /** Counters for tests and benchmarks. */
  readonly counters = { dispatches: 0, submits: 0, pipelinesCompiled: 0, readbacks: 0 };

  constructor(
    readonly device: GPUDevice,
    readonly caps: DeviceCapabilities,
  ) {
    this.pool = new BufferPool(
      device,
      caps.limits.maxBufferSize,
      GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    );
    this.arena = device.createBuffer({ size: UNIFORM_ARENA_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    device.addEventListener('uncapturederror', (ev) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      if (err instanceof GPUOutOfMemoryError) this.errors.push(new GpuOutOfMemoryError(`GPU out of memory: ${err.message}`));
      else this.errors.push(new GpuValidationError(`WebGPU error: ${err.message}`));
    });
    void device.lost.then((info) => {
      this.lostReason = `${info.reason}: ${info.message}`;
    });
  }

  /** Throws the first error the device reported since the last check. */
  checkErrors(): void {
    if (this.lostReason !== null) throw new GpuDeviceLostError(`WebGPU device lost (${this.lostReason})`);
    const err = this.errors.shift();
    if (err) {
      this.errors = [];
      throw err;
    }
  }

  private pipelineFor(program: Program): CachedPipeline {
    let cached = this.pipelines.get(program.key);
    if (cached) return cached;
    const entries: GPUBindGroupLayoutEntry[] = [{ binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } }];
    for (let i = 0; i < program.inputs + program.outputs; i++) {
      entries.push({
        binding: i + 1,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: i < program.inputs ? 'read-only-storage' : 'storage' },
      });
    }
    const layout = this.device.createBindGroupLayout({ entries, label: program.key });
    const module = this.device.createShaderModule({ code: program.source(), label: program.key });
    const pipeline = this.device.createComputePipeline({
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: 'main' },
      label: program.key,
    });
    this.counters.pipelinesCompiled++;
    cached = { pipeline, layout };
    this.pipelines.set(program.key, cached);
    return cached;
  }

  private ensurePass(): GPUComputePassEncoder {
    if (this.lostReason !== null) throw new GpuDeviceLostError(`WebGPU device lost (${this.lostReason})`);
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    if (!this.pass) this.pass = this.encoder.beginComputePass();
    return this.pass;
  }

  dispatch(program: Program, launch: Launch): void {
    const [x, y = 1, z = 1] = launch.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const maxDim = this.caps.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxDim || y > maxDim || z > maxDim) {
      throw new ShapeError(`${program.key}: dispatch ${x}×${y}×${z} exceeds maxComputeWorkgroupsPerDimension ${maxDim}`);
    }
    const uniformBytes = launch.uniforms.byteLength;
    const align = this.caps.limits.minUniformBufferOffsetAlignment;
    if (this.arenaCursor + uniformBytes > UNIFORM_ARENA_BYTES || this.dispatches >= MAX_DISPATCHES_PER_SUBMIT || this.profiler?.full) this.flush();
    const offset = this.arenaCursor;
    this.arenaHost.set(new Uint8Array(launch.uniforms.buffer, launch.uniforms.byteOffset, uniformBytes), offset);
    this.arenaCursor = Math.ceil((offset + uniformBytes) / align) * align;

    const { pipeline, layout } = this.pipelineFor(program);
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.arena, offset, size: uniformBytes } }];
    const buffers = [...launch.inputs, ...launch.outputs];
    buffers.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
    const bindGroup = this.device.createBindGroup({ layout, entries });
    if (this.profiler) {
      // One timed pass per dispatch.
      this.ensurePass().end();
      this.pass = this.encoder!.beginComputePass(this.profiler.passFor(program.key));
    }
    const pass = this.ensurePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.dispatches++;
    this.counters.dispatches++;
  }

  /** Records a buffer-to-buffer copy (ends the current compute pass). */
  copyBuffer(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.ensurePass();
    this.pass!.end();
    this.pass = null;
    this.encoder!.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /** Submits everything recorded so far. */
  flush(): void {
    if (!this.encoder) return;
    if (this.pass) this.pass.end();
    if (this.arenaCursor > 0) this.device.queue.writeBuffer(this.arena, 0, this.arenaHost, 0, this.arenaCursor);
    const startProfileRead = this.profiler?.resolveInto(this.encoder);
    this.device.queue.submit([this.encoder.finish()]);
    startProfileRead?.();
    this.counters.submits++;
    this.encoder = null;
    this.pass = null;
    this.arenaCursor = 0;
    this.dispatches = 0;
    this.pool.onSubmitted();
  }

  /** Writes host data into a buffer through the queue (ordered before the next submit). */
  write(buffer: GPUBuffer, byteOffset: number, data: ArrayBufferView): void {
    // Work recorded but not submitted would run after this write: submit it first.
    this.flush();
    this.device.queue.writeBuffer(buffer, byteOffset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Copies `bytes` from a storage buffer back to the host; flushes pending work. */
  async read(buffer: GPUBuffer, byteOffset: number, bytes: number): Promise<ArrayBuffer> {
    const aligned = Math.ceil(bytes / 4) * 4;
    const size = Math.max(256, 2 ** Math.ceil(Math.log2(aligned)));
    const staging = this.stagingPool.get(size)?.pop() ?? this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.copyBuffer(buffer, byteOffset, staging, 0, aligned);
    this.flush();
    this.counters.readbacks++;
    try {
      await staging.mapAsync(GPUMapMode.READ, 0, aligned);
    } catch (e) {
      this.checkErrors();
      throw new GpuDeviceLostError(`readback failed: ${(e as Error).message}`);
    }
    this.checkErrors();
    const copy = staging.getMappedRange(0, aligned).slice(0, bytes);
    staging.unmap();
    let list = this.stagingPool.get(size);
    if (!list) this.stagingPool.set(size, (list = []));
    list.push(staging);
    return copy;
  }

  /** Waits until the GPU has finished all submitted work, then reports any device error. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.checkErrors();
  }

  /**
   * Starts timing every dispatch (see profiler.ts: one pass per dispatch while it runs). Needs the
   * `timestamp-query` feature.
   */
  startProfile(): void {
    if (!this.caps.timestampQuery) throw new Error('kernel profiling needs the timestamp-query feature, which this device does not have');
    this.flush();
    this.profiler ??= new KernelProfiler(this.device);
  }

  /** Stops timing and returns GPU time per kernel, slowest first. */
  async stopProfile(): Promise<KernelProfile> {
    const profiler = this.profiler;
    if (!profiler) throw new Error('stopProfile: no profile is running');
    this.flush();
    this.profiler = null;
    const result = await profiler.result();
    profiler.destroy();
    return result;
  }

  memory(): MemoryStats {
    return this.pool.snapshot();
  }

  destroy(): void {
    this.flush();
    this.pool.trim();
    for (const list of this.stagingPool.values()) for (const b of list) b.destroy();
    this.arena.destroy();
    this.device.destroy();
  }
}
