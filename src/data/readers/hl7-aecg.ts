/**
 * HL7 v3 annotated ECG (`<AnnotatedECG xmlns="urn:hl7-org:v3">`, the FDA aECG format).
 *
 *   <AnnotatedECG>
 *     <component><series>
 *       <code code="RHYTHM" codeSystem="2.16.840.1.113883.5.4"/>
 *       <component><sequenceSet>                             the simultaneous leads: what we read
 *         <component><sequence>
 *           <code code="TIME_ABSOLUTE"/>                     or TIME_RELATIVE
 *           <value xsi:type="GLIST_TS"><head value="20230101120000.000"/><increment value="0.002" unit="s"/></value>
 *         <component><sequence>
 *           <code code="MDC_ECG_LEAD_I" codeSystem="2.16.840.1.113883.6.24"/>
 *           <value xsi:type="SLIST_PQ">
 *             <origin value="0" unit="uV"/><scale value="5" unit="uV"/>
 *             <digits>1 2 3 ...</digits>                     physical = origin + scale * digit
 *       <derivation><derivedSeries>                          median beats (REPRESENTATIVE_BEAT): never read
 *
 * The sampling rate is 1 / increment of the time sequence (its unit: s or ms). Units are read per lead,
 * separately for origin and scale. Lead codes MDC_ECG_LEAD_<name> give the lead names.
 */
import { DataError } from '../errors';
import { type XmlNode, attr, child, childText, children, parseEcgXml } from './ecg-xml';
import {
  type EcgReadResult,
  type NamedSignal,
  assembleRecording,
  noWaveform,
  parseFiniteNumber,
  parseIntegerList,
  parsePositiveNumber,
  requireVoltageScale,
  timeScaleToSeconds,
} from './ecg-common';

const LEAD_CODE_PREFIX = /^MDC_ECG_LEAD_/i;
const STANDARD_SPELLING: Record<string, string> = { AVR: 'aVR', AVL: 'aVL', AVF: 'aVF' };

const codeOf = (node: XmlNode | undefined) => (attr(child(node, 'code'), 'code') ?? '').trim();

/** The sequences (time and leads) of a sequenceSet, in document order. */
function sequencesOf(set: XmlNode): XmlNode[] {
  return children(set, 'component').flatMap((c) => children(c, 'sequence'));
}

function samplingRate(timeSequence: XmlNode, source: string): number {
  const value = child(timeSequence, 'value');
  const increment = child(value, 'increment');
  const field = `${codeOf(timeSequence)} sequence increment`;
  if (!increment) {
    throw new DataError(source, `${codeOf(timeSequence)} sequence has no <increment>; explicit time lists are not supported, only regularly sampled GLIST time sequences`);
  }
  const step = parsePositiveNumber(attr(increment, 'value'), source, field);
  const unit = attr(increment, 'unit');
  if (unit === undefined) throw new DataError(source, `${field} has no unit; expected unit="s" or "ms"`);
  const seconds = timeScaleToSeconds(unit);
  if (seconds === null) throw new DataError(source, `${field} unit '${unit}' is not a time unit (s, ms)`);
  return 1 / (step * seconds);
}

function readLead(sequence: XmlNode, code: string, source: string): NamedSignal {
  const raw = code.replace(LEAD_CODE_PREFIX, '');
  const name = STANDARD_SPELLING[raw.toUpperCase()] ?? raw;
  const value = child(sequence, 'value');
  const field = `${code} sequence`;
  const type = attr(value, 'type');
  if (type !== undefined && type !== 'SLIST_PQ') throw new DataError(source, `${field} value type ${type} is not supported (expected SLIST_PQ)`);
  const scaleNode = child(value, 'scale');
  if (!scaleNode) throw new DataError(source, `${field} has no <scale>; the amplitude per digit is unknown`);
  const scale = parseFiniteNumber(attr(scaleNode, 'value'), source, `${field} scale`);
  if (scale === 0) throw new DataError(source, `${field} scale is 0`);
  const scaleToMv = requireVoltageScale(attr(scaleNode, 'unit'), source, `${field} scale`);
  const originNode = child(value, 'origin');
  const origin = originNode ? parseFiniteNumber(attr(originNode, 'value'), source, `${field} origin`) : 0;
  // An origin of 0 is 0 in any unit; a non-zero origin must say its unit.
  const originToMv = origin === 0 ? 0 : requireVoltageScale(attr(originNode, 'unit'), source, `${field} origin`);
  const digitsText = childText(value, 'digits');
  if (digitsText === undefined) throw new DataError(source, `${field} has no <digits>`);
  const digits = parseIntegerList(digitsText, /\s+/, source, `${field} digits`);
  const signal = new Float32Array(digits.length);
  const mvPerDigit = scale * scaleToMv;
  const offsetMv = origin * originToMv;
  for (let i = 0; i < digits.length; i++) signal[i] = offsetMv + digits[i] * mvPerDigit;
  return { name, signal };
}

/** Reads the rhythm series of an HL7 aECG file (first sequenceSet), in mV. */
export function parseHl7Aecg(bytes: Uint8Array, source: string): EcgReadResult {
  const root = parseEcgXml(bytes, source, 'AnnotatedECG');
  const warnings: string[] = [];
  const series = children(root, 'component').flatMap((c) => children(c, 'series'));
  const rhythm = series.filter((s) => codeOf(s).toUpperCase() === 'RHYTHM');
  if (!rhythm.length) {
    const codes = series.map(codeOf).filter((c) => c.length > 0);
    throw noWaveform(source, `series with code RHYTHM${codes.length ? ` (found: ${codes.join(', ')})` : ''}`);
  }
  if (rhythm.length > 1) warnings.push(`${source}: ${rhythm.length} RHYTHM series; the first is read`);
  const sets = children(rhythm[0], 'component').flatMap((c) => children(c, 'sequenceSet'));
  if (!sets.length) throw noWaveform(source, 'sequenceSet in the RHYTHM series');
  if (sets.length > 1) warnings.push(`${source}: the RHYTHM series has ${sets.length} sequenceSets (leads not recorded together); the first is read`);
  const sequences = sequencesOf(sets[0]);
  const timeSequences = sequences.filter((s) => /^TIME_(ABSOLUTE|RELATIVE)$/i.test(codeOf(s)));
  if (timeSequences.length !== 1) {
    throw new DataError(source, `the sequenceSet has ${timeSequences.length} TIME_ABSOLUTE/TIME_RELATIVE sequences; exactly one must give the sampling interval`);
  }
  const fs = samplingRate(timeSequences[0], source);
  const leads: NamedSignal[] = [];
  for (const sequence of sequences) {
    const code = codeOf(sequence);
    if (LEAD_CODE_PREFIX.test(code)) leads.push(readLead(sequence, code, source));
    else if (!timeSequences.includes(sequence)) warnings.push(`${source}: sequence '${code || '(no code)'}' is not an ECG lead; ignored`);
  }
  return assembleRecording(source, leads, fs, warnings);
}
