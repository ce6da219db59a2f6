import { describe, expect, it } from 'vitest';
import { clipImageMetrics, framePsnr, gaussianWindow1d, ssimFrame, summarize } from '../../src/eval/image-metrics';

/** Independent SSIM: explicit 2-D window sums at every valid position, float64, no separability. */
function naiveSsim(a: number[], b: number[], h: number, w: number): number {
  const g: number[] = [];
  for (let i = 0; i < 11; i++) g.push(Math.exp(-((i - 5) ** 2) / (2 * 1.5 * 1.5)));
  const gs = g.reduce((s, v) => s + v, 0);
  const c1 = 0.01 ** 2;
  const c2 = 0.03 ** 2;
  let total = 0;
  let n = 0;
  for (let y = 0; y + 11 <= h; y++) {
    for (let x = 0; x + 11 <= w; x++) {
      let mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
      for (let j = 0; j < 11; j++) {
        for (let i = 0; i < 11; i++) {
          const k = (g[j] * g[i]) / (gs * gs);
          const p = a[(y + j) * w + x + i];
          const q = b[(y + j) * w + x + i];
          mx += k * p;
          my += k * q;
          sxx += k * p * p;
          syy += k * q * q;
          sxy += k * p * q;
        }
      }
      const vx = sxx - mx * mx;
      const vy = syy - my * my;
      const cxy = sxy - mx * my;
      total += ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
      n++;
    }
  }
  return total / n;
}

function pattern(h: number, w: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: h * w }, (_, i) => {
    s = (s * 1103515245 + 12345) >>> 0;
    return 0.5 + 0.3 * Math.sin(i * 0.37 + seed) + 0.2 * (s / 2 ** 32 - 0.5);
  });
}

describe('PSNR', () => {
  it('constant offset: 10 log10(1 / d^2); identical frames are +inf', () => {
    const a = new Float32Array(2 * 4 * 4).fill(0.5);
    const b = a.map((v, i) => (i < 16 ? v + 0.1 : v));
    const psnr = framePsnr(b, a, { frames: 2, height: 4, width: 4 });
    expect(psnr[0]).toBeCloseTo(20, 4);
    expect(psnr[1]).toBe(Infinity);
  });

  it('clip metrics: mean of frames, pooled PSNR from the mean MSE', () => {
    const a = new Float32Array(2 * 16 * 16).fill(0.2);
    const b = a.map((v, i) => v + (i < 256 ? 0.1 : 0.01));
    const m = clipImageMetrics(b, a, { frames: 2, height: 16, width: 16 });
    expect(m.psnrMean).toBeCloseTo((20 + 40) / 2, 3);
    expect(m.psnrClip).toBeCloseTo(-10 * Math.log10((0.01 + 0.0001) / 2), 3);
  });
});

describe('SSIM', () => {
  it('window: 11 taps, sigma 1.5, sums to 1', () => {
    const g = gaussianWindow1d();
    expect(g.length).toBe(11);
    expect(g.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 12);
    expect(g[5] / g[4]).toBeCloseTo(Math.exp(1 / 4.5), 12);
  });

  it('identical images give 1', () => {
    const a = pattern(20, 24, 3);
    expect(ssimFrame(a, a, 20, 24)).toBeCloseTo(1, 12);
  });

  it('constant images: luminance term only, (2ab + C1) / (a^2 + b^2 + C1)', () => {
    const a = new Array(16 * 16).fill(0.3);
    const b = new Array(16 * 16).fill(0.5);
    const c1 = 1e-4;
    expect(ssimFrame(a, b, 16, 16)).toBeCloseTo((2 * 0.3 * 0.5 + c1) / (0.09 + 0.25 + c1), 12);
  });

  it('a constant shift keeps the structure term; matches an independent 2-D implementation', () => {
    const a = pattern(16, 18, 5);
    const shifted = a.map((v) => v + 0.05);
    const other = pattern(16, 18, 9);
    for (const b of [shifted, other]) expect(ssimFrame(a, b, 16, 18)).toBeCloseTo(naiveSsim(a, b, 16, 18), 12);
    expect(ssimFrame(a, shifted, 16, 18)).toBeGreaterThan(0.95);
    expect(ssimFrame(a, other, 16, 18)).toBeLessThan(0.9);
  });

  it('refuses frames smaller than the window', () => {
    expect(() => ssimFrame([0], [0], 1, 1)).toThrow(/smaller/);
  });
});

describe('summarize', () => {
  it('sample std, non-finite values counted apart', () => {
    const s = summarize([1, 2, 3, Infinity]);
    expect(s.mean).toBe(2);
    expect(s.std).toBe(1);
    expect(s.nonFinite).toBe(1);
    expect(s.count).toBe(3);
  });
});
