/**
 * ECG phase tools: R-peak detection, phase targets and cycle selection (REFERENCE_SPEC.md 2.5).
 *
 * - referenceRPeaks: the reference code's threshold detector, exactly (used to build stage-1 targets).
 * - robustRPeaks (rpeaks-robust.ts): a Pan-Tompkins-style detector for noisy / arrhythmic recordings.
 * - phaseAngles / phaseTargets: the reference's linspace phase and [sin phi, cos phi] on the 625-step grid.
 * - selectCycle: the window of one cardiac cycle on the 625 grid from a predicted phase, 'faithful'
 *   (the reference's atan2 wrap at phi = pi, i.e. mid R-R to mid R-R) or 'fixed' (R peak to R peak).
 * - resizeLinear1d: PyTorch's linear interpolation (align_corners = false) of a (C, L) window.
 */
export { robustRPeaks, type RobustDetectorOptions } from './rpeaks-robust';

export const PHASE_STEPS = 625;
export const PHASE_DECIMATION = 8;

/**
 * The reference detector: threshold = mean + 0.5 std (population std); candidates are strict local maxima
 * (x[i] > x[i-1] and x[i] >= x[i+1]) above it; a candidate closer than minDistance (0.25 s) to the last kept
 * peak replaces it when taller, otherwise it is dropped.
 */
export function referenceRPeaks(signal: ArrayLike<number>, fs = 500): number[] {
  const n = signal.length;
  if (n < 3) return [];
  let mean = 0;
  for (let i = 0; i < n; i++) mean += signal[i];
  mean /= n;
  let variance = 0;
  for (let i = 0; i < n; i++) variance += (signal[i] - mean) ** 2;
  const threshold = mean + 0.5 * Math.sqrt(variance / n);
  const minDistance = Math.round(0.25 * fs);
  const peaks: number[] = [];
  for (let i = 1; i < n - 1; i++) {
    const x = signal[i];
    if (!(x > threshold && x > signal[i - 1] && x >= signal[i + 1])) continue;
    const last = peaks.length - 1;
    if (last >= 0 && i - peaks[last] < minDistance) {
      if (x > signal[peaks[last]]) peaks[last] = i;
    } else {
      peaks.push(i);
    }
  }
  return peaks;
}

/**
 * Ground-truth phase angle (float64, full rate) of a recording of `length` samples with R peaks at `rPeaks`,
 * exactly as the reference builds it: phase = zeros(length); for each consecutive pair (start, end):
 * phase[start:end] = np.linspace(0, 2 pi, end - start). So phi(i) = (i - start) * 2 pi / (end - start - 1)
 * on [start, end - 1), phi(end - 1) = 2 pi exactly (numpy writes the stop value into the last slot), and the
 * sample `end` itself belongs to the next interval (phi = 0 there). A one-sample interval gets phi = 0.
 * Before the first and from the last peak on (the last peak included), phi = 0; with fewer than 2 peaks
 * phi = 0 everywhere. Peaks outside [0, length) are dropped; duplicates are ignored.
 */
export function phaseAngles(rPeaks: readonly number[], length = 5000): Float64Array {
  const phi = new Float64Array(length);
  const peaks = [...new Set(rPeaks)].filter((p) => Number.isInteger(p) && p >= 0 && p < length).sort((a, b) => a - b);
  for (let k = 0; k + 1 < peaks.length; k++) {
    const start = peaks[k];
    const count = peaks[k + 1] - start;
    if (count < 2) continue; // linspace(0, 2 pi, 1) = [0]: already zero
    // Same float64 arithmetic as numpy.linspace: step = (stop - start) / (num - 1); y[i] = i * step + 0.
    const step = (2 * Math.PI) / (count - 1);
    for (let i = 0; i < count - 1; i++) phi[start + i] = i * step;
    phi[start + count - 1] = 2 * Math.PI;
  }
  return phi;
}

/**
 * Stage-1 phase targets: phaseAngles decimated by taking every `decimation`-th sample, as (2, steps)
 * row-major float32: row 0 = sin phi, row 1 = cos phi (the reference's target, spec 2.5).
 */
export function phaseTargets(rPeaks: readonly number[], length = 5000, decimation = PHASE_DECIMATION): Float32Array {
  const phi = phaseAngles(rPeaks, length);
  const steps = Math.ceil(length / decimation);
  const out = new Float32Array(2 * steps);
  for (let s = 0; s < steps; s++) {
    const value = phi[s * decimation];
    out[s] = Math.sin(value);
    out[steps + s] = Math.cos(value);
  }
  return out;
}

export type CycleMode = 'faithful' | 'fixed';

export interface CycleWindow {
  /** [start, end) on the phase grid. */
  start: number;
  end: number;
  /** Wrap positions found (index i means the drop happens between step i and i + 1). */
  wraps: number[];
  /** Which rule produced the window. */
  rule: 'middle-pair' | 'short-window-whole' | 'few-wraps-middle-third';
}

/**
 * Picks one cardiac cycle from a predicted phase (2, steps): row 0 sin, row 1 cos.
 * 'faithful': theta = atan2(sin, cos) in (-pi, pi]; a wrap is a drop > 3.0 rad. Because atan2 jumps at
 *   phi = pi, this window runs from mid R-R to the next mid R-R (the reference's quirk, spec 2.5).
 * 'fixed': the same rule on phi = theta mod 2 pi in [0, 2 pi), whose drops are the 2 pi -> 0 wraps at the
 *   R peaks, so the window runs R peak to R peak, matching R-gated cine.
 * Both: with >= 2 wraps take the middle pair m = floor(#wraps / 2): (wrap[m-1] + 1, wrap[m] + 1); a window
 * shorter than 10 steps falls back to the whole sequence; < 2 wraps fall back to the middle third.
 */
export function selectCycle(phase: ArrayLike<number>, steps = PHASE_STEPS, mode: CycleMode = 'faithful'): CycleWindow {
  if (phase.length !== 2 * steps) {
    throw new Error(`selectCycle: phase must hold 2 x ${steps} values, got ${phase.length}`);
  }
  const angle = new Float64Array(steps);
  for (let i = 0; i < steps; i++) {
    const theta = Math.atan2(phase[i], phase[steps + i]);
    angle[i] = mode === 'faithful' ? theta : theta < 0 ? theta + 2 * Math.PI : theta;
  }
  const wraps: number[] = [];
  for (let i = 0; i + 1 < steps; i++) if (angle[i + 1] - angle[i] < -3.0) wraps.push(i);
  if (wraps.length < 2) {
    return { start: Math.floor(steps / 3), end: Math.floor((2 * steps) / 3), wraps, rule: 'few-wraps-middle-third' };
  }
  const m = Math.floor(wraps.length / 2);
  const start = wraps[m - 1] + 1;
  const end = wraps[m] + 1;
  if (end - start < 10) return { start: 0, end: steps, wraps, rule: 'short-window-whole' };
  return { start, end, wraps, rule: 'middle-pair' };
}

/**
 * Crops columns [start, end) of a (channels, length) row-major array and resizes them to outLength by
 * linear interpolation with PyTorch's align_corners = false rule:
 * src = max((i + 0.5) * in / out - 0.5, 0), neighbours floor(src) and min(floor(src) + 1, in - 1).
 */
export function resizeLinear1d(
  data: ArrayLike<number>,
  channels: number,
  length: number,
  start = 0,
  end = length,
  outLength = 50,
): Float32Array {
  if (data.length !== channels * length) {
    throw new Error(`resizeLinear1d: expected ${channels} x ${length} values, got ${data.length}`);
  }
  if (!(start >= 0 && end <= length && end > start)) {
    throw new Error(`resizeLinear1d: bad window [${start}, ${end}) for length ${length}`);
  }
  const inLength = end - start;
  const scale = inLength / outLength;
  const out = new Float32Array(channels * outLength);
  for (let i = 0; i < outLength; i++) {
    const src = Math.max((i + 0.5) * scale - 0.5, 0);
    const i0 = Math.floor(src);
    const i1 = Math.min(i0 + 1, inLength - 1);
    const lambda = src - i0;
    for (let c = 0; c < channels; c++) {
      const row = c * length + start;
      out[c * outLength + i] = (1 - lambda) * data[row + i0] + lambda * data[row + i1];
    }
  }
  return out;
}
