/** Element types a tensor can hold. f16 needs the device feature `shader-f16`. */
export type DType = 'f32' | 'f16' | 'i32' | 'u32';

export type TypedArrayFor<D extends DType> = D extends 'i32' ? Int32Array : D extends 'u32' ? Uint32Array : Float32Array;
export type AnyTypedArray = Float32Array | Int32Array | Uint32Array;

export function bytesPerElement(dtype: DType): number {
  return dtype === 'f16' ? 2 : 4;
}

export function isFloat(dtype: DType): boolean {
  return dtype === 'f32' || dtype === 'f16';
}

/** The WGSL scalar type used to store a dtype. f16 storage needs `enable f16;`. */
export function wgslType(dtype: DType): string {
  return dtype;
}
