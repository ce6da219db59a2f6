import { describe, expect, it } from 'vitest';
import { gunzipSync } from 'fflate';
import { writeNifti } from '../../src/data/writers/nifti';
import { sideBySideGif } from '../../src/data/writers/gif';
import { readNifti } from '../../src/data/readers/nifti';

const dims = { frames: 3, height: 5, width: 7 };
const clip = Float32Array.from({ length: 3 * 5 * 7 }, (_, i) => Math.sin(i) * 0.5 + 0.25);

describe('NIfTI writer', () => {
  it('round-trips through the reader (.nii and .nii.gz), header fields as documented', () => {
    for (const gzip of [false, true]) {
      const bytes = writeNifti(clip, dims, { gzip, pixdim: { x: 1.8, y: 1.9, t: 0.02 } });
      if (gzip) expect([bytes[0], bytes[1]]).toEqual([0x1f, 0x8b]);
      const back = readNifti(bytes);
      expect([back.frames, back.height, back.width]).toEqual([3, 5, 7]);
      expect(back.warnings).toEqual([]);
      expect([...back.data]).toEqual([...clip]);
      const raw = gzip ? gunzipSync(bytes) : bytes;
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      expect(view.getInt32(0, true)).toBe(348);
      expect([0, 1, 2, 3, 4].map((i) => view.getInt16(40 + 2 * i, true))).toEqual([4, 7, 5, 1, 3]);
      expect(view.getInt16(70, true)).toBe(16);
      expect(view.getFloat32(80, true)).toBeCloseTo(1.8, 6);
      expect(view.getFloat32(92, true)).toBeCloseTo(0.02, 6);
      expect(view.getFloat32(108, true)).toBe(352);
      expect(String.fromCharCode(raw[344], raw[345], raw[346])).toBe('n+1');
      expect(raw.length).toBe(352 + clip.length * 4);
    }
  });

  it('refuses a wrong size', () => {
    expect(() => writeNifti(new Float32Array(4), dims)).toThrow(/expected/);
  });
});

describe('side-by-side GIF', () => {
  it('a GIF89a of the composed size, one image per frame', () => {
    const gif = sideBySideGif([clip, clip.map((v) => 1 - v)], dims, { upscale: 2, dividerWidth: 3 });
    expect(String.fromCharCode(...gif.slice(0, 6))).toBe('GIF89a');
    const view = new DataView(gif.buffer, gif.byteOffset, gif.byteLength);
    expect(view.getUint16(6, true)).toBe(2 * 14 + 3);
    expect(view.getUint16(8, true)).toBe(10);
    // Image descriptors start with 0x2c after a graphic control extension (0x21 0xf9).
    let frames = 0;
    for (let i = 0; i + 1 < gif.length; i++) if (gif[i] === 0x21 && gif[i + 1] === 0xf9) frames++;
    expect(frames).toBe(3);
    expect(gif[gif.length - 1]).toBe(0x3b);
  });

  it('panels must share the shape', () => {
    expect(() => sideBySideGif([clip, new Float32Array(3)], dims)).toThrow(/panel 1/);
  });
});
