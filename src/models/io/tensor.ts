/**
 * Host-side tensors as read from (or written to) weight files: a dtype tag, a shape and a
 * contiguous C-order typed array. Half-precision formats keep their raw 16-bit patterns in a
 * Uint16Array because JavaScript has no native f16/bf16 arrays everywhere we run.
 */
import { WeightsError } from './errors';

export type HostDType = 'f32' | 'f16' | 'bf16' | 'f64' | 'i64' | 'i32' | 'i16' | 'i8' | 'u8' | 'bool';

export type HostTypedArray =
  | Float32Array | Float64Array | Uint16Array | BigInt64Array
  | Int32Array | Int16Array | Int8Array | Uint8Array;

export const HOST_DTYPES: readonly HostDType[] = ['f32', 'f16', 'bf16', 'f64', 'i64', 'i32', 'i16', 'i8', 'u8', 'bool'];

const BYTES_PER_ELEMENT: Record<HostDType, number> = {
  f32: 4, f16: 2, bf16: 2, f64: 8, i64: 8, i32: 4, i16: 2, i8: 1, u8: 1, bool: 1,
};

export function dtypeByteSize(dtype: HostDType): number {
  return BYTES_PER_ELEMENT[dtype];
}

export function isFloatDType(dtype: HostDType): boolean {
  return dtype === 'f32' || dtype === 'f16' || dtype === 'bf16' || dtype === 'f64';
}

export function shapeNumel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Allocates a zeroed typed array of the right class for `dtype`. */
export function allocTyped(dtype: HostDType, numel: number): HostTypedArray {
  if (!Number.isSafeInteger(numel) || numel < 0) throw new WeightsError(`invalid element count ${numel} for a ${dtype} array`);
  switch (dtype) {
    case 'f32': return new Float32Array(numel);
    case 'f64': return new Float64Array(numel);
    case 'f16': case 'bf16': return new Uint16Array(numel);
    case 'i64': return new BigInt64Array(numel);
    case 'i32': return new Int32Array(numel);
    case 'i16': return new Int16Array(numel);
    case 'i8': return new Int8Array(numel);
    case 'u8': case 'bool': return new Uint8Array(numel);
  }
}

/**
 * Copies little-endian bytes into a fresh, aligned typed array. Copying (rather than viewing the
 * file buffer) is needed because entries inside an archive need not sit at an aligned offset.
 * Hosts are assumed little-endian, which holds for every JS engine on x86/ARM.
 */
export function typedFromBytes(dtype: HostDType, bytes: Uint8Array, numel: number): HostTypedArray {
  // Checked before allocating: a corrupt count must not allocate what the bytes cannot fill.
  const need = numel * BYTES_PER_ELEMENT[dtype];
  if (!Number.isSafeInteger(numel) || numel < 0 || bytes.byteLength < need) throw new WeightsError(`need ${need} bytes for ${numel} × ${dtype}, have ${bytes.byteLength}`);
  const out = allocTyped(dtype, numel);
  new Uint8Array(out.buffer, out.byteOffset, need).set(bytes.subarray(0, need));
  return out;
}

/** Little-endian bytes of a typed array (a view, not a copy). */
export function typedBytes(data: HostTypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

export function halfBitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24; // subnormal or zero
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** f32 → f16 bits with round-to-nearest-even, the same rounding torch's .half() uses. */
export function floatToHalfBits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → inf
  if (e <= 0) {
    if (e < -10) return sign; // underflows to zero
    mantissa |= 0x800000; // make the implicit bit explicit, then shift into the subnormal range
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mantissa & ((1 << shift) - 1);
    let result = mantissa >>> shift;
    if (rest > half || (rest === half && (result & 1))) result++;
    return sign | result;
  }
  let result = sign | (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (and can reach inf).
  if (rest > 0x1000 || (rest === 0x1000 && (result & 1))) result++;
  return result;
}

export function bf16BitsToFloat(b: number): number {
  u32Scratch[0] = b << 16;
  return f32Scratch[0];
}

/** f32 → bf16 bits with round-to-nearest-even; NaN stays a quiet NaN. */
export function floatToBf16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff)) return ((x >>> 16) | 0x40) & 0xffff;
  const roundingBias = 0x7fff + ((x >>> 16) & 1);
  return ((x + roundingBias) >>> 16) & 0xffff;
}

export class HostTensor {
  readonly dtype: HostDType;
  readonly shape: number[];
  readonly data: HostTypedArray;

  constructor(dtype: HostDType, shape: readonly number[], data: HostTypedArray) {
    const numel = shapeNumel(shape);
    if (data.length !== numel) {
      throw new WeightsError(`tensor data has ${data.length} elements but shape [${shape.join(', ')}] needs ${numel}`);
    }
    this.dtype = dtype;
    this.shape = [...shape];
    this.data = data;
  }

  get numel(): number {
    return this.data.length;
  }

  get byteLength(): number {
    return this.data.byteLength;
  }

  /** Values as float32 (f16/bf16 decoded, f64 rounded, ints and bools converted). */
  toFloat32(): Float32Array {
    const { data } = this;
    switch (this.dtype) {
      case 'f32': return new Float32Array(data as Float32Array);
      case 'f16': {
        const out = new Float32Array(data.length);
        const bits = data as Uint16Array;
        for (let i = 0; i < bits.length; i++) out[i] = halfBitsToFloat(bits[i]);
        return out;
      }
      case 'bf16': {
        // bf16 is the top half of an f32, so widening is a shift.
        const wide = new Uint32Array(data.length);
        const bits = data as Uint16Array;
        for (let i = 0; i < bits.length; i++) wide[i] = bits[i] << 16;
        return new Float32Array(wide.buffer);
      }
      case 'i64': {
        const out = new Float32Array(data.length);
        const ints = data as BigInt64Array;
        for (let i = 0; i < ints.length; i++) out[i] = Number(ints[i]);
        return out;
      }
      default: return Float32Array.from(data as Exclude<HostTypedArray, BigInt64Array>);
    }
  }

  /** Values as plain JS numbers (i64 through Number, so exact only up to 2^53). */
  toNumbers(): number[] {
    if (this.dtype === 'f16' || this.dtype === 'bf16') return Array.from(this.toFloat32());
    return Array.from(this.data as ArrayLike<number | bigint>, (v) => Number(v));
  }

  /** The single value of a one-element tensor (e.g. num_batches_tracked, optimizer step). */
  item(): number {
    if (this.numel !== 1) throw new WeightsError(`item() needs a one-element tensor, shape is [${this.shape.join(', ')}]`);
    return this.toNumbers()[0];
  }
}

/** Converts a tensor to another dtype; float targets only, which is what weight conversion needs. */
export function castTensor(tensor: HostTensor, dtype: HostDType): HostTensor {
  if (tensor.dtype === dtype) return tensor;
  const values = tensor.dtype === 'f64' ? (tensor.data as Float64Array) : tensor.toFloat32();
  const n = values.length;
  switch (dtype) {
    case 'f32': return new HostTensor('f32', tensor.shape, Float32Array.from(values));
    case 'f64': return new HostTensor('f64', tensor.shape, Float64Array.from(values));
    case 'f16': {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = floatToHalfBits(values[i]);
      return new HostTensor('f16', tensor.shape, out);
    }
    case 'bf16': {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = floatToBf16Bits(values[i]);
      return new HostTensor('bf16', tensor.shape, out);
    }
    default:
      throw new WeightsError(`castTensor: only float targets are supported, got ${dtype}`);
  }
}
