/**
 * GE CardioSoft, GE MUSE and HL7 aECG readers against the hand-written fixtures of
 * tools/make_ecg_fixtures.py (expected mV values computed in Python), and the awkward parts of each
 * format: median beats beside the rhythm, per-lead units, missing leads, partial files, unknown units.
 */
import { describe, expect, it } from 'vitest';
import { parseCardiosoftXml } from '../../src/data/readers/cardiosoft-xml';
import { parseMuseXml } from '../../src/data/readers/muse-xml';
import { parseHl7Aecg } from '../../src/data/readers/hl7-aecg';
import { readEcgFile } from '../../src/data/readers/index';
import { MemoryFileSystem } from '../../src/data/fs';
import { prepareEcg } from '../../src/data/preprocess/ecg';
import { expectDataError, expectRecording, expectedFor, fixtureBytes, fixtureText, textBytes } from './helpers/ecg-formats';

const LIMB_DERIVED = ['III', 'aVR', 'aVL', 'aVF'];

/**
 * Edits only the part of `text` after `marker`: the fixtures put the median beats first, with the same
 * tags as the rhythm data, so an edit must not land on them by accident.
 */
function editAfter(text: string, marker: string, pattern: string | RegExp, replacement: string): string {
  const at = text.indexOf(marker);
  if (at < 0) throw new Error(`marker ${marker} not in fixture`);
  const edited = text.slice(at).replace(pattern, replacement);
  if (edited === text.slice(at)) throw new Error(`edit ${pattern} found nothing after ${marker}`);
  return text.slice(0, at) + edited;
}

describe('GE CardioSoft CardiologyXML (UK Biobank)', () => {
  const name = 'cardiosoft-rest.xml';
  const text = fixtureText(name);

  it('reads the StripData rhythm strip, not the MedianSamples before it', () => {
    const rec = parseCardiosoftXml(fixtureBytes(name), name);
    expectRecording(rec, expectedFor(name));
    expect(rec.signals[0].length).toBe(1250); // the median beats hold 600 samples
    expect(rec.warnings).toEqual([]);
  });

  it('is reached through readEcgFile by its root element and prepares to (12, 5000)', async () => {
    const fs = new MemoryFileSystem();
    await fs.writeFile('subject/20205_2_0.xml', fixtureBytes(name));
    const rec = await readEcgFile(fs, 'subject/20205_2_0.xml');
    expectRecording(rec, expectedFor(name));
    const prepared = prepareEcg(rec);
    expect(prepared.mapping).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(prepared.data[1 * 5000 + 97]).toBeCloseTo(expectedFor(name).leads[1].samples[1], 5);
  });

  it('reads FullDisclosure (one-second blocks per lead, leads I, 2, 3) when there is no strip, and says so', () => {
    const fd = 'cardiosoft-fulldisclosure.xml';
    const rec = parseCardiosoftXml(fixtureBytes(fd), fd);
    expectRecording(rec, expectedFor(fd));
    expect(rec.warnings.join()).toContain('no StripData rhythm strip; read FullDisclosure');
    expect(rec.warnings.join()).toContain('lead(s) 2, 3; read as II, III');
    const partial = fixtureText(fd).replace(/,\n[^\n]*,<\/FullDisclosureData>/, ',</FullDisclosureData>');
    expectDataError(() => parseCardiosoftXml(textBytes(partial), fd), 'not whole seconds of 3 channels x 500 samples', 'partial');
  });

  it('reads the strip when MedianSamples sit beside it (other CardioSoft versions) rather than under the measurements', () => {
    const median = /<MedianSamples>[\s\S]*<\/MedianSamples>/.exec(text)![0];
    const beside = text.replace(median, '').replace('</StripData>', `</StripData>\n  ${median}`);
    expectRecording(parseCardiosoftXml(textBytes(beside), name), expectedFor(name));
    const besideOnly = beside.replace(/<StripData>[\s\S]*<\/StripData>/, '');
    expectDataError(() => parseCardiosoftXml(textBytes(besideOnly), name), 'MedianSamples', 'not a rhythm');
  });

  it('never takes the median beats for the rhythm when StripData is absent', () => {
    const onlyMedian = text.replace(/<StripData>[\s\S]*<\/StripData>/, '');
    expectDataError(() => parseCardiosoftXml(textBytes(onlyMedian), name), 'MedianSamples', 'not a rhythm');
  });

  it('takes the amplitude unit from Resolution units (uVperLsb vs mVperLsb)', () => {
    const mv = text.replace('<Resolution units="uVperLsb">5</Resolution>', '<Resolution units="mVperLsb">0.005</Resolution>');
    expectRecording(parseCardiosoftXml(textBytes(mv), name), expectedFor(name));
    const noUnit = text.replace('<Resolution units="uVperLsb">5</Resolution>', '<Resolution>5</Resolution>');
    expectDataError(() => parseCardiosoftXml(textBytes(noUnit), name), name, 'StripData/Resolution', 'uVperLsb');
    const odd = text.replace('<Resolution units="uVperLsb">5</Resolution>', '<Resolution units="mmPerLsb">5</Resolution>');
    expectDataError(() => parseCardiosoftXml(textBytes(odd), name), 'StripData/Resolution', "'mm'");
  });

  it('leaves a missing lead missing (prepareEcg fills it, with a warning)', () => {
    const noV3 = editAfter(text, '<StripData>', /<WaveformData lead="V3">[^<]*<\/WaveformData>/, '');
    const rec = parseCardiosoftXml(textBytes(noV3), name);
    expect(rec.leadNames).not.toContain('V3');
    expect(rec.warnings.join()).toContain('NumberOfLeads says 12 but 11');
    expect(prepareEcg(rec).warnings.join()).toContain('missing lead(s) V3');
  });

  it('refuses partial leads, non-integer samples, a sample rate in other units', () => {
    const shortLead = editAfter(text, '<StripData>', /(<WaveformData lead="II">)((?:[^,<]*,){10})/, '$1');
    expectDataError(() => parseCardiosoftXml(textBytes(shortLead), name), 'lead II has 1240 samples', 'partial');
    const junk = editAfter(text, '<StripData>', /(<WaveformData lead="aVL">[^,]*,[^,]*,)/, '$1 12a,');
    expectDataError(() => parseCardiosoftXml(textBytes(junk), name), 'lead aVL', "'12a'", 'position 3');
    const kHz = text.replace('<SampleRate units="Hz">500</SampleRate>\n    <ChannelSampleCountTotal>1250', '<SampleRate units="kHz">0.5</SampleRate>\n    <ChannelSampleCountTotal>1250');
    expectDataError(() => parseCardiosoftXml(textBytes(kHz), name), 'StripData/SampleRate', 'not Hz');
    expectDataError(() => parseCardiosoftXml(textBytes(text.replace('</StripData>', '')), name), 'malformed XML', 'line');
  });
});

describe('GE MUSE RestingECG XML', () => {
  const name = 'muse-rest.xml';
  const text = fixtureText(name);

  it('reads the Rhythm waveform (fs = SampleBase x 10^SampleExponent), per-lead units, not the Median', () => {
    const rec = parseMuseXml(fixtureBytes(name), name);
    expectRecording(rec, expectedFor(name)); // V3 is stored in MILLIVOLTS, the others in MICROVOLTS
    expect(rec.fs).toBe(500);
    expect(rec.signals[0].length).toBe(1250);
  });

  it('leaves III, aVR, aVL, aVF to prepareEcg, which derives them and says so', async () => {
    const fs = new MemoryFileSystem();
    await fs.writeFile('muse/123.xml', fixtureBytes(name));
    const rec = await readEcgFile(fs, 'muse/123.xml');
    const prepared = prepareEcg(rec);
    expect(prepared.mapping.slice(2, 6)).toEqual(['derived', 'derived', 'derived', 'derived']);
    expect(prepared.warnings.join()).toMatch(new RegExp(LIMB_DERIVED.join('.*')));
    const i = prepared.data.subarray(0, 5000);
    const ii = prepared.data.subarray(5000, 10000);
    const iii = prepared.data.subarray(10000, 15000);
    for (const k of [0, 400, 1000]) expect(iii[k]).toBeCloseTo(ii[k] - i[k], 6);
  });

  it('warns when a lead says it starts later (LeadTimeOffset) than the others', () => {
    const rhythmStart = text.indexOf('<WaveformType>Rhythm');
    const shifted = text.slice(0, rhythmStart) + text.slice(rhythmStart).replace('<LeadTimeOffset>0</LeadTimeOffset>', '<LeadTimeOffset>4</LeadTimeOffset>');
    expect(parseMuseXml(textBytes(shifted), name).warnings.join()).toContain('LeadTimeOffset is not 0 for lead(s) I');
  });

  it('names what it found when there is no Rhythm waveform', () => {
    const medianOnly = text.replace(/<Waveform>\s*<WaveformType>Rhythm[\s\S]*?<\/Waveform>/, '');
    expectDataError(() => parseMuseXml(textBytes(medianOnly), name), 'WaveformType Rhythm', 'found: median');
  });

  it('refuses unknown amplitude units, bad base64, a failed CRC and byte counts that disagree with the data', () => {
    const units = text.replace('<LeadAmplitudeUnits>MILLIVOLTS</LeadAmplitudeUnits>', '<LeadAmplitudeUnits>MILLIMETERS</LeadAmplitudeUnits>');
    expectDataError(() => parseMuseXml(textBytes(units), name), 'Rhythm LeadData V3/LeadAmplitudeUnits', 'MILLIMETERS');
    const noUnits = text.replace('<LeadAmplitudeUnits>MILLIVOLTS</LeadAmplitudeUnits>', '');
    expectDataError(() => parseMuseXml(textBytes(noUnits), name), 'V3/LeadAmplitudeUnits', 'no amplitude unit');
    const rhythmStart = text.indexOf('<WaveformType>Rhythm');
    const b64 = text.indexOf('<WaveFormData>', rhythmStart) + '<WaveFormData>'.length;
    const corrupt = text.slice(0, b64) + '#' + text.slice(b64 + 1);
    expectDataError(() => parseMuseXml(textBytes(corrupt), name), 'Rhythm LeadData I/WaveFormData', 'base64');
    const cut = text.slice(0, b64) + text.slice(b64 + 8); // 6 bytes less: 3 samples
    expectDataError(() => parseMuseXml(textBytes(cut), name), 'LeadByteCountTotal is 2500', 'partial');
    const crcAt = text.indexOf('<LeadDataCRC32>', rhythmStart) + '<LeadDataCRC32>'.length;
    const badCrc = text.slice(0, crcAt) + '1' + text.slice(crcAt);
    expectDataError(() => parseMuseXml(textBytes(badCrc), name), 'Rhythm LeadData I', 'LeadDataCRC32', 'corrupt');
    const size = text.replace(/<LeadSampleSize>2<\/LeadSampleSize>/g, '<LeadSampleSize>4</LeadSampleSize>');
    expectDataError(() => parseMuseXml(textBytes(size), name), 'LeadSampleSize 4');
  });
});

describe('HL7 aECG AnnotatedECG', () => {
  const name = 'hl7-aecg.xml';
  const text = fixtureText(name);

  it('reads the RHYTHM sequenceSet: origin + scale x digits with per-lead units, not the derived median', () => {
    const rec = parseHl7Aecg(fixtureBytes(name), name);
    expectRecording(rec, expectedFor(name)); // limb leads in uV, V leads in mV with an origin
    expect(rec.leadNames).not.toContain('aVR'); // the REPRESENTATIVE_BEAT series has all 12 leads
    expect(rec.signals[0].length).toBe(1250);
  });

  it('derives the missing aVR and aVL in prepareEcg, through readEcgFile', async () => {
    const fs = new MemoryFileSystem();
    await fs.writeFile('study/ecg.xml', fixtureBytes(name));
    const prepared = prepareEcg(await readEcgFile(fs, 'study/ecg.xml'));
    expect(prepared.mapping[3]).toBe('derived');
    expect(prepared.mapping[4]).toBe('derived');
    expect(prepared.warnings.join()).not.toContain('filled with zeros');
  });

  it('converts origin and scale each from its own unit (an origin in uV beside a scale in mV)', () => {
    const mixed = text.replace(/<origin value="0.0125" unit="mV"\/>/g, '<origin value="12.5" unit="uV"/>');
    expect(mixed).not.toBe(text);
    expectRecording(parseHl7Aecg(textBytes(mixed), name), expectedFor(name));
  });

  it('reads TIME_RELATIVE increments in ms as well as TIME_ABSOLUTE in s', () => {
    const rhythmAt = text.indexOf('<sequence>\n                <code code="TIME_ABSOLUTE"');
    const relative = text.slice(0, rhythmAt) + text.slice(rhythmAt)
      .replace('TIME_ABSOLUTE', 'TIME_RELATIVE')
      .replace('<head value="20200101120000.000"/>', '<head value="0" unit="ms"/>')
      .replace('<increment value="0.002" unit="s"/>', '<increment value="4" unit="ms"/>');
    expect(parseHl7Aecg(textBytes(relative), name).fs).toBe(250);
  });

  it('refuses a scale without unit, a non-voltage unit, a time unit it does not know', () => {
    const noUnit = editAfter(text, 'TIME_ABSOLUTE', '<scale value="2.5" unit="uV"/>', '<scale value="2.5"/>');
    expectDataError(() => parseHl7Aecg(textBytes(noUnit), name), 'MDC_ECG_LEAD_I sequence scale', 'no amplitude unit');
    const mmHg = editAfter(text, 'TIME_ABSOLUTE', /(<code code="MDC_ECG_LEAD_V1"[\s\S]*?)<scale value="0.005" unit="mV"\/>/, '$1<scale value="0.005" unit="mm[Hg]"/>');
    expectDataError(() => parseHl7Aecg(textBytes(mmHg), name), 'MDC_ECG_LEAD_V1', 'mm[Hg]');
    const weird = editAfter(text, 'TIME_ABSOLUTE', '<increment value="0.002" unit="s"/>', '<increment value="0.002" unit="fortnight"/>');
    expectDataError(() => parseHl7Aecg(textBytes(weird), name), 'TIME_ABSOLUTE sequence increment', 'fortnight');
    const origin = editAfter(text, 'TIME_ABSOLUTE', '<origin value="0.0125" unit="mV"/>', '<origin value="0.0125"/>');
    expectDataError(() => parseHl7Aecg(textBytes(origin), name), 'origin', 'no amplitude unit');
  });

  it('refuses leads of different lengths and a series without RHYTHM', () => {
    const short = editAfter(text, 'TIME_ABSOLUTE', /(<code code="MDC_ECG_LEAD_V6"[\s\S]*?<digits>)((?:-?\d+ ){5})/, '$1');
    expectDataError(() => parseHl7Aecg(textBytes(short), name), 'lead V6 has 1245 samples', 'partial');
    const noRhythm = text.replace('<code code="RHYTHM"', '<code code="OTHER"');
    expectDataError(() => parseHl7Aecg(textBytes(noRhythm), name), 'series with code RHYTHM', 'found: OTHER');
  });
});

describe('ECG XML dispatch', () => {
  it('sniffs the dialect of an .xml file and of a file without extension; refuses other XML', async () => {
    const fs = new MemoryFileSystem();
    await fs.writeFile('a.xml', fixtureBytes('hl7-aecg.xml'));
    await fs.writeFile('b', fixtureBytes('muse-rest.xml'));
    await fs.writeFile('c.xml', '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>');
    expect((await readEcgFile(fs, 'a.xml')).leadNames).toContain('V6');
    expect((await readEcgFile(fs, 'b')).leadNames).toEqual(['I', 'II', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6']);
    await expect(readEcgFile(fs, 'c.xml')).rejects.toThrow(/c\.xml: XML root element <svg> is not an ECG format/);
  });

  it('decodes UTF-16 files (with BOM) as well as ISO-8859-1 ones', () => {
    const text = fixtureText('cardiosoft-rest.xml').replace('encoding="ISO-8859-1"', 'encoding="UTF-16"');
    const utf16 = new Uint8Array(2 + text.length * 2);
    utf16.set([0xff, 0xfe]);
    for (let i = 0; i < text.length; i++) utf16[2 + 2 * i] = text.charCodeAt(i);
    expectRecording(parseCardiosoftXml(utf16, 'u16.xml'), expectedFor('cardiosoft-rest.xml'));
  });
});
