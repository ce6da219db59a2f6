/**
 * CSV/TSV ECG reader: columns are leads, rows are samples. A first row with any non-numeric cell is a
 * header of lead names; a column named time/t/sec/ms/sample is dropped (and gives fs when it holds times).
 * Delimiter: comma, semicolon or tab, detected from the first line. Values are taken as mV unless
 * `unitsScale` says otherwise. A non-numeric or empty data cell is a DataError (row and column named).
 */
import { DataError } from '../errors';
import type { EcgRecording } from '../preprocess/ecg';

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
  const values = Array.from({ length: cols }, () => new Float32Array(rows.length));
  rows.forEach((line, r) => {
    const cells = split(line);
    if (cells.length !== cols) throw new DataError(source, `row ${r + 1 + (hasHeader ? 1 : 0)} has ${cells.length} columns, expected ${cols}`);
    cells.forEach((cell, c) => {
      const v = cell === '' ? NaN : Number(cell);
      if (!Number.isFinite(v)) throw new DataError(source, `row ${r + 1 + (hasHeader ? 1 : 0)}, column '${names[c]}': '${cell}' is not a finite number`);
      values[c][r] = v;
    });
  });
  const warnings: string[] = [];
  const timeCol = names.findIndex((n) => /^(time|t|sec|seconds|ms|sample|index)$/i.test(n));
  let fs = options.fs;
  if (timeCol >= 0) {
    const t = values[timeCol];
    const dt = (t[t.length - 1] - t[0]) / (t.length - 1);
    const inferred = /^ms$/i.test(names[timeCol]) ? 1000 / dt : /^(sample|index)$/i.test(names[timeCol]) ? undefined : 1 / dt;
    if (fs === undefined && inferred !== undefined && Number.isFinite(inferred) && inferred > 0) {
      fs = Math.round(inferred * 1000) / 1000;
      warnings.push(`${source}: sampling frequency ${fs} Hz inferred from column '${names[timeCol]}'`);
    }
  }
  if (fs === undefined) throw new DataError(source, 'sampling frequency unknown: pass fs or include a time column');
  const scale = options.unitsScale ?? 1;
  const keep = names.map((_, i) => i).filter((i) => i !== timeCol);
  return {
    signals: keep.map((i) => (scale === 1 ? values[i] : values[i].map((v) => v * scale))),
    leadNames: keep.map((i) => names[i]),
    fs,
    source,
    warnings,
  };
}
