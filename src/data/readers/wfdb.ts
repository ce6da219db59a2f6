/**
 * WFDB reader: a .hea header plus its .dat signal file(s), formats 16 and 212.
 * Physical value = (digital - baseline) / gain, converted to mV from the header's units (mV, uV, V).
 * Invalid-sample markers (-32768 in format 16, -2048 in format 212), truncated data, unsupported
 * formats and multi-segment records raise a DataError naming the file.
 * Every header number is checked before it sizes anything: the sampling frequency must lie in
 * 50-10,000 Hz, gains and baselines must be finite, and the sample count is checked against the .dat
 * file's size before the samples are allocated, so a corrupted header cannot ask for gigabytes.
 */
import { DataError } from '../errors';
import { type DataFileSystem, dirName, joinPath, decodeText, readInputFile } from '../fs';
import type { EcgRecording } from '../preprocess/ecg';
import { assertPlausibleFs } from '../preprocess/ecg-checks';

export interface WfdbSignalSpec {
  file: string;
  format: number;
  samplesPerFrame: number;
  byteOffset: number;
  gain: number;
  baseline: number;
  units: string;
  adcZero: number;
  initialValue: number | null;
  checksum: number | null;
  description: string;
}

export interface WfdbHeader {
  record: string;
  nSignals: number;
  fs: number;
  nSamples: number;
  /** True when the header gives no sampling frequency and the WFDB default (250 Hz) is used. */
  fsDefaulted: boolean;
  signals: WfdbSignalSpec[];
}

export function parseWfdbHeader(text: string, source: string): WfdbHeader {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0 && !l.startsWith('#'));
  if (!lines.length) throw new DataError(source, 'empty WFDB header');
  const head = lines[0].split(/\s+/);
  if (head[0].includes('/')) throw new DataError(source, `multi-segment WFDB records ('${head[0]}') are not supported; read the segments one by one`);
  const nSignals = Number(head[1]);
  if (!Number.isInteger(nSignals) || nSignals < 1) throw new DataError(source, `invalid number of signals '${head[1]}'`);
  const fs = head[2] ? Number(head[2].split('/')[0].split('(')[0]) : 250;
  const nSamples = head[3] ? Number(head[3]) : NaN;
  assertPlausibleFs(fs, source);
  if (!Number.isInteger(nSamples) || nSamples < 1) throw new DataError(source, head[3] ? `invalid number of samples per signal '${head[3]}'` : 'header lacks the number of samples per signal');
  if (lines.length < 1 + nSignals) throw new DataError(source, `header declares ${nSignals} signals but has ${lines.length - 1} signal lines`);
  const signals: WfdbSignalSpec[] = [];
  for (let i = 0; i < nSignals; i++) {
    const f = lines[1 + i].split(/\s+/);
    const fmt = /^(\d+)(?:x(\d+))?(?::(\d+))?(?:\+(\d+))?$/.exec(f[1] ?? '');
    if (!fmt) throw new DataError(source, `signal ${i}: cannot parse format '${f[1]}'`);
    const gainField = /^([-+\d.eE]+)?(?:\(([-\d]+)\))?(?:\/(\S+))?$/.exec(f[2] ?? '');
    if (f[2] !== undefined && !gainField) throw new DataError(source, `signal ${i}: cannot parse the gain field '${f[2]}' (expected gain(baseline)/units)`);
    const adcZero = f[4] !== undefined ? Number(f[4]) : 0;
    let gain = gainField?.[1] !== undefined ? Number(gainField[1]) : 200;
    if (gain === 0) gain = 200;
    const baseline = gainField?.[2] !== undefined ? Number(gainField[2]) : adcZero;
    if (!Number.isFinite(gain)) throw new DataError(source, `signal ${i}: gain '${gainField?.[1]}' is not a finite number (ADC units per physical unit)`);
    if (!Number.isSafeInteger(baseline)) throw new DataError(source, `signal ${i}: baseline / ADC zero '${gainField?.[2] ?? f[4]}' is not an integer`);
    const byteOffset = fmt[4] ? Number(fmt[4]) : 0;
    if (!Number.isSafeInteger(byteOffset)) throw new DataError(source, `signal ${i}: byte offset '${fmt[4]}' is out of range`);
    signals.push({
      file: f[0],
      format: Number(fmt[1]),
      samplesPerFrame: fmt[2] ? Number(fmt[2]) : 1,
      byteOffset,
      gain,
      baseline,
      units: gainField?.[3] ?? 'mV',
      adcZero,
      initialValue: f[5] !== undefined ? Number(f[5]) : null,
      checksum: f[6] !== undefined ? Number(f[6]) : null,
      description: f.slice(8).join(' ') || `sig${i}`,
    });
  }
  return { record: head[0], nSignals, fs, nSamples, fsDefaulted: !head[2], signals };
}

function unitScaleToMv(units: string, source: string): number {
  const u = units.toLowerCase();
  if (u === 'mv') return 1;
  if (u === 'uv' || u === 'µv' || u === 'microvolt') return 1e-3;
  if (u === 'v') return 1e3;
  throw new DataError(source, `unsupported signal units '${units}' (expected mV, uV or V)`);
}

/** Decodes the digital samples of the signals stored in one .dat file (interleaved frames). */
function decodeDat(bytes: Uint8Array, specs: WfdbSignalSpec[], nSamples: number, source: string): Int32Array[] {
  const format = specs[0].format;
  if (specs.some((s) => s.format !== format)) throw new DataError(source, 'signals in one file with different formats are not supported');
  if (format !== 16 && format !== 212) throw new DataError(source, `unsupported WFDB format ${format} (supported: 16, 212)`);
  if (specs.some((s) => s.samplesPerFrame !== 1)) throw new DataError(source, 'multi-frequency records (samples per frame > 1) are not supported');
  const k = specs.length;
  const total = nSamples * k;
  const offset = specs[0].byteOffset;
  const needed = offset + (format === 16 ? total * 2 : Math.ceil((total * 3) / 2));
  if (bytes.length < needed) throw new DataError(source, `truncated signal file: ${bytes.length} bytes, ${needed} needed for ${nSamples} samples x ${k} signals`);
  const out = specs.map(() => new Int32Array(nSamples));
  const invalid = format === 16 ? -32768 : -2048;
  let bad = 0;
  for (let j = 0; j < total; j++) {
    let v: number;
    if (format === 16) {
      const p = offset + 2 * j;
      v = (bytes[p] | (bytes[p + 1] << 8)) << 16 >> 16;
    } else {
      const p = offset + 3 * (j >> 1);
      v = (j & 1) === 0 ? bytes[p] | ((bytes[p + 1] & 0x0f) << 8) : bytes[p + 2] | ((bytes[p + 1] & 0xf0) << 4);
      if (v & 0x800) v -= 0x1000;
    }
    if (v === invalid) bad++;
    out[j % k][Math.floor(j / k)] = v;
  }
  if (bad) throw new DataError(source, `${bad} invalid-sample marker(s) (${invalid}) in the signal; gaps are not filled silently`);
  return out;
}

export interface WfdbRecording extends EcgRecording {
  header: WfdbHeader;
  warnings: string[];
}

/** Parses a record from its header text and a map of .dat file name -> bytes. */
export function parseWfdb(headerText: string, datFiles: Map<string, Uint8Array>, source = 'wfdb'): WfdbRecording {
  const header = parseWfdbHeader(headerText, source);
  const warnings: string[] = [];
  if (header.fsDefaulted) warnings.push(`${source}: the header gives no sampling frequency; the WFDB default ${header.fs} Hz is used`);
  const signals: Float32Array[] = new Array(header.nSignals);
  const byFile = new Map<string, number[]>();
  header.signals.forEach((s, i) => byFile.set(s.file, [...(byFile.get(s.file) ?? []), i]));
  for (const [file, idx] of byFile) {
    const bytes = datFiles.get(file);
    if (!bytes) throw new DataError(source, `signal file '${file}' not found`);
    const digital = decodeDat(bytes, idx.map((i) => header.signals[i]), header.nSamples, `${source} (${file})`);
    idx.forEach((sigIndex, k) => {
      const spec = header.signals[sigIndex];
      if (spec.checksum !== null) {
        let sum = 0;
        for (const v of digital[k]) sum = (sum + v) & 0xffff;
        if ((sum << 16 >> 16) !== (spec.checksum << 16 >> 16)) warnings.push(`${source}: checksum mismatch on signal ${spec.description}`);
      }
      const scale = unitScaleToMv(spec.units, source) / spec.gain;
      signals[sigIndex] = Float32Array.from(digital[k], (v) => (v - spec.baseline) * scale);
    });
  }
  return { signals, leadNames: header.signals.map((s) => s.description), fs: header.fs, source, header, warnings };
}

/** Reads a WFDB record through the file system: `path` is the .hea file (or the record path without it). */
export async function readWfdb(fs: DataFileSystem, path: string): Promise<WfdbRecording> {
  const headerPath = path.endsWith('.hea') ? path : `${path}.hea`;
  if (!(await fs.exists(headerPath))) throw new DataError(headerPath, 'WFDB header not found');
  const text = decodeText(await readInputFile(fs, headerPath));
  const header = parseWfdbHeader(text, headerPath);
  const files = new Map<string, Uint8Array>();
  for (const spec of header.signals) {
    if (files.has(spec.file)) continue;
    const datPath = joinPath(dirName(headerPath), spec.file);
    if (!(await fs.exists(datPath))) throw new DataError(datPath, 'WFDB signal file not found');
    files.set(spec.file, await readInputFile(fs, datPath));
  }
  return parseWfdb(text, files, headerPath);
}
