/**
 * NIfTI-1/2 cine reader (.nii, .nii.gz; either byte order).
 * 3-D images are taken as (x, y, t); 4-D as (x, y, z, t) with one slice z picked (default: the middle);
 * trailing dimensions of size 1 are ignored. Data types u8, i8, i16, u16, i32, u32, f32, f64 are converted
 * to float32 and scl_slope / scl_inter applied when slope is non-zero. Output is (t, y, x): rows are y,
 * columns x, as stored (no reorientation).
 *
 * The header is parsed here rather than by nifti-reader-js so that every field is checked before it is
 * used (a fuzzed bitpix or dim used to surface as a DataView RangeError): dims must be positive, bitpix
 * must match the datatype, vox_offset must lie after the header, and the file must hold every voxel.
 * Gzip input is CRC-checked and its declared size must match what the header implies before the
 * decompressed buffer is allocated.
 */
import { DataError, assertFinite } from '../errors';
import type { CineVolume } from '../preprocess/cmr';
import { gunzipChecked, isGzip } from './gzip';

/** Bytes a .nii.gz may hold beyond what its header implies (padding some writers add). */
const TRAILING_SLACK = 64 * 1024;

export interface NiftiOptions {
  /** Slice index for 4-D data (default: middle slice). */
  slice?: number;
  source?: string;
}

/** datatype code -> [name, bytes per voxel]. */
const DATATYPES: Record<number, [string, number]> = {
  2: ['uint8', 1],
  256: ['int8', 1],
  4: ['int16', 2],
  512: ['uint16', 2],
  8: ['int32', 4],
  768: ['uint32', 4],
  16: ['float32', 4],
  64: ['float64', 8],
};

interface NiftiHeader {
  version: 1 | 2;
  littleEndian: boolean;
  dims: number[];
  datatype: number;
  bitpix: number;
  voxOffset: number;
  slope: number;
  inter: number;
  headerSize: number;
}

function parseHeader(data: Uint8Array, source: string): NiftiHeader {
  if (data.length < 348) throw new DataError(source, `not a NIfTI file: ${data.length} bytes, shorter than a NIfTI-1 header (348)`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const sizeLe = view.getInt32(0, true);
  const sizeBe = view.getInt32(0, false);
  const headerSize = sizeLe === 348 || sizeLe === 540 ? sizeLe : sizeBe === 348 || sizeBe === 540 ? sizeBe : 0;
  if (!headerSize) throw new DataError(source, `not a NIfTI file (sizeof_hdr is ${sizeLe}, expected 348 for NIfTI-1 or 540 for NIfTI-2)`);
  const le = headerSize === sizeLe;
  if (headerSize === 540 && data.length < 540) throw new DataError(source, `truncated NIfTI-2 header: ${data.length} of 540 bytes`);
  const text = (from: number, n: number) => String.fromCharCode(...data.subarray(from, from + n));
  if (headerSize === 348) {
    const magic = text(344, 4);
    if (magic === 'ni1\0') throw new DataError(source, "header-only NIfTI-1 (magic 'ni1', image in a separate .img file) is not supported; convert to a single .nii/.nii.gz");
    if (magic !== 'n+1\0') throw new DataError(source, `not a NIfTI-1 file (magic ${JSON.stringify(magic)}, expected 'n+1')`);
    const rank = view.getInt16(40, le);
    const dims = Array.from({ length: 7 }, (_, i) => view.getInt16(42 + 2 * i, le));
    return {
      version: 1, littleEndian: le, headerSize, datatype: view.getInt16(70, le), bitpix: view.getInt16(72, le),
      dims: checkRank(rank, dims, source), voxOffset: view.getFloat32(108, le), slope: view.getFloat32(112, le), inter: view.getFloat32(116, le),
    };
  }
  const magic = text(4, 4);
  if (magic !== 'n+2\0') throw new DataError(source, `not a single-file NIfTI-2 file (magic ${JSON.stringify(magic)}, expected 'n+2')`);
  const int64 = (o: number) => Number(view.getBigInt64(o, le));
  const rank = int64(16);
  const dims = Array.from({ length: 7 }, (_, i) => int64(24 + 8 * i));
  return {
    version: 2, littleEndian: le, headerSize, datatype: view.getInt16(12, le), bitpix: view.getInt16(14, le),
    dims: checkRank(rank, dims, source), voxOffset: int64(168), slope: view.getFloat64(176, le), inter: view.getFloat64(184, le),
  };
}

/** The used dims (dim[1..rank]), without trailing 1s beyond the 3rd; each must be a positive integer. */
function checkRank(rank: number, dims: number[], source: string): number[] {
  if (!(rank >= 1 && rank <= 7)) throw new DataError(source, `NIfTI dim[0] (rank) is ${rank}, must be 1..7; the header is corrupt`);
  const used = dims.slice(0, rank);
  const bad = used.findIndex((d) => !(Number.isSafeInteger(d) && d >= 1));
  if (bad >= 0) throw new DataError(source, `NIfTI dim[${bad + 1}] is ${used[bad]}, must be a positive size; the header is corrupt`);
  while (used.length > 3 && used[used.length - 1] === 1) used.pop();
  return used;
}

interface NiftiLayout {
  nx: number;
  ny: number;
  nz: number;
  nt: number;
  bytesPer: number;
  /** vox_offset + all voxels: the file size the header implies. */
  impliedSize: number;
}

function layoutOf(h: NiftiHeader, source: string): NiftiLayout {
  const rank = h.dims.length;
  if (rank !== 3 && rank !== 4) {
    throw new DataError(source, `expected a 3-D (x,y,t) or 4-D (x,y,z,t) image, got ${rank}-D (dims ${h.dims.join('x')})`);
  }
  const type = DATATYPES[h.datatype];
  if (!type) throw new DataError(source, `unsupported NIfTI datatype code ${h.datatype} (supported: ${Object.values(DATATYPES).map((t) => t[0]).join(', ')})`);
  const [typeName, bytesPer] = type;
  if (h.bitpix !== bytesPer * 8) throw new DataError(source, `NIfTI bitpix ${h.bitpix} does not match datatype ${typeName} (${bytesPer * 8} bits); the header is corrupt`);
  if (!Number.isFinite(h.voxOffset) || h.voxOffset < h.headerSize || !Number.isSafeInteger(Math.round(h.voxOffset))) {
    throw new DataError(source, `NIfTI vox_offset ${h.voxOffset} is not a byte offset after the ${h.headerSize}-byte header; the header is corrupt`);
  }
  const [nx, ny] = h.dims;
  const nz = rank === 4 ? h.dims[2] : 1;
  const nt = rank === 4 ? h.dims[3] : h.dims[2];
  const impliedSize = Math.round(h.voxOffset) + nx * ny * nz * nt * bytesPer;
  if (!Number.isSafeInteger(impliedSize)) throw new DataError(source, `NIfTI dims ${h.dims.join('x')} are too large to be a cine; the header is corrupt`);
  return { nx, ny, nz, nt, bytesPer, impliedSize };
}

export function readNifti(bytes: Uint8Array, options: NiftiOptions = {}): CineVolume & { warnings: string[] } {
  const source = options.source ?? 'nifti';
  let data = bytes;
  if (isGzip(data)) {
    data = gunzipChecked(data, source, {
      prefixBytes: 540,
      checkPrefix: (prefix, declaredSize) => {
        const { impliedSize } = layoutOf(parseHeader(prefix, source), source);
        if (impliedSize > declaredSize) {
          throw new DataError(source, `truncated image data: the header needs ${impliedSize} bytes, the gzip stream declares ${declaredSize}`);
        }
        // Refused before the output is allocated: a small header with a huge stream is a bomb or a wrong file.
        if (declaredSize > impliedSize + TRAILING_SLACK) {
          throw new DataError(source, `gzip stream declares ${declaredSize} bytes but the header's dims need only ${impliedSize}; the file is corrupt`);
        }
      },
    });
  }
  const header = parseHeader(data, source);
  const { nx, ny, nz, nt, bytesPer, impliedSize } = layoutOf(header, source);
  if (data.length < impliedSize) {
    throw new DataError(source, `truncated image data: ${data.length} bytes, ${impliedSize} needed for ${nx}x${ny}x${nz}x${nt}`);
  }
  const view = new DataView(data.buffer, data.byteOffset + Math.round(header.voxOffset), impliedSize - Math.round(header.voxOffset));
  const le = header.littleEndian;
  const getters: Record<number, (o: number) => number> = {
    2: (o) => view.getUint8(o),
    256: (o) => view.getInt8(o),
    4: (o) => view.getInt16(o, le),
    512: (o) => view.getUint16(o, le),
    8: (o) => view.getInt32(o, le),
    768: (o) => view.getUint32(o, le),
    16: (o) => view.getFloat32(o, le),
    64: (o) => view.getFloat64(o, le),
  };
  const get = getters[header.datatype];
  const scaled = Number.isFinite(header.slope) && header.slope !== 0;
  const slope = scaled ? header.slope : 1;
  const inter = scaled && Number.isFinite(header.inter) ? header.inter : 0;
  const warnings: string[] = [];
  let z = 0;
  if (header.dims.length === 4) {
    z = options.slice ?? Math.floor(nz / 2);
    if (!Number.isInteger(z) || z < 0 || z >= nz) throw new DataError(source, `slice ${z} out of range 0..${nz - 1}`);
    if (nz > 1 && options.slice === undefined) warnings.push(`${source}: 4-D image, using slice ${z} of ${nz} (choose with the slice option)`);
  }
  const out = new Float32Array(nt * ny * nx);
  for (let t = 0; t < nt; t++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const src = x + nx * (y + ny * (z + nz * t));
        out[(t * ny + y) * nx + x] = get(src * bytesPer) * slope + inter;
      }
    }
  }
  assertFinite(out, source, 'image');
  return { data: out, frames: nt, height: ny, width: nx, warnings };
}
