import { describe, expect, it } from 'vitest';
import { gzipSync } from 'fflate';
import {
  DataError, MemoryFileSystem, readNpy, writeNpy, npyHeaderBytes, parseWfdb, readWfdb, parseEcgCsv, readNifti,
  readDicomSeries, readEcgFile, readCmrFile, prepareEcg, prepareCine, normalizeClip, resampleSignal, canonicalLeadName,
} from '../../src/data';
import { dicomFile, niftiFile, wfdbDat, wfdbHeader } from './helpers/writers';

const enc = (s: string) => new TextEncoder().encode(s);

describe('NPY', () => {
  it('reads from a Node Buffer that is a view into a shared pool', () => {
    const file = writeNpy(new Float32Array([1.5, -2, 3]), [3]);
    const pool = Buffer.alloc(file.length + 100, 7);
    pool.set(file, 37);
    const view = pool.subarray(37, 37 + file.length);
    expect(Array.from(readNpy(view).data)).toEqual([1.5, -2, 3]);
  });
  it('round-trips every supported dtype', () => {
    const arrays = [Float32Array.of(1.5, -2, 3), Float64Array.of(1e-300, 2), Int16Array.of(-32768, 7), Int32Array.of(-1, 2 ** 30), Uint8Array.of(0, 255)];
    for (const a of arrays) {
      const back = readNpy(writeNpy(a, [a.length]));
      expect(back.shape).toEqual([a.length]);
      expect([...back.data]).toEqual([...a]);
    }
    const m = readNpy(writeNpy(new Float32Array(24).map((_, i) => i), [2, 3, 4]));
    expect(m.shape).toEqual([2, 3, 4]);
    expect((writeNpy(new Float32Array(1), [1]).length - 4) % 64).toBe(0); // header aligned to 64 bytes
  });

  it('rejects Fortran order, big-endian, unknown dtypes and truncation clearly', () => {
    const header = (dict: string) => {
      const body = dict + ' '.repeat(64 - ((10 + dict.length + 1) % 64)) + '\n';
      const out = new Uint8Array(10 + body.length + 16);
      out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
      new DataView(out.buffer).setUint16(8, body.length, true);
      out.set(enc(body), 10);
      return out;
    };
    expect(() => readNpy(header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }"), 'x.npy')).toThrow(/x.npy: Fortran-order/);
    expect(() => readNpy(header("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }"), 'x.npy')).toThrow(/big-endian/);
    expect(() => readNpy(header("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }"), 'x.npy')).toThrow(/unsupported NPY dtype/);
    const full = writeNpy(new Float32Array(100), [100]);
    expect(() => readNpy(full.subarray(0, full.length - 10), 'cut.npy')).toThrow(DataError);
    expect(() => readNpy(enc('hello world'), 'bad.npy')).toThrow(/not an NPY file/);
  });
});

describe('WFDB', () => {
  const n = 1000;
  const sig = (f: number) => Int32Array.from({ length: n }, (_, i) => Math.round(400 * Math.sin(i / f)));

  for (const format of [16, 212] as const) {
    it(`round-trips format ${format} (gain, baseline, units, names)`, async () => {
      const a = sig(20), b = sig(37);
      const fs = new MemoryFileSystem();
      await fs.writeFile('rec/r1.hea', wfdbHeader('r1', 250, n, [
        { file: 'r1.dat', format, gain: 200, baseline: 10, units: 'mV', name: 'MLII' },
        { file: 'r1.dat', format, gain: 1, baseline: 0, units: 'uV', name: 'V1' },
      ]));
      await fs.writeFile('rec/r1.dat', wfdbDat([a, b], format));
      const rec = await readWfdb(fs, 'rec/r1.hea');
      expect(rec.fs).toBe(250);
      expect(rec.leadNames).toEqual(['MLII', 'V1']);
      expect(rec.signals[0][5]).toBeCloseTo((a[5] - 10) / 200, 6);
      expect(rec.signals[1][7]).toBeCloseTo(b[7] / 1000, 6);
      const prepared = prepareEcg(rec);
      expect(prepared.data.length).toBe(60000);
      expect(prepared.mapping[1]).toBe(0); // MLII -> II
      expect(prepared.mapping[6]).toBe(1);
      expect(prepared.warnings.join('\n')).toMatch(/missing lead\(s\) I, III/);
    });
  }

  it('raises clear errors for bad records', async () => {
    const header = wfdbHeader('r', 500, n, [{ file: 'r.dat', format: 16, gain: 200, baseline: 0, units: 'mV', name: 'II' }]);
    const dat = wfdbDat([sig(10)], 16);
    expect(() => parseWfdb(header, new Map([['r.dat', dat.subarray(0, 100)]]), 'r.hea')).toThrow(/r.hea \(r.dat\): truncated signal file/);
    expect(() => parseWfdb(header.replace(' 16 ', ' 80 '), new Map([['r.dat', dat]]), 'r.hea')).toThrow(/unsupported WFDB format 80/);
    expect(() => parseWfdb(header.replace(/^r /, 'r/2 '), new Map(), 'r.hea')).toThrow(/multi-segment/);
    const withGap = Int32Array.from(sig(10));
    withGap[50] = -32768;
    expect(() => parseWfdb(header, new Map([['r.dat', wfdbDat([withGap], 16)]]), 'r.hea')).toThrow(/invalid-sample/);
    expect(() => parseWfdb(header, new Map(), 'r.hea')).toThrow(/signal file 'r.dat' not found/);
  });
});

describe('CSV', () => {
  it('reads a header with lead names and a time column', () => {
    const rows = ['time,I,II,V1'];
    for (let i = 0; i < 2000; i++) rows.push(`${(i / 250).toFixed(4)},${Math.sin(i / 30)},${Math.cos(i / 25)},${Math.sin(i / 20)}`);
    const rec = parseEcgCsv(rows.join('\n'), { source: 'a.csv' });
    expect(rec.fs).toBeCloseTo(250, 3);
    expect(rec.leadNames).toEqual(['I', 'II', 'V1']);
    const p = prepareEcg(rec);
    expect(p.mapping.slice(0, 6)).toEqual([0, 1, 'derived', 'derived', 'derived', 'derived']);
    // Derived III = II - I.
    for (const k of [100, 2000, 4000]) expect(p.data[2 * 5000 + k]).toBeCloseTo(p.data[5000 + k] - p.data[k], 5);
    expect(() => prepareEcg(rec, { strict: true })).toThrow(/missing lead\(s\) V2, V3, V4, V5, V6 \(strict mode\)/);
  });

  it('reads headerless semicolon files and rejects bad cells', () => {
    const body = Array.from({ length: 1500 }, (_, i) => `${Math.sin(i / 10)};${Math.cos(i / 10)}`).join('\n');
    const rec = parseEcgCsv(body, { fs: 500, leadNames: ['I', 'II'] });
    expect(rec.signals.length).toBe(2);
    expect(() => parseEcgCsv(body, { leadNames: ['I', 'II'] })).toThrow(/sampling frequency unknown/);
    expect(() => parseEcgCsv('I,II\n1,2\n3,abc\n4,5', { fs: 500, source: 'b.csv' })).toThrow(/b.csv: row 3, column 'II': 'abc'/);
    expect(() => parseEcgCsv('I,II\n1,2\n3\n', { fs: 500 })).toThrow(/has 1 columns/);
  });
});

describe('ECG preprocessing', () => {
  const rec = (signals: Float32Array[], names: string[], fs = 500) => ({ signals, leadNames: names, fs, source: 't' });
  const wave = (n: number, fs: number) => Float32Array.from({ length: n }, (_, i) => Math.sin((2 * Math.PI * 3 * i) / fs));

  it('resamples (Lanczos) and center-crops / pads with warnings', () => {
    const up = resampleSignal(wave(2500, 250), 250, 500);
    expect(up.length).toBe(5000);
    for (const k of [1001, 2503, 3999]) expect(up[k]).toBeCloseTo(Math.sin((2 * Math.PI * 3 * k) / 500), 2);
    const long = prepareEcg(rec([wave(6000, 500)], ['II']));
    expect(long.warnings.join()).toMatch(/centre-cropped/);
    expect(long.data[5000]).toBeCloseTo(wave(6000, 500)[500], 6);
    const short = prepareEcg(rec([wave(4000, 500)], ['II']));
    expect(short.warnings.join()).toMatch(/padded/);
    expect(short.data[5000 + 4999]).toBe(short.data[5000 + 3999]);
  });

  it('places an unnamed single lead as II and maps aliases', () => {
    const p = prepareEcg(rec([wave(5000, 500)], ['ECG']));
    expect(p.mapping[1]).toBe(0);
    expect(p.warnings[0]).toMatch(/placed as lead II/);
    expect(canonicalLeadName('avr')).toBe('aVR');
    expect(canonicalLeadName('Lead V1')).toBe('V1');
    expect(canonicalLeadName('MLII')).toBe('II');
  });

  it('rejects NaN/Inf, flat lines and too-short recordings', () => {
    const nan = wave(5000, 500); nan[10] = NaN;
    expect(() => prepareEcg(rec([nan], ['II']))).toThrow(/lead II holds 1 non-finite/);
    const inf = wave(5000, 500); inf[3] = Infinity;
    expect(() => prepareEcg(rec([inf], ['II']))).toThrow(DataError);
    expect(() => prepareEcg(rec([new Float32Array(5000).fill(0.2)], ['II']))).toThrow(/every lead is flat/);
    expect(() => prepareEcg(rec([wave(500, 500)], ['II']))).toThrow(/at least 2 s/);
  });

  it('reads ECG NPY files (12 x L and L x 12) through the file system', async () => {
    const fs = new MemoryFileSystem();
    const data = new Float32Array(12 * 5000).map((_, i) => Math.sin(i / 17));
    await fs.writeFile('e.npy', writeNpy(data, [12, 5000]));
    const transposed = new Float32Array(5000 * 12);
    for (let c = 0; c < 12; c++) for (let i = 0; i < 5000; i++) transposed[i * 12 + c] = data[c * 5000 + i];
    await fs.writeFile('t.npy', writeNpy(transposed, [5000, 12]));
    await expect(readEcgFile(fs, 'e.npy')).rejects.toThrow(/e.npy: an NPY file stores no sampling frequency/);
    const a = await readEcgFile(fs, 'e.npy', { fs: 500 });
    const b = await readEcgFile(fs, 't.npy', { fs: 500 });
    expect(b.warnings[0]).toMatch(/transposed/);
    expect(prepareEcg(b).data).toEqual(prepareEcg(a).data);
    await fs.writeFile('w.npy', writeNpy(new Float32Array(8), [2, 2, 2]));
    await expect(readEcgFile(fs, 'w.npy', { fs: 500 })).rejects.toThrow(/w.npy: ECG array must be 1-D or 2-D/);
    await expect(readEcgFile(fs, 'none.csv')).rejects.toThrow(/none.csv: file not found/);
  });
});

describe('CMR readers and preprocessing', () => {
  const cine = (t: number, h: number, w: number) => Float32Array.from({ length: t * h * w }, (_, i) => (i % 97) + Math.floor(i / (h * w)));

  it('NIfTI 3-D (.nii and .nii.gz) with scl_slope/inter and int16 data', async () => {
    const values = Int16Array.from({ length: 8 * 6 * 5 }, (_, i) => i - 100);
    const nii = niftiFile([8, 6, 5], 4, values, 2, 10);
    for (const bytes of [nii, gzipSync(nii)]) {
      const v = readNifti(bytes);
      expect([v.frames, v.height, v.width]).toEqual([5, 6, 8]);
      expect(v.data[0]).toBe(-100 * 2 + 10);
      expect(v.data[(2 * 6 + 3) * 8 + 4]).toBe((4 + 8 * (3 + 6 * 2) - 100) * 2 + 10);
    }
    const fs = new MemoryFileSystem();
    await fs.writeFile('c.nii.gz', gzipSync(nii));
    expect((await readCmrFile(fs, 'c.nii.gz')).frames).toBe(5);
  });

  it('NIfTI 4-D picks a slice; truncated / bad files fail clearly', () => {
    const values = Float32Array.from({ length: 4 * 4 * 3 * 2 }, (_, i) => i);
    const v = readNifti(niftiFile([4, 4, 3, 2], 16, values), { slice: 2 });
    expect([v.frames, v.height, v.width]).toEqual([2, 4, 4]);
    expect(v.data[0]).toBe(2 * 16);
    expect(v.data[16]).toBe(16 * 3 + 2 * 16);
    const full = niftiFile([4, 4, 3, 2], 16, values);
    expect(() => readNifti(full.subarray(0, 400), { source: 'cut.nii' })).toThrow(/cut.nii: truncated image data/);
    expect(() => readNifti(enc('x'.repeat(400)), { source: 'junk.nii' })).toThrow(/junk.nii: not a NIfTI/);
    expect(() => readNifti(niftiFile([4, 4, 3, 2], 16, values), { slice: 9, source: 's.nii' })).toThrow(/slice 9 out of range/);
    const nanValues = Float32Array.from(values); nanValues[20] = NaN; // inside the default (middle) slice
    expect(() => readNifti(niftiFile([4, 4, 3, 2], 16, nanValues), { source: 'nan.nii' })).toThrow(/nan.nii: image holds 1 non-finite/);
  });

  it('DICOM series sorted by TriggerTime with rescale, through a directory', async () => {
    const fs = new MemoryFileSystem();
    const frames = [2, 0, 1]; // written out of order
    for (const f of frames) {
      const px = Uint16Array.from({ length: 6 * 5 }, (_, i) => i + 100 * f);
      await fs.writeFile(`dcm/img${f}.dcm`, dicomFile({ rows: 6, cols: 5, pixels: px, instance: 10 - f, trigger: f * 30, slope: 2, intercept: -5 }));
    }
    const v = await readCmrFile(fs, 'dcm');
    expect([v.frames, v.height, v.width]).toEqual([3, 6, 5]);
    expect(v.data[0]).toBe(-5);
    expect(v.data[30 + 1]).toBe((1 + 100) * 2 - 5);
    expect(v.data[60]).toBe(200 * 2 - 5);
  });

  it('DICOM: bad input errors name the file', async () => {
    const px = new Uint16Array(4);
    const ok = dicomFile({ rows: 2, cols: 2, pixels: px, instance: 1 });
    const read = (files: { name: string; bytes: Uint8Array }[], options = {}) => readDicomSeries(files, options);
    await expect(read([{ name: 'a.dcm', bytes: dicomFile({ rows: 2, cols: 2, pixels: px, instance: 1, syntax: '1.2.840.10008.1.2.4.100' }) }])).rejects.toThrow(/a.dcm: unsupported transfer syntax/);
    await expect(read([{ name: 'a2.dcm', bytes: dicomFile({ rows: 2, cols: 2, pixels: px, instance: 1, syntax: '1.2.840.10008.1.2.4.50' }) }])).rejects.toThrow(/a2.dcm: PixelData of compressed syntax .* holds no fragments/);
    await expect(read([{ name: 'b.dcm', bytes: dicomFile({ rows: 2, cols: 2, pixels: px, instance: 1, photometric: 'RGB' }) }])).rejects.toThrow(/b.dcm: PhotometricInterpretation RGB does not fit SamplesPerPixel 1/);
    await expect(read([{ name: 'c.dcm', bytes: ok.subarray(0, ok.length - 4) }])).rejects.toThrow(/c.dcm/);
    await expect(read([
      { name: 'd1.dcm', bytes: ok },
      { name: 'd2.dcm', bytes: dicomFile({ rows: 2, cols: 2, pixels: px, instance: 2, series: '9.9' }) },
    ], { source: 'dir' })).rejects.toThrow(/dir: no series description matches/);
    await expect(read([{ name: 'e.dcm', bytes: enc('not dicom at all') }])).rejects.toThrow(/e.dcm/);
  });

  it('prepareCine: crop, resize, cyclic temporal resample and spec min-max', () => {
    const v = { data: cine(25, 120, 100), frames: 25, height: 120, width: 100 };
    const p = prepareCine(v);
    expect(p.data.length).toBe(50 * 96 * 96);
    let min = Infinity, max = -Infinity;
    for (const x of p.data) { min = Math.min(min, x); max = Math.max(max, x); }
    expect(min).toBeCloseTo(-1, 6);
    expect(max).toBeCloseTo(1, 6);
    expect(p.warnings.length).toBe(2);
    // Frame 1 of 50 from 25 source frames is halfway between source frames 0 and 1 (constant images).
    const flat = { data: Float32Array.from({ length: 4 * 16 * 16 }, (_, i) => Math.floor(i / 256) * 10), frames: 4, height: 16, width: 16 };
    const q = prepareCine(flat, { frames: 8, size: 8 });
    const at = (f: number) => q.data[f * 64];
    [-1, -1 + 2 * (5 / 30), -1 + 2 * (10 / 30), -1 + 2 * (15 / 30)].forEach((want, k) => expect(at([0, 1, 2, 7][k])).toBeCloseTo(want, 5));
    expect(normalizeClip(Float32Array.of(3, 3))).toEqual(Float32Array.of(-1, -1));
    expect(() => prepareCine({ data: new Float32Array(2 * 16 * 16).fill(4), frames: 2, height: 16, width: 16 }, { source: 'k' })).toThrow(/k: cine is constant/);
    expect(() => prepareCine({ data: new Float32Array(10), frames: 2, height: 16, width: 16 }, { source: 'k' })).toThrow(/k: cine holds 10 values/);
  });
});
