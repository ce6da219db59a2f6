import { describe, expect, it } from 'vitest';
import { frechetDistance, gaussianStats, pooledPixelFeatures, sqrtPsd, symmetricEigen } from '../../src/eval/frechet';

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
function gaussian(r: () => number) {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}
function randomSymmetric(n: number, seed: number): Float64Array {
  const r = rng(seed);
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) m[i * n + j] = m[j * n + i] = r() - 0.5;
  return m;
}

/** Independent cyclic Jacobi eigenvalues (small n only). */
function jacobiEigenvalues(matrix: Float64Array, n: number): number[] {
  const a = Float64Array.from(matrix);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] ** 2;
    if (off < 1e-26) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (Math.abs(a[p * n + q]) < 1e-300) continue;
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
      }
    }
  }
  return Array.from({ length: n }, (_, i) => a[i * n + i]).sort((x, y) => x - y);
}

describe('symmetric eigen-decomposition', () => {
  it('eigenvalues match Jacobi; A = V diag(l) Vᵀ; V orthonormal', () => {
    for (const n of [1, 2, 3, 7, 24]) {
      const m = randomSymmetric(n, n + 11);
      const { values, vectors } = symmetricEigen(m, n);
      const reference = jacobiEigenvalues(m, n);
      values.forEach((v, i) => expect(v).toBeCloseTo(reference[i], 10));
      const v = vectors!;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          let recon = 0;
          let dot = 0;
          for (let k = 0; k < n; k++) {
            recon += v[i * n + k] * values[k] * v[j * n + k];
            dot += v[k * n + i] * v[k * n + j];
          }
          expect(Math.abs(recon - m[i * n + j])).toBeLessThan(1e-12);
          expect(Math.abs(dot - (i === j ? 1 : 0))).toBeLessThan(1e-12);
        }
      }
    }
  });

  it('diagonal and repeated eigenvalues', () => {
    const { values } = symmetricEigen([3, 0, 0, 0, 1, 0, 0, 0, 3], 3);
    expect([...values]).toEqual([1, 3, 3]);
  });

  it('sqrtPsd squares back', () => {
    const n = 6;
    const b = randomSymmetric(n, 4);
    const m = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) m[i * n + j] += b[i * n + k] * b[j * n + k];
    const r = sqrtPsd(m, n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += r[i * n + k] * r[k * n + j];
      expect(s).toBeCloseTo(m[i * n + j], 10);
    }
  });
});

describe('Fréchet distance', () => {
  const sample = (count: number, dims: number, seed: number, shift: number[] = [], scale = 1) => {
    const r = rng(seed);
    const out = new Float64Array(count * dims);
    for (let i = 0; i < count; i++) for (let j = 0; j < dims; j++) out[i * dims + j] = scale * gaussian(r) + (shift[j] ?? 0) + 0.3 * (j > 0 ? out[i * dims + j - 1] : 0);
    return out;
  };

  it('identical sets give ~0', () => {
    const x = sample(300, 5, 1);
    const s = gaussianStats(x, 300, 5);
    expect(frechetDistance(s, s).distance).toBeLessThan(1e-9);
  });

  it('shifted means with equal covariances give |Δμ|²', () => {
    const x = sample(200, 4, 2);
    const shifted = x.map((v, i) => v + [1, -2, 0.5, 0][i % 4]);
    const d = frechetDistance(gaussianStats(x, 200, 4), gaussianStats(shifted, 200, 4));
    expect(d.distance).toBeCloseTo(1 + 4 + 0.25, 9);
    expect(d.traceTerm).toBeCloseTo(0, 9);
  });

  it('known Gaussians in closed form: N(0, a²I) vs N(m, b²I) → |m|² + d (a - b)²', () => {
    const dims = 3;
    const a = { dims, count: 2, mean: new Float64Array(dims), covariance: new Float64Array([4, 0, 0, 0, 4, 0, 0, 0, 4]) };
    const b = { dims, count: 2, mean: new Float64Array([1, 2, 2]), covariance: new Float64Array([1, 0, 0, 0, 1, 0, 0, 0, 1]) };
    expect(frechetDistance(a, b).distance).toBeCloseTo(9 + 3 * (2 - 1) ** 2, 12);
    // Non-commuting 2-D case: tr sqrt(S1^1/2 S2 S1^1/2) checked against the 2x2 identity tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)).
    const s1 = new Float64Array([2, 0.5, 0.5, 1]);
    const s2 = new Float64Array([1, -0.3, -0.3, 3]);
    const r = frechetDistance({ dims: 2, count: 2, mean: new Float64Array(2), covariance: s1 }, { dims: 2, count: 2, mean: new Float64Array(2), covariance: s2 });
    const p = [s1[0] * s2[0] + s1[1] * s2[2], s1[0] * s2[1] + s1[1] * s2[3], s1[2] * s2[0] + s1[3] * s2[2], s1[2] * s2[1] + s1[3] * s2[3]];
    const trSqrt = Math.sqrt(p[0] + p[3] + 2 * Math.sqrt(p[0] * p[3] - p[1] * p[2]));
    expect(r.distance).toBeCloseTo(3 + 4 - 2 * trSqrt, 12);
  });

  it('covariance uses n - 1', () => {
    const s = gaussianStats([1, 3], 2, 1);
    expect(s.mean[0]).toBe(2);
    expect(s.covariance[0]).toBe(2);
  });

  it('pooled-pixel extractor averages blocks', async () => {
    const frame = new Float32Array(16 * 16).map((_, i) => ((i % 16) < 8 ? 0 : 1));
    const f = await pooledPixelFeatures(2).extract(frame, 1, [16, 16]);
    expect([...f]).toEqual([0, 1, 0, 1]);
  });
});
