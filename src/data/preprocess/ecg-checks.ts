/**
 * Plausibility checks on an ECG recording, in one place: every reader's output goes through `prepareEcg`,
 * which calls `screenEcgRecording` before it touches the samples and `checkHeartRate` once the leads are
 * at 500 Hz, so a new reader gets all of them without code of its own.
 *
 * What is checked, and why these numbers (docs/DATA.md, "Plausibility checks"):
 * - Sampling frequency 50-10,000 Hz (`ECG_FS_RANGE`), before anything is allocated. Clinical ECGs are
 *   recorded at 100-1000 Hz, research and animal ECGs at up to a few kHz; a rate outside the range is a
 *   wrong header or a time column in the wrong unit, and resampling from it would allocate gigabytes.
 * - Flat lead: std < 1 µV (`ECG_FLAT_STD_MV`): a disconnected electrode or a lead the device did not record.
 * - Amplitude, per lead, as the 0.1-99.9 % range after removing a 1 s moving mean (baseline wander and DC
 *   offset do not count; single-sample spikes do not count): QRS complexes are 0.5-5 mV, rarely 6-7 mV in
 *   hypertrophy. Above 20 mV (`ECG_MAX_RANGE_MV`) the numbers are not mV: µV stored as mV give 500-5000,
 *   raw ADC counts 100-10,000. 10-20 mV is a warning. All leads flat with a largest value under 0.01 mV
 *   looks like volts stored as mV.
 * - Heart rate 20-300 bpm (`ECG_HEART_RATE_RANGE`) from the median R-R interval of the robust detector
 *   (rpeaks-robust.ts) on lead II (or the largest lead): bradycardia rarely goes under 30 bpm and
 *   ventricular rates over 250-300 bpm are not sustained in adults, so a rate outside the range means the
 *   declared sampling frequency is wrong (a rate read 5x too low divides the heart rate by 5).
 *
 * Modes (`EcgCheckMode`): 'strict' refuses on any doubt (a flat or implausible lead, an unmeasurable heart
 * rate, a missing lead); 'normal' (default) drops a flat or implausible single lead with a warning (it is
 * treated as missing: derived when it is a limb lead, zeros otherwise) and refuses wrong units and heart
 * rates; 'lenient' keeps refusing only what cannot be processed (non-finite values, a sampling frequency
 * outside 50-10,000 Hz, no usable lead) and turns the unit and heart-rate refusals into warnings, for
 * unusual but genuine data (e.g. a small animal's 600 bpm).
 */
import { DataError, assertFinite } from '../errors';
import { robustRPeaks } from '../rpeaks-robust';

/** A recording as every ECG reader returns it (re-exported by ecg.ts). */
export interface EcgRecording {
  /** One Float32Array per signal, physical units converted to mV. */
  signals: Float32Array[];
  leadNames: string[];
  fs: number;
  source: string;
}

export const ECG_CHECK_MODES = ['strict', 'normal', 'lenient'] as const;
export type EcgCheckMode = (typeof ECG_CHECK_MODES)[number];

export const ECG_FS_RANGE = { min: 50, max: 10_000 } as const;
export const ECG_HEART_RATE_RANGE = { min: 20, max: 300 } as const;
/** Std below which a lead is a flat line (1 µV, in mV). */
export const ECG_FLAT_STD_MV = 1e-3;
/** Baseline-free peak-to-peak (mV) above which a lead cannot be in mV. */
export const ECG_MAX_RANGE_MV = 20;
/** Baseline-free peak-to-peak (mV) above which a lead is unusually large (warning). */
export const ECG_LARGE_RANGE_MV = 10;

const UNITS_FIX = 'check the units/gain field (WFDB: gain and units on the signal line of the .hea; CSV and NPY: store mV, or in the API parseEcgCsv unitsScale 0.001 for µV)';
/** Seconds (from the middle of the recording) that the flat and amplitude statistics look at. */
const ANALYSIS_SECONDS = 60;

/** DataError unless `fs` is a finite rate inside ECG_FS_RANGE; call it before allocating from a rate. */
export function assertPlausibleFs(fs: number, source: string, what = 'sampling frequency'): void {
  if (!(Number.isFinite(fs) && fs >= ECG_FS_RANGE.min && fs <= ECG_FS_RANGE.max)) {
    throw new DataError(source, `${what} ${fs} Hz is outside ${ECG_FS_RANGE.min}-${ECG_FS_RANGE.max} Hz; the header or the time column is wrong, or pass the rate explicitly (--fs)`);
  }
}

function stdOf(x: ArrayLike<number>): number {
  let mean = 0;
  for (let i = 0; i < x.length; i++) mean += x[i];
  mean /= x.length;
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i] - mean) ** 2;
  return Math.sqrt(s / x.length);
}

function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

/** 0.1-99.9 % range of the signal minus its 1 s moving mean (on at most ~50,000 evenly spaced samples). */
export function baselineFreeRange(x: ArrayLike<number>, fs: number): number {
  const n = x.length;
  const half = Math.max(1, Math.round(fs / 2));
  const prefix = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) prefix[i + 1] = prefix[i] + x[i];
  const stride = Math.max(1, Math.floor(n / 50_000));
  const values = new Float64Array(Math.ceil(n / stride));
  for (let k = 0, i = 0; i < n; i += stride, k++) {
    const a = Math.max(0, i - half);
    const b = Math.min(n, i + half + 1);
    values[k] = x[i] - (prefix[b] - prefix[a]) / (b - a);
  }
  values.sort();
  const at = (q: number) => values[Math.min(values.length - 1, Math.max(0, Math.round(q * (values.length - 1))))];
  return at(0.999) - at(0.001);
}

export interface EcgScreening {
  warnings: string[];
  /** Input signals not to use (flat, or implausible amplitude in 'normal' mode), with the reason. */
  unusable: Map<number, string>;
}

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toPrecision(2));

/**
 * The checks that need only the recording: structure, rate, finite values, flat leads and units.
 * Throws a DataError for what cannot be processed; returns warnings and the leads to leave out.
 */
export function screenEcgRecording(rec: EcgRecording, mode: EcgCheckMode = 'normal'): EcgScreening {
  const src = rec.source;
  if (rec.signals.length === 0) throw new DataError(src, 'recording holds no signals');
  if (rec.signals.length !== rec.leadNames.length) {
    throw new DataError(src, `${rec.signals.length} signals but ${rec.leadNames.length} lead names`);
  }
  assertPlausibleFs(rec.fs, src);
  const length = rec.signals[0].length;
  if (rec.signals.some((s) => s.length !== length)) throw new DataError(src, 'signals have different lengths');
  if (length / rec.fs < 2) throw new DataError(src, `recording is ${(length / rec.fs).toFixed(2)} s long; at least 2 s needed`);
  rec.signals.forEach((s, i) => assertFinite(s, src, `lead ${rec.leadNames[i]}`));

  const warnings: string[] = [];
  const unusable = new Map<number, string>();
  // Statistics on the middle minute at most (the model sees the middle 10 s), so a day-long Holter
  // recording costs no more than a minute of it.
  const window = Math.min(length, Math.round(ANALYSIS_SECONDS * rec.fs));
  const from = Math.floor((length - window) / 2);
  const middle = rec.signals.map((s) => s.subarray(from, from + window));
  const stds = middle.map(stdOf);
  const flat = stds.map((s) => s < ECG_FLAT_STD_MV);
  if (flat.every(Boolean)) {
    const largest = Math.max(...middle.map(maxAbs));
    const hint = largest < 0.01 ? `; values only reach ${fmt(largest)} mV: if the file stores volts, ${UNITS_FIX}` : '';
    throw new DataError(src, `every lead is flat (std < 1 µV)${hint}`);
  }
  flat.forEach((isFlat, i) => {
    if (!isFlat) return;
    const problem = `lead ${rec.leadNames[i]} is a flat line (std ${fmt(stds[i] * 1000)} µV < 1 µV)`;
    if (mode === 'strict') throw new DataError(src, `${problem} (strict mode)`);
    unusable.set(i, problem);
    warnings.push(`${src}: ${problem}: not used; treated as a missing lead (derived from two limb leads, or zeros)`);
  });

  const ranges = middle.map((s, i) => (flat[i] ? 0 : baselineFreeRange(s, rec.fs)));
  const live = ranges.map((_, i) => i).filter((i) => !flat[i]);
  const huge = live.filter((i) => ranges[i] > ECG_MAX_RANGE_MV);
  const largestValue = (idx: number[]) => fmt(Math.max(...idx.map((i) => maxAbs(middle[i]))));
  if (huge.length * 2 > live.length) {
    const lo = Math.min(...huge.map((i) => ranges[i]));
    const hi = Math.max(...huge.map((i) => ranges[i]));
    const problem = `${huge.length} of ${live.length} leads span ${fmt(lo)}-${fmt(hi)} mV peak-to-peak (values up to ${largestValue(huge)} mV; an ECG's QRS is 0.5-5 mV, over ${ECG_MAX_RANGE_MV} mV is not mV): looks like µV or ADC counts; ${UNITS_FIX}`;
    if (mode !== 'lenient') throw new DataError(src, `${problem}, or use lenient checks to keep the values (--lenient; generate: --ecg-checks lenient)`);
    warnings.push(`${src}: ${problem} (kept: lenient checks)`);
  } else {
    for (const i of huge) {
      const problem = `lead ${rec.leadNames[i]} spans ${fmt(ranges[i])} mV peak-to-peak (values up to ${largestValue([i])} mV; over ${ECG_MAX_RANGE_MV} mV is not an ECG in mV): looks like µV or ADC counts, or a saturated electrode; ${UNITS_FIX}`;
      if (mode === 'strict') throw new DataError(src, `${problem} (strict mode)`);
      if (mode === 'lenient') warnings.push(`${src}: ${problem} (kept: lenient checks)`);
      else {
        unusable.set(i, problem);
        warnings.push(`${src}: ${problem}; not used: treated as a missing lead`);
      }
    }
  }
  for (const i of live) {
    if (ranges[i] > ECG_LARGE_RANGE_MV && ranges[i] <= ECG_MAX_RANGE_MV) {
      warnings.push(`${src}: lead ${rec.leadNames[i]} spans ${fmt(ranges[i])} mV peak-to-peak, unusually large for mV (QRS 0.5-5 mV); check the gain if this is not a very high-voltage ECG`);
    }
  }
  const liveRanges = live.map((i) => ranges[i]).sort((a, b) => a - b);
  const medianRange = liveRanges[Math.floor(liveRanges.length / 2)];
  if (medianRange < 0.1) {
    warnings.push(`${src}: amplitudes are very low (median peak-to-peak ${fmt(medianRange * 1000)} µV; QRS is 0.5-5 mV): check the units (volts stored as mV?) or the gain`);
  }
  return { warnings, unusable };
}

export interface HeartRate {
  /** Median-RR heart rate of the robust R-peak detector, or null when fewer than 2 R peaks were found. */
  bpm: number | null;
  peaks: number;
  /** Heart rate from the large deflections (deflectionHeartRate), or null when fewer than 2. */
  deflectionBpm: number | null;
}

/**
 * A heart rate from the large deflections alone: the signal minus its 1 s moving mean crosses 40 % of its
 * 99.9th percentile (and falls back under 20 % before counting again) (on the dominant side, so inverted leads count) once per beat; the median interval
 * between crossings (120 ms dead time, so up to 500 bpm) is the R-R. It needs no QRS-shaped band, so it still sees the beats
 * of a recording slowed by a wrong rate, where the R-peak detector's 5-15 Hz band finds only noise.
 */
export function deflectionHeartRate(x: Float32Array, fs: number): number | null {
  const n = x.length;
  const half = Math.max(1, Math.round(fs / 2));
  const prefix = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) prefix[i + 1] = prefix[i] + x[i];
  const centred = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const a = Math.max(0, i - half);
    const b = Math.min(n, i + half + 1);
    centred[i] = x[i] - (prefix[b] - prefix[a]) / (b - a);
  }
  const sorted = Float64Array.from(centred).sort();
  const top = sorted[Math.floor(0.999 * (n - 1))];
  const bottom = -sorted[Math.ceil(0.001 * (n - 1))];
  const sign = top >= bottom ? 1 : -1;
  const level = 0.4 * Math.max(top, bottom);
  if (!(level > 0)) return null;
  const deadTime = Math.round(0.12 * fs);
  // Hysteresis: after a crossing the signal must fall back under half the level before the next one
  // counts, so noise on a wide (or slowed) R wave does not count it twice.
  const crossings: number[] = [];
  let armed = true;
  for (let i = 0; i < n; i++) {
    const v = sign * centred[i];
    if (armed && v >= level && (!crossings.length || i - crossings[crossings.length - 1] >= deadTime)) {
      crossings.push(i);
      armed = false;
    } else if (!armed && v < 0.5 * level) armed = true;
  }
  if (crossings.length < 2) return null;
  const intervals = crossings.slice(1).map((c, k) => c - crossings[k]).sort((a, b) => a - b);
  return (60 * fs) / intervals[Math.floor(intervals.length / 2)];
}

/** Heart rate two ways: the robust detector's median R-R (refractory 120 ms, up to 500 bpm) and the large deflections. */
export function measureHeartRate(signal: Float32Array, fs: number): HeartRate {
  const peaks = robustRPeaks(signal, fs, { refractory: 0.12 });
  const deflectionBpm = deflectionHeartRate(signal, fs);
  if (peaks.length < 2) return { bpm: null, peaks: peaks.length, deflectionBpm };
  const rr = peaks.slice(1).map((p, k) => p - peaks[k]).sort((a, b) => a - b);
  return { bpm: (60 * fs) / rr[Math.floor(rr.length / 2)], peaks: peaks.length, deflectionBpm };
}

/**
 * Checks the heart rate measured on `signal` (one lead at `fs`, the recording already resampled) against
 * ECG_HEART_RATE_RANGE; `declaredFs` is the rate the file gave. Two estimates, because each fails alone:
 * on a recording slowed by a wrong rate the R-peak detector finds noise at a normal-looking rate while the
 * large deflections show the slow beats; a smooth wave or a very wide QRS can make the detector count twice
 * and large ectopic beats can hide the others from the deflection count. So: both estimates (or the only
 * one) outside the range on the same side -> DataError ('lenient': warning); one of two outside -> warning
 * ('strict': DataError).
 */
export function checkHeartRate(signal: Float32Array, fs: number, lead: string, declaredFs: number, source: string, mode: EcgCheckMode, warnings: string[]): number | null {
  const { bpm, peaks, deflectionBpm } = measureHeartRate(signal, fs);
  const seconds = (signal.length / fs).toFixed(1);
  const side = (v: number | null) => (v === null ? 0 : v < ECG_HEART_RATE_RANGE.min ? -1 : v > ECG_HEART_RATE_RANGE.max ? 1 : 0);
  if (bpm === null && deflectionBpm === null) {
    const problem = `no heart rate measurable on lead ${lead} (${peaks} R peak(s) in ${seconds} s)`;
    if (mode === 'strict') throw new DataError(source, `${problem} (strict mode)`);
    warnings.push(`${source}: ${problem}; check the signal and its sampling frequency (${declaredFs} Hz)`);
    return null;
  }
  const [a, b] = [side(bpm), side(deflectionBpm)];
  if (a === 0 && b === 0) return bpm ?? deflectionBpm;
  const shown = a !== 0 ? bpm! : deflectionBpm!;
  const detector = bpm === null ? `${peaks} R peak(s)` : `${Math.round(bpm)} bpm from ${peaks} R peaks`;
  const deflections = deflectionBpm === null ? 'none' : `${Math.round(deflectionBpm)} bpm`;
  const problem = `heart rate ${Math.round(shown)} bpm on lead ${lead} in ${seconds} s (R-peak detector: ${detector}; large deflections: ${deflections}) is outside ${ECG_HEART_RATE_RANGE.min}-${ECG_HEART_RATE_RANGE.max} bpm: the sampling frequency (${declaredFs} Hz) is probably wrong; check the header / --fs`;
  const agreed = (a !== 0 && (b === a || deflectionBpm === null)) || (b !== 0 && bpm === null);
  if (mode === 'strict' || (agreed && mode === 'normal')) throw new DataError(source, `${problem}${mode === 'strict' ? ' (strict mode)' : ', or use lenient checks for a genuine rate (--lenient; generate: --ecg-checks lenient)'}`);
  warnings.push(`${source}: ${problem}${agreed ? ' (kept: lenient checks)' : ' (the two estimates disagree, so this is only a warning)'}`);
  return bpm ?? deflectionBpm;
}
