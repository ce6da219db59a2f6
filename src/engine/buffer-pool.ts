import { GpuOutOfMemoryError } from './errors';

/**
 * Size classes: powers of two split into four steps (1, 1.25, 1.5, 1.75 × 2^k), so at most 25 % of a
 * buffer is wasted while a freed buffer still fits many later requests.
 */
export function sizeClass(bytes: number): number {
  const min = 256;
  if (bytes <= min) return min;
  const k = Math.floor(Math.log2(bytes));
  const base = 2 ** k;
  const step = base / 4;
  return Math.ceil(bytes / step) * step;
}

export interface MemoryStats {
  /** Bytes held by live tensors (by size class). */
  liveBytes: number;
  /** Highest liveBytes seen since creation or the last resetPeak(). */
  peakBytes: number;
  /** Bytes in free buffers kept for reuse. */
  pooledBytes: number;
  /** Bytes waiting for the submit that ends their last use. */
  pendingBytes: number;
  /** Number of GPUBuffers created over the pool's lifetime. */
  buffersCreated: number;
}

/**
 * A size-bucketed pool of storage buffers. A released buffer is not handed out again until the command
 * buffer that may still use it has been submitted: queue writes (uploads, uniforms) run before the
 * next submit, so reusing a buffer that unsubmitted work still reads would corrupt that work.
 */
export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private pending: GPUBuffer[] = [];
  private stats: MemoryStats = { liveBytes: 0, peakBytes: 0, pooledBytes: 0, pendingBytes: 0, buffersCreated: 0 };

  constructor(
    private device: GPUDevice,
    private maxBufferSize: number,
    private usage: GPUBufferUsageFlags,
  ) {}

  acquire(bytes: number): GPUBuffer {
    const size = sizeClass(bytes);
    if (size > this.maxBufferSize) {
      throw new GpuOutOfMemoryError(`a buffer of ${bytes} bytes exceeds the device's maxBufferSize (${this.maxBufferSize})`);
    }
    const list = this.free.get(size);
    let buffer = list?.pop();
    if (buffer) {
      this.stats.pooledBytes -= size;
    } else {
      buffer = this.device.createBuffer({ size, usage: this.usage });
      this.stats.buffersCreated++;
    }
    this.stats.liveBytes += size;
    if (this.stats.liveBytes > this.stats.peakBytes) this.stats.peakBytes = this.stats.liveBytes;
    return buffer;
  }

  /** Returns a buffer; it becomes reusable after the next submit. */
  release(buffer: GPUBuffer): void {
    this.stats.liveBytes -= buffer.size;
    this.stats.pendingBytes += buffer.size;
    this.pending.push(buffer);
  }

  /** Called right after a queue submit: everything released before it may be reused. */
  onSubmitted(): void {
    for (const b of this.pending) {
      let list = this.free.get(b.size);
      if (!list) this.free.set(b.size, (list = []));
      list.push(b);
      this.stats.pooledBytes += b.size;
    }
    this.stats.pendingBytes = 0;
    this.pending = [];
  }

  /** Destroys every free buffer (live ones stay). */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.stats.pooledBytes = 0;
  }

  resetPeak(): void {
    this.stats.peakBytes = this.stats.liveBytes;
  }

  snapshot(): MemoryStats {
    return { ...this.stats };
  }
}
