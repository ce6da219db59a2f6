/**
 * Seeded mutation fuzzing of the ECG readers and of the NPY reader (issue 11, item 9): WFDB format 16 and
 * 212 (header and signal file mutated separately), a two-file WFDB record read through a file system, CSV,
 * NPY ECG (float32 and int16) and NPY cine arrays. Every mutant must either read (and prepare) or fail with
 * a DataError; an internal error (RangeError, TypeError, ...) fails the test with the mutant's name, which
 * reproduces it. Each read runs the whole path a user's file takes: reader, then prepareEcg. Random
 * mutants (tests/helpers/fuzz.ts) are joined by sweeps of every number of the headers through extreme
 * values (helpers/field-mutants.ts), which is what finds a sampling frequency of 1e-9 Hz.
 */
import { describe, expect, it } from 'vitest';
import {
  DataError, MemoryFileSystem, parseEcgCsv, parseWfdb, prepareEcg, readEcgFile, readNpy, toFloat32, writeNpy,
} from '../../src/data/index';
import { encodeText as encode } from '../../src/data/fs';
import { generateSubject } from '../../src/data/phantom/subject';
import { LEAD_NAMES } from '../../src/data/phantom/ecg';
import { fuzzReader, mutants, type Mutant } from '../helpers/fuzz';
import { wfdbDat, wfdbHeader } from './helpers/writers';
import { numericFieldMutants } from './helpers/field-mutants';

const isTyped = (e: unknown) => e instanceof DataError;
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

/** 4 s of a 12-lead phantom at 500 Hz, in mV. */
const FS = 500;
const N = 2000;
const phantom = generateSubject(3, 1, { cine: false }).ecg;
const leadsMv = LEAD_NAMES.map((_, c) => phantom.subarray(c * 5000, c * 5000 + N));
const counts = (gain: number) => leadsMv.map((s) => Int32Array.from(s, (v) => Math.round(v * gain)));

const totals = { mutants: 0, valid: 0, typed: 0, internal: 0 };

/**
 * A read slower than this counts as a failure: the synchronous readers cannot be interrupted, so a hang
 * or a giant allocation (a 0.36 Hz rate resampled to 500 Hz) shows up as time. A good read takes ~20 ms.
 */
const SLOW_MS = 2000;

async function fuzz(list: Mutant[], read: (bytes: Uint8Array) => unknown): Promise<void> {
  const timed = async (bytes: Uint8Array) => {
    const start = performance.now();
    let failure: { error: unknown } | null = null;
    try {
      await read(bytes);
    } catch (error) {
      failure = { error };
    }
    const ms = performance.now() - start;
    if (ms > SLOW_MS) throw new Error(`took ${ms.toFixed(0)} ms (limit ${SLOW_MS} ms): a hang or an unbounded allocation`);
    if (failure) throw failure.error;
  };
  const { failures, valid, typed } = await fuzzReader(list, timed, isTyped);
  totals.mutants += list.length;
  totals.valid += valid;
  totals.typed += typed;
  totals.internal += failures.length;
  expect(failures).toEqual([]);
  // Both outcomes must occur, or the mutants are not exercising the reader.
  expect(typed).toBeGreaterThan(0);
}

describe.each([16, 212] as const)('WFDB format %i', (format) => {
  const header = wfdbHeader('r', FS, N, LEAD_NAMES.map((name) => ({ file: 'r.dat', format, gain: 200, baseline: 0, units: 'mV', name })));
  const dat = wfdbDat(counts(200), format);

  it('the unmutated record reads and prepares', () => {
    expect(prepareEcg(parseWfdb(header, new Map([['r.dat', dat]]), 'r.hea')).data.length).toBe(12 * 5000);
  });

  it('header mutants: a DataError or a valid recording', async () => {
    await fuzz(mutants(encode(header), 100 + format, 70, { text: true }), (bytes) =>
      prepareEcg(parseWfdb(decode(bytes), new Map([['r.dat', dat]]), 'r.hea')));
  });

  it('every number of the record line and of two signal lines swept through extreme values', async () => {
    await fuzz(numericFieldMutants(header, [0, 1, 12]), (bytes) => prepareEcg(parseWfdb(decode(bytes), new Map([['r.dat', dat]]), 'r.hea')));
  });

  it('signal file mutants: a DataError or a valid recording', async () => {
    await fuzz(mutants(dat, 200 + format, 70, { headerBias: 4096 }), (bytes) =>
      prepareEcg(parseWfdb(header, new Map([['r.dat', bytes]]), 'r.hea')));
  });
});

describe('WFDB record in two signal files, through a file system', () => {
  const specs = LEAD_NAMES.map((name, i) => ({ file: i < 6 ? 'a.dat' : 'b.dat', format: i < 6 ? 16 : 212, gain: 200, baseline: 0, units: 'mV', name }));
  const header = wfdbHeader('rec', FS, N, specs);
  const a = wfdbDat(counts(200).slice(0, 6), 16);
  const b = wfdbDat(counts(200).slice(6), 212);
  const read = async (files: Record<string, Uint8Array>) => {
    const fs = new MemoryFileSystem();
    for (const [name, bytes] of Object.entries(files)) await fs.writeFile(`rec/${name}`, bytes);
    return prepareEcg(await readEcgFile(fs, 'rec/rec.hea'));
  };

  it('reads unmutated', async () => {
    expect((await read({ 'rec.hea': encode(header), 'a.dat': a, 'b.dat': b })).mapping).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  it('header, first and second signal file mutants', async () => {
    await fuzz(mutants(encode(header), 301, 40, { text: true }), (bytes) => read({ 'rec.hea': bytes, 'a.dat': a, 'b.dat': b }));
    await fuzz(mutants(a, 302, 30), (bytes) => read({ 'rec.hea': encode(header), 'a.dat': bytes, 'b.dat': b }));
    await fuzz(mutants(b, 303, 30), (bytes) => read({ 'rec.hea': encode(header), 'a.dat': a, 'b.dat': bytes }));
  });
});

describe('CSV', () => {
  const rows = [['time', ...LEAD_NAMES].join(',')];
  for (let i = 0; i < N; i++) rows.push([(i / FS).toFixed(4), ...leadsMv.map((s) => s[i].toFixed(4))].join(','));
  const text = rows.join('\n') + '\n';

  it('mutants: a DataError or a valid recording', async () => {
    expect(prepareEcg(parseEcgCsv(text, { source: 'e.csv' })).data.length).toBe(12 * 5000);
    await fuzz(mutants(encode(text), 401, 90, { text: true, headerBias: 2048 }), (bytes) => prepareEcg(parseEcgCsv(decode(bytes), { source: 'e.csv' })));
  });

  it('the time stamps and values of the first, second and last rows swept through extreme values', async () => {
    const short = rows.slice(0, 1201).join('\n');
    await fuzz(numericFieldMutants(short, [1, 2, -1]).filter((_, k) => k % 2 === 0), (bytes) => prepareEcg(parseEcgCsv(decode(bytes), { source: 'e.csv' })));
  });
});

describe('NPY', () => {
  const read = async (name: string, bytes: Uint8Array) => {
    const fs = new MemoryFileSystem();
    await fs.writeFile(name, bytes);
    return prepareEcg(await readEcgFile(fs, name, { fs: FS }));
  };

  it('ECG (12, L) float32 mutants', async () => {
    const flat = new Float32Array(12 * N);
    leadsMv.forEach((s, c) => flat.set(s, c * N));
    const file = writeNpy(flat, [12, N]);
    await read('e.npy', file);
    await fuzz(mutants(file, 501, 80, { headerBias: 128 }), (bytes) => read('e.npy', bytes));
  });

  it('shape and header length swept through extreme values', async () => {
    const flat = new Float32Array(12 * N);
    leadsMv.forEach((s, c) => flat.set(s, c * N));
    const file = writeNpy(flat, [12, N]);
    const headerLength = 10 + new DataView(file.buffer).getUint16(8, true);
    const headerText = new TextDecoder('latin1').decode(file.subarray(0, headerLength));
    const body = file.subarray(headerLength);
    const swept = numericFieldMutants(headerText, [0], ['0', '-1', '1', '15', '16', '2147483648', '4294967296', '99999999999', '1e308', '']).map((m) => {
      // Keep the mutated dictionary's declared length in step with its text, as a writer would.
      const text = new TextDecoder().decode(m.bytes);
      const bytes = new Uint8Array(text.length + body.length);
      for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i) & 0xff;
      new DataView(bytes.buffer).setUint16(8, text.length - 10, true);
      bytes.set(body, text.length);
      return { name: m.name, bytes };
    });
    for (const v of [0, 1, 9, 0xffff]) {
      const bytes = file.slice();
      new DataView(bytes.buffer).setUint16(8, v, true);
      swept.push({ name: `header length ${v}`, bytes });
    }
    for (const version of [0, 2, 3, 4, 255]) {
      const bytes = file.slice();
      bytes[6] = version;
      swept.push({ name: `version ${version}`, bytes });
    }
    await fuzz(swept, (bytes) => read('e.npy', bytes));
  });

  it('ECG 1-D int16 mutants (µV counts: refused as not mV, or another DataError)', async () => {
    const file = writeNpy(Int16Array.from(leadsMv[1], (v) => Math.round(v * 1000)), [N]);
    await fuzz(mutants(file, 502, 40, { headerBias: 128 }), (bytes) => read('one.npy', bytes));
  });

  it('cine (T, H, W) uint8 mutants (the CMR path shares the NPY reader)', async () => {
    const cine = Uint8Array.from({ length: 4 * 16 * 16 }, (_, i) => (i * 7) % 256);
    const file = writeNpy(cine, [4, 16, 16]);
    await fuzz(mutants(file, 503, 60, { headerBias: 128 }), (bytes) => {
      const arr = readNpy(bytes, 'c.npy');
      return toFloat32(arr.data).length;
    });
  });
});

it('fuzzed enough mutants', () => {
  console.info(`fuzz-ecg: ${totals.mutants} mutants, ${totals.valid} read, ${totals.typed} DataError, ${totals.internal} internal errors or slow reads`);
  expect(totals.mutants).toBeGreaterThanOrEqual(500);
});
