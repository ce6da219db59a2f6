import { describe, expect, it } from 'vitest';
import { CLASS_RANGES, PHANTOM_CLASSES, generateSubject, contractionAt } from '../../src/data';

describe('phantom generator', () => {
  it('is deterministic per seed and index, and differs across seeds', () => {
    const a = generateSubject(5, 3);
    const b = generateSubject(5, 3);
    const c = generateSubject(6, 3);
    expect(a.ecg).toEqual(b.ecg);
    expect(a.cine).toEqual(b.cine);
    expect(a.params).toEqual(b.params);
    expect(a.ecg).not.toEqual(c.ecg);
  });

  it('has the documented shapes and finite values', () => {
    const s = generateSubject(1, 0);
    expect(s.ecg.length).toBe(12 * 5000);
    expect(s.cine!.length).toBe(50 * 96 * 96);
    expect(s.truth.lvArea.length).toBe(50);
    expect([...s.ecg].every(Number.isFinite)).toBe(true);
    expect([...s.cine!].every((v) => Number.isFinite(v) && v >= 0)).toBe(true);
  });

  it('holds Einthoven and Goldberger relations exactly (noise included)', () => {
    const e = generateSubject(2, 1).ecg;
    const n = 5000;
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const I = e[i], II = e[n + i], III = e[2 * n + i], aVR = e[3 * n + i], aVL = e[4 * n + i], aVF = e[5 * n + i];
      worst = Math.max(worst, Math.abs(III - (II - I)), Math.abs(aVR + (I + II) / 2), Math.abs(aVL - (I - II / 2)), Math.abs(aVF - (II - I / 2)));
    }
    expect(worst).toBeLessThan(1e-5);
  });

  it('ground truth is consistent for every class: ES area minimum, EF in range, classes differ', () => {
    const ef: Record<string, number[]> = {};
    for (const cls of PHANTOM_CLASSES) {
      ef[cls] = [];
      for (let i = 0; i < 3; i++) {
        const s = generateSubject(11, i, { cls });
        const t = s.truth;
        const argmin = t.lvArea.indexOf(Math.min(...t.lvArea));
        expect(Math.abs(argmin - t.endSystoleFrame)).toBeLessThanOrEqual(2);
        expect(t.lvArea[0]).toBe(Math.max(...t.lvArea.slice(0, t.endSystoleFrame + 1)));
        const [lo, hi] = CLASS_RANGES[cls].ejectionFraction;
        // The rendered proxy follows the target EF; the akinetic segment of 'regional' lowers it further.
        expect(t.efProxy).toBeGreaterThan(cls === 'regional' ? 0.25 : lo - 0.08);
        expect(t.efProxy).toBeLessThan(hi + 0.08);
        expect(t.edvProxy).toBeCloseTo(Math.pow(t.lvArea[0], 1.5), 6);
        ef[cls].push(t.efProxy);
      }
    }
    const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
    expect(mean(ef.dilated)).toBeLessThan(mean(ef.healthy) - 0.2);
  });

  it('hypertrophic QRS voltage exceeds healthy on average; dilated QRS is wider', () => {
    const qrsAmplitude = (cls: 'healthy' | 'hypertrophic') => {
      let total = 0;
      for (let i = 0; i < 12; i++) {
        const e = generateSubject(21, i, { cls, cine: false, noiseScale: 0 }).ecg;
        // Sokolow-Lyon style: max |V1| + max V5.
        let s = 0, r = 0;
        for (let k = 0; k < 5000; k++) { s = Math.max(s, -e[6 * 5000 + k]); r = Math.max(r, e[10 * 5000 + k]); }
        total += s + r;
      }
      return total / 12;
    };
    expect(qrsAmplitude('hypertrophic')).toBeGreaterThan(1.2 * qrsAmplitude('healthy'));
    const q = (cls: 'healthy' | 'dilated') => generateSubject(3, 0, { cls, cine: false }).truth.qrsMs;
    expect(q('dilated')).toBeGreaterThan(q('healthy') + 20);
  });

  it('contraction curve: 0 at ED, 1 at ES, periodic', () => {
    expect(contractionAt(0, 0.4)).toBe(0);
    expect(contractionAt(0.4, 0.4)).toBeCloseTo(1, 9);
    expect(contractionAt(0.999, 0.4)).toBeLessThan(0.01);
  });
});
