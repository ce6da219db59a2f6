/**
 * Pieces shared by the ECG format readers (CardioSoft, MUSE, HL7 aECG, DICOM waveform, EDF):
 * voltage units named by the file -> factor to mV, strict number parsing, and the result type.
 * A unit or number the file does not state clearly is a DataError, never a guess.
 */
import { DataError, assertFinite } from '../errors';
import type { EcgRecording } from '../preprocess/ecg';

export type EcgReadResult = EcgRecording & { warnings: string[] };

/** Spellings of voltage units met in ECG files (UCUM, SCP/DICOM code values, MUSE enums, EDF labels). */
const VOLT_SCALE_TO_MV: Record<string, number> = {
  nv: 1e-6,
  nanovolt: 1e-6,
  nanovolts: 1e-6,
  uv: 1e-3,
  µv: 1e-3,
  μv: 1e-3, // Greek mu (U+03BC) as well as the micro sign (U+00B5)
  microvolt: 1e-3,
  microvolts: 1e-3,
  mv: 1,
  millivolt: 1,
  millivolts: 1,
  v: 1e3,
  volt: 1e3,
  volts: 1e3,
};

/** mV per unit for a voltage unit string, or null when it is not a voltage unit. */
export function voltageScaleToMv(unit: string): number | null {
  const key = unit.trim().toLowerCase().replace(/[\s_]/g, '');
  return VOLT_SCALE_TO_MV[key] ?? null;
}

/** Like voltageScaleToMv, but a missing or unknown unit is a DataError naming the field. */
export function requireVoltageScale(unit: string | undefined, source: string, field: string): number {
  if (unit === undefined || unit.trim() === '') throw new DataError(source, `${field} gives no amplitude unit; the file must state uV or mV`);
  const scale = voltageScaleToMv(unit);
  if (scale === null) throw new DataError(source, `${field} has unit '${unit}', which is not a voltage (expected uV, mV or V)`);
  return scale;
}

/** Time unit -> seconds, for sampling intervals (HL7 increments, EDF record durations). */
export function timeScaleToSeconds(unit: string): number | null {
  const u = unit.trim().toLowerCase();
  if (u === 's' || u === 'sec' || u === 'second' || u === 'seconds') return 1;
  if (u === 'ms' || u === 'msec' || u === 'millisecond' || u === 'milliseconds') return 1e-3;
  if (u === 'us' || u === 'µs' || u === 'μs' || u === 'microsecond' || u === 'microseconds') return 1e-6;
  return null;
}

/** A finite number from a text field, else a DataError naming the field. */
export function parseFiniteNumber(text: string | undefined, source: string, field: string): number {
  if (text === undefined || text.trim() === '') throw new DataError(source, `${field} is missing`);
  const value = Number(text.trim());
  if (!Number.isFinite(value)) throw new DataError(source, `${field} is '${text.trim().slice(0, 40)}', not a number`);
  return value;
}

/** A positive finite number (sampling rates, resolutions), else a DataError naming the field. */
export function parsePositiveNumber(text: string | undefined, source: string, field: string): number {
  const value = parseFiniteNumber(text, source, field);
  if (!(value > 0)) throw new DataError(source, `${field} is ${value}; it must be positive`);
  return value;
}

/**
 * Splits a list of integers separated by `separator` (commas, whitespace...) into a Float64Array.
 * Empty items from a trailing separator are allowed; any other non-integer item is a DataError that
 * names the field and the item's position, so a corrupt sample is never read as 0 or NaN.
 */
export function parseIntegerList(text: string, separator: RegExp, source: string, field: string): Float64Array {
  const items = text.split(separator);
  const values = new Float64Array(items.length);
  let n = 0;
  for (let i = 0; i < items.length; i++) {
    const item = items[i].trim();
    if (item === '') {
      if (i === 0 || i === items.length - 1) continue;
      throw new DataError(source, `${field}: empty value at position ${i + 1}`);
    }
    if (!/^[-+]?\d+$/.test(item)) throw new DataError(source, `${field}: value '${item.slice(0, 20)}' at position ${i + 1} is not an integer`);
    values[n++] = Number(item);
  }
  return values.subarray(0, n);
}

/** Scales digital values to mV as Float32 (physical = (digital * scale + offset) * toMv). */
export function scaleToMv(digital: ArrayLike<number>, scale: number, offset: number, toMv: number): Float32Array {
  const out = new Float32Array(digital.length);
  for (let i = 0; i < digital.length; i++) out[i] = (digital[i] * scale + offset) * toMv;
  return out;
}

/** The error for a file that parsed but holds no waveform of the expected kind. */
export function noWaveform(source: string, what: string): DataError {
  return new DataError(source, `no ${what} found; the file holds no ECG rhythm data this reader understands`);
}

export interface NamedSignal {
  name: string;
  signal: Float32Array;
}

/**
 * Builds the recording from named leads: at least one lead, all of one length (a lead of another
 * length means a partial file), no lead name twice (which copy would be the real one is unknowable),
 * every value finite (absurd scale fields can overflow to Infinity) and a finite positive rate.
 */
export function assembleRecording(source: string, leads: NamedSignal[], fs: number, warnings: string[]): EcgReadResult {
  if (!leads.length) throw new DataError(source, 'the waveform holds no leads');
  const length = leads[0].signal.length;
  if (length === 0) throw new DataError(source, `lead ${leads[0].name} holds no samples`);
  const odd = leads.find((l) => l.signal.length !== length);
  if (odd) throw new DataError(source, `lead ${odd.name} has ${odd.signal.length} samples but lead ${leads[0].name} has ${length}; the file is partial or inconsistent`);
  if (!(Number.isFinite(fs) && fs > 0)) throw new DataError(source, `sampling rate ${fs} Hz is not a finite positive number`);
  for (const l of leads) assertFinite(l.signal, source, `lead ${l.name}`);
  const seen = new Set<string>();
  for (const l of leads) {
    const key = l.name.trim().toUpperCase();
    if (seen.has(key)) throw new DataError(source, `lead ${l.name} appears twice in the waveform`);
    seen.add(key);
  }
  return { signals: leads.map((l) => l.signal), leadNames: leads.map((l) => l.name), fs, source, warnings };
}
