import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PHANTOM_CLASSES, generateSubject, phaseAngles, phaseTargets, referenceRPeaks, resizeLinear1d, robustRPeaks, selectCycle } from '../../src/data';

/** Recall of ground-truth peaks within 10 samples (20 ms), ignoring 30 ms at each edge. */
function score(gt: number[], found: number[]) {
  const inner = gt.filter((p) => p > 15 && p < 4985);
  const hits = inner.filter((g) => found.some((p) => Math.abs(p - g) <= 10)).length;
  const fps = found.filter((p) => p > 15 && p < 4985 && !gt.some((g) => Math.abs(p - g) <= 10)).length;
  return { total: inner.length, hits, fps };
}

describe('R-peak detection on phantom ECGs', () => {
  it('finds >= 99 % of R peaks within 20 ms for every class (both detectors)', () => {
    for (const cls of PHANTOM_CLASSES) {
      let total = 0, robust = 0, reference = 0, fps = 0;
      for (let i = 0; i < 25; i++) {
        const s = generateSubject(7, i, { cls, cine: false });
        const lead = s.ecg.subarray(5000, 10000);
        const r = score(s.truth.rPeaks, robustRPeaks(lead));
        total += r.total; robust += r.hits; fps += r.fps;
        reference += score(s.truth.rPeaks, referenceRPeaks(lead)).hits;
      }
      expect(robust / total, cls).toBeGreaterThanOrEqual(0.99);
      expect(reference / total, cls).toBeGreaterThanOrEqual(0.99);
      expect(fps / total, cls).toBeLessThan(0.02);
    }
  });

  it('robust detector copes with noise, irregular rhythm, ectopic beats, low amplitude and inversion', () => {
    let total = 0, hits = 0, fps = 0;
    for (let i = 0; i < 16; i++) {
      const s = generateSubject(9, i, { cine: false, rhythm: i % 2 ? 'irregular' : 'sinus', ectopicProbability: 0.15, noiseScale: 4 });
      const lead = Float32Array.from(s.ecg.subarray(5000, 10000));
      const gain = i % 4 === 0 ? -1 : i % 4 === 1 ? 0.15 : 1; // inverted, low amplitude
      for (let k = 0; k < lead.length; k++) lead[k] *= gain;
      const r = score(s.truth.rPeaks, robustRPeaks(lead));
      total += r.total; hits += r.hits; fps += r.fps;
    }
    expect(hits / total).toBeGreaterThanOrEqual(0.97);
    expect(fps / total).toBeLessThan(0.05);
  });

  it('robust detector takes no T wave for an R on long-QT recordings, even when a beat cut by the start skews the first RR', () => {
    // Seed 1, 400 subjects: before the 600 ms first T window, 0.8 mean-RR window and the refinement reaching the
    // ends, subjects 242, 362 and 398 (dilated, T ~480 ms after R at ~78 bpm) had T waves taken for beats.
    let total = 0, hits = 0, fps = 0;
    for (let i = 0; i < 400; i++) {
      const s = generateSubject(1, i, { cine: false });
      const r = score(s.truth.rPeaks, robustRPeaks(s.ecg.subarray(5000, 10000)));
      total += r.total; hits += r.hits; fps += r.fps;
    }
    expect(hits).toBe(total);
    expect(fps).toBe(0);
  });

  it('reference detector: threshold, strict local maxima and 125-sample merging', () => {
    const x = new Float32Array(1000);
    x[100] = 1; x[180] = 2; x[400] = 1.5; x[401] = 1.5;
    // 100 and 180 are < 125 apart: the taller (180) wins; 400/401 plateau: the first (x[i] >= x[i+1]).
    expect(referenceRPeaks(x)).toEqual([180, 400]);
  });
});

interface PhaseGoldenCase {
  length: number;
  decimation: number;
  peaks: number[];
  phi: number[];
  sin: number[];
  cos: number[];
  around_peaks: [number, number[]][];
}
const phaseGolden = JSON.parse(
  readFileSync(new URL('../fixtures/golden/ecg-phase/targets.json', import.meta.url), 'utf8'),
) as { cases: PhaseGoldenCase[] };

describe('phase targets', () => {
  it('matches the reference np.linspace fill (float64 golden from tools/golden_ecg_phase.py)', () => {
    expect(phaseGolden.cases.length).toBe(5);
    for (const c of phaseGolden.cases) {
      const phi = phaseAngles(c.peaks, c.length);
      // Indices exact: the full-rate phase around every peak is bit-identical to numpy's.
      for (const [peak, values] of c.around_peaks) {
        const from = Math.max(0, peak - 2);
        expect([...phi.subarray(from, from + values.length)], `peak ${peak}`).toEqual(values);
      }
      const decimated = Array.from({ length: c.phi.length }, (_, s) => phi[s * c.decimation]);
      expect(decimated).toEqual(c.phi);
      const t = phaseTargets(c.peaks, c.length, c.decimation);
      const steps = c.phi.length;
      expect(t.length).toBe(2 * steps);
      for (let s = 0; s < steps; s++) {
        expect(t[s]).toBe(Math.fround(c.sin[s]));
        expect(t[steps + s]).toBe(Math.fround(c.cos[s]));
      }
    }
  });

  it('uses denominator end - start - 1, reaches 2pi at end - 1 and is 0 at the peaks and outside', () => {
    const phi = phaseAngles([800, 1600], 5000);
    expect(phi[799]).toBe(0); // before the first peak
    expect(phi[800]).toBe(0); // the first peak
    expect(phi[1000]).toBe(200 * ((2 * Math.PI) / 799));
    expect(phi[1599]).toBe(2 * Math.PI); // numpy writes the stop value at end - 1
    expect(phi[1600]).toBe(0); // the last peak itself is outside every [start, end)
    expect(phi[4999]).toBe(0);
    // The old rule 2pi (i - start) / (end - start) differs by up to 2pi / (end - start) near end - 1.
    expect(Math.abs(phi[1599] - (2 * Math.PI * 799) / 800)).toBeGreaterThan(7e-3);
    const t = phaseTargets([800, 1600], 5000);
    expect(t.length).toBe(1250);
    expect(t[50]).toBe(0); expect(t[625 + 50]).toBe(1);
    expect(t[625 + 200]).toBe(1); // sample 1600
    const none = phaseTargets([1000], 5000);
    expect([...none.subarray(0, 625)].every((v) => v === 0)).toBe(true);
    expect([...none.subarray(625)].every((v) => v === 1)).toBe(true);
    // Adjacent peaks: linspace(0, 2pi, 1) = [0], linspace(0, 2pi, 2) = [0, 2pi].
    const tight = phaseAngles([10, 11, 13], 20);
    expect([...tight.subarray(9, 15)]).toEqual([0, 0, 0, 2 * Math.PI, 0, 0]);
  });
});

/** A phase on the 625 grid with R peaks at fractional grid positions. */
function phaseWithPeaks(peaks: number[]): Float32Array {
  const out = new Float32Array(1250);
  for (let i = 0; i < 625; i++) {
    let phi = 0;
    for (let k = 0; k + 1 < peaks.length; k++) if (i >= peaks[k] && i <= peaks[k + 1]) phi = (2 * Math.PI * (i - peaks[k])) / (peaks[k + 1] - peaks[k]);
    out[i] = Math.sin(phi);
    out[625 + i] = Math.cos(phi);
  }
  return out;
}

describe('cycle selection', () => {
  it('faithful mode wraps mid R-R (spec example: peaks 25 and 81.2 -> wrap 53)', () => {
    const w = selectCycle(phaseWithPeaks([25, 81.2]), 625, 'faithful');
    expect(w.wraps).toEqual([53]);
    expect([w.start, w.end, w.rule]).toEqual([208, 416, 'few-wraps-middle-third']);
  });

  it('faithful: middle pair of wraps; fixed: R peak to R peak', () => {
    const peaks = [25, 81.2, 140, 200, 262, 320];
    const faithful = selectCycle(phaseWithPeaks(peaks), 625, 'faithful');
    expect(faithful.wraps).toEqual([53, 110, 170, 231, 291]);
    expect([faithful.start, faithful.end]).toEqual([111, 171]);
    const fixed = selectCycle(phaseWithPeaks(peaks), 625, 'fixed');
    // 2pi -> 0 drops at each R peak (incl. the last, after which phi = 0); middle pair = peaks 140 and 200.
    expect(fixed.wraps).toEqual([81, 139, 199, 261, 320]);
    expect([fixed.start, fixed.end]).toEqual([140, 200]);
  });

  it('falls back to the whole sequence for a window under 10 steps', () => {
    const w = selectCycle(phaseWithPeaks([100, 105, 110, 115]), 625, 'faithful');
    expect(w.rule).toBe('short-window-whole');
    expect([w.start, w.end]).toEqual([0, 625]);
  });
});

describe('resizeLinear1d (align_corners = false)', () => {
  it('matches hand-computed values', () => {
    // 4 -> 2: src = (i + 0.5) * 2 - 0.5 = 0.5, 2.5 -> means of neighbours.
    expect([...resizeLinear1d([0, 1, 2, 3], 1, 4, 0, 4, 2)]).toEqual([0.5, 2.5]);
    // 2 -> 4: src = (i + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (i1 clamped).
    expect([...resizeLinear1d([0, 4], 1, 2, 0, 2, 4)]).toEqual([0, 1, 3, 4]);
    // Crop [1, 3) of two channels, then identity-size resize.
    expect([...resizeLinear1d([0, 1, 2, 3, 10, 11, 12, 13], 2, 4, 1, 3, 2)]).toEqual([1, 2, 11, 12]);
  });
});
