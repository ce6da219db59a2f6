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
 *     <FullDisclosure>                  the continuous recording: used when there is no strip
 *       <NumberOfChannels>, <SampleRate>, <Resolution>, <LeadOrder>I,II,III,...</LeadOrder>,
 *       <FullDisclosureData>   comma-separated, in one-second blocks: SampleRate samples of the first
 *         lead, then of the second, ..., then the next second of the first lead (one block per line in
 *         UK Biobank files; the line breaks carry no meaning). Not sample-interleaved: read that way,
 *         a real UK Biobank file's lead steps by ~16 LSB between samples instead of ~0.6.
 *
 * Exercise files (UK Biobank field 6025) name their leads I, 2, 3 in LeadOrder; those digits are read
 * as II and III, with a warning.
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

const DIGIT_LEAD_NAMES: Record<string, string> = { '1': 'I', '2': 'II', '3': 'III' };

function readFullDisclosure(full: XmlNode, source: string, warnings: string[]): EcgReadResult {
  const fs = sampleRate(full, source, 'FullDisclosure', warnings);
  const mvPerLsb = resolutionMv(full, source, 'FullDisclosure');
  const order = (childText(full, 'LeadOrder') ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (!order.length) throw new DataError(source, 'FullDisclosure/LeadOrder is missing; it names the channels of the data blocks');
  const declared = childText(full, 'NumberOfChannels');
  if (declared !== undefined && Number(declared) !== order.length) {
    throw new DataError(source, `FullDisclosure/NumberOfChannels is ${declared.trim()} but LeadOrder names ${order.length} leads`);
  }
  const digits = order.filter((name) => DIGIT_LEAD_NAMES[name]);
  if (digits.length) warnings.push(`${source}: FullDisclosure/LeadOrder names lead(s) ${digits.join(', ')}; read as ${digits.map((d) => DIGIT_LEAD_NAMES[d]).join(', ')}`);
  const names = order.map((name) => DIGIT_LEAD_NAMES[name] ?? name);
  if (!Number.isInteger(fs)) throw new DataError(source, `FullDisclosure/SampleRate ${fs} is not a whole number of samples per one-second block`);
  const values = parseIntegerList(childText(full, 'FullDisclosureData') ?? '', /,/, source, 'FullDisclosure/FullDisclosureData');
  if (values.length === 0) throw new DataError(source, 'FullDisclosure/FullDisclosureData holds no samples');
  const round = fs * order.length; // one second of every channel
  if (values.length % round !== 0) {
    throw new DataError(source, `FullDisclosure/FullDisclosureData holds ${values.length} values, not whole seconds of ${order.length} channels x ${fs} samples; the file is partial`);
  }
  const seconds = values.length / round;
  const leads = names.map((name, c) => {
    const signal = new Float32Array(seconds * fs);
    for (let sec = 0; sec < seconds; sec++) {
      const from = sec * round + c * fs;
      for (let k = 0; k < fs; k++) signal[sec * fs + k] = values[from + k] * mvPerLsb;
    }
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
