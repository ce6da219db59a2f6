/**
 * Per-kernel GPU time from timestamp queries. While a profile is running, every dispatch gets its own
 * compute pass whose beginning and end write a timestamp (WebGPU has no timestamps inside a pass), so
 * profiling adds a pass boundary per dispatch: use it to find where time goes, not to time end to end.
 * Timestamps are resolved at each submit and read back asynchronously; `stop()` waits for all of them.
 */

export interface KernelTime {
  /** Program cache key (kernel name and template values). */
  key: string;
  dispatches: number;
  totalMs: number;
}

export interface KernelProfile {
  kernels: KernelTime[];
  totalMs: number;
  dispatches: number;
}

/** Queries per submit: two per dispatch (the context submits at most this many / 2 dispatches at once). */
export const PROFILE_QUERY_CAPACITY = 1024;

export class KernelProfiler {
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuffer: GPUBuffer;
  /** Keys of the dispatches recorded since the last submit, in query order. */
  private keys: string[] = [];
  private readonly totals = new Map<string, { dispatches: number; ns: number }>();
  private readonly pendingReads: Promise<void>[] = [];

  constructor(private readonly device: GPUDevice) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: PROFILE_QUERY_CAPACITY });
    this.resolveBuffer = device.createBuffer({ size: PROFILE_QUERY_CAPACITY * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  }

  /** True when the next dispatch would not fit the query set: the caller submits first. */
  get full(): boolean {
    return (this.keys.length + 1) * 2 > PROFILE_QUERY_CAPACITY;
  }

  /** Pass descriptor for the next dispatch of kernel `key`. */
  passFor(key: string): GPUComputePassDescriptor {
    const index = this.keys.length * 2;
    this.keys.push(key);
    return { timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: index, endOfPassWriteIndex: index + 1 } };
  }

  /** Records the resolve of this submit's timestamps into `encoder` (called just before it is finished). */
  resolveInto(encoder: GPUCommandEncoder): (() => void) | null {
    if (this.keys.length === 0) return null;
    const keys = this.keys;
    this.keys = [];
    const bytes = keys.length * 2 * 8;
    const staging = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.resolveQuerySet(this.querySet, 0, keys.length * 2, this.resolveBuffer, 0);
    encoder.copyBufferToBuffer(this.resolveBuffer, 0, staging, 0, bytes);
    // The read starts after the submit (mapping a buffer used by an unsubmitted command is an error).
    return () => {
      this.pendingReads.push(
        staging.mapAsync(GPUMapMode.READ).then(() => {
          const stamps = new BigUint64Array(staging.getMappedRange().slice(0));
          staging.unmap();
          staging.destroy();
          keys.forEach((key, i) => {
            const ns = Number(stamps[2 * i + 1] - stamps[2 * i]);
            const entry = this.totals.get(key) ?? { dispatches: 0, ns: 0 };
            entry.dispatches++;
            // A driver may write 0 for a pass it could not time; a negative span is never real.
            entry.ns += Math.max(0, ns);
            this.totals.set(key, entry);
          });
        }),
      );
    };
  }

  /** Waits for the outstanding reads and returns the totals, slowest kernel first. */
  async result(): Promise<KernelProfile> {
    await Promise.all(this.pendingReads);
    const kernels = [...this.totals].map(([key, t]) => ({ key, dispatches: t.dispatches, totalMs: t.ns / 1e6 })).sort((a, b) => b.totalMs - a.totalMs);
    return { kernels, totalMs: kernels.reduce((s, k) => s + k.totalMs, 0), dispatches: kernels.reduce((s, k) => s + k.dispatches, 0) };
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolveBuffer.destroy();
  }
}

/** A readable table of the `rows` slowest kernels. */
export function formatKernelProfile(profile: KernelProfile, rows = 25): string {
  const lines = [`GPU time ${profile.totalMs.toFixed(1)} ms in ${profile.dispatches} dispatches`, '    ms      %  count  kernel'];
  for (const k of profile.kernels.slice(0, rows)) {
    const share = profile.totalMs > 0 ? (100 * k.totalMs) / profile.totalMs : 0;
    lines.push(`${k.totalMs.toFixed(1).padStart(8)} ${share.toFixed(1).padStart(6)} ${String(k.dispatches).padStart(6)}  ${k.key}`);
  }
  if (profile.kernels.length > rows) lines.push(`(${profile.kernels.length - rows} more kernels)`);
  return lines.join('\n');
}
