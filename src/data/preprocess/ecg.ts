/**
 * ECG preprocessing to the model input (12, 5000) at 500 Hz, leads I, II, III, aVR, aVL, aVF, V1..V6 in mV.
 *
 * - Lead mapping by name (case, spaces, '-', '_' and a 'lead' prefix ignored; aliases MLII -> II, DI -> I...).
 * - Missing limb leads are derived from two known ones (Einthoven/Goldberger) with a warning; other
 *   missing leads become zeros with a warning, or a DataError with { strict: true }.
 * - A single-lead recording whose lead has no standard name is placed as lead II (warning).
 * - Resampling to 500 Hz: windowed-sinc (Lanczos, a = 4) interpolation whose cut-off is the lower
 *   Nyquist frequency, so downsampling is anti-aliased; identity when fs is already 500.
 * - Length: longer than 5000 -> centre crop (keeps the middle 10 s); shorter -> padded at the end with
 *   each lead's last value (keeps sample 0 = recording start, no step); both warn. Under 2 s -> error.
 * - NaN/Inf and flat (std < 1 uV) input leads -> DataError.
 */
import { DataError, assertFinite } from '../errors';
import { LEAD_NAMES, type LeadName } from '../phantom/ecg';

export interface EcgRecording {
  /** One Float32Array per signal, physical units converted to mV. */
  signals: Float32Array[];
  leadNames: string[];
  fs: number;
  source: string;
}

export interface PrepareEcgOptions {
  /** Error on a missing lead instead of filling zeros. */
  strict?: boolean;
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

/** Lanczos (a = 4) resampling of one signal from fsIn to fsOut, anti-aliased when downsampling. */
export function resampleSignal(signal: ArrayLike<number>, fsIn: number, fsOut: number): Float32Array {
  if (fsIn === fsOut) return Float32Array.from(signal);
  const a = 4;
  const ratio = fsOut / fsIn;
  const cutoff = Math.min(1, ratio); // in units of the input Nyquist
  const outLength = Math.max(1, Math.round(signal.length * ratio));
  const out = new Float32Array(outLength);
  const half = a / cutoff;
  for (let j = 0; j < outLength; j++) {
    const t = j / ratio;
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
    out[j] = wsum !== 0 ? acc / wsum : 0;
  }
  return out;
}

function stdOf(x: Float32Array): number {
  let mean = 0;
  for (const v of x) mean += v;
  mean /= x.length;
  let s = 0;
  for (const v of x) s += (v - mean) ** 2;
  return Math.sqrt(s / x.length);
}

export function prepareEcg(rec: EcgRecording, options: PrepareEcgOptions = {}): PreparedEcg {
  const targetFs = options.targetFs ?? 500;
  const targetLength = options.targetLength ?? 5000;
  const warnings: string[] = [];
  const src = rec.source;
  if (rec.signals.length === 0) throw new DataError(src, 'recording holds no signals');
  if (rec.signals.length !== rec.leadNames.length) {
    throw new DataError(src, `${rec.signals.length} signals but ${rec.leadNames.length} lead names`);
  }
  if (!(rec.fs > 0)) throw new DataError(src, `invalid sampling frequency ${rec.fs}`);
  const length = rec.signals[0].length;
  if (rec.signals.some((s) => s.length !== length)) throw new DataError(src, 'signals have different lengths');
  if (length / rec.fs < 2) throw new DataError(src, `recording is ${(length / rec.fs).toFixed(2)} s long; at least 2 s needed`);
  rec.signals.forEach((s, i) => {
    assertFinite(s, src, `lead ${rec.leadNames[i]}`);
    if (stdOf(s) < 1e-3) throw new DataError(src, `lead ${rec.leadNames[i]} is a flat line (std < 1 uV)`);
  });

  // Map input signals to standard leads.
  const index = new Map<LeadName, number>();
  rec.leadNames.forEach((name, i) => {
    const lead = canonicalLeadName(name);
    if (lead && !index.has(lead)) index.set(lead, i);
    else if (!lead && rec.signals.length > 1) warnings.push(`${src}: lead '${name}' not recognised; ignored`);
  });
  if (rec.signals.length === 1 && index.size === 0) {
    const as = options.singleLeadAs ?? 'II';
    index.set(as, 0);
    warnings.push(`${src}: single lead '${rec.leadNames[0]}' placed as lead ${as}`);
  }

  const resampled = rec.signals.map((s) => resampleSignal(s, rec.fs, targetFs));
  if (rec.fs !== targetFs) warnings.push(`${src}: resampled ${rec.fs} Hz to ${targetFs} Hz (Lanczos-4 sinc)`);
  const n = resampled[0].length;
  const fitted = resampled.map((s) => {
    if (n === targetLength) return s;
    const out = new Float32Array(targetLength);
    if (n > targetLength) out.set(s.subarray(Math.floor((n - targetLength) / 2), Math.floor((n - targetLength) / 2) + targetLength));
    else {
      out.set(s);
      out.fill(s[n - 1], n);
    }
    return out;
  });
  if (n > targetLength) warnings.push(`${src}: ${n} samples centre-cropped to ${targetLength}`);
  if (n < targetLength) warnings.push(`${src}: ${n} samples padded to ${targetLength} with each lead's last value`);

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
    if (options.strict) throw new DataError(src, `missing lead(s) ${missing.join(', ')} (strict mode)`);
    warnings.push(`${src}: missing lead(s) ${missing.join(', ')} filled with zeros`);
  }
  return { data: out, warnings, mapping };
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
