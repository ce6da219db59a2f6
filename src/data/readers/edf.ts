/**
 * EDF / EDF+ (European Data Format) and its 24-bit BioSemi variant BDF.
 *
 * Header: 256 bytes of ASCII fields (version, patient, recording, start, header size, reserved
 * ('EDF+C' / 'EDF+D'), number of data records, record duration in s, number of signals), then per signal
 * label, transducer, physical dimension, physical min/max, digital min/max, prefilter, samples per record.
 * Data: records one after another; inside a record each signal's samples in turn (int16 LE; int24 LE in BDF).
 * physical = physMin + (digital - digMin) * (physMax - physMin) / (digMax - digMin), in the signal's
 * physical dimension (uV / mV / V -> mV). fs = samples per record / record duration.
 *
 * Kept: voltage signals. The 'EDF Annotations' signal of EDF+ is skipped; non-voltage signals (respiration,
 * SpO2, ...) are dropped with a warning, but a lead-named signal without a voltage unit is a DataError.
 * Signals at several rates: the rate with the most standard ECG leads is read, the others are dropped
 * with a warning. Discontinuous EDF+D files (gaps between records) and unfinished files (-1 records)
 * are DataErrors, as is a data part shorter than the header promises.
 */
import { DataError } from '../errors';
import { canonicalLeadName } from '../preprocess/ecg';
import { type EcgReadResult, assembleRecording, voltageScaleToMv } from './ecg-common';

interface EdfSignalHeader {
  label: string;
  physicalDimension: string;
  physicalMin: number;
  physicalMax: number;
  digitalMin: number;
  digitalMax: number;
  samplesPerRecord: number;
}

const ANNOTATION_LABELS = /^(EDF|BDF) Annotations$/i;

/** True for the EDF ('0' + 7 spaces) or BDF (0xFF 'BIOSEMI') version field. */
export function looksLikeEdf(bytes: Uint8Array): boolean {
  if (bytes.length < 256) return false;
  const version = new TextDecoder('latin1').decode(bytes.subarray(0, 8));
  return version === '0       ' || (bytes[0] === 0xff && version.slice(1) === 'BIOSEMI');
}

class HeaderReader {
  private offset = 0;
  constructor(
    private readonly text: string,
    private readonly source: string,
  ) {}

  field(width: number): string {
    const value = this.text.slice(this.offset, this.offset + width);
    this.offset += width;
    return value.trim();
  }

  number(width: number, what: string): number {
    const text = this.field(width);
    const value = Number(text);
    if (text === '' || !Number.isFinite(value)) throw new DataError(this.source, `header field ${what} is '${text}', not a number`);
    return value;
  }

  /** One field for each of `n` signals (the header stores each field for all signals together). */
  fields(n: number, width: number): string[] {
    return Array.from({ length: n }, () => this.field(width));
  }

  numbers(n: number, width: number, what: string, labels: string[]): number[] {
    return labels.slice(0, n).map((label) => this.number(width, `${what} of signal '${label}'`));
  }
}

function parseSignalHeaders(text: string, n: number, source: string): EdfSignalHeader[] {
  const reader = new HeaderReader(text, source);
  const labels = reader.fields(n, 16);
  reader.fields(n, 80); // transducer type
  const dimensions = reader.fields(n, 8);
  const physicalMin = reader.numbers(n, 8, 'physical minimum', labels);
  const physicalMax = reader.numbers(n, 8, 'physical maximum', labels);
  const digitalMin = reader.numbers(n, 8, 'digital minimum', labels);
  const digitalMax = reader.numbers(n, 8, 'digital maximum', labels);
  reader.fields(n, 80); // prefiltering
  const samples = reader.numbers(n, 8, 'samples per record', labels);
  return labels.map((label, i) => ({
    label,
    physicalDimension: dimensions[i],
    physicalMin: physicalMin[i],
    physicalMax: physicalMax[i],
    digitalMin: digitalMin[i],
    digitalMax: digitalMax[i],
    samplesPerRecord: samples[i],
  }));
}

/** Reads the ECG (voltage) signals of an EDF, EDF+C or BDF file, in mV. */
export function parseEdf(bytes: Uint8Array, source: string): EcgReadResult {
  if (!looksLikeEdf(bytes)) throw new DataError(source, 'not an EDF/BDF file (the version field must be "0" or 0xFF "BIOSEMI")');
  const bdf = bytes[0] === 0xff;
  const bytesPerSample = bdf ? 3 : 2;
  const latin1 = new TextDecoder('latin1');
  const main = new HeaderReader(latin1.decode(bytes.subarray(8, 256)), source);
  main.field(80); // patient
  main.field(80); // recording
  main.field(8); // start date
  main.field(8); // start time
  const headerBytes = main.number(8, 'number of header bytes');
  const reserved = main.field(44);
  const nRecords = main.number(8, 'number of data records');
  const recordSeconds = main.number(8, 'duration of a data record');
  const nSignals = main.number(4, 'number of signals');
  if (/^(EDF|BDF)\+D/.test(reserved)) throw new DataError(source, `discontinuous ${reserved.slice(0, 5)} recording (gaps between data records) is not supported; export it as continuous ${reserved.slice(0, 4)}C`);
  if (!Number.isInteger(nSignals) || nSignals < 1) throw new DataError(source, `number of signals is ${nSignals}`);
  if (headerBytes !== 256 * (nSignals + 1)) throw new DataError(source, `header size is ${headerBytes} bytes but ${nSignals} signals need ${256 * (nSignals + 1)}`);
  if (bytes.length < headerBytes) throw new DataError(source, `file is ${bytes.length} bytes, shorter than its ${headerBytes}-byte header`);
  if (nRecords === -1) throw new DataError(source, 'number of data records is -1 (the recording was not closed properly); fix the header');
  if (!Number.isInteger(nRecords) || nRecords < 1) throw new DataError(source, `number of data records is ${nRecords}`);
  if (!(recordSeconds > 0)) throw new DataError(source, `duration of a data record is ${recordSeconds} s; it must be positive for signals`);

  const signals = parseSignalHeaders(latin1.decode(bytes.subarray(256, headerBytes)), nSignals, source);
  for (const s of signals) {
    if (!Number.isInteger(s.samplesPerRecord) || s.samplesPerRecord < 1) throw new DataError(source, `signal '${s.label}': samples per record is ${s.samplesPerRecord}`);
  }
  const recordBytes = signals.reduce((sum, s) => sum + s.samplesPerRecord, 0) * bytesPerSample;
  const dataBytes = bytes.length - headerBytes;
  const expected = nRecords * recordBytes;
  if (dataBytes < expected) {
    throw new DataError(source, `data part is ${dataBytes} bytes but ${nRecords} records of ${recordBytes} bytes need ${expected}; the file is truncated (${Math.floor(dataBytes / recordBytes)} whole records)`);
  }
  const warnings: string[] = [];
  if (dataBytes > expected) warnings.push(`${source}: ${dataBytes - expected} bytes after the last data record ignored`);

  // Which signals are ECG: voltage units; lead-named signals must have one.
  const offsets: number[] = []; // byte offset of each signal inside a data record
  let offset = 0;
  for (const s of signals) {
    offsets.push(offset);
    offset += s.samplesPerRecord * bytesPerSample;
  }
  const kept: number[] = [];
  signals.forEach((s, i) => {
    if (ANNOTATION_LABELS.test(s.label)) return;
    const toMv = voltageScaleToMv(s.physicalDimension);
    if (toMv === null) {
      if (canonicalLeadName(s.label)) throw new DataError(source, `signal '${s.label}' has physical dimension '${s.physicalDimension}', not a voltage (uV, mV, V)`);
      warnings.push(`${source}: signal '${s.label}' (${s.physicalDimension || 'no unit'}) is not a voltage; dropped`);
      return;
    }
    if (s.digitalMax <= s.digitalMin) throw new DataError(source, `signal '${s.label}': digital maximum ${s.digitalMax} is not above digital minimum ${s.digitalMin}`);
    if (s.physicalMax === s.physicalMin) throw new DataError(source, `signal '${s.label}': physical minimum and maximum are both ${s.physicalMin}`);
    kept.push(i);
  });
  if (!kept.length) throw new DataError(source, 'no voltage (ECG) signal in the file');

  // One sampling rate per recording: the rate carrying the most standard leads (then the most signals).
  const byRate = new Map<number, number[]>();
  for (const i of kept) byRate.set(signals[i].samplesPerRecord, [...(byRate.get(signals[i].samplesPerRecord) ?? []), i]);
  const score = (group: number[]) => group.filter((i) => canonicalLeadName(signals[i].label)).length * 1000 + group.length;
  const chosen = [...byRate.values()].sort((a, b) => score(b) - score(a))[0];
  const dropped = kept.filter((i) => !chosen.includes(i));
  if (dropped.length) {
    warnings.push(`${source}: signal(s) ${dropped.map((i) => `'${signals[i].label}'`).join(', ')} sampled at another rate; dropped`);
  }

  const view = new DataView(bytes.buffer, bytes.byteOffset + headerBytes, expected);
  const leads = chosen.map((i) => {
    const s = signals[i];
    const toMv = voltageScaleToMv(s.physicalDimension)!;
    const gain = ((s.physicalMax - s.physicalMin) / (s.digitalMax - s.digitalMin)) * toMv;
    const n = s.samplesPerRecord;
    const signal = new Float32Array(nRecords * n);
    for (let r = 0; r < nRecords; r++) {
      const base = r * recordBytes + offsets[i];
      for (let k = 0; k < n; k++) {
        const o = base + k * bytesPerSample;
        const digital = bdf ? (view.getUint8(o) | (view.getUint8(o + 1) << 8) | (view.getInt8(o + 2) << 16)) : view.getInt16(o, true);
        signal[r * n + k] = s.physicalMin * toMv + (digital - s.digitalMin) * gain;
      }
    }
    return { name: s.label, signal };
  });
  return assembleRecording(source, leads, signals[chosen[0]].samplesPerRecord / recordSeconds, warnings);
}
