/**
 * Encapsulated multi-frame DICOM built in-test: frames are compressed with the encoders of the same
 * Cornerstone packages (libjpeg-turbo, CharLS) and wrapped with and without a Basic Offset Table, split
 * into several fragments per frame. Checks that do not depend on the decoder being right about itself:
 * JPEG-LS near-lossless must stay within NEAR of the source for every pixel (guaranteed by the
 * standard), lossy JPEG close to the source, frames in order, inconsistent headers refused.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DataError, readDicomSeries } from '../../src/data';
import { realFile, describeReal } from '../helpers/real-files';
import { encapsulatedDicom } from './helpers/dicom-edit';

interface Encoder {
  getDecodedBuffer(info: object): Uint8Array;
  getEncodedBuffer(): Uint8Array;
  encode(): void;
  setQuality?(quality: number): void;
  setNearLossless?(near: number): void;
}

async function encoders() {
  const quiet = { print() {}, printErr() {} };
  const turbo = (await import('@cornerstonejs/codec-libjpeg-turbo-8bit')).default as unknown as (o: object) => Promise<{ JPEGEncoder: new () => Encoder }>;
  const charls = (await import('@cornerstonejs/codec-charls')).default as unknown as (o: object) => Promise<{ JpegLSEncoder: new () => Encoder }>;
  return { jpeg: await turbo(quiet), jpegLs: await charls(quiet) };
}

/** A smooth 8-bit test image (a lossy codec keeps such images close), shifted per frame. */
function greyFrame(rows: number, cols: number, shift: number): Uint8Array {
  return Uint8Array.from({ length: rows * cols }, (_, i) => {
    const y = Math.floor(i / cols);
    const x = i % cols;
    return Math.round(100 + 60 * Math.sin(x / 9 + shift) * Math.cos(y / 11) + shift * 10);
  });
}

const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
const JPEG_LS_NEAR = '1.2.840.10008.1.2.4.81';

describe('encapsulated multi-frame DICOM', () => {
  const rows = 48;
  const cols = 40;
  const sources = [0, 1, 2].map((k) => greyFrame(rows, cols, k));

  async function jpegFrames(): Promise<Uint8Array[]> {
    const { jpeg } = await encoders();
    return sources.map((pixels) => {
      const encoder = new jpeg.JPEGEncoder();
      encoder.getDecodedBuffer({ width: cols, height: rows, bitsPerSample: 8, componentCount: 1, isSigned: false }).set(pixels);
      encoder.setQuality!(95);
      encoder.encode();
      return encoder.getEncodedBuffer().slice();
    });
  }

  it('JPEG baseline grey, 3 frames, with an offset table and 3 fragments per frame', async () => {
    const bytes = encapsulatedDicom({ syntax: JPEG_BASELINE, rows, cols, bitsAllocated: 8, frames: await jpegFrames(), fragmentsPerFrame: 3 });
    const cine = await readDicomSeries([{ name: 'jpeg.dcm', bytes }]);
    expect([cine.frames, cine.height, cine.width]).toEqual([3, rows, cols]);
    for (let k = 0; k < 3; k++) {
      let absError = 0;
      let worst = 0;
      for (let i = 0; i < rows * cols; i++) {
        const e = Math.abs(cine.data[k * rows * cols + i] - sources[k][i]);
        absError += e;
        worst = Math.max(worst, e);
      }
      expect(absError / (rows * cols), `frame ${k}`).toBeLessThan(1.5);
      expect(worst, `frame ${k}`).toBeLessThan(16);
    }
  });

  it('no offset table: one fragment per frame is read, several fragments per frame are refused', async () => {
    const frames = await jpegFrames();
    const single = encapsulatedDicom({ syntax: JPEG_BASELINE, rows, cols, bitsAllocated: 8, frames, offsetTable: false });
    const withTable = encapsulatedDicom({ syntax: JPEG_BASELINE, rows, cols, bitsAllocated: 8, frames });
    const a = await readDicomSeries([{ name: 'a.dcm', bytes: single }]);
    const b = await readDicomSeries([{ name: 'b.dcm', bytes: withTable }]);
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
    const split = encapsulatedDicom({ syntax: JPEG_BASELINE, rows, cols, bitsAllocated: 8, frames, offsetTable: false, fragmentsPerFrame: 2 });
    await expect(readDicomSeries([{ name: 'split.dcm', bytes: split }])).rejects.toThrow(/^split\.dcm: 3 frames in 6 fragments without a usable Basic Offset Table/);
  });

  it('a compressed frame whose size disagrees with Rows/Columns is a DataError', async () => {
    const bytes = encapsulatedDicom({ syntax: JPEG_BASELINE, rows: rows + 2, cols, bitsAllocated: 8, frames: await jpegFrames() });
    const error = await readDicomSeries([{ name: 'odd.dcm', bytes }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataError);
    expect((error as Error).message).toMatch(/^odd\.dcm \(frame 1, JPEG Baseline \(process 1\)\): compressed frame is 40x48 .* DICOM header says 40x50/);
  });
});

describeReal('JPEG-LS near-lossless on real MR pixels', () => {
  it('every pixel within NEAR = 3 of the source (16-bit)', async () => {
    // MR_small ends with its 64x64 16-bit PixelData; its values are non-negative.
    const file = new Uint8Array(readFileSync(realFile('pydicom', 'MR_small.dcm')!));
    const source = new Uint16Array(file.slice(file.length - 8192).buffer);
    const { jpegLs } = await encoders();
    const encoder = new jpegLs.JpegLSEncoder();
    encoder.getDecodedBuffer({ width: 64, height: 64, bitsPerSample: 16, componentCount: 1, isSigned: false }).set(new Uint8Array(source.buffer));
    encoder.setNearLossless!(3);
    encoder.encode();
    const frame = encoder.getEncodedBuffer().slice();
    const bytes = encapsulatedDicom({ syntax: JPEG_LS_NEAR, rows: 64, cols: 64, bitsAllocated: 16, frames: [frame, frame] });
    const cine = await readDicomSeries([{ name: 'near.dcm', bytes }]);
    expect(cine.frames).toBe(2);
    let worst = 0;
    let changed = 0;
    for (let i = 0; i < 2 * 4096; i++) {
      const e = Math.abs(cine.data[i] - source[i % 4096]);
      worst = Math.max(worst, e);
      if (e) changed++;
    }
    expect(worst).toBeLessThanOrEqual(3);
    expect(changed).toBeGreaterThan(0); // it really was lossy, so the bound was exercised
  });
});
