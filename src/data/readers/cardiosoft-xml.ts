/**
 * GE CardioSoft `CardiologyXML` (UK Biobank resting ECG, fields 20205; exercise ECG, field 6025).
 *
 *   <CardiologyXML>
 *     <RestingECGMeasurements><MedianSamples> ... one median beat per lead ... </MedianSamples>
 *     <StripData>                       the 10 s rhythm strip: what we read
 *       <NumberOfLeads>12</NumberOfLeads>
 *       <SampleRate units="Hz">500</SampleRate>
 *       <ChannelSampleCountTotal>5000</ChannelSampleCountTotal>
 *       <Resolution units="uVperLsb">5</Resolution>
 *       <WaveformData lead="I">-10,-12,...</WaveformData>   (comma-separated integers, one element per lead)
 *     <FullDisclosure>                  continuous recording (exercise files): used when there is no strip
 *       <NumberOfChannels>, <SampleRate>, <Resolution>, <LeadOrder>I,II,III</LeadOrder>,
 *       <FullDisclosureData>s1 lead1, s1 lead2, ..., s2 lead1, ...</FullDisclosureData>  (sample-interleaved)
 *
 * The median beats (MedianSamples, under RestingECGMeasurements or beside the strip, depending on the
 * CardioSoft version) carry the same SampleRate/Resolution/WaveformData tags as the strip; only the
 * direct children of the root's StripData are read, so a median beat can never pass for the rhythm.
 * Physical value (mV) = digital * Resolution (in the unit its `units` attribute names) -> mV.
 */
import { DataError } from '../errors';
import { type XmlNode, attr, child, childText, children, descendants, parseEcgXml, textOf } from './ecg-xml';
import {
  type EcgReadResult,
  type NamedSignal,
  assembleRecording,
  noWaveform,
  parseIntegerList,
  parsePositiveNumber,
  requireVoltageScale,
  scaleToMv,
} from './ecg-common';

/** 'uVperLsb', 'uV/LSB', 'mVperBit' ... -> mV per least significant bit times the Resolution value. */
function resolutionUnitToMv(unit: string | undefined, source: string, field: string): number {
  if (unit === undefined) throw new DataError(source, `${field} has no units attribute; expected units="uVperLsb"`);
  const voltage = unit.replace(/\s*(per|\/)\s*(lsb|bit|count)s?\s*$/i, '');
  if (voltage === unit) throw new DataError(source, `${field} unit '${unit}' is not a voltage per LSB (expected uVperLsb)`);
  return requireVoltageScale(voltage, source, field);
}

function sampleRate(section: XmlNode, source: string, sectionName: string, warnings: string[]): number {
  const node = child(section, 'SampleRate');
  const field = `${sectionName}/SampleRate`;
  const fs = parsePositiveNumber(node === undefined ? undefined : textOf(node), source, field);
  const unit = attr(node, 'units');
  if (unit === undefined) warnings.push(`${source}: ${field} has no units attribute; read as Hz`);
  else if (unit.trim().toLowerCase() !== 'hz') throw new DataError(source, `${field} unit '${unit}' is not Hz`);
  return fs;
}

function resolutionMv(section: XmlNode, source: string, sectionName: string): number {
  const node = child(section, 'Resolution');
  const field = `${sectionName}/Resolution`;
  const value = parsePositiveNumber(node === undefined ? undefined : textOf(node), source, field);
  return value * resolutionUnitToMv(attr(node, 'units'), source, field);
}

function readStrip(strip: XmlNode, source: string, warnings: string[]): EcgReadResult {
  const fs = sampleRate(strip, source, 'StripData', warnings);
  const mvPerLsb = resolutionMv(strip, source, 'StripData');
  const waveforms = children(strip, 'WaveformData');
  const leads: NamedSignal[] = waveforms.map((w, i) => {
    const name = attr(w, 'lead')?.trim();
    if (!name) throw new DataError(source, `StripData/WaveformData #${i + 1} has no lead attribute`);
    const digital = parseIntegerList(textOf(w), /,/, source, `StripData/WaveformData lead ${name}`);
    return { name, signal: scaleToMv(digital, mvPerLsb, 0, 1) };
  });
  const declaredCount = childText(strip, 'ChannelSampleCountTotal');
  if (declaredCount !== undefined && leads.length) {
    const expected = parsePositiveNumber(declaredCount, source, 'StripData/ChannelSampleCountTotal');
    const short = leads.find((l) => l.signal.length !== expected);
    if (short) throw new DataError(source, `StripData lead ${short.name} has ${short.signal.length} samples but ChannelSampleCountTotal is ${expected}; the file is partial`);
  }
  const declaredLeads = childText(strip, 'NumberOfLeads');
  if (declaredLeads !== undefined && Number(declaredLeads) !== leads.length) {
    warnings.push(`${source}: StripData/NumberOfLeads says ${declaredLeads.trim()} but ${leads.length} WaveformData leads are present`);
  }
  return assembleRecording(source, leads, fs, warnings);
}

function readFullDisclosure(full: XmlNode, source: string, warnings: string[]): EcgReadResult {
  const fs = sampleRate(full, source, 'FullDisclosure', warnings);
  const mvPerLsb = resolutionMv(full, source, 'FullDisclosure');
  const order = (childText(full, 'LeadOrder') ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (!order.length) throw new DataError(source, 'FullDisclosure/LeadOrder is missing; it names the interleaved channels');
  const declared = childText(full, 'NumberOfChannels');
  if (declared !== undefined && Number(declared) !== order.length) {
    throw new DataError(source, `FullDisclosure/NumberOfChannels is ${declared.trim()} but LeadOrder names ${order.length} leads`);
  }
  const values = parseIntegerList(childText(full, 'FullDisclosureData') ?? '', /,/, source, 'FullDisclosure/FullDisclosureData');
  if (values.length === 0) throw new DataError(source, 'FullDisclosure/FullDisclosureData holds no samples');
  if (values.length % order.length !== 0) {
    throw new DataError(source, `FullDisclosure/FullDisclosureData holds ${values.length} values, not a multiple of the ${order.length} channels; the file is partial`);
  }
  const length = values.length / order.length;
  const leads = order.map((name, c) => {
    const signal = new Float32Array(length);
    for (let i = 0; i < length; i++) signal[i] = values[i * order.length + c] * mvPerLsb;
    return { name, signal };
  });
  return assembleRecording(source, leads, fs, warnings);
}

/** Reads the rhythm strip (else the full disclosure) of a CardioSoft CardiologyXML file, in mV. */
export function parseCardiosoftXml(bytes: Uint8Array, source: string): EcgReadResult {
  const root = parseEcgXml(bytes, source, 'CardiologyXML');
  const warnings: string[] = [];
  const strip = child(root, 'StripData');
  if (strip && children(strip, 'WaveformData').length) return readStrip(strip, source, warnings);
  const full = child(root, 'FullDisclosure');
  if (full && child(full, 'FullDisclosureData')) {
    warnings.push(`${source}: no StripData rhythm strip; read FullDisclosure (the continuous recording)`);
    return readFullDisclosure(full, source, warnings);
  }
  const hasMedian = descendants(root, 'MedianSamples').length > 0; // under RestingECGMeasurements or beside the strip
  throw noWaveform(source, hasMedian ? 'StripData or FullDisclosure (only MedianSamples, median beats, which are not a rhythm recording)' : 'StripData or FullDisclosure');
}
