/**
 * DICOM ECG waveforms (12-Lead ECG / General ECG Waveform Storage), on dicom-parser.
 *
 * WaveformSequence (5400,0100) holds one item per multiplex group: usually the 10 s RHYTHM group and a
 * MEDIAN BEAT group of the same channels. We read the rhythm group: label (003A,0020) not median-like and
 * WaveformOriginality (003A,0004) not DERIVED; a RHYTHM label wins when several qualify.
 *
 * Per group: NumberOfWaveformChannels (003A,0005), NumberOfWaveformSamples (003A,0010),
 * SamplingFrequency (003A,001A), WaveformBitsAllocated (5400,1004) with WaveformSampleInterpretation
 * (5400,1006) SS/US (16), SB/UB (8) or SL/UL (32), WaveformData (5400,1010) interleaved by sample
 * (s0c0 s0c1 ... s1c0 ...), little-endian. Per channel (ChannelDefinitionSequence 003A,0200):
 * physical = raw * ChannelSensitivity (003A,0210) * ChannelSensitivityCorrectionFactor (003A,0212)
 * + ChannelBaseline (003A,0213), in the unit of ChannelSensitivityUnitsSequence (003A,0211) (UCUM uV/mV).
 * Lead names come from ChannelSourceSequence (003A,0208): SCP-ECG (5.6.3-9-n) and MDC (2:n) codes map to
 * standard leads; other codes keep their CodeMeaning. A channel in a non-voltage unit (respiration,
 * pressure) is dropped with a warning unless it is named as an ECG lead (then: DataError). Samples equal
 * to WaveformPaddingValue (5400,100A) are gaps in the recording: a DataError, never read as numbers.
 */
import * as dicomParserNs from 'dicom-parser';
import { DataError } from '../errors';
import { canonicalLeadName } from '../preprocess/ecg';
import { type EcgReadResult, type NamedSignal, assembleRecording, noWaveform, requireVoltageScale, voltageScaleToMv } from './ecg-common';

// dicom-parser is a CommonJS bundle: under Node's ESM loader its API sits on the default export.
const dicomParser = ((dicomParserNs as unknown as { default?: typeof dicomParserNs }).default ?? dicomParserNs) as typeof dicomParserNs;
type DataSet = dicomParserNs.DataSet;

const LITTLE_ENDIAN_SYNTAXES = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1']);
const WAVEFORM_SEQUENCE = 'x54000100';

/** Lead number shared by SCP-ECG (5.6.3-9-n) and MDC (2:n) lead codes -> standard name. */
const LEAD_BY_NUMBER: Record<number, string> = { 1: 'I', 2: 'II', 3: 'V1', 4: 'V2', 5: 'V3', 6: 'V4', 7: 'V5', 8: 'V6', 61: 'III', 62: 'aVR', 63: 'aVL', 64: 'aVF' };

interface SampleCodec {
  bytes: number;
  read: (view: DataView, offset: number) => number;
}

const CODECS: Record<string, SampleCodec> = {
  '16SS': { bytes: 2, read: (v, o) => v.getInt16(o, true) },
  '16US': { bytes: 2, read: (v, o) => v.getUint16(o, true) },
  '8SB': { bytes: 1, read: (v, o) => v.getInt8(o) },
  '8UB': { bytes: 1, read: (v, o) => v.getUint8(o) },
  '32SL': { bytes: 4, read: (v, o) => v.getInt32(o, true) },
  '32UL': { bytes: 4, read: (v, o) => v.getUint32(o, true) },
};

const items = (ds: DataSet | undefined, tag: string): DataSet[] =>
  (ds?.elements[tag]?.items ?? []).map((item) => item.dataSet).filter((d): d is DataSet => d !== undefined);

const str = (ds: DataSet | undefined, tag: string): string => (ds?.string(tag) ?? '').trim();

/** A DS (decimal string) value, undefined when absent, DataError when present but not a number. */
function decimal(ds: DataSet, tag: string, source: string, field: string): number | undefined {
  const text = str(ds, tag);
  if (text === '') return undefined;
  const value = Number(text.split('\\')[0]);
  if (!Number.isFinite(value)) throw new DataError(source, `${field} is '${text.slice(0, 30)}', not a number`);
  return value;
}

function leadName(channel: DataSet, index: number): string {
  const code = items(channel, 'x003a0208')[0];
  const value = str(code, 'x00080100');
  const m = /^(?:5\.6\.3-9-|2:)(\d+)$/.exec(value);
  if (m && LEAD_BY_NUMBER[Number(m[1])]) return LEAD_BY_NUMBER[Number(m[1])];
  const meaning = str(code, 'x00080104') || str(channel, 'x003a0203');
  // "Lead aVR", "Lead I (Einthoven)" -> "aVR", "I"; names we cannot map stay as the file wrote them.
  const cleaned = meaning.replace(/\(.*?\)/g, '').replace(/^\s*lead\s+/i, '').trim();
  return cleaned || `channel ${index + 1}`;
}

function groupLabel(group: DataSet): string {
  return str(group, 'x003a0020').toUpperCase();
}

/** The rhythm multiplex group: not DERIVED, not labelled median/average; a RHYTHM label preferred. */
function pickRhythmGroup(groups: DataSet[], source: string, warnings: string[]): { group: DataSet; index: number } {
  const describe = (g: DataSet, i: number) => `#${i + 1} '${groupLabel(g) || '(no label)'}' ${str(g, 'x003a0004') || ''}`.trim();
  const candidates = groups
    .map((group, index) => ({ group, index }))
    .filter(({ group }) => !/MEDIAN|AVERAGE|REPRESENTATIVE|TEMPLATE/.test(groupLabel(group)) && str(group, 'x003a0004').toUpperCase() !== 'DERIVED');
  if (!candidates.length) throw noWaveform(source, `rhythm multiplex group (groups: ${groups.map(describe).join(', ')}; median/derived groups are not recordings)`);
  const labelled = candidates.filter(({ group }) => groupLabel(group).includes('RHYTHM'));
  const chosen = labelled[0] ?? candidates[0];
  if (candidates.length > 1) warnings.push(`${source}: ${candidates.length} rhythm-like multiplex groups; read ${describe(chosen.group, chosen.index)}`);
  return chosen;
}

function readGroup(group: DataSet, groupIndex: number, byteArray: Uint8Array, source: string, warnings: string[]): { leads: NamedSignal[]; fs: number } {
  const where = `multiplex group #${groupIndex + 1}`;
  const nChannels = group.uint16('x003a0005') ?? 0;
  const nSamples = group.uint32('x003a0010') ?? 0;
  if (nChannels < 1) throw new DataError(source, `${where}: NumberOfWaveformChannels (003A,0005) is missing or 0`);
  if (nSamples < 1) throw new DataError(source, `${where}: NumberOfWaveformSamples (003A,0010) is missing or 0`);
  const fs = decimal(group, 'x003a001a', source, `${where}: SamplingFrequency (003A,001A)`);
  if (fs === undefined || !(fs > 0)) throw new DataError(source, `${where}: SamplingFrequency (003A,001A) is missing or not positive`);
  const bits = group.uint16('x54001004');
  const interpretation = str(group, 'x54001006').toUpperCase();
  const codec = CODECS[`${bits}${interpretation}`];
  if (!codec) throw new DataError(source, `${where}: WaveformBitsAllocated ${bits} with WaveformSampleInterpretation '${interpretation}' is not supported (16 SS/US, 8 SB/UB, 32 SL/UL)`);
  const channels = items(group, 'x003a0200');
  if (channels.length !== nChannels) throw new DataError(source, `${where}: ChannelDefinitionSequence has ${channels.length} items for ${nChannels} channels`);
  const data = group.elements['x54001010'];
  if (!data) throw new DataError(source, `${where}: no WaveformData (5400,1010)`);
  const needed = nChannels * nSamples * codec.bytes;
  if (data.length < needed || data.dataOffset + needed > byteArray.length) {
    throw new DataError(source, `${where}: WaveformData holds ${Math.min(data.length, byteArray.length - data.dataOffset)} bytes, ${needed} needed for ${nChannels} channels x ${nSamples} samples; the file is truncated`);
  }
  const view = new DataView(byteArray.buffer, byteArray.byteOffset + data.dataOffset, needed);
  const paddingElement = group.elements['x5400100a'];
  const padding = paddingElement && paddingElement.length >= codec.bytes && paddingElement.dataOffset + codec.bytes <= byteArray.length
    ? codec.read(new DataView(byteArray.buffer, byteArray.byteOffset + paddingElement.dataOffset, codec.bytes), 0)
    : null;
  const leads: NamedSignal[] = [];
  channels.forEach((channel, c) => {
    const name = leadName(channel, c);
    const field = `${where} channel ${c + 1} (${name})`;
    const unitItem = items(channel, 'x003a0211')[0];
    const unit = str(unitItem, 'x00080100') || str(unitItem, 'x00080104');
    if (unit && voltageScaleToMv(unit) === null && !canonicalLeadName(name)) {
      // General ECG files may carry e.g. a respiration or pressure channel beside the leads.
      warnings.push(`${source}: ${field} is in '${unit}', not a voltage; dropped`);
      return;
    }
    const toMv = requireVoltageScale(unit || undefined, source, `${field}: ChannelSensitivityUnitsSequence (003A,0211)`);
    const sensitivity = decimal(channel, 'x003a0210', source, `${field}: ChannelSensitivity (003A,0210)`);
    if (sensitivity === undefined || sensitivity === 0) throw new DataError(source, `${field}: ChannelSensitivity (003A,0210) is missing or 0; the amplitude scale is unknown`);
    const correction = decimal(channel, 'x003a0212', source, `${field}: ChannelSensitivityCorrectionFactor (003A,0212)`) ?? 1;
    const baseline = decimal(channel, 'x003a0213', source, `${field}: ChannelBaseline (003A,0213)`) ?? 0;
    const signal = new Float32Array(nSamples);
    const gain = sensitivity * correction;
    for (let s = 0; s < nSamples; s++) {
      const raw = codec.read(view, (s * nChannels + c) * codec.bytes);
      if (raw === padding) throw new DataError(source, `${field}: sample ${s} is the WaveformPaddingValue ${padding} (a gap in the recording)`);
      signal[s] = (raw * gain + baseline) * toMv;
    }
    leads.push({ name, signal });
  });
  return { leads, fs };
}

/** True when the bytes carry the DICOM preamble magic ('DICM' at byte 128). */
export function looksLikeDicom(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
}

function parseDataSet(bytes: Uint8Array, source: string): DataSet {
  try {
    return dicomParser.parseDicom(bytes);
  } catch (e) {
    const message = e instanceof Error ? e.message : typeof e === 'string' ? e : String((e as { exception?: unknown })?.exception ?? e);
    throw new DataError(source, `not a readable DICOM file (${message})`);
  }
}

/** True when a parsed DICOM file holds a WaveformSequence (an ECG, not an image). */
export function isDicomWaveform(bytes: Uint8Array): boolean {
  try {
    return dicomParser.parseDicom(bytes).elements[WAVEFORM_SEQUENCE] !== undefined;
  } catch {
    return false;
  }
}

/** Reads the rhythm multiplex group of a DICOM ECG waveform file, in mV. */
export function parseDicomEcg(bytes: Uint8Array, source: string): EcgReadResult {
  const ds = parseDataSet(bytes, source);
  const syntax = str(ds, 'x00020010') || '1.2.840.10008.1.2';
  if (!LITTLE_ENDIAN_SYNTAXES.has(syntax)) throw new DataError(source, `transfer syntax ${syntax} is not supported for waveforms (only uncompressed little-endian)`);
  if (!ds.elements[WAVEFORM_SEQUENCE]) {
    throw new DataError(source, 'no WaveformSequence (5400,0100): this DICOM file is not an ECG waveform (an image series is read with readCmrFile)');
  }
  const groups = items(ds, WAVEFORM_SEQUENCE);
  if (!groups.length) throw noWaveform(source, 'multiplex group in the WaveformSequence');
  const warnings: string[] = [];
  const { group, index } = pickRhythmGroup(groups, source, warnings);
  const { leads, fs } = readGroup(group, index, ds.byteArray, source, warnings);
  return assembleRecording(source, leads, fs, warnings);
}
