/**
 * Side-by-side animated GIF of a generated clip next to its ground truth (browser-safe; gifenc only).
 * Both clips (T, H, W) share one fixed intensity window (default [0, 1]) so brightness differences show;
 * no per-clip rescaling. Panels are separated by a vertical divider (default 2 px, white).
 */
import * as gifencModule from 'gifenc';

// The ESM build (bundlers, vitest) has named exports; Node's CJS interop (tsx) puts them under default.
const GIFEncoder: typeof gifencModule.GIFEncoder = gifencModule.GIFEncoder ?? (gifencModule as unknown as { default: typeof gifencModule }).default.GIFEncoder;

export interface SideBySideOptions {
  /** Intensity window mapped to black..white. Default [0, 1]. */
  window?: [number, number];
  /** Nearest-neighbour upscaling factor. Default 2. */
  upscale?: number;
  /** Grey levels (2..255). Default 128. */
  levels?: number;
  /** Divider width in output pixels (0 = none). Default 2. */
  dividerWidth?: number;
  /** Divider grey in [0, 1]. Default 1 (white). */
  dividerGrey?: number;
  /** Frame delay, ms. Default 40 (25 frames/s: a 50-frame cycle lasts 2 s). */
  delayMs?: number;
}

/**
 * Composes panels (each (T, H, W), same shape) left to right into one looping GIF. The usual call is
 * `sideBySideGif([generated, groundTruth], dims)`.
 */
export function sideBySideGif(panels: Float32Array[], dims: { frames: number; height: number; width: number }, options: SideBySideOptions = {}): Uint8Array {
  const { frames, height, width } = dims;
  const plane = height * width;
  if (!panels.length) throw new Error('sideBySideGif: no panels');
  for (const [k, p] of panels.entries()) {
    if (p.length !== frames * plane) throw new Error(`sideBySideGif: panel ${k} holds ${p.length} values, expected ${frames}x${height}x${width}`);
  }
  const [lo, hi] = options.window ?? [0, 1];
  const up = Math.max(1, Math.round(options.upscale ?? 2));
  const levels = Math.max(2, Math.min(255, Math.round(options.levels ?? 128)));
  const divider = Math.max(0, Math.round(options.dividerWidth ?? 2));
  const dividerIndex = Math.round(Math.max(0, Math.min(1, options.dividerGrey ?? 1)) * (levels - 1));
  const palette = Array.from({ length: levels }, (_, i) => {
    const g = Math.round((i * 255) / (levels - 1));
    return [g, g, g];
  });
  const panelWidth = width * up;
  const outWidth = panels.length * panelWidth + (panels.length - 1) * divider;
  const outHeight = height * up;
  const scale = (levels - 1) / Math.max(hi - lo, 1e-12);
  const gif = GIFEncoder();
  const index = new Uint8Array(outWidth * outHeight);
  for (let f = 0; f < frames; f++) {
    index.fill(dividerIndex);
    panels.forEach((panel, k) => {
      const x0 = k * (panelWidth + divider);
      for (let y = 0; y < outHeight; y++) {
        const srcRow = f * plane + Math.floor(y / up) * width;
        const dstRow = y * outWidth + x0;
        for (let x = 0; x < panelWidth; x++) {
          const v = Math.round((panel[srcRow + Math.floor(x / up)] - lo) * scale);
          index[dstRow + x] = v < 0 ? 0 : v > levels - 1 ? levels - 1 : v;
        }
      }
    });
    gif.writeFrame(index, outWidth, outHeight, { palette, delay: options.delayMs ?? 40, repeat: 0 });
  }
  gif.finish();
  return gif.bytes();
}
