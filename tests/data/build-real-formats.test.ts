/**
 * `data build` end to end on the formats a UK Biobank / hospital user has: CardioSoft, MUSE and HL7 aECG XML,
 * EDF, DICOM ECG waveforms (pydicom's real waveform_ecg.dcm among them) paired with UK-Biobank-style subject
 * zips (several DICOM series, the LAX 4Ch cine chosen by description) built from pydicom's real MR_small.dcm.
 * Every subject is either in the dataset, with the chosen series recorded, or in rejected.csv with a reason.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { afterAll, expect, it } from 'vitest';
import { NodeBuildFileSystem } from '../../src/data/build/build-fs';
import { buildDataset } from '../../src/data/build/builder';
import { readPairsCsv } from '../../src/data/build/pairs';
import { NpyDatasetSource } from '../../src/data/loader';
import { describeReal, realFile } from '../helpers/real-files';
import { editDicom, TAG, type DicomEdit } from './helpers/dicom-edit';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const FIXTURES = join(__dirname, '..', 'fixtures', 'ecg');

/** A subject zip: a localizer (3 frames) and the LAX 4Ch cine (6 frames), MR_small's pixels shifted per frame. */
function subjectZip(mrSmall: Uint8Array, shift: number): Uint8Array {
  const pixelsAt = mrSmall.length - 64 * 64 * 2;
  const base = new Int16Array(mrSmall.slice(pixelsAt).buffer);
  const entries: Record<string, Uint8Array> = { 'manifest.cvs': new TextEncoder().encode('filename,series\n') };
  const series = [
    { description: 'Localizer', uid: '1.2.826.9.1', number: 1, frames: 3 },
    { description: 'CINE_segmented_LAX_4Ch', uid: '1.2.826.9.4', number: 4, frames: 6 },
  ];
  for (const s of series) {
    for (let k = 0; k < s.frames; k++) {
      // A beating bright disc over the real image, so the cine is not constant in time.
      const radius = 10 + 4 * Math.sin((2 * Math.PI * k) / s.frames);
      const pixels = Int16Array.from(base, (v, i) => {
        const x = (i % 64) - 32;
        const y = Math.floor(i / 64) - 32;
        return v + (x * x + y * y < radius * radius ? 800 + shift : 0);
      });
      const edits = new Map<number, DicomEdit>([
        [TAG.seriesDescription, { vr: 'LO', value: s.description }],
        [TAG.seriesUid, { vr: 'UI', value: s.uid }],
        [TAG.seriesNumber, { vr: 'IS', value: String(s.number) }],
        [TAG.instanceNumber, { vr: 'IS', value: String(k + 1) }],
        [TAG.triggerTime, { vr: 'DS', value: String(k * 40) }],
        [TAG.pixelData, { vr: 'OW', value: new Uint8Array(pixels.buffer) }],
      ]);
      entries[`${s.description}/IM_${k}.dcm`] = editDicom(mrSmall, edits);
    }
  }
  return zipSync(entries);
}

describeReal('data build from XML/EDF/DICOM ECGs and UK-Biobank-style CMR zips', () => {
  it('builds every readable subject, records the chosen series, and lists the rest with a reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'build-real-'));
    dirs.push(dir);
    const mrSmall = new Uint8Array(readFileSync(realFile('pydicom', 'MR_small.dcm')!));
    const waveform = realFile('pydicom', 'waveform_ecg.dcm')!;
    const ecgs = ['cardiosoft-rest.xml', 'muse-rest.xml', 'hl7-aecg.xml', 'ecg.edf', 'dicom-ecg-mv.dcm'];
    mkdirSync(join(dir, 'ecg'));
    mkdirSync(join(dir, 'cmr'));
    for (const name of ecgs) copyFileSync(join(FIXTURES, name), join(dir, 'ecg', name));
    copyFileSync(waveform, join(dir, 'ecg', 'waveform_ecg.dcm'));
    const rows = ['subject_id,ecg,cmr,ef'];
    [...ecgs, 'waveform_ecg.dcm'].forEach((name, i) => {
      writeFileSync(join(dir, 'cmr', `${1000 + i}_20209_2_0.zip`), subjectZip(mrSmall, 10 * i));
      rows.push(`${1000 + i},ecg/${name},cmr/${1000 + i}_20209_2_0.zip,${0.5 + 0.01 * i}`);
    });
    // One subject whose zip is missing: it must land in rejected.csv, not stop the build.
    rows.push('2000,ecg/muse-rest.xml,cmr/missing.zip,0.6');
    writeFileSync(join(dir, 'pairs.csv'), rows.join('\n') + '\n');

    const fs = new NodeBuildFileSystem();
    const out = join(dir, 'dataset');
    const pairs = await readPairsCsv(fs, join(dir, 'pairs.csv'));
    const result = await buildDataset(fs, { out, pairs, workers: 0, fractions: [1, 0, 0], qc: true });
    const rejected = readFileSync(join(out, 'rejected.csv'), 'utf8');
    // Every subject is accounted for; the missing zip is rejected with its file named.
    expect(result.accepted + result.rejected).toBe(7);
    expect(rejected).toMatch(/2000,6,cmr,.*missing\.zip/);
    expect(result.accepted, rejected).toBe(6);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    for (const s of manifest.subjects) {
      expect(s.series.chosen).toMatchObject({ description: 'CINE_segmented_LAX_4Ch' });
      expect(typeof s.labels.ef).toBe('number');
    }
    const source = await NpyDatasetSource.open(fs, out, 'train', { batchSize: 2, shuffle: false });
    expect(source.length).toBe(result.accepted);
    const { ecg, cmr } = await source.readSample(0);
    expect(ecg.every(Number.isFinite)).toBe(true);
    expect(cmr.length).toBe(50 * 96 * 96);
    expect(readFileSync(join(out, 'qc.md'), 'utf8')).toMatch(/rejected/i);
  }, 120_000);
});
