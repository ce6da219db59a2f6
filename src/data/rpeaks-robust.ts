/**
 * Pan-Tompkins-style R-peak detector for noisy and arrhythmic single-lead recordings.
 *
 * Steps: zero-phase 5-15 Hz Butterworth band-pass -> five-point derivative -> squaring -> 150 ms
 * moving-window integration -> peak picking with adaptive signal/noise levels (two thresholds),
 * 200 ms refractory period, T-wave rejection by slope inside max(360 ms, 0.8 mean RR) (600 ms before the first RR), search-back after 1.66 mean RR
 * with the lower threshold, and finally refinement to the extreme of the raw (baseline-removed)
 * signal near each detection. The polarity of that extreme is chosen once per recording from the
 * median QRS deflection, so inverted leads give their (negative) R peaks too.
 * All filters are zero-phase so detections are not delayed.
 */

export interface RobustDetectorOptions {
  /** Half-width of the raw-signal refinement window, seconds (default 0.06). */
  refineWindow?: number;
  /** Refractory period, seconds (default 0.2). */
  refractory?: number;
}

/** Second-order Butterworth section (bilinear transform), as [b0, b1, b2, a1, a2]. */
function butterworth2(kind: 'low' | 'high', cutoffHz: number, fs: number): number[] {
  const k = Math.tan((Math.PI * cutoffHz) / fs);
  const q = Math.SQRT1_2;
  const norm = 1 / (1 + k / q + k * k);
  const a1 = 2 * (k * k - 1) * norm;
  const a2 = (1 - k / q + k * k) * norm;
  if (kind === 'low') {
    const b0 = k * k * norm;
    return [b0, 2 * b0, b0, a1, a2];
  }
  return [norm, -2 * norm, norm, a1, a2];
}

function biquad(x: Float64Array, c: number[]): Float64Array {
  const [b0, b1, b2, a1, a2] = c;
  const y = new Float64Array(x.length);
  let x1 = x[0], x2 = x[0], y1 = 0, y2 = 0;
  // Start from the steady state of a constant input to avoid an edge transient.
  const dc = (b0 + b1 + b2) / (1 + a1 + a2);
  y1 = y2 = dc * x[0];
  for (let i = 0; i < x.length; i++) {
    const v = b0 * x[i] + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
    x2 = x1; x1 = x[i]; y2 = y1; y1 = v;
    y[i] = v;
  }
  return y;
}

/** Forward-backward filtering: zero phase, squared magnitude response. */
function filtfilt(x: Float64Array, sections: number[][]): Float64Array {
  let y = x;
  for (const s of sections) y = biquad(y, s);
  y.reverse();
  for (const s of sections) y = biquad(y, s);
  return y.reverse();
}

function movingAverage(x: Float64Array, width: number): Float64Array {
  const half = Math.floor(width / 2);
  const prefix = new Float64Array(x.length + 1);
  for (let i = 0; i < x.length; i++) prefix[i + 1] = prefix[i] + x[i];
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const a = Math.max(0, i - half);
    const b = Math.min(x.length, i + half + 1);
    out[i] = (prefix[b] - prefix[a]) / (b - a);
  }
  return out;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : 0;
}

export function robustRPeaks(signal: ArrayLike<number>, fs = 500, options: RobustDetectorOptions = {}): number[] {
  const n = signal.length;
  if (n < fs) return [];
  const raw = Float64Array.from(signal as ArrayLike<number>);
  const band = filtfilt(raw, [butterworth2('high', 5, fs), butterworth2('low', 15, fs)]);
  const deriv = new Float64Array(n);
  for (let i = 2; i < n - 2; i++) deriv[i] = (-band[i - 2] - 2 * band[i - 1] + 2 * band[i + 1] + band[i + 2]) / 8;
  const squared = deriv.map((d) => d * d);
  const integrated = movingAverage(squared, Math.round(0.15 * fs));

  const refractory = Math.round((options.refractory ?? 0.2) * fs);
  const tWaveWindow = Math.round(0.36 * fs);
  // Before an RR interval is known the T window cannot scale with it: 600 ms covers the T peak of a long QT
  // (e.g. a dilated ventricle at 80 bpm, T ~480 ms after R); a true next beat inside it still passes, since it
  // is rejected only when its slope or energy is far below the last QRS's.
  const firstTWaveWindow = Math.round(0.6 * fs);
  // Local maxima of the integrated signal, at least 40 ms apart (keeps the tallest).
  const candidates: number[] = [];
  const minGap = Math.round(0.04 * fs);
  for (let i = 1; i < n - 1; i++) {
    if (integrated[i] > integrated[i - 1] && integrated[i] >= integrated[i + 1]) {
      const last = candidates.length - 1;
      if (last >= 0 && i - candidates[last] < minGap) {
        if (integrated[i] > integrated[candidates[last]]) candidates[last] = i;
      } else candidates.push(i);
    }
  }
  const slopeNear = (i: number) => {
    let m = 0;
    for (let j = Math.max(0, i - Math.round(0.075 * fs)); j <= Math.min(n - 1, i + Math.round(0.075 * fs)); j++) m = Math.max(m, Math.abs(deriv[j]));
    return m;
  };

  // Learning phase: the first 2 s set the initial signal and noise levels.
  const learn = integrated.subarray(0, Math.min(n, 2 * fs));
  // A loop, not Math.max(...learn): spreading 2 s at a high rate overflows the call stack.
  let learnMax = -Infinity;
  for (const v of learn) learnMax = Math.max(learnMax, v);
  let spk = 0.25 * learnMax;
  let npk = 0.5 * (learn.reduce((a, b) => a + b, 0) / learn.length);
  const qrs: number[] = [];
  const rrs: number[] = [];
  let lastSlope = 0;
  const threshold1 = () => npk + 0.25 * (spk - npk);

  const accept = (i: number, searchBack: boolean) => {
    const peak = integrated[i];
    spk = searchBack ? 0.25 * peak + 0.75 * spk : 0.125 * peak + 0.875 * spk;
    if (qrs.length) rrs.push(i - qrs[qrs.length - 1]);
    if (rrs.length > 8) rrs.shift();
    qrs.push(i);
    lastSlope = slopeNear(i);
  };

  let ci = 0;
  while (ci < candidates.length) {
    const i = candidates[ci];
    const peak = integrated[i];
    const last = qrs.length ? qrs[qrs.length - 1] : -Infinity;
    // Search-back: too long since the last beat -> take the best skipped candidate above threshold 2.
    const meanRr = rrs.length ? rrs.reduce((a, b) => a + b, 0) / rrs.length : 0;
    if (meanRr > 0 && i - last > 1.66 * meanRr) {
      let best = -1;
      for (let k = ci - 1; k >= 0 && candidates[k] > last + refractory; k--) {
        const c = candidates[k];
        if (integrated[c] > 0.5 * threshold1() && (best < 0 || integrated[c] > integrated[best])) best = c;
      }
      if (best >= 0) {
        accept(best, true);
        continue; // re-examine the current candidate against the new beat
      }
    }
    ci++;
    if (i - last < refractory) {
      // Two peaks inside the refractory period: keep the larger one.
      if (peak > integrated[last]) {
        qrs[qrs.length - 1] = i;
        lastSlope = slopeNear(i);
      }
      continue;
    }
    if (peak > threshold1()) {
      // Inside max(360 ms, 0.8 mean RR) (long QT at fast rates puts T peaks past 360 ms) a weaker-sloped or much smaller peak is taken for a T wave.
      const tWindow = meanRr > 0 ? Math.max(tWaveWindow, 0.8 * meanRr) : firstTWaveWindow;
      // Up to one mean RR, only a peak far weaker on both counts: a T wave past the window when the first RR
      // interval was misjudged (a beat cut by the start) would otherwise be taken, and skew the mean RR after it.
      const slope = slopeNear(i);
      const weak = slope < 0.6 * lastSlope || peak < 0.7 * integrated[last];
      const faint = slope < 0.4 * lastSlope && peak < 0.25 * integrated[last];
      if ((i - last < tWindow && weak) || (i - last < meanRr && faint)) {
        npk = 0.125 * peak + 0.875 * npk; // a T wave
        continue;
      }
      accept(i, false);
    } else {
      npk = 0.125 * peak + 0.875 * npk;
    }
  }

  // Refine on the raw signal minus a 0.6 s moving baseline, at the dominant QRS polarity.
  const baseline = movingAverage(raw, Math.round(0.6 * fs));
  const centred = raw.map((v, i) => v - baseline[i]);
  const half = Math.round((options.refineWindow ?? 0.06) * fs);
  // Near either end the integration window is cut, which moves a beat's energy peak up to half its width
  // inwards: there the search reaches the end of the recording.
  const integrationHalf = Math.round(0.075 * fs);
  const range = (i: number) => [i - half <= integrationHalf ? 0 : i - half, i + half >= n - 1 - integrationHalf ? n - 1 : i + half];
  const deflections = qrs.map((i) => {
    const [a, b] = range(i);
    let hi = -Infinity, lo = Infinity;
    for (let j = a; j <= b; j++) { hi = Math.max(hi, centred[j]); lo = Math.min(lo, centred[j]); }
    return hi + lo; // > 0 when the positive deflection dominates
  });
  const polarity = median(deflections) >= 0 ? 1 : -1;
  const refined: number[] = [];
  for (const i of qrs) {
    const [a, b] = range(i);
    let best = a;
    for (let j = a; j <= b; j++) if (polarity * centred[j] > polarity * centred[best]) best = j;
    // An extreme on the very first/last sample means the true peak lies outside the recording.
    if (best === 0 || best === n - 1) continue;
    if (refined.length && best - refined[refined.length - 1] < refractory) {
      if (polarity * centred[best] > polarity * centred[refined[refined.length - 1]]) refined[refined.length - 1] = best;
    } else refined.push(best);
  }
  return refined;
}
