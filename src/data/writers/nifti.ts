/**
 * NIfTI-1 writer for generated cines (browser-safe: array in, bytes out).
 * A clip (T, H, W) becomes a 4-D image dim = [4, W, H, 1, T]: x = column, y = row, z = one slice,
 * t = frame (NIfTI keeps time on the 4th axis, so a single-slice cine has z = 1). Voxels are float32
 * (datatype 16, bitpix 32), written in the clip's own order (x fastest), so
 * src/data/readers/nifti.ts reads back exactly the same (t, y, x) array. No reorientation: rows are
 * stored top to bottom as y = 0..H-1, with an identity qform (code 1) scaled by pixdim; viewers that
 * draw +y upwards show the image flipped vertically. Units: mm and s (xyzt_units = 2 | 8).
 * `.nii.gz` is the same bytes gzipped with fflate.
 */
import { gzipSync } from 'fflate';

export interface NiftiWriteOptions {
  /** Voxel size (mm) and frame interval (s); defaults in writeNifti. */
  pixdim?: { x?: number; y?: number; z?: number; t?: number };
  /** Gzip the result (.nii.gz). Default false. */
  gzip?: boolean;
  /** Free-text description (at most 79 ASCII characters are kept). */
  description?: string;
}

export interface ClipDims {
  frames: number;
  height: number;
  width: number;
}

const HEADER_BYTES = 348;
/** Header plus the 4-byte extension flag (no extensions). */
const VOX_OFFSET = 352;

/**
 * Serialises a clip (T, H, W) as NIfTI-1. Default voxel size 1 mm and frame interval 1 s / T (one
 * cardiac cycle of unknown length normalised to 1 s); pass real values when known.
 */
export function writeNifti(clip: Float32Array, dims: ClipDims, options: NiftiWriteOptions = {}): Uint8Array {
  const { frames, height, width } = dims;
  const count = frames * height * width;
  if (clip.length !== count) throw new Error(`writeNifti: expected ${frames}x${height}x${width} = ${count} values, got ${clip.length}`);
  if ([frames, height, width].some((d) => !Number.isInteger(d) || d < 1 || d > 32767)) {
    throw new Error(`writeNifti: dimensions must be integers in 1..32767 (got ${frames}x${height}x${width})`);
  }
  const px = options.pixdim?.x ?? 1;
  const py = options.pixdim?.y ?? 1;
  const pz = options.pixdim?.z ?? 1;
  const pt = options.pixdim?.t ?? 1 / frames;
  const out = new Uint8Array(VOX_OFFSET + count * 4);
  const view = new DataView(out.buffer);
  const le = true;
  view.setInt32(0, HEADER_BYTES, le); // sizeof_hdr
  out[38] = 'r'.charCodeAt(0); // regular
  const dim = [4, width, height, 1, frames, 1, 1, 1];
  dim.forEach((v, i) => view.setInt16(40 + 2 * i, v, le));
  view.setInt16(70, 16, le); // datatype: FLOAT32
  view.setInt16(72, 32, le); // bitpix
  const pixdim = [1, px, py, pz, pt, 0, 0, 0]; // pixdim[0] = qfac = 1
  pixdim.forEach((v, i) => view.setFloat32(76 + 4 * i, v, le));
  view.setFloat32(108, VOX_OFFSET, le); // vox_offset
  view.setFloat32(112, 1, le); // scl_slope: 1 (readers apply slope * x + inter only when slope != 0)
  view.setFloat32(116, 0, le); // scl_inter
  out[123] = 2 | 8; // xyzt_units: mm, s
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < count; i++) {
    if (clip[i] < min) min = clip[i];
    if (clip[i] > max) max = clip[i];
  }
  view.setFloat32(124, Number.isFinite(max) ? max : 0, le); // cal_max: display window
  view.setFloat32(128, Number.isFinite(min) ? min : 0, le); // cal_min
  const description = (options.description ?? 'ecgflowcmr generated cine').replace(/[^\x20-\x7e]/g, '?').slice(0, 79);
  for (let i = 0; i < description.length; i++) out[148 + i] = description.charCodeAt(i);
  view.setInt16(252, 1, le); // qform_code: scanner-anatomical, identity rotation (quatern_b/c/d = 0)
  view.setInt16(254, 0, le); // sform_code: none
  'n+1\0'.split('').forEach((ch, i) => (out[344 + i] = ch.charCodeAt(0)));
  // 348..351: extension flag 0 (none). Data: float32 little-endian in (t, y, x) order = NIfTI's x fastest.
  for (let i = 0; i < count; i++) view.setFloat32(VOX_OFFSET + 4 * i, clip[i], le);
  return options.gzip ? gzipSync(out) : out;
}
