/**
 * Series selection in folders and ZIP archives, built like a UK Biobank subject zip (one zip, many
 * series, a manifest) from the real MR_small.dcm with tags and pixels edited in-test.
 */
import { readFileSync } from 'node:fs';
import { zipSync } from 'fflate';
import { beforeAll, expect, it } from 'vitest';
import { DataError, MemoryFileSystem, readCmrFile, readZipArchive, type CmrFileResult } from '../../src/data';
import { describeReal, realFile } from '../helpers/real-files';
import { asZip64 } from '../helpers/zip-rewrite';
import { editDicom, TAG, type DicomEdit } from './helpers/dicom-edit';

interface SeriesSpec {
  description: string;
  uid: string;
  number: number;
  frames: number;
  locations?: number;
  orientation: string;
}

const LAX_OBLIQUE = '0.62\\-0.58\\-0.53\\0.37\\0.81\\-0.45';
const SAX_OBLIQUE = '0.73\\0.68\\0.00\\-0.21\\0.23\\-0.95';
const AXIAL = '1\\0\\0\\0\\1\\0';

const SERIES: SeriesSpec[] = [
  { description: 'Localizer', uid: '1.2.826.1.1', number: 1, frames: 3, locations: 3, orientation: AXIAL },
  { description: 'CINE_segmented_LAX_2Ch', uid: '1.2.826.1.2', number: 2, frames: 4, orientation: LAX_OBLIQUE },
  { description: 'CINE_segmented_LAX_4Ch', uid: '1.2.826.1.4', number: 4, frames: 5, orientation: LAX_OBLIQUE },
  { description: 'CINE_segmented_SAX_b1', uid: '1.2.826.1.5', number: 5, frames: 3, locations: 2, orientation: SAX_OBLIQUE },
];

let base: Uint8Array;
let basePixels: Int16Array;

/** Frame k of a series: MR_small's pixels plus a per-series, per-frame offset (so order is checkable). */
function frameValue(series: SeriesSpec, frame: number, i: number): number {
  return basePixels[i] + 1000 * series.number + 10 * frame;
}

function seriesFiles(s: SeriesSpec): { name: string; bytes: Uint8Array }[] {
  const files: { name: string; bytes: Uint8Array }[] = [];
  const locations = s.locations ?? 1;
  for (let loc = 0; loc < locations; loc++) {
    for (let k = 0; k < s.frames; k++) {
      const pixels = Int16Array.from(basePixels, (_, i) => frameValue(s, k, i));
      const edits = new Map<number, DicomEdit>([
        [TAG.seriesDescription, { vr: 'LO', value: s.description }],
        [TAG.seriesUid, { vr: 'UI', value: s.uid }],
        [TAG.seriesNumber, { vr: 'IS', value: String(s.number) }],
        // Instance numbers run backwards so that only TriggerTime gives the right order.
        [TAG.instanceNumber, { vr: 'IS', value: String(100 - k - 10 * loc) }],
        [TAG.triggerTime, { vr: 'DS', value: String(k * 37.5) }],
        [TAG.imageOrientation, { vr: 'DS', value: s.orientation }],
        [TAG.sliceLocation, { vr: 'DS', value: String(-20 + 8 * loc) }],
        [TAG.pixelData, { vr: 'OW', value: new Uint8Array(pixels.buffer) }],
      ]);
      files.push({ name: `${s.description}/IM_${String(loc).padStart(2, '0')}_${String(k).padStart(3, '0')}.dcm`, bytes: editDicom(base, edits) });
    }
  }
  return files.reverse(); // archive order must not matter
}

function subjectZip(series = SERIES): Uint8Array {
  const entries: Record<string, Uint8Array | [Uint8Array, { level: 0 | 6 }]> = {
    'manifest.cvs': new TextEncoder().encode('filename,series\n'),
  };
  series.forEach((s, n) => {
    for (const f of seriesFiles(s)) entries[f.name] = [f.bytes, { level: n % 2 ? 0 : 6 }]; // stored and deflated entries
  });
  return zipSync(entries);
}

function expectSeriesCine(cine: CmrFileResult, s: SeriesSpec): void {
  expect([cine.frames, cine.height, cine.width]).toEqual([s.frames, 64, 64]);
  for (let k = 0; k < s.frames; k++) {
    for (const i of [0, 777, 4095]) expect(cine.data[k * 4096 + i]).toBe(frameValue(s, k, i));
  }
}

describeReal('UK-Biobank-like archives: series selection', () => {
  beforeAll(() => {
    base = new Uint8Array(readFileSync(realFile('pydicom', 'MR_small.dcm')!));
    const pixelOffset = base.length - 8192; // MR_small ends with its 64x64 int16 PixelData
    basePixels = new Int16Array(base.slice(pixelOffset).buffer);
  });

  it('picks CINE_segmented_LAX_4Ch by default, orders by TriggerTime and reports the choice', async () => {
    const fs = new MemoryFileSystem();
    await fs.writeFile('1000001_20208_2_0.zip', subjectZip());
    const cine = await readCmrFile(fs, '1000001_20208_2_0.zip');
    expectSeriesCine(cine, SERIES[2]);
    expect(cine.selection?.chosen).toMatchObject({ description: 'CINE_segmented_LAX_4Ch', uid: '1.2.826.1.4', number: 4, files: 5, frames: 5, sliceLocations: 1 });
    expect(cine.selection?.chosen.orientation).toMatch(/^oblique/);
    expect(cine.selection?.reason).toMatch(/SeriesDescription matches/);
    expect(cine.selection?.series.map((s) => s.description)).toEqual(SERIES.map((s) => s.description));
    expect(cine.selection?.series[0].orientation).toMatch(/^axial/);
    expect(cine.warnings.join('\n')).toMatch(/1 non-DICOM file\(s\) skipped \(manifest\.cvs\)/);
  });

  it('the same series from a folder with one sub-folder per series', async () => {
    const fs = new MemoryFileSystem();
    for (const s of SERIES) for (const f of seriesFiles(s)) await fs.writeFile(`subject/${f.name}`, f.bytes);
    await fs.writeFile('subject/manifest.cvs', 'x');
    const cine = await readCmrFile(fs, 'subject');
    expectSeriesCine(cine, SERIES[2]);
    expect(cine.selection?.chosen.description).toBe('CINE_segmented_LAX_4Ch');
  });

  it('seriesPattern and seriesUid choose another series', async () => {
    const fs = new MemoryFileSystem();
    await fs.writeFile('s.zip', subjectZip());
    expectSeriesCine(await readCmrFile(fs, 's.zip', { seriesPattern: 'lax_2ch' }), SERIES[1]);
    expectSeriesCine(await readCmrFile(fs, 's.zip', { seriesUid: '1.2.826.1.2' }), SERIES[1]);
    const sax = await readCmrFile(fs, 's.zip', { seriesPattern: /SAX/, sliceLocation: '-12' });
    expectSeriesCine(sax, SERIES[3]);
  });

  it('no match or several matches: a DataError listing every series with counts and orientation', async () => {
    const fs = new MemoryFileSystem();
    await fs.writeFile('s.zip', subjectZip());
    const none = await readCmrFile(fs, 's.zip', { seriesPattern: 'flow' }).catch((e: unknown) => e);
    expect(none).toBeInstanceOf(DataError);
    expect((none as Error).message).toMatch(/^s\.zip: no series description matches \/flow\/i/);
    expect((none as Error).message).toMatch(/#4 "CINE_segmented_LAX_4Ch" \(5 file\(s\), 5 frame\(s\), 1 slice location\(s\), oblique/);
    expect((none as Error).message).toMatch(/#1 "Localizer" \(9 file\(s\), 9 frame\(s\), 3 slice location\(s\), axial/);
    const several = await readCmrFile(fs, 's.zip', { seriesPattern: 'LAX' }).catch((e: unknown) => e);
    expect((several as Error).message).toMatch(/^s\.zip: 2 series match \/LAX\/i; pass a tighter seriesPattern or the seriesUid/);
    const badUid = await readCmrFile(fs, 's.zip', { seriesUid: '9.9' }).catch((e: unknown) => e);
    expect((badUid as Error).message).toMatch(/no series with SeriesInstanceUID 9\.9; series found:/);
  });

  it('several pattern matches: the only cine-like one (one location, several frames) wins', async () => {
    const fs = new MemoryFileSystem();
    const series = [SERIES[2], { ...SERIES[3], description: 'CINE_4ch_SAX_stack' }];
    await fs.writeFile('s.zip', subjectZip(series));
    const cine = await readCmrFile(fs, 's.zip');
    expectSeriesCine(cine, SERIES[2]);
    expect(cine.selection?.reason).toMatch(/only match with one slice location/);
  });

  it('nibabel Siemens 0.dcm/1.dcm in a folder: two slice locations listed, sliceLocation picks one', async () => {
    const fs = new MemoryFileSystem();
    const [first, second] = ['0.dcm', '1.dcm'].map((n) => new Uint8Array(readFileSync(realFile('nibabel', n)!)));
    await fs.writeFile('siemens/0.dcm', first);
    await fs.writeFile('siemens/1.dcm', second);
    await expect(readCmrFile(fs, 'siemens')).rejects.toThrow(/^siemens: series holds 2 slice locations \(-79\.416382 \| -76\.416382\); choose one with sliceLocation/);
    const picked = await readCmrFile(fs, 'siemens', { sliceLocation: '-76.416382' });
    await fs.writeFile('single.dcm', second);
    const alone = await readCmrFile(fs, 'single.dcm');
    expect(picked.frames).toBe(1);
    expect(Array.from(picked.data)).toEqual(Array.from(alone.data));
    expect(picked.selection?.chosen.description).toBe('CBU_DTI_64D_1A');
  });

  it('a ZIP64 archive (as written past 4 GB or by streaming zippers) reads like the plain one', () => {
    const zip = subjectZip();
    expect(readZipArchive(asZip64(zip), 'z.zip')).toEqual(readZipArchive(zip, 'z.zip'));
  });

  it('a damaged archive is a DataError: CRC mismatch, oversized entry, truncation', async () => {
    const zip = subjectZip();
    const entryName = 'CINE_segmented_LAX_2Ch/IM_00_000.dcm'; // a stored entry (level 0)
    const nameAt = findAscii(zip, entryName);
    const flipped = zip.slice();
    flipped[nameAt + entryName.length + 500] ^= 0x01; // inside the stored entry's data
    expect(() => readZipArchive(flipped, 'f.zip')).toThrow(/f\.zip!CINE_segmented_LAX_2Ch\/IM_00_000\.dcm: ZIP entry CRC32 mismatch/);
    const central = findAscii(zip, entryName, nameAt + 1);
    const huge = zip.slice();
    new DataView(huge.buffer).setUint32(central - 46 + 24, 0x7fffffff, true); // uncompressed size in the directory
    expect(() => readZipArchive(huge, 'h.zip')).toThrow(/h\.zip: ZIP archive expands to \d+ bytes, above the/);
    expect(() => readZipArchive(zip.subarray(0, zip.length - 30), 't.zip')).toThrow(/t\.zip: .*(truncated|corrupt|outside)/);
  });
});

function findAscii(haystack: Uint8Array, text: string, from = 0): number {
  const needle = new TextEncoder().encode(text);
  outer: for (let i = from; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  throw new Error(`${text} not found`);
}
