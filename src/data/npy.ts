/**
 * Our own NPY (NumPy .npy) reader and writer: little-endian, C-order, dtypes f32, f64, i16, i32, u8
 * (plus i8/u16 on read). Fortran order, big-endian data and other dtypes are refused with a DataError.
 * The header can be parsed on its own so the loader can read single samples by byte offset.
 */
import { DataError } from './errors';

export type NpyDtype = 'f4' | 'f8' | 'i2' | 'i4' | 'u1' | 'i1' | 'u2';

export type NpyTypedArray = Float32Array | Float64Array | Int16Array | Int32Array | Uint8Array | Int8Array | Uint16Array;

export interface NpyHeader {
  dtype: NpyDtype;
  shape: number[];
  /** Byte offset of the first data byte. */
  dataOffset: number;
  bytesPerElement: number;
}

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: NpyTypedArray;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

const BYTES: Record<NpyDtype, number> = { f4: 4, f8: 8, i2: 2, i4: 4, u1: 1, i1: 1, u2: 2 };

/** Bytes needed to hold the header of any NPY file we read (v1 headers are < 64 KiB). */
export const NPY_HEADER_PROBE_BYTES = 4096;

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function parseDescr(descr: string, source: string): NpyDtype {
  const match = /^([<>|=]?)([fiu])(\d+)$/.exec(descr);
  if (!match) throw new DataError(source, `unsupported NPY dtype '${descr}' (supported: <f4, <f8, <i2, <i4, |u1)`);
  const [, order, kind, size] = match;
  const dtype = `${kind}${size}` as NpyDtype;
  if (!(dtype in BYTES)) {
    throw new DataError(source, `unsupported NPY dtype '${descr}' (supported: <f4, <f8, <i2, <i4, |u1)`);
  }
  if (order === '>' && BYTES[dtype] > 1) {
    throw new DataError(source, `big-endian NPY data ('${descr}') is not supported; save it little-endian`);
  }
  return dtype;
}

/** Parses the header from the first bytes of a file (at least the whole header must be present). */
export function parseNpyHeader(bytes: Uint8Array, source = 'npy'): NpyHeader {
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) {
    throw new DataError(source, 'not an NPY file (missing \\x93NUMPY magic)');
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLength: number;
  let headerStart: number;
  if (major === 1) {
    headerLength = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new DataError(source, 'truncated NPY header');
    headerLength = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new DataError(source, `unsupported NPY format version ${major}`);
  }
  if (bytes.length < headerStart + headerLength) throw new DataError(source, 'truncated NPY header');
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, headerStart + headerLength));

  const descr = /'descr'\s*:\s*'([^']+)'/.exec(text);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shapeMatch = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr || !fortran || !shapeMatch) throw new DataError(source, `malformed NPY header: ${text.trim()}`);
  if (fortran[1] === 'True') {
    throw new DataError(source, 'Fortran-order NPY arrays are not supported; save with np.ascontiguousarray');
  }
  const shape = shapeMatch[1]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const n = Number(s.replace(/L$/, ''));
      if (!Number.isInteger(n) || n < 0) throw new DataError(source, `malformed NPY shape '(${shapeMatch[1]})'`);
      return n;
    });
  const dtype = parseDescr(descr[1], source);
  return { dtype, shape, dataOffset: headerStart + headerLength, bytesPerElement: BYTES[dtype] };
}

/** Copies little-endian bytes into a fresh typed array (copying also fixes any misalignment). */
export function decodeNpyData(dtype: NpyDtype, bytes: Uint8Array, count: number): NpyTypedArray {
  // An explicit copy: Node's Buffer.slice returns a view into a shared pool, not a fresh buffer.
  const aligned = new Uint8Array(count * BYTES[dtype]);
  aligned.set(bytes.subarray(0, aligned.length));
  const buffer = aligned.buffer;
  switch (dtype) {
    case 'f4':
      return new Float32Array(buffer, 0, count);
    case 'f8':
      return new Float64Array(buffer, 0, count);
    case 'i2':
      return new Int16Array(buffer, 0, count);
    case 'i4':
      return new Int32Array(buffer, 0, count);
    case 'u1':
      return new Uint8Array(buffer, 0, count);
    case 'i1':
      return new Int8Array(buffer, 0, count);
    case 'u2':
      return new Uint16Array(buffer, 0, count);
  }
}

export function readNpy(bytes: Uint8Array, source = 'npy'): NpyArray {
  const header = parseNpyHeader(bytes, source);
  const count = shapeSize(header.shape);
  const needed = header.dataOffset + count * header.bytesPerElement;
  if (bytes.length < needed) {
    throw new DataError(
      source,
      `truncated NPY file: shape (${header.shape.join(', ')}) needs ${needed} bytes, file has ${bytes.length}`,
    );
  }
  const data = decodeNpyData(header.dtype, bytes.subarray(header.dataOffset), count);
  return { dtype: header.dtype, shape: header.shape, data };
}

function dtypeOf(data: NpyTypedArray): NpyDtype {
  if (data instanceof Float32Array) return 'f4';
  if (data instanceof Float64Array) return 'f8';
  if (data instanceof Int16Array) return 'i2';
  if (data instanceof Int32Array) return 'i4';
  if (data instanceof Uint8Array) return 'u1';
  if (data instanceof Int8Array) return 'i1';
  return 'u2';
}

/** The header bytes for an array; the data (little-endian, C order) follows directly. */
export function npyHeaderBytes(dtype: NpyDtype, shape: readonly number[]): Uint8Array {
  const descr = dtype === 'u1' || dtype === 'i1' ? `|${dtype}` : `<${dtype}`;
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Pad with spaces so magic + version + length + dict + '\n' is a multiple of 64 (NumPy's alignment).
  const unpadded = 10 + dict.length + 1;
  dict += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  if (dict.length > 65535) throw new Error('NPY header too long');
  const out = new Uint8Array(10 + dict.length);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, dict.length, true);
  for (let i = 0; i < dict.length; i++) out[10 + i] = dict.charCodeAt(i);
  return out;
}

/** Serializes a typed array as a complete NPY file. Platforms we target are little-endian. */
export function writeNpy(data: NpyTypedArray, shape: readonly number[]): Uint8Array {
  if (shapeSize(shape) !== data.length) {
    throw new Error(`writeNpy: shape (${shape.join(', ')}) holds ${shapeSize(shape)} elements, data has ${data.length}`);
  }
  const header = npyHeaderBytes(dtypeOf(data), shape);
  const body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(header.length + body.length);
  out.set(header, 0);
  out.set(body, header.length);
  return out;
}

/** Any numeric NPY array as float32 (the model input type). */
export function toFloat32(data: NpyTypedArray): Float32Array {
  return data instanceof Float32Array ? data : Float32Array.from(data);
}
