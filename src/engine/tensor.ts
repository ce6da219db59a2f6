import type { Backend, Storage } from './backend';
import { CpuStorage, GpuStorage } from './backend';
import type { DType } from './dtype';
import { DisposedTensorError } from './errors';
import { contiguousStrides, formatShape, isContiguous, numel, type Shape } from './shape';
import { setTensorCheck, trackTensor, untrackTensor } from './scope';
import type { GradNode } from './autograd';

/** Where a kernel reads or writes: storage plus an element offset and per-dim strides (0 = broadcast). */
export interface StridedView {
  readonly storage: Storage;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly dtype: DType;
}

let contiguousHook: ((t: Tensor) => Tensor) | null = null;
/** Set by the layout kernels: copying a strided view into fresh storage needs a kernel. */
export function setContiguousHook(fn: (t: Tensor) => Tensor): void {
  contiguousHook = fn;
}

export class Tensor implements StridedView {
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  /** Gradient accumulated by backward() (leaf tensors with requiresGrad only). */
  grad: Tensor | null = null;
  /** The autograd node that produced this tensor (null for leaves and no-grad results). */
  gradNode: GradNode | null = null;
  private _requiresGrad = false;
  private _disposed = false;
  /** Optional human-readable name (parameters get their state-dict key). */
  name = '';

  constructor(
    readonly backend: Backend,
    readonly storage: Storage,
    shape: Shape,
    readonly dtype: DType,
    strides?: readonly number[],
    readonly offset = 0,
  ) {
    this.shape = [...shape];
    this.strides = strides ? [...strides] : contiguousStrides(shape);
    trackTensor(this);
  }

  get rank(): number {
    return this.shape.length;
  }
  get size(): number {
    return numel(this.shape);
  }
  get isContiguous(): boolean {
    return isContiguous(this.shape, this.strides);
  }
  get disposed(): boolean {
    return this._disposed;
  }
  get requiresGrad(): boolean {
    return this._requiresGrad;
  }
  /** Marks a leaf tensor as trainable: backward() will accumulate into `.grad`. */
  set requiresGrad(value: boolean) {
    this._requiresGrad = value;
  }
  get isLeaf(): boolean {
    return this.gradNode === null;
  }

  assertAlive(): void {
    if (this._disposed) throw new DisposedTensorError(`tensor ${this.name || formatShape(this.shape)} was used after dispose()`);
  }

  /** A new handle on the same storage (same view); the storage stays alive until both are disposed. */
  share(): Tensor {
    this.assertAlive();
    this.storage.retain();
    return new Tensor(this.backend, this.storage, this.shape, this.dtype, this.strides, this.offset);
  }

  /** Frees this handle (and its gradient); storage returns to the pool when no view uses it. */
  dispose(): void {
    if (this._disposed) return;
    this._disposed = true;
    untrackTensor(this);
    this.storage.release();
    if (this.gradNode) {
      this.gradNode.unref();
      this.gradNode = null;
    }
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** Copies the elements (row-major, as the tensor's logical shape) to the host. */
  async data(): Promise<Float32Array | Int32Array | Uint32Array> {
    this.assertAlive();
    if (this.storage instanceof CpuStorage) return Float32Array.from(this.toFloat64Sync());
    const src = this.isContiguous ? this : contiguousHook!(this);
    try {
      const storage = src.storage as GpuStorage;
      const ctx = (this.backend as { ctx: import('./gpu-context').GpuContext }).ctx;
      if (src.dtype === 'f16') {
        const first = src.offset * 2;
        const start = Math.floor(first / 4) * 4;
        const bytes = Math.ceil((first + this.size * 2) / 4) * 4 - start;
        const raw = await ctx.read(storage.buffer, start, bytes);
        return f16ToF32(new Uint16Array(raw, first - start, this.size));
      }
      const raw = await ctx.read(storage.buffer, src.offset * 4, this.size * 4);
      if (src.dtype === 'i32') return new Int32Array(raw);
      if (src.dtype === 'u32') return new Uint32Array(raw);
      return new Float32Array(raw);
    } finally {
      if (src !== this) src.dispose();
    }
  }

  /** The elements as float64: exact for the CPU reference backend. */
  async dataF64(): Promise<Float64Array> {
    if (this.storage instanceof CpuStorage) return this.toFloat64Sync();
    return Float64Array.from(await this.data());
  }

  /** Synchronous read of a CPU-reference tensor (row-major over the logical shape). */
  toFloat64Sync(): Float64Array {
    this.assertAlive();
    if (!(this.storage instanceof CpuStorage)) throw new Error('toFloat64Sync() reads CPU tensors only; use await data()');
    const src = this.storage.data;
    const n = this.size;
    const out = new Float64Array(n);
    const rank = this.rank;
    const idx = new Array<number>(rank).fill(0);
    let pos = this.offset;
    for (let i = 0; i < n; i++) {
      out[i] = src[pos];
      for (let d = rank - 1; d >= 0; d--) {
        idx[d]++;
        pos += this.strides[d];
        if (idx[d] < this.shape[d]) break;
        pos -= this.strides[d] * this.shape[d];
        idx[d] = 0;
      }
    }
    return out;
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item() needs one element, tensor has shape ${formatShape(this.shape)}`);
    return (await this.data())[0];
  }

  toString(): string {
    return `Tensor(${formatShape(this.shape)}, ${this.dtype}, ${this.backend.kind}${this._disposed ? ', disposed' : ''})`;
  }
}

setTensorCheck((v: unknown): v is Tensor => v instanceof Tensor);

const f16Table = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = s * m * 2 ** -24;
    else if (e === 31) t[h] = m ? NaN : s * Infinity;
    else t[h] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return t;
})();

export function f16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f16Table[src[i]];
  return out;
}

/** Rounds float32 values to IEEE half precision bits (round to nearest even). */
export function f32ToF16(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < src.length; i++) {
    f[0] = src[i];
    const x = u[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 31) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let half = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const mid = 1 << (shift - 1);
      if (rem > mid || (rem === mid && half & 1)) half++;
      out[i] = sign | half;
      continue;
    }
    let half = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
    out[i] = sign | half;
  }
  return out;
}
