/**
 * DICOM ECG waveform and EDF/EDF+/BDF readers: the real pydicom waveform_ecg.dcm against values from
 * pydicom (tools/make_ecg_fixtures.py), a pydicom-written fixture with the median group first and mV
 * units, an EDF+C fixture with non-ECG signals at another rate and an annotation signal, and the
 * refusals (image DICOM, median-only, unknown units, EDF+D, truncation).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isDicomWaveform, parseDicomEcg } from '../../src/data/readers/dicom-ecg';
import { parseEdf } from '../../src/data/readers/edf';
import { readEcgFile } from '../../src/data/readers/index';
import { MemoryFileSystem } from '../../src/data/fs';
import { prepareEcg } from '../../src/data/preprocess/ecg';
import { describeReal, realFile } from '../helpers/real-files';
import { expectDataError, expectRecording, expectedFor, fixtureBytes } from './helpers/ecg-formats';

const STANDARD_12 = ['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'];

/** Replaces every occurrence of an ASCII string by another of the same length, inside binary data. */
function replaceAscii(bytes: Uint8Array, from: string, to: string): Uint8Array {
  if (from.length !== to.length) throw new Error('same length only: offsets must not move');
  const out = bytes.slice();
  const needle = new TextEncoder().encode(from);
  let count = 0;
  for (let i = 0; i + needle.length <= out.length; i++) {
    if (needle.every((b, k) => out[i + k] === b)) {
      out.set(new TextEncoder().encode(to), i);
      count++;
    }
  }
  if (!count) throw new Error(`'${from}' not found`);
  return out;
}

describeReal('DICOM ECG waveform: real file waveform_ecg.dcm (pydicom test data)', () => {
  it('matches pydicom sample for sample: rhythm group (not the median beat), 12 leads, 1000 Hz, uV -> mV', async () => {
    const path = realFile('pydicom', 'waveform_ecg.dcm')!;
    const fs = new MemoryFileSystem();
    await fs.writeFile('waveform_ecg.dcm', new Uint8Array(readFileSync(path)));
    const rec = await readEcgFile(fs, 'waveform_ecg.dcm');
    expectRecording(rec, expectedFor('pydicom-waveform_ecg'), STANDARD_12);
    expect(rec.signals[0].length).toBe(10000); // the MEDIAN BEAT group has 1200
    const prepared = prepareEcg(rec);
    expect(prepared.mapping).toEqual(STANDARD_12.map((_, i) => i));
  });

  it('refuses a DICOM image with a message that points at the CMR reader', async () => {
    const path = realFile('pydicom', 'MR_small.dcm')!;
    expect(isDicomWaveform(new Uint8Array(readFileSync(path)))).toBe(false);
    expect(isDicomWaveform(new Uint8Array(readFileSync(realFile('pydicom', 'waveform_ecg.dcm')!)))).toBe(true);
    expectDataError(() => parseDicomEcg(new Uint8Array(readFileSync(path)), 'MR_small.dcm'), 'MR_small.dcm', 'no WaveformSequence', 'readCmrFile');
  });
});

describe('DICOM ECG waveform: pydicom-written fixture', () => {
  const name = 'dicom-ecg-mv.dcm';
  const bytes = fixtureBytes(name);

  it('reads the RHYTHM group after the MEDIAN BEAT group: mV units, correction factor, baseline, SCP/MDC codes', () => {
    const rec = parseDicomEcg(bytes, name);
    expectRecording(rec, expectedFor(name), ['I', 'II', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6']);
    expect(rec.warnings).toEqual([]);
    const prepared = prepareEcg(rec);
    expect(prepared.mapping.slice(2, 6)).toEqual(['derived', 'derived', 'derived', 'derived']);
  });

  it('reads the same values from the Implicit VR Little Endian copy', () => {
    const rec = parseDicomEcg(fixtureBytes('dicom-ecg-mv-implicit.dcm'), 'implicit.dcm');
    expectRecording(rec, expectedFor(name), ['I', 'II', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6']);
  });

  it('is found by content when the file has no extension', async () => {
    const fs = new MemoryFileSystem();
    await fs.writeFile('dicom/IM0001', bytes);
    expect((await readEcgFile(fs, 'dicom/IM0001')).signals[0].length).toBe(1250);
  });

  it('takes the unit from ChannelSensitivityUnitsSequence (uV gives 1/1000 of mV)', () => {
    const inUv = parseDicomEcg(replaceAscii(replaceAscii(bytes, 'mV', 'uV'), 'millivolt', 'microvolt'), name);
    const inMv = parseDicomEcg(bytes, name);
    expect(inUv.signals[3][500]).toBeCloseTo(inMv.signals[3][500] / 1000, 7);
    expectDataError(() => parseDicomEcg(replaceAscii(bytes, 'mV', 'mm'), name), 'ChannelSensitivityUnitsSequence', "'mm'");
  });

  it('drops a non-voltage channel (respiration in Ohm) of a General ECG file with a warning', () => {
    const general = 'dicom-general-ecg-resp.dcm';
    const rec = parseDicomEcg(fixtureBytes(general), general);
    expectRecording(rec, expectedFor(general), ['I', 'II', 'V1']);
    expect(rec.warnings.join()).toContain("channel 3 (Respiration) is in 'Ohm', not a voltage; dropped");
    // The same unit on a channel named as a lead is an error, not a silent drop.
    const leadInOhm = replaceAscii(fixtureBytes(general), 'Respiration', 'Lead V2    ');
    expectDataError(() => parseDicomEcg(leadInOhm, general), 'channel 3 (V2)', "'Ohm'");
  });

  it('refuses a file whose only groups are median beats', () => {
    const medianOnly = replaceAscii(replaceAscii(bytes, 'RHYTHM', 'MEDIAN'), 'ORIGINAL', 'DERIVED ');
    expectDataError(() => parseDicomEcg(medianOnly, name), 'rhythm multiplex group', 'MEDIAN BEAT');
  });

  it('refuses unsupported sample interpretations and truncated waveform data', () => {
    expectDataError(() => parseDicomEcg(replaceAscii(bytes, 'SS', 'MB'), name), "WaveformSampleInterpretation 'MB'");
    expectDataError(() => parseDicomEcg(bytes.subarray(0, bytes.length - 100), name), name);
  });
});

describe('EDF / EDF+ / BDF', () => {
  const name = 'ecg.edf';
  const bytes = fixtureBytes(name);

  it('reads the voltage signals of an EDF+C file; drops Resp (Ohm, 25 Hz), skips EDF Annotations', () => {
    const rec = parseEdf(bytes, name);
    expectRecording(rec, expectedFor(name)); // ECG I and V2 in uV, ECG II in mV (12-bit digital range)
    expect(rec.warnings.join()).toContain("'Resp' (Ohm) is not a voltage");
    expect(rec.warnings.join()).not.toContain('Annotations');
    const prepared = prepareEcg(rec);
    expect(prepared.mapping[0]).toBe(0);
    expect(prepared.mapping[1]).toBe(1);
    expect(prepared.mapping[7]).toBe(2);
  });

  it('is reached through readEcgFile by extension and by content', async () => {
    const fs = new MemoryFileSystem();
    await fs.writeFile('a.edf', bytes);
    await fs.writeFile('b.rec2', bytes);
    expect((await readEcgFile(fs, 'a.edf')).fs).toBe(250);
    expect((await readEcgFile(fs, 'b.rec2')).leadNames).toEqual(['ECG I', 'ECG II', 'ECG V2']);
  });

  it('refuses EDF+D, unfinished (-1 records) and truncated files, and ECG leads without a voltage unit', () => {
    expectDataError(() => parseEdf(replaceAscii(bytes, 'EDF+C', 'EDF+D'), name), 'EDF+D', 'discontinuous');
    expectDataError(() => parseEdf(replaceAscii(bytes, '3       1       5   ', '-1      1       5   '), name), 'not closed');
    expectDataError(() => parseEdf(bytes.subarray(0, bytes.length - 10), name), 'truncated', '2 whole records');
    expectDataError(() => parseEdf(replaceAscii(bytes, 'mV      Ohm', 'mA      Ohm'), name), "signal 'ECG II'", "'mA'");
  });

  it('reads 24-bit BDF samples', () => {
    // One signal 'ECG II', 2 records of 1 s at 4 Hz, digital -8388608..8388607 -> -1000..1000 uV (approx.).
    const field = (s: string, w: number) => s.padEnd(w, ' ').slice(0, w);
    const digital = [0, 1, -1, 8388607, -8388608, 4194304, 123456, -654321];
    let header = field('', 8) + field('X', 80) + field('X', 80) + '01.01.20' + '12.00.00' + field('512', 8) + field('24BIT', 44) + field('2', 8) + field('1', 8) + field('1', 4);
    header += field('ECG II', 16) + field('', 80) + field('uV', 8) + field('-1000', 8) + field('1000', 8) + field('-8388608', 8) + field('8388607', 8) + field('', 80) + field('4', 8) + field('', 32);
    const out = new Uint8Array(512 + digital.length * 3);
    for (let i = 0; i < header.length; i++) out[i] = header.charCodeAt(i);
    out[0] = 0xff;
    out.set(new TextEncoder().encode('BIOSEMI'), 1);
    digital.forEach((d, i) => out.set([d & 0xff, (d >> 8) & 0xff, (d >> 16) & 0xff], 512 + 3 * i));
    const rec = parseEdf(out, 'x.bdf');
    expect(rec.fs).toBe(4);
    const gain = 2000 / 16777215;
    digital.forEach((d, i) => expect(rec.signals[0][i]).toBeCloseTo((-1000 + (d + 8388608) * gain) / 1000, 6));
  });
});
