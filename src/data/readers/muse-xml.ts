/**
 * GE MUSE resting ECG XML (`<RestingECG>`, restecg.dtd).
 *
 *   <RestingECG>
 *     <Waveform>                                  one per kind: Median (one beat) and Rhythm (10 s)
 *       <WaveformType>Rhythm</WaveformType>
 *       <SampleBase>500</SampleBase><SampleExponent>0</SampleExponent>    fs = base * 10^exponent
 *       <LeadData>                                one per stored lead
 *         <LeadByteCountTotal>10000</LeadByteCountTotal>
 *         <LeadSampleCountTotal>5000</LeadSampleCountTotal>
 *         <LeadAmplitudeUnitsPerBit>4.88</LeadAmplitudeUnitsPerBit>
 *         <LeadAmplitudeUnits>MICROVOLTS</LeadAmplitudeUnits>
 *         <LeadID>I</LeadID>
 *         <LeadSampleSize>2</LeadSampleSize>
 *         <WaveFormData>base64 of little-endian int16 samples</WaveFormData>
 *
 * Only the Rhythm waveform is read: the Median waveform has the same structure and would pass as a
 * (too short) recording. MUSE usually stores 8 leads (I, II, V1-V6); III, aVR, aVL and aVF are left
 * missing here so that prepareEcg derives them (Einthoven/Goldberger) and says so in its warnings.
 * Amplitude units and units-per-bit are read per lead, since they may differ between leads.
 * LeadDataCRC32, when present, is checked (CRC-32 as zlib's, of the decoded bytes): a mismatch is a DataError.
 */
import { DataError } from '../errors';
import { type XmlNode, child, childText, children, parseEcgXml, textOf } from './ecg-xml';
import { crc32 } from './gzip';
import {
  type EcgReadResult,
  type NamedSignal,
  assembleRecording,
  noWaveform,
  parseFiniteNumber,
  parsePositiveNumber,
  requireVoltageScale,
} from './ecg-common';

/** Base64 text (line breaks allowed) -> bytes, or a DataError naming the lead. */
function decodeBase64(text: string, source: string, field: string): Uint8Array {
  const compact = text.replace(/\s+/g, '');
  let binary: string;
  try {
    binary = atob(compact);
  } catch {
    throw new DataError(source, `${field} is not valid base64`);
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function samplingRate(waveform: XmlNode, source: string): number {
  const base = parsePositiveNumber(childText(waveform, 'SampleBase'), source, 'Rhythm Waveform/SampleBase');
  const exponentText = childText(waveform, 'SampleExponent');
  const exponent = exponentText === undefined ? 0 : parseFiniteNumber(exponentText, source, 'Rhythm Waveform/SampleExponent');
  if (!Number.isInteger(exponent) || Math.abs(exponent) > 6) throw new DataError(source, `Rhythm Waveform/SampleExponent ${exponent} is not a small integer`);
  return base * 10 ** exponent;
}

function readLead(lead: XmlNode, index: number, source: string): NamedSignal {
  const name = childText(lead, 'LeadID')?.trim();
  if (!name) throw new DataError(source, `Rhythm LeadData #${index + 1} has no LeadID`);
  const field = `Rhythm LeadData ${name}`;
  const sampleSize = childText(lead, 'LeadSampleSize');
  if (sampleSize !== undefined && Number(sampleSize) !== 2) {
    throw new DataError(source, `${field}: LeadSampleSize ${sampleSize.trim()} is not supported (only 2-byte samples)`);
  }
  const uvPerBit = parsePositiveNumber(childText(lead, 'LeadAmplitudeUnitsPerBit'), source, `${field}/LeadAmplitudeUnitsPerBit`);
  const toMv = requireVoltageScale(childText(lead, 'LeadAmplitudeUnits'), source, `${field}/LeadAmplitudeUnits`);
  const bytes = decodeBase64(childText(lead, 'WaveFormData') ?? '', source, `${field}/WaveFormData`);
  if (bytes.length === 0) throw new DataError(source, `${field}/WaveFormData is empty`);
  if (bytes.length % 2 !== 0) throw new DataError(source, `${field}/WaveFormData decodes to ${bytes.length} bytes, not whole 16-bit samples`);
  const byteCount = childText(lead, 'LeadByteCountTotal');
  if (byteCount !== undefined && Number(byteCount) !== bytes.length) {
    throw new DataError(source, `${field}: WaveFormData decodes to ${bytes.length} bytes but LeadByteCountTotal is ${byteCount.trim()}; the file is partial`);
  }
  const crcText = childText(lead, 'LeadDataCRC32');
  if (crcText !== undefined && crcText.trim() !== '' && Number(crcText) !== crc32(bytes)) {
    throw new DataError(source, `${field}: WaveFormData fails its LeadDataCRC32 check (${crcText.trim()} stored, ${crc32(bytes)} computed); the samples are corrupt`);
  }
  const length = bytes.length / 2;
  const sampleCount = childText(lead, 'LeadSampleCountTotal');
  if (sampleCount !== undefined && Number(sampleCount) !== length) {
    throw new DataError(source, `${field}: ${length} samples decoded but LeadSampleCountTotal is ${sampleCount.trim()}; the file is partial`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const signal = new Float32Array(length);
  const mvPerBit = uvPerBit * toMv;
  for (let i = 0; i < length; i++) signal[i] = view.getInt16(2 * i, true) * mvPerBit;
  return { name, signal };
}

/** Reads the Rhythm waveform of a GE MUSE RestingECG XML file, in mV. */
export function parseMuseXml(bytes: Uint8Array, source: string): EcgReadResult {
  const root = parseEcgXml(bytes, source, 'RestingECG');
  const warnings: string[] = [];
  const waveforms = children(root, 'Waveform');
  const typeOf = (w: XmlNode) => textOf(child(w, 'WaveformType')).trim().toLowerCase();
  const rhythms = waveforms.filter((w) => typeOf(w) === 'rhythm');
  if (!rhythms.length) {
    const kinds = waveforms.map(typeOf).filter((t) => t.length > 0);
    throw noWaveform(source, `Waveform with WaveformType Rhythm${kinds.length ? ` (found: ${kinds.join(', ')})` : ''}`);
  }
  if (rhythms.length > 1) warnings.push(`${source}: ${rhythms.length} Rhythm waveforms; the first is read`);
  const rhythm = rhythms[0];
  const fs = samplingRate(rhythm, source);
  const leadData = children(rhythm, 'LeadData');
  const leads = leadData.map((lead, i) => readLead(lead, i, source));
  const shifted = leadData.filter((lead) => Number(childText(lead, 'LeadTimeOffset') ?? 0) !== 0);
  if (shifted.length) {
    // Every real export seen has 0; a lead that starts later would be misaligned by this reader.
    warnings.push(`${source}: LeadTimeOffset is not 0 for lead(s) ${shifted.map((l) => childText(l, 'LeadID')?.trim()).join(', ')}; leads are read as starting together`);
  }
  const declared = childText(rhythm, 'NumberofLeads') ?? childText(rhythm, 'NumberOfLeads');
  if (declared !== undefined && Number(declared) !== leads.length) {
    warnings.push(`${source}: Rhythm NumberofLeads says ${declared.trim()} but ${leads.length} LeadData are present`);
  }
  return assembleRecording(source, leads, fs, warnings);
}
