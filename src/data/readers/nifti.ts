/**
 * NIfTI-1/2 cine reader (.nii, .nii.gz through nifti-reader-js; gzip via fflate).
 * 3-D images are taken as (x, y, t); 4-D as (x, y, z, t) with one slice z picked (default: the middle).
 * Data types u8, i8, i16, u16, i32, u32, f32, f64 are converted to float32 and scl_slope / scl_inter
 * applied when slope is non-zero. Output is (t, y, x): rows are y, columns x, as stored (no reorientation).
 */
import * as nifti from 'nifti-reader-js';
import { gunzipSync } from 'fflate';
import { DataError, assertFinite } from '../errors';
import type { CineVolume } from '../preprocess/cmr';

export interface NiftiOptions {
  /** Slice index for 4-D data (default: middle slice). */
  slice?: number;
  source?: string;
}

export function readNifti(bytes: Uint8Array, options: NiftiOptions = {}): CineVolume & { warnings: string[] } {
  const source = options.source ?? 'nifti';
  let data = bytes;
  if (data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b) {
    try {
      data = gunzipSync(data);
    } catch (e) {
      throw new DataError(source, `corrupt gzip stream (${(e as Error).message})`);
    }
  }
  const buffer = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
  if (!nifti.isNIFTI(buffer)) throw new DataError(source, 'not a NIfTI file (bad magic or header size)');
  const header = nifti.readHeader(buffer);
  const dims = header.dims;
  const rank = dims[0];
  if (rank !== 3 && rank !== 4) throw new DataError(source, `expected a 3-D (x,y,t) or 4-D (x,y,z,t) image, got ${rank}-D`);
  const [nx, ny] = [dims[1], dims[2]];
  const nz = rank === 4 ? dims[3] : 1;
  const nt = rank === 4 ? dims[4] : dims[3];
  const count = nx * ny * nz * nt;
  const bytesPer = header.numBitsPerVoxel / 8;
  const voxOffset = Math.round(header.vox_offset);
  if (data.length < voxOffset + count * bytesPer) {
    throw new DataError(source, `truncated image data: ${data.length} bytes, ${voxOffset + count * bytesPer} needed for ${nx}x${ny}x${nz}x${nt}`);
  }
  const raw = nifti.readImage(header, buffer);
  const view = new DataView(raw);
  const le = header.littleEndian;
  const readers: Record<number, [number, (o: number) => number]> = {
    2: [1, (o) => view.getUint8(o)],
    256: [1, (o) => view.getInt8(o)],
    4: [2, (o) => view.getInt16(o, le)],
    512: [2, (o) => view.getUint16(o, le)],
    8: [4, (o) => view.getInt32(o, le)],
    768: [4, (o) => view.getUint32(o, le)],
    16: [4, (o) => view.getFloat32(o, le)],
    64: [8, (o) => view.getFloat64(o, le)],
  };
  const reader = readers[header.datatypeCode];
  if (!reader) throw new DataError(source, `unsupported NIfTI datatype code ${header.datatypeCode}`);
  const slope = Number.isFinite(header.scl_slope) && header.scl_slope !== 0 ? header.scl_slope : 1;
  const inter = Number.isFinite(header.scl_inter) && header.scl_slope !== 0 ? header.scl_inter : 0;
  const warnings: string[] = [];
  let z = 0;
  if (rank === 4) {
    z = options.slice ?? Math.floor(nz / 2);
    if (z < 0 || z >= nz) throw new DataError(source, `slice ${z} out of range 0..${nz - 1}`);
    if (nz > 1) warnings.push(`${source}: 4-D image, using slice ${z} of ${nz}`);
  }
  const out = new Float32Array(nt * ny * nx);
  const [size, get] = reader;
  for (let t = 0; t < nt; t++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const src = x + nx * (y + ny * (z + nz * t));
        out[(t * ny + y) * nx + x] = get(src * size) * slope + inter;
      }
    }
  }
  assertFinite(out, source, 'image');
  return { data: out, frames: nt, height: ny, width: nx, warnings };
}
