/**
 * CMR readers against real files no one here wrote (Debian's pydicom and nibabel test data).
 *
 * Expected values come from tests/data/fixtures/cmr-expected.json, computed independently with pydicom
 * (numpy, RLE and Pillow handlers) and nibabel by tools/cmr_fixtures/expected_pixels.py. Syntaxes pydicom
 * cannot decode here (no pylibjpeg/gdcm: JPEG-LS, JPEG lossless) are checked against an uncompressed
 * twin: MR_small_* must equal MR_small exactly, SC_rgb_jpeg_gdcm (lossless) must equal SC_rgb_rle
 * exactly; lossy JPEG is compared with its twin within a tolerance.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { DataError, readDicomSeries, readNifti, type CineVolume } from '../../src/data';
import { describeReal, realFile, type RealFileSet } from '../helpers/real-files';

interface Expected {
  shape: number[];
  sum: number;
  sumsq: number;
  weighted: number;
  samples: [number, number][];
}
const EXPECTED = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'cmr-expected.json'), 'utf8')) as { dicom: Record<string, Expected>; nifti: Record<string, Expected> };

function bytesOf(key: string): Uint8Array {
  const [set, name] = key.split('/') as [RealFileSet, string];
  const path = realFile(set, name);
  if (!path) throw new Error(`missing real file ${key}`);
  return new Uint8Array(readFileSync(path));
}

const readDicom = (key: string) => readDicomSeries([{ name: key, bytes: bytesOf(key) }]);

function expectMatches(cine: CineVolume, e: Expected, relTol = 1e-6): void {
  expect([cine.frames, cine.height, cine.width]).toEqual(e.shape);
  let sum = 0;
  let sumsq = 0;
  let weighted = 0;
  cine.data.forEach((v, i) => {
    sum += v;
    sumsq += v * v;
    weighted += v * (i % 97);
  });
  const close = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(relTol * Math.max(1, Math.abs(b)));
  close(sum, e.sum);
  close(sumsq, e.sumsq);
  close(weighted, e.weighted);
  for (const [i, v] of e.samples) close(cine.data[i], v);
}

function expectSameCine(a: CineVolume, b: CineVolume): void {
  expect([a.frames, a.height, a.width]).toEqual([b.frames, b.height, b.width]);
  let worst = 0;
  for (let i = 0; i < a.data.length; i++) worst = Math.max(worst, Math.abs(a.data[i] - b.data[i]));
  expect(worst).toBe(0);
}

describeReal('DICOM real files: pixel values against pydicom', () => {
  for (const key of Object.keys(EXPECTED.dicom)) {
    it(key, async () => {
      const cine = await readDicom(key);
      expectMatches(cine, EXPECTED.dicom[key]);
      const colour = /SC_rgb|ExplVR_BigEnd|ybr|eb\+cy/.test(key);
      expect(cine.warnings.some((w) => /converted to grey/.test(w))).toBe(colour);
    });
  }
});

describeReal('DICOM real files: twins pydicom cannot decode here', () => {
  it('MR_small in every transfer syntax decodes to identical pixels (JPEG-LS included)', async () => {
    const reference = await readDicom('pydicom/MR_small.dcm');
    for (const twin of ['RLE', 'bigendian', 'expb', 'implicit', 'jp2klossless', 'jpeg_ls_lossless', 'padded']) {
      expectSameCine(await readDicom(`pydicom/MR_small_${twin}.dcm`), reference);
    }
  });

  it('JPEG lossless (process 14 SV1) and JPEG 2000 colour equal the RLE twin exactly', async () => {
    const reference = await readDicom('pydicom/SC_rgb_rle.dcm');
    expectSameCine(await readDicom('pydicom/SC_rgb_jpeg_gdcm.dcm'), reference);
    expectSameCine(await readDicom('pydicom/SC_rgb_gdcm_KY.dcm'), reference);
  });

  it('lossy JPEG baseline (RGB and YBR, 4:4:4 and 4:2:2) stays within a few grey levels of the RLE twin', async () => {
    const reference = await readDicom('pydicom/SC_rgb_rle.dcm');
    for (const name of ['SC_rgb_jpeg_dcmtk.dcm', 'SC_rgb_jpeg_lossy_gdcm.dcm', 'SC_rgb_dcmtk_+eb+cr.dcm', 'SC_rgb_dcmtk_+eb+cy+n1.dcm', 'SC_rgb_dcmtk_+eb+cy+np.dcm', 'SC_rgb_dcmtk_+eb+cy+s2.dcm']) {
      const lossy = await readDicom(`pydicom/${name}`);
      expect([lossy.frames, lossy.height, lossy.width]).toEqual([1, 100, 100]);
      let absError = 0;
      lossy.data.forEach((v, i) => (absError += Math.abs(v - reference.data[i])));
      expect(absError / lossy.data.length, name).toBeLessThan(3);
    }
  });

  it('multi-frame files: RLE and big-endian rtdose equal the little-endian one, 15 frames', async () => {
    const reference = await readDicom('pydicom/rtdose.dcm');
    expect(reference.frames).toBe(15);
    expectSameCine(await readDicom('pydicom/rtdose_rle.dcm'), reference);
    expectSameCine(await readDicom('pydicom/rtdose_expb.dcm'), reference);
  });

  it('a file stripped of its Part 10 preamble is read with the guessed syntax (implicit LE, explicit LE and BE)', async () => {
    const reference = await readDicom('pydicom/MR_small.dcm');
    for (const twin of ['MR_small_implicit.dcm', 'MR_small.dcm', 'MR_small_expb.dcm']) {
      const bytes = bytesOf(`pydicom/${twin}`);
      // The data set starts after the preamble (132 bytes) and the group-2 meta elements.
      const groupLength = new DataView(bytes.buffer, bytes.byteOffset).getUint32(132 + 8, true);
      const stripped = bytes.subarray(132 + 12 + groupLength);
      expectSameCine(await readDicomSeries([{ name: `nometa-${twin}`, bytes: stripped }]), reference);
    }
  });
});

describeReal('DICOM real files that must be refused with a DataError', () => {
  const refusals: [string, RegExp][] = [
    ['MR_truncated.dcm', /MR_truncated\.dcm: DICOM file is damaged/],
    ['JPGExtended.dcm', /JPGExtended\.dcm \(frame 1, JPEG Extended.*12-bit JPEG Extended.*not supported/],
    ['JPEG-lossy.dcm', /12-bit JPEG Extended/],
    ['JPEG2000-embedded-sequence-delimiter.dcm', /compressed frame is \d+x1024 .* DICOM header says 256x1024/],
    ['liver_1frame.dcm', /BitsAllocated 1 is not supported.*segmentation/],
    ['no_meta.dcm', /no_meta\.dcm: not a DICOM file/], // starts one byte off (pydicom reads tag (0820,0500) too)
    ['waveform_ecg.dcm', /no PixelData/],
    ['rtplan_truncated.dcm', /rtplan_truncated\.dcm: DICOM file is damaged/],
    ['badVR.dcm', /NumberOfFrames is '1A', not an integer/],
  ];
  for (const [name, message] of refusals) {
    it(name, async () => {
      const error = await readDicom(`pydicom/${name}`).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DataError);
      expect((error as Error).message).toMatch(message);
    });
  }
});

describeReal('NIfTI real files: pixel values against nibabel', () => {
  it('example4d.nii.gz (4-D, gzip): middle slice by default with a warning, slice 0 on request', () => {
    const bytes = bytesOf('nibabel/example4d.nii.gz');
    const middle = readNifti(bytes, { source: 'example4d.nii.gz' });
    expectMatches(middle, EXPECTED.nifti['nibabel/example4d.nii.gz'], 1e-5);
    expect(middle.warnings.join()).toMatch(/using slice 12 of 24/);
    expectMatches(readNifti(bytes, { slice: 0 }), EXPECTED.nifti['nibabel/example4d.nii.gz#slice=0'], 1e-5);
  });
  it('example_nifti2.nii.gz (NIfTI-2, int16) and standard.nii.gz (uint8, 3-D)', () => {
    expectMatches(readNifti(bytesOf('nibabel/example_nifti2.nii.gz')), EXPECTED.nifti['nibabel/example_nifti2.nii.gz']);
    expectMatches(readNifti(bytesOf('nibabel/standard.nii.gz')), EXPECTED.nifti['nibabel/standard.nii.gz']);
  });
  it('functional.nii (4-D) and anatomical.nii (3-D read as x, y, t)', () => {
    expectMatches(readNifti(bytesOf('nibabel/functional.nii')), EXPECTED.nifti['nibabel/functional.nii'], 1e-5);
    expectMatches(readNifti(bytesOf('nibabel/anatomical.nii')), EXPECTED.nifti['nibabel/anatomical.nii'], 1e-5);
  });
  it('a gzip stream with one flipped byte or a wrong length is a DataError, never a garbage cine', () => {
    const bytes = bytesOf('nibabel/example4d.nii.gz');
    const flipped = bytes.slice();
    flipped[Math.floor(bytes.length / 2)] ^= 0x10;
    expect(() => readNifti(flipped, { source: 'flip.nii.gz' })).toThrow(/flip\.nii\.gz: (gzip CRC32 mismatch|gzip stream)/);
    const crc = bytes.slice();
    crc[crc.length - 8] ^= 1;
    expect(() => readNifti(crc, { source: 'crc.nii.gz' })).toThrow(/crc\.nii\.gz: gzip CRC32 mismatch/);
    const size = bytes.slice();
    size[size.length - 4] ^= 1;
    expect(() => readNifti(size, { source: 'isize.nii.gz' })).toThrow(/isize\.nii\.gz: .*(declares|holds)/);
  });
});
