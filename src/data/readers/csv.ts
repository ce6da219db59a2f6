/**
 * CSV/TSV ECG reader: columns are leads, rows are samples. A first row with any non-numeric cell is a
 * header of lead names; a column named time/t/sec/seconds/ms/sample/index is dropped (and gives fs when it
 * holds times). Delimiter: comma, semicolon or tab, detected from the first line. Values are taken as mV
 * unless `unitsScale` says otherwise. A non-numeric or empty data cell is a DataError (row and column named).
 *
 * A time column's unit is decided by its step, not only its name: a column named `time` that steps by 2
 * is milliseconds at 500 Hz, not seconds at 0.5 Hz (which would resample to a thousand times the data).
 * The rate must come out inside 50-10,000 Hz in one of the two units; a time column that goes backwards
 * or jumps (missing samples) is refused, since the rows would not be evenly spaced.
 */
import { DataError } from '../errors';
import type { EcgRecording } from '../preprocess/ecg';
import { ECG_FS_RANGE, assertPlausibleFs } from '../preprocess/ecg-checks';

export interface CsvOptions {
  /** Sampling frequency; required unless a time column gives it. */
  fs?: number;
  /** Lead names for a headerless file (default: I, II, ... for 12 columns, otherwise lead1...). */
  leadNames?: string[];
  /** Multiply values by this to get mV (e.g. 0.001 for uV). */
  unitsScale?: number;
  source?: string;
}

const STANDARD = ['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'];

export function parseEcgCsv(text: string, options: CsvOptions = {}): EcgRecording & { warnings: string[] } {
  const source = options.source ?? 'csv';
  const lines = text.split(/\r?\n/).filter((l) => l.trim().length > 0 && !l.startsWith('#'));
  if (!lines.length) throw new DataError(source, 'empty CSV file');
  const delimiter = lines[0].includes('\t') ? '\t' : lines[0].includes(';') ? ';' : ',';
  const split = (l: string) => l.split(delimiter).map((c) => c.trim().replace(/^"(.*)"$/, '$1'));
  const first = split(lines[0]);
  const hasHeader = first.some((c) => c === '' || !Number.isFinite(Number(c)));
  const names = hasHeader ? first : options.leadNames ?? (first.length === 12 ? STANDARD : first.map((_, i) => `lead${i + 1}`));
  if (names.length !== first.length) throw new DataError(source, `${names.length} lead names for ${first.length} columns`);
  const rows = lines.slice(hasHeader ? 1 : 0);
  if (rows.length < 2) throw new DataError(source, 'CSV holds fewer than 2 samples');
  const cols = names.length;
  // Float64 while parsing: a time column in seconds or ms needs more than float32's 24 bits.
  const values = Array.from({ length: cols }, () => new Float64Array(rows.length));
  rows.forEach((line, r) => {
    const cells = split(line);
    if (cells.length !== cols) throw new DataError(source, `row ${r + 1 + (hasHeader ? 1 : 0)} has ${cells.length} columns, expected ${cols}`);
    cells.forEach((cell, c) => {
      const v = cell === '' ? NaN : Number(cell);
      if (!Number.isFinite(v)) throw new DataError(source, `row ${r + 1 + (hasHeader ? 1 : 0)}, column '${names[c]}': '${cell}' is not a finite number`);
      if (Math.abs(v) > 3e38) throw new DataError(source, `row ${r + 1 + (hasHeader ? 1 : 0)}, column '${names[c]}': ${cell} is beyond float32 range`);
      values[c][r] = v;
    });
  });
  const warnings: string[] = [];
  if (!hasHeader && !options.leadNames && first.length === 12) warnings.push(`${source}: no header row; the 12 columns are taken in the standard order I, II, III, aVR, aVL, aVF, V1-V6`);
  const timeCol = names.findIndex((n) => /^(time|t|sec|seconds|ms|sample|index)$/i.test(n));
  let fs = options.fs;
  if (fs !== undefined) assertPlausibleFs(fs, source, 'given sampling frequency');
  if (timeCol >= 0 && !/^(sample|index)$/i.test(names[timeCol])) {
    const inferred = fsFromTimeColumn(values[timeCol], names[timeCol], hasHeader ? 2 : 1, source, warnings);
    if (fs === undefined) {
      fs = inferred;
      warnings.push(`${source}: sampling frequency ${fs} Hz inferred from column '${names[timeCol]}'`);
    } else if (Math.abs(inferred - fs) > 0.01 * fs) {
      warnings.push(`${source}: the given sampling frequency ${fs} Hz is used, but column '${names[timeCol]}' says ${inferred} Hz`);
    }
  }
  if (fs === undefined) throw new DataError(source, 'sampling frequency unknown: pass fs (CLI: --fs HZ) or include a time column');
  const scale = options.unitsScale ?? 1;
  if (!(Number.isFinite(scale) && scale > 0)) throw new DataError(source, `unitsScale ${scale} must be a positive number (0.001 for µV)`);
  const keep = names.map((_, i) => i).filter((i) => i !== timeCol);
  if (!keep.length) throw new DataError(source, 'no lead columns besides the time column');
  return {
    signals: keep.map((i) => Float32Array.from(values[i], (v) => v * scale)),
    leadNames: keep.map((i) => names[i]),
    fs,
    source,
    warnings,
  };
}

/**
 * The sampling frequency a time column gives. Seconds or milliseconds: the unit its name says is tried
 * first, the other one when that gives no rate within 50-10,000 Hz (warned). `firstRow` is the file row
 * of the first data row, for messages.
 */
function fsFromTimeColumn(t: Float64Array, name: string, firstRow: number, source: string, warnings: string[]): number {
  const steps = new Float64Array(t.length - 1);
  for (let i = 1; i < t.length; i++) {
    steps[i - 1] = t[i] - t[i - 1];
    if (steps[i - 1] < 0) throw new DataError(source, `time column '${name}' is not increasing at row ${firstRow + i} (${t[i - 1]} then ${t[i]})`);
  }
  const median = Float64Array.from(steps).sort()[steps.length >> 1];
  // A step over 1.5 medians is a gap: the rows would not be evenly spaced. (A column printed too coarsely
  // for its rate has a median step of 0 and is not checked for gaps.)
  if (median > 0) {
    const gap = steps.findIndex((d) => d > 1.5 * median);
    if (gap >= 0) throw new DataError(source, `time column '${name}' jumps by ${steps[gap]} at row ${firstRow + gap + 1} (usual step ${median}): samples are missing or unevenly spaced`);
  }
  const step = (t[t.length - 1] - t[0]) / (t.length - 1);
  const inSeconds = 1 / step;
  const inMs = 1000 / step;
  const plausible = (f: number) => Number.isFinite(f) && f >= ECG_FS_RANGE.min && f <= ECG_FS_RANGE.max;
  const saysMs = /^ms$/i.test(name);
  const [preferred, other] = saysMs ? [inMs, inSeconds] : [inSeconds, inMs];
  const round = (f: number) => Math.round(f * 1000) / 1000;
  if (plausible(preferred)) return round(preferred);
  if (plausible(other)) {
    warnings.push(`${source}: column '${name}' steps by ${round(step)}: read as ${saysMs ? 'seconds' : 'milliseconds'} (${round(other)} Hz), since as ${saysMs ? 'milliseconds' : 'seconds'} it would give ${round(preferred)} Hz`);
    return round(other);
  }
  throw new DataError(source, `time column '${name}' steps by ${step}: that is ${round(inSeconds)} Hz in seconds or ${round(inMs)} Hz in milliseconds, neither a plausible sampling frequency (${ECG_FS_RANGE.min}-${ECG_FS_RANGE.max} Hz); pass fs (--fs HZ)`);
}
