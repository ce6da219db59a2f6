/**
 * ECG preprocessing to the model input (12, 5000) at 500 Hz, leads I, II, III, aVR, aVL, aVF, V1..V6 in mV.
 *
 * - Plausibility first (ecg-checks.ts): sampling frequency 50-10,000 Hz, NaN/Inf, flat leads, units
 *   (amplitude), and after resampling the heart rate; `checks` picks strict / normal / lenient.
 * - Lead mapping by name (case, spaces, '-', '_' and a 'lead' prefix ignored; aliases MLII -> II, DI -> I...).
 *   Several signals none of which has a standard name: DataError (never an all-zero input).
 * - A flat (or, in normal mode, implausibly large) lead is left out with a warning and treated as missing.
 * - Missing limb leads are derived from two known ones (Einthoven/Goldberger) with a warning; other
 *   missing leads become zeros with a warning, or a DataError in strict mode.
 * - A single-lead recording whose lead has no standard name is placed as lead II (warning).
 * - Resampling to 500 Hz: windowed-sinc (Lanczos, a = 4) interpolation whose cut-off is the lower
 *   Nyquist frequency, so downsampling is anti-aliased; identity when fs is already 500. Only the output
 *   window that is kept is computed, so a long recording costs no more than 10 s of it.
 * - Length: longer than 5000 -> centre crop (keeps the middle 10 s); shorter -> padded at the end with
 *   each lead's last value (keeps sample 0 = recording start, no step); both warn. Under 2 s -> error.
 */
import { DataError } from '../errors';
import { LEAD_NAMES, type LeadName } from '../phantom/ecg';
import { type EcgCheckMode, type EcgRecording, checkHeartRate, screenEcgRecording } from './ecg-checks';

export type { EcgCheckMode, EcgRecording } from './ecg-checks';
export { ECG_CHECK_MODES } from './ecg-checks';

export interface PrepareEcgOptions {
  /** Error on a missing lead instead of filling zeros; the same as checks: 'strict'. */
  strict?: boolean;
  /** How doubtful input is handled (ecg-checks.ts): 'strict', 'normal' (default) or 'lenient'. */
  checks?: EcgCheckMode;
  targetFs?: number;
  targetLength?: number;
  /** Where an unnamed single lead goes (default 'II'). */
  singleLeadAs?: LeadName;
  /** Derive missing limb leads from two present ones (default true). */
  deriveLimbLeads?: boolean;
}

export interface PreparedEcg {
  /** (12, 5000) row-major. */
  data: Float32Array;
  warnings: string[];
  /** For each output lead, the input signal index used, 'derived', or null (zeros). */
  mapping: (number | 'derived' | null)[];
  /** Median-RR heart rate measured on lead II (or the largest lead), null when unmeasurable. */
  heartRateBpm: number | null;
}

const ALIASES: Record<string, LeadName> = {
  I: 'I', DI: 'I', MLI: 'I', II: 'II', DII: 'II', MLII: 'II', III: 'III', DIII: 'III', MLIII: 'III',
  AVR: 'aVR', AVL: 'aVL', AVF: 'aVF',
  V1: 'V1', V2: 'V2', V3: 'V3', V4: 'V4', V5: 'V5', V6: 'V6', MV1: 'V1', MV2: 'V2', MV3: 'V3', MV4: 'V4', MV5: 'V5', MV6: 'V6',
};

/** Standard lead for a recorded name, or null. */
export function canonicalLeadName(name: string): LeadName | null {
  const key = name.toUpperCase().replace(/[\s_\-.]/g, '').replace(/^LEAD/, '').replace(/^ECG/, '');
  return ALIASES[key] ?? null;
}

function sinc(x: number): number {
  if (Math.abs(x) < 1e-9) return 1;
  const px = Math.PI * x;
  return Math.sin(px) / px;
}

/**
 * Lanczos (a = 4) resampling of one signal from fsIn to fsOut, anti-aliased when downsampling. Output
 * sample j lies at input time j * fsIn / fsOut; `start` and `count` select a window of the full output
 * (round(length * fsOut / fsIn) samples) so a crop does not compute what it throws away.
 */
export function resampleSignal(signal: ArrayLike<number>, fsIn: number, fsOut: number, start = 0, count?: number): Float32Array {
  const ratio = fsOut / fsIn;
  const fullLength = fsIn === fsOut ? signal.length : Math.max(1, Math.round(signal.length * ratio));
  const outLength = count ?? fullLength - start;
  if (fsIn === fsOut) return Float32Array.from({ length: outLength }, (_, j) => signal[start + j]);
  const a = 4;
  const cutoff = Math.min(1, ratio); // in units of the input Nyquist
  const out = new Float32Array(outLength);
  const half = a / cutoff;
  for (let k = 0; k < outLength; k++) {
    const t = (start + k) / ratio;
    const i0 = Math.max(0, Math.ceil(t - half));
    const i1 = Math.min(signal.length - 1, Math.floor(t + half));
    let acc = 0;
    let wsum = 0;
    for (let i = i0; i <= i1; i++) {
      const x = (i - t) * cutoff;
      const w = cutoff * sinc(x) * sinc(x / a);
      acc += w * signal[i];
      wsum += w;
    }
    out[k] = wsum !== 0 ? acc / wsum : 0;
  }
  return out;
}

export function prepareEcg(rec: EcgRecording, options: PrepareEcgOptions = {}): PreparedEcg {
  const targetFs = options.targetFs ?? 500;
  const targetLength = options.targetLength ?? 5000;
  const mode: EcgCheckMode = options.strict ? 'strict' : options.checks ?? 'normal';
  const src = rec.source;
  const { warnings, unusable } = screenEcgRecording(rec, mode);

  // Map input signals to standard leads; unusable (flat) signals are skipped so a duplicate can stand in.
  const index = new Map<LeadName, number>();
  const unnamed: string[] = [];
  rec.leadNames.forEach((name, i) => {
    const lead = canonicalLeadName(name);
    if (!lead) unnamed.push(name);
    if (unusable.has(i)) return;
    if (lead && !index.has(lead)) index.set(lead, i);
    else if (!lead && rec.signals.length > 1) warnings.push(`${src}: lead '${name}' not recognised; ignored`);
  });
  if (index.size === 0) {
    if (rec.signals.length === 1 && !unusable.has(0)) {
      const as = options.singleLeadAs ?? 'II';
      index.set(as, 0);
      warnings.push(`${src}: single lead '${rec.leadNames[0]}' placed as lead ${as}`);
    } else if (unnamed.length === rec.signals.length) {
      const names = rec.leadNames.map((n) => `'${n}'`).join(', ');
      throw new DataError(src, `no lead could be identified: none of the ${rec.signals.length} signal names (${names}) is a standard lead (I, II, III, aVR, aVL, aVF, V1-V6 or an alias such as MLII); name the leads (WFDB: description at the end of each signal line; CSV: header row; NPY: leadNames)`);
    } else {
      throw new DataError(src, `no usable lead: ${[...unusable.values()].join('; ')}`);
    }
  }

  // Only the kept window is resampled: the centre crop of the full output, or all of it when shorter.
  const fullLength = rec.fs === targetFs ? rec.signals[0].length : Math.max(1, Math.round(rec.signals[0].length * (targetFs / rec.fs)));
  const cropStart = fullLength > targetLength ? Math.floor((fullLength - targetLength) / 2) : 0;
  const kept = Math.min(fullLength, targetLength);
  const used = new Set(index.values());
  const fitted = rec.signals.map((s, i) => {
    if (!used.has(i)) return null;
    const r = resampleSignal(s, rec.fs, targetFs, cropStart, kept);
    if (kept === targetLength) return r;
    const out = new Float32Array(targetLength);
    out.set(r);
    out.fill(r[kept - 1], kept);
    return out;
  });
  if (rec.fs !== targetFs) warnings.push(`${src}: resampled ${rec.fs} Hz to ${targetFs} Hz (Lanczos-4 sinc)`);
  if (fullLength > targetLength) warnings.push(`${src}: ${fullLength} samples centre-cropped to ${targetLength}`);
  if (fullLength < targetLength) warnings.push(`${src}: ${fullLength} samples padded to ${targetLength} with each lead's last value`);

  const out = new Float32Array(12 * targetLength);
  const mapping: (number | 'derived' | null)[] = new Array(12).fill(null);
  const get = (lead: LeadName): Float32Array | null => {
    const i = index.get(lead);
    return i === undefined ? null : fitted[i];
  };
  LEAD_NAMES.forEach((lead, li) => {
    const s = get(lead);
    if (s) {
      out.set(s, li * targetLength);
      mapping[li] = index.get(lead)!;
    }
  });

  if (options.deriveLimbLeads !== false) deriveLimbLeads(out, mapping, targetLength, warnings, src);

  const missing = LEAD_NAMES.filter((_, li) => mapping[li] === null);
  if (missing.length) {
    if (mode === 'strict') throw new DataError(src, `missing lead(s) ${missing.join(', ')} (strict mode)`);
    warnings.push(`${src}: missing lead(s) ${missing.join(', ')} filled with zeros`);
  }

  // Heart rate on lead II when present (or derived), else on the lead with the largest deflections.
  let rateLead = 1;
  if (mapping[1] === null) {
    let best = -1;
    LEAD_NAMES.forEach((_, li) => {
      if (mapping[li] === null) return;
      const row = out.subarray(li * targetLength, (li + 1) * targetLength);
      let lo = Infinity, hi = -Infinity;
      for (const v of row) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      if (hi - lo > best) { best = hi - lo; rateLead = li; }
    });
  }
  const rateSignal = out.subarray(rateLead * targetLength, rateLead * targetLength + kept);
  const heartRateBpm = checkHeartRate(rateSignal, targetFs, LEAD_NAMES[rateLead], rec.fs, src, mode, warnings);
  return { data: out, warnings, mapping, heartRateBpm };
}

/**
 * Fills missing limb leads from any two known ones. With I and II known: III = II - I, aVR = -(I + II)/2,
 * aVL = I - II/2, aVF = II - I/2; other known pairs are first turned into (I, II).
 */
function deriveLimbLeads(out: Float32Array, mapping: (number | 'derived' | null)[], n: number, warnings: string[], src: string) {
  const has = (li: number) => mapping[li] !== null;
  const row = (li: number) => out.subarray(li * n, (li + 1) * n);
  if (![0, 1, 2, 3, 4, 5].some((li) => !has(li))) return;
  // Solve for I and II from a known pair (leads as linear combinations of I and II).
  const coef: [number, number][] = [[1, 0], [0, 1], [-1, 1], [-0.5, -0.5], [1, -0.5], [-0.5, 1]];
  const known = [0, 1, 2, 3, 4, 5].filter(has);
  let pair: [number, number] | null = null;
  for (let a = 0; a < known.length && !pair; a++) {
    for (let b = a + 1; b < known.length && !pair; b++) {
      const [p, q] = [coef[known[a]], coef[known[b]]];
      if (Math.abs(p[0] * q[1] - p[1] * q[0]) > 1e-6) pair = [known[a], known[b]];
    }
  }
  if (!pair) return;
  const [p, q] = [coef[pair[0]], coef[pair[1]]];
  const det = p[0] * q[1] - p[1] * q[0];
  const ra = row(pair[0]);
  const rb = row(pair[1]);
  const derived: string[] = [];
  for (let li = 0; li < 6; li++) {
    if (has(li)) continue;
    const target = row(li);
    const [c1, c2] = coef[li];
    for (let i = 0; i < n; i++) {
      const leadI = (q[1] * ra[i] - p[1] * rb[i]) / det;
      const leadII = (-q[0] * ra[i] + p[0] * rb[i]) / det;
      target[i] = c1 * leadI + c2 * leadII;
    }
    mapping[li] = 'derived';
    derived.push(LEAD_NAMES[li]);
  }
  warnings.push(`${src}: derived lead(s) ${derived.join(', ')} from ${LEAD_NAMES[pair[0]]} and ${LEAD_NAMES[pair[1]]}`);
}
