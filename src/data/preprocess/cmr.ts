/**
 * CMR preprocessing to the model input (50, 96, 96) in [-1, 1]:
 * 1. centre crop to a square (the shorter side), 2. resize to 96 x 96 (area averaging when shrinking,
 * bilinear with half-pixel centres when enlarging), 3. cyclic linear temporal resampling to 50 frames
 * (frame j samples source time j * T / 50, interpolating between frames floor and floor + 1 mod T, since
 * a cine cycle wraps), 4. per-clip min-max: x' = 2 (x - min) / max(max - min, 1e-6) - 1 (spec 2.4).
 */
import { DataError, assertFinite } from '../errors';

export interface CineVolume {
  /** (frames, height, width) row-major. */
  data: Float32Array;
  frames: number;
  height: number;
  width: number;
}

export function normalizeClip(data: Float32Array): Float32Array {
  let min = Infinity;
  let max = -Infinity;
  for (const v of data) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const scale = 2 / Math.max(max - min, 1e-6);
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = (data[i] - min) * scale - 1;
  return out;
}

function resizeAxis(src: Float64Array, inLen: number, outLen: number, stride: number, count: number, inStride: number): Float64Array {
  // Generic 1-D resampling applied to `count` lines; returns lines of outLen packed with `stride`.
  const out = new Float64Array(count * outLen);
  const scale = inLen / outLen;
  for (let line = 0; line < count; line++) {
    for (let o = 0; o < outLen; o++) {
      let value = 0;
      if (scale > 1) {
        // Area: average of the source interval [o*scale, (o+1)*scale) with fractional end weights.
        const a = o * scale;
        const b = a + scale;
        for (let i = Math.floor(a); i < Math.min(inLen, Math.ceil(b - 1e-9)); i++) {
          const w = Math.min(b, i + 1) - Math.max(a, i);
          value += w * src[line * inStride + i * stride];
        }
        value /= scale;
      } else {
        const s = Math.min(Math.max((o + 0.5) * scale - 0.5, 0), inLen - 1);
        const i0 = Math.floor(s);
        const i1 = Math.min(i0 + 1, inLen - 1);
        const t = s - i0;
        value = (1 - t) * src[line * inStride + i0 * stride] + t * src[line * inStride + i1 * stride];
      }
      out[line * outLen + o] = value;
    }
  }
  return out;
}

/** Resizes one (h, w) image to (size, size) after a centre crop to a square. */
export function cropResizeFrame(frame: ArrayLike<number>, height: number, width: number, size = 96): Float32Array {
  const side = Math.min(height, width);
  const y0 = Math.floor((height - side) / 2);
  const x0 = Math.floor((width - side) / 2);
  const square = new Float64Array(side * side);
  for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) square[y * side + x] = frame[(y0 + y) * width + x0 + x];
  // Rows first (along x), then columns (along y).
  const alongX = resizeAxis(square, side, size, 1, side, side); // (side rows, size)
  const transposed = new Float64Array(size * side);
  for (let y = 0; y < side; y++) for (let x = 0; x < size; x++) transposed[x * side + y] = alongX[y * size + x];
  const alongY = resizeAxis(transposed, side, size, 1, size, side); // (size cols, size)
  const out = new Float32Array(size * size);
  for (let x = 0; x < size; x++) for (let y = 0; y < size; y++) out[y * size + x] = alongY[x * size + y];
  return out;
}

/** Cyclic linear resampling of a cine to `frames` frames. */
export function resampleCyclic(volume: CineVolume, frames = 50): CineVolume {
  const { frames: t, height, width, data } = volume;
  const plane = height * width;
  const out = new Float32Array(frames * plane);
  for (let j = 0; j < frames; j++) {
    const s = (j * t) / frames;
    const i0 = Math.floor(s) % t;
    const i1 = (i0 + 1) % t;
    const w = s - Math.floor(s);
    for (let k = 0; k < plane; k++) out[j * plane + k] = (1 - w) * data[i0 * plane + k] + w * data[i1 * plane + k];
  }
  return { data: out, frames, height, width };
}

export interface PrepareCineOptions {
  frames?: number;
  size?: number;
  /** Source name used in error messages. */
  source?: string;
}

export interface PreparedCine {
  /** (50, 96, 96) in [-1, 1]. */
  data: Float32Array;
  warnings: string[];
}

export function prepareCine(volume: CineVolume, options: PrepareCineOptions = {}): PreparedCine {
  const source = options.source ?? 'cine';
  const frames = options.frames ?? 50;
  const size = options.size ?? 96;
  const warnings: string[] = [];
  if (volume.data.length !== volume.frames * volume.height * volume.width) {
    throw new DataError(source, `cine holds ${volume.data.length} values, expected ${volume.frames}x${volume.height}x${volume.width}`);
  }
  if (volume.frames < 2) throw new DataError(source, `a cine needs at least 2 frames, got ${volume.frames}`);
  if (volume.height < 8 || volume.width < 8) throw new DataError(source, `image too small: ${volume.height}x${volume.width}`);
  assertFinite(volume.data, source, 'cine');
  let min = Infinity;
  let max = -Infinity;
  for (const v of volume.data) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (max - min < 1e-6) throw new DataError(source, `cine is constant (every voxel = ${min}); nothing to normalize`);
  if (volume.height !== volume.width) warnings.push(`${source}: centre-cropped ${volume.height}x${volume.width} to a square`);
  if (volume.frames !== frames) warnings.push(`${source}: resampled ${volume.frames} frames to ${frames} (cyclic linear)`);
  const plane = volume.height * volume.width;
  const resized = new Float32Array(volume.frames * size * size);
  for (let f = 0; f < volume.frames; f++) {
    resized.set(cropResizeFrame(volume.data.subarray(f * plane, (f + 1) * plane), volume.height, volume.width, size), f * size * size);
  }
  const timed = resampleCyclic({ data: resized, frames: volume.frames, height: size, width: size }, frames);
  return { data: normalizeClip(timed.data), warnings };
}
