/**
 * Views of a clip for contrastive pretraining (host side, seeded): a cine is periodic, so a cyclic shift
 * in time keeps it a valid cine; a random crop of 70-100 % of the side resized back (bilinear), an affine
 * intensity jitter and a little Gaussian noise make the encoder rely on shape and motion rather than on
 * framing and scanner gain. The output stays in [-1, 1] like the data.
 */
import type { Rng } from '../data/random';
import type { CineGeometry } from '../train/cine-data';

export function augmentClip(clip: Float32Array, g: CineGeometry, rng: Rng): Float32Array {
  const { frames, size } = g;
  const out = new Float32Array(clip.length);
  const shift = Math.floor(rng.next() * frames);
  const side = size * (0.7 + 0.3 * rng.next());
  const x0 = rng.next() * (size - side);
  const y0 = rng.next() * (size - side);
  const gain = 0.8 + 0.4 * rng.next();
  const offset = (rng.next() - 0.5) * 0.2;
  const noise = 0.03;
  const scale = side / size;
  for (let f = 0; f < frames; f++) {
    const src = clip.subarray(((f + shift) % frames) * size * size, (((f + shift) % frames) + 1) * size * size);
    for (let y = 0; y < size; y++) {
      const sy = Math.min(size - 1, Math.max(0, y0 + (y + 0.5) * scale - 0.5));
      const yA = Math.floor(sy);
      const yB = Math.min(size - 1, yA + 1);
      const wy = sy - yA;
      for (let x = 0; x < size; x++) {
        const sx = Math.min(size - 1, Math.max(0, x0 + (x + 0.5) * scale - 0.5));
        const xA = Math.floor(sx);
        const xB = Math.min(size - 1, xA + 1);
        const wx = sx - xA;
        const v = (1 - wy) * ((1 - wx) * src[yA * size + xA] + wx * src[yA * size + xB]) + wy * ((1 - wx) * src[yB * size + xA] + wx * src[yB * size + xB]);
        const jittered = gain * v + offset + noise * rng.gaussian();
        out[f * size * size + y * size + x] = Math.min(1, Math.max(-1, jittered));
      }
    }
  }
  return out;
}
