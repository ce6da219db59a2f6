/**
 * Seeded mutation fuzzing of the CMR readers (issue 11 item 9): DICOM uncompressed and compressed,
 * ZIP archives of DICOM, NIfTI .nii and .nii.gz (mutated both as compressed bytes and, re-gzipped, in
 * the header). Every mutant must either read to a consistent cine (finite values, data length =
 * frames x height x width) or throw a DataError whose message starts with the file's name; an
 * internal RangeError/TypeError, a third-party message, or an inconsistent result fails the test with
 * the list of offending mutants (reproducible from the seed and mutant number in the name).
 * Plus targeted checks for the size caps: gzip and ZIP bombs are refused before allocation.
 */
import { readFileSync } from 'node:fs';
import { gzipSync, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { DataError, MemoryFileSystem, readCmrFile, readDicomSeries, readNifti, type CineVolume } from '../../src/data';
import * as dicomParserNs from 'dicom-parser';
import { fuzzRandom, fuzzReader, mutants, type Mutant } from '../helpers/fuzz';
import { describeReal, realFile, type RealFileSet } from '../helpers/real-files';
import { niftiFile } from './helpers/writers';

const NAME = 'mutant.bin';

const isTyped = (e: unknown) => e instanceof DataError && e.message.startsWith(NAME);

/** A "valid" outcome must be a consistent cine, otherwise it is reported like an internal error. */
function checkCine(cine: CineVolume): void {
  const { frames, height, width, data } = cine;
  if (!(frames >= 1 && height >= 1 && width >= 1) || data.length !== frames * height * width) {
    throw new Error(`inconsistent cine: ${frames}x${height}x${width} with ${data.length} values`);
  }
  for (const v of data) if (!Number.isFinite(v)) throw new Error('non-finite value in a returned cine');
}

const totals = { mutants: 0, valid: 0, typed: 0 };

async function expectNoInternalErrors(list: Mutant[], read: (bytes: Uint8Array) => Promise<CineVolume> | CineVolume): Promise<void> {
  const result = await fuzzReader(list, async (bytes) => checkCine(await read(bytes)), isTyped, 10_000);
  totals.mutants += list.length;
  totals.valid += result.valid;
  totals.typed += result.typed;
  expect(result.failures).toEqual([]);
  expect(result.valid + result.typed).toBe(list.length);
}

function real(set: RealFileSet, name: string): Uint8Array {
  return new Uint8Array(readFileSync(realFile(set, name)!));
}

const dicomParser = ((dicomParserNs as unknown as { default?: typeof dicomParserNs }).default ?? dicomParserNs) as typeof dicomParserNs;

/** The image-describing elements whose values a reader must not trust. */
const PIXEL_FIELDS = ['x00280002', 'x00280008', 'x00280010', 'x00280011', 'x00280100', 'x00280101', 'x00280103', 'x00280004', 'x00280006', 'x7fe00010'];
const US_VALUES = [0, 1, 2, 3, 7, 8, 12, 15, 16, 17, 32, 64, 0x7fff, 0x8000, 0xffff];
const IS_VALUES = ['-1', '0', '2', '99', '1A', '', '1e9', '65536', 'NaN', '-0'];

/**
 * Structure-aware mutants: the value or the length of one pixel-describing element (Rows, Columns,
 * BitsAllocated, NumberOfFrames, PixelData, ...) set to an extreme. Byte-level mutants rarely land on
 * these few bytes, and they are what turns into a wrong allocation or a DataView RangeError.
 */
function dicomFieldMutants(bytes: Uint8Array, seed: number, count: number): Mutant[] {
  const ds = dicomParser.parseDicom(bytes);
  const fields = PIXEL_FIELDS.map((tag) => ds.elements[tag]).filter(Boolean);
  const rnd = fuzzRandom(seed);
  const pick = <T>(list: T[]) => list[Math.floor(rnd() * list.length)];
  const littleEndian = !(ds.string('x00020010') ?? '').startsWith('1.2.840.10008.1.2.2');
  return Array.from({ length: count }, (_, k) => {
    const el = pick(fields);
    const out = bytes.slice();
    const view = new DataView(out.buffer);
    let what: string;
    const mode = rnd();
    if (mode < 0.25) {
      const v = pick([0, 1, 2, 0x7fff, 0xffff]);
      view.setUint16(el.dataOffset - 2, v, true);
      what = `length (low 16 bits) of ${el.tag} set to ${v}`;
    } else if (mode < 0.4) {
      const v = pick([0, 1, 0x7fffffff, 0xfffffffe, 0xffffffff]);
      view.setUint32(el.dataOffset - 4, v, true);
      what = `4 bytes before the value of ${el.tag} set to ${v}`;
    } else if (el.tag === 'x00280008' || el.tag === 'x00280004') {
      const v = el.tag === 'x00280008' ? pick(IS_VALUES) : pick(['RGB', 'YBR_FULL', 'PALETTE COLOR', 'MONOCHROME1', '']);
      const text = new TextEncoder().encode(v.padEnd(el.length, ' ').slice(0, el.length));
      out.set(text, el.dataOffset);
      what = `${el.tag} value set to '${v}'`;
    } else if (el.tag === 'x7fe00010') {
      const at = el.dataOffset + Math.floor(rnd() * Math.min(el.length, 64));
      out[at] = pick([0, 0xff, 0x80]);
      what = `byte ${at} of PixelData changed`;
    } else {
      const v = pick(US_VALUES);
      view.setUint16(el.dataOffset, v, littleEndian);
      what = `${el.tag} set to ${v}`;
    }
    return { name: `fields seed ${seed} #${k}: ${what}`, bytes: out };
  });
}

const readDicom = (bytes: Uint8Array) => readDicomSeries([{ name: NAME, bytes }], { source: NAME });

describeReal('fuzz: DICOM', () => {
  const sources: [string, number][] = [
    ['MR_small.dcm', 50], // explicit VR little endian
    ['MR_small_implicit.dcm', 30],
    ['MR_small_bigendian.dcm', 30],
    ['rtdose.dcm', 30], // multi-frame, 32-bit
    ['MR_small_RLE.dcm', 40],
    ['MR_small_jpeg_ls_lossless.dcm', 30],
    ['MR_small_jp2klossless.dcm', 30],
    ['SC_rgb_jpeg_dcmtk.dcm', 30], // JPEG baseline, colour
    ['SC_rgb_jpeg_gdcm.dcm', 30], // JPEG lossless
  ];
  sources.forEach(([name, count], k) => {
    it(`${name}: ${2 * count} mutants (bytes and pixel fields)`, async () => {
      const bytes = real('pydicom', name);
      // Headers hold most of the fields; the pixel data sits at the end of these files.
      const list = [...mutants(bytes, 1000 + k, count, { headerBias: Math.min(1200, bytes.length) }), ...dicomFieldMutants(bytes, 2000 + k, count)];
      await expectNoInternalErrors(list, readDicom);
    });
  });

  it('ZIP of DICOM series: 60 mutants', async () => {
    const a = real('pydicom', 'MR_small.dcm');
    const b = real('pydicom', 'MR_small_RLE.dcm');
    const zip = zipSync({ 'series/IM1.dcm': a, 'series/IM2.dcm': [b, { level: 0 }], 'manifest.cvs': new TextEncoder().encode('a,b\n') });
    await expectNoInternalErrors(mutants(zip, 77, 60, { headerBias: zip.length }), async (bytes) => {
      const fs = new MemoryFileSystem();
      await fs.writeFile(NAME, bytes);
      return readCmrFile(fs, NAME, { seriesPattern: '.*' });
    });
  });
});

describe('fuzz: NIfTI', () => {
  const values = Float32Array.from({ length: 6 * 5 * 3 * 4 }, (_, i) => Math.sin(i));
  const synthetic = niftiFile([6, 5, 3, 4], 16, values, 2, 1);
  const readNii = (bytes: Uint8Array) => readNifti(bytes, { source: NAME });

  it('.nii (synthetic 4-D float32): 200 mutants, half of them in dim/datatype/bitpix/vox_offset/scl (bytes 40-124)', async () => {
    const fields = mutants(synthetic.subarray(40), 7, 100, { headerBias: 84 }).map((m) => {
      // Mutate the field block only, keeping the bytes before it (sizeof_hdr etc.) in place.
      const bytes = new Uint8Array(40 + m.bytes.length);
      bytes.set(synthetic.subarray(0, 40));
      bytes.set(m.bytes, 40);
      return { name: m.name, bytes };
    });
    await expectNoInternalErrors([...fields, ...mutants(synthetic, 17, 100, { headerBias: 352 })], readNii);
  });
  it('.nii.gz, mutated after compression: 40 mutants', async () => {
    await expectNoInternalErrors(mutants(gzipSync(synthetic), 8, 40), readNii);
  });
  it('.nii.gz, header mutated then re-compressed: 40 mutants', async () => {
    const list = mutants(synthetic, 9, 40, { headerBias: 124 }).map((m) => ({ name: m.name, bytes: gzipSync(m.bytes) }));
    await expectNoInternalErrors(list, readNii);
  });
});

describeReal('fuzz: real NIfTI', () => {
  it('functional.nii and example4d.nii.gz: 60 mutants', async () => {
    const readNii = (bytes: Uint8Array) => readNifti(bytes, { source: NAME });
    await expectNoInternalErrors(mutants(real('nibabel', 'functional.nii'), 11, 30, { headerBias: 124 }), readNii);
    await expectNoInternalErrors(mutants(real('nibabel', 'example4d.nii.gz'), 12, 30), readNii);
  });

  it('issue 11 item 9 cases: bitpix 32 -> 8 and NumberOfFrames -1 are DataErrors naming the field', async () => {
    const nii = real('nibabel', 'functional.nii').slice();
    new DataView(nii.buffer).setInt16(72, 8, true);
    expect(() => readNifti(nii, { source: 'f.nii' })).toThrow(/^f\.nii: NIfTI bitpix 8 does not match datatype/);
    const dcm = real('pydicom', 'rtdose.dcm');
    // rtdose.dcm is implicit VR: tag (0028,0008), 4-byte length 2, value "15".
    const at = findBytes(dcm, [0x28, 0x00, 0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x31, 0x35]) + 8;
    const edited = dcm.slice();
    edited.set(new TextEncoder().encode('-1'), at);
    await expect(readDicomSeries([{ name: 'r.dcm', bytes: edited }])).rejects.toThrow(/^r\.dcm: NumberOfFrames -1 is outside 1\.\.10000/);
  });
});

describe('decompression caps', () => {
  it('a .nii.gz whose stream is far larger than its header implies is refused before inflating', () => {
    const small = niftiFile([4, 4, 3], 16, new Float32Array(48));
    const bomb = new Uint8Array(small.length + 8 * 1024 * 1024);
    bomb.set(small);
    const gz = gzipSync(bomb, { level: 1 });
    expect(gz.length).toBeLessThan(100_000);
    const started = performance.now();
    expect(() => readNifti(gz, { source: 'bomb.nii.gz' })).toThrow(/^bomb\.nii\.gz: gzip stream declares 8389152 bytes but the header's dims need only 544/);
    expect(performance.now() - started).toBeLessThan(200); // nothing was inflated beyond the header
  });

  it('gzip ISIZE above the absolute cap, and a lying ISIZE, are DataErrors', () => {
    const gz = gzipSync(niftiFile([4, 4, 3], 16, new Float32Array(48)));
    const huge = gz.slice();
    new DataView(huge.buffer).setUint32(huge.length - 4, 0xfffffff0, true);
    expect(() => readNifti(huge, { source: 'h.nii.gz' })).toThrow(/^h\.nii\.gz: gzip trailer declares 4294967280 decompressed bytes, above the/);
    const long = gz.slice();
    new DataView(long.buffer).setUint32(long.length - 4, 600, true);
    expect(() => readNifti(long, { source: 'l.nii.gz' })).toThrow(/^l\.nii\.gz: gzip stream holds 544 bytes, its header declares 600/);
    const short = gz.slice();
    new DataView(short.buffer).setUint32(short.length - 4, 500, true);
    expect(() => readNifti(short, { source: 's.nii.gz' })).toThrow(/^s\.nii\.gz: truncated image data: the header needs 544 bytes, the gzip stream declares 500/);
  });

  it('statistics', () => {
    // Printed for the record (the report quotes them); the per-source tests above assert.
    console.log(`fuzz-cmr: ${totals.mutants} mutants, ${totals.valid} read as valid cines, ${totals.typed} DataErrors, 0 internal errors`);
  });
});

function findBytes(haystack: Uint8Array, needle: number[]): number {
  outer: for (let i = 0; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  throw new Error('pattern not found');
}
