/** Cine pictures: animated GIF (gifenc) and a frame-strip PNG (pngjs, so this file is Node-only). */
import gifenc from 'gifenc';
import { PNG } from 'pngjs';

function toGrey(frames: Float32Array, levels: number): { data: Uint8Array; scale: (v: number) => number } {
  let min = Infinity;
  let max = -Infinity;
  for (const v of frames) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const scale = (v: number) => Math.max(0, Math.min(levels - 1, Math.round(((v - min) / Math.max(max - min, 1e-6)) * (levels - 1))));
  return { data: Uint8Array.from(frames, scale), scale };
}

/** Animated GIF of a (frames, size, size) cine, upscaled by nearest neighbour; `levels` grey levels. */
export function cineToGif(frames: Float32Array, nFrames: number, size: number, options: { upscale?: number; levels?: number; delayMs?: number; frameStep?: number } = {}): Uint8Array {
  const up = options.upscale ?? 2;
  const levels = Math.min(255, options.levels ?? 32);
  const { data } = toGrey(frames, levels);
  // The last palette entry is transparent: pixels equal to the previous frame are not re-sent, which
  // keeps the file small (LZW compresses runs of the transparent index well).
  const palette = Array.from({ length: levels + 1 }, (_, i) => {
    const g = Math.round((Math.min(i, levels - 1) * 255) / (levels - 1));
    return [g, g, g];
  });
  const transparentIndex = levels;
  const gif = gifenc.GIFEncoder();
  const out = size * up;
  const plane = size * size;
  const frameStep = options.frameStep ?? 1;
  for (let f = 0; f < nFrames; f += frameStep) {
    const index = new Uint8Array(out * out);
    for (let y = 0; y < out; y++) {
      for (let x = 0; x < out; x++) {
        const k = Math.floor(y / up) * size + Math.floor(x / up);
        const v = data[f * plane + k];
        index[y * out + x] = f > 0 && v === data[(f - frameStep) * plane + k] ? transparentIndex : v;
      }
    }
    gif.writeFrame(index, out, out, {
      palette, delay: (options.delayMs ?? 40) * frameStep, transparent: f > 0, transparentIndex, dispose: 1,
    });
  }
  gif.finish();
  return gif.bytes();
}

/** PNG strip of every `step`-th frame side by side; the end-systolic frame gets a black underline; written as 8-bit grey. */
export function cineToStripPng(frames: Float32Array, nFrames: number, size: number, options: { step?: number; markFrame?: number } = {}): Uint8Array {
  const step = options.step ?? 5;
  const picked: number[] = [];
  for (let f = 0; f < nFrames; f += step) picked.push(f);
  if (options.markFrame !== undefined && !picked.includes(options.markFrame)) {
    picked.push(options.markFrame);
    picked.sort((a, b) => a - b);
  }
  const { data } = toGrey(frames, 256);
  const gap = 2;
  const width = picked.length * (size + gap) - gap;
  const height = size + 4;
  const png = new PNG({ width, height });
  png.data.fill(255);
  picked.forEach((f, k) => {
    const x0 = k * (size + gap);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const v = data[f * size * size + y * size + x];
        const o = (y * width + x0 + x) * 4;
        png.data[o] = png.data[o + 1] = png.data[o + 2] = v;
        png.data[o + 3] = 255;
      }
    }
    if (f === options.markFrame) {
      for (let y = size + 1; y < size + 4; y++) for (let x = 0; x < size; x++) {
        const o = (y * width + x0 + x) * 4;
        png.data[o] = png.data[o + 1] = png.data[o + 2] = 0;
      }
    }
  });
  const buf = PNG.sync.write(png, { colorType: 0 });
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}
