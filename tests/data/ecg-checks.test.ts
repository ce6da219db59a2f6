/**
 * Plausibility checks on ECG input (issue 11, items 6-8): units, sampling rate, heart rate, unnamed and
 * flat leads, NPY without a rate, CSV time columns in ms, directories given as files.
 */
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DataError, MemoryFileSystem, parseEcgCsv, parseWfdb, parseWfdbHeader, prepareEcg, readEcgFile, resampleSignal, writeNpy, type EcgRecording,
} from '../../src/data/index';
import { NodeFileSystem } from '../../src/data/node-fs';
import { generateSubject } from '../../src/data/phantom/subject';
import { LEAD_NAMES } from '../../src/data/phantom/ecg';
import { wfdbDat, wfdbHeader } from './helpers/writers';

/** A realistic 12-lead, 10 s, 500 Hz recording in mV (phantom subject, heart rate 55-85 bpm). */
const phantom = generateSubject(7, 0, { cine: false });
const N = 5000;
const leads = (scale = 1): Float32Array[] => LEAD_NAMES.map((_, c) => Float32Array.from(phantom.ecg.subarray(c * N, (c + 1) * N), (v) => v * scale));
const rec = (signals: Float32Array[], names: readonly string[] = LEAD_NAMES, fs = 500): EcgRecording => ({ signals, leadNames: [...names], fs, source: 'rec.hea' });
const phantomBpm = phantom.truth.heartRateBpm;
const good = leads();

describe('units (amplitude)', () => {
  it('accepts the phantom in mV without amplitude warnings', () => {
    const p = prepareEcg(rec(leads()));
    expect(p.warnings.filter((w) => /amplitude|units/.test(w))).toEqual([]);
    expect(p.heartRateBpm).toBeGreaterThan(phantomBpm - 5);
    expect(p.heartRateBpm).toBeLessThan(phantomBpm + 5);
  });

  it('refuses µV stored as mV, ADC counts and 200-1700 mV amplitudes, naming the file and the fix', () => {
    expect(() => prepareEcg(rec(leads(1000)))).toThrow(/^rec\.hea: .*looks like µV or ADC counts.*check the units\/gain/);
    expect(() => prepareEcg(rec(leads(400)))).toThrow(DataError);
    // Raw int16 counts of a WFDB file whose header claims 1 unit per mV.
    const counts = leads().map((s) => Int32Array.from(s, (v) => Math.round(v * 200)));
    const header = wfdbHeader('r', 500, N, LEAD_NAMES.map((name) => ({ file: 'r.dat', format: 16, gain: 1, baseline: 0, units: 'mV', name })));
    const wfdb = parseWfdb(header, new Map([['r.dat', wfdbDat(counts, 16)]]), 'r.hea');
    expect(() => prepareEcg(wfdb)).toThrow(/^r\.hea: .*values up to [\d.]+ mV/);
  });

  it('one lead far too large among good ones: left out (normal), refused (strict), kept (lenient)', () => {
    const signals = leads();
    signals[9] = signals[9].map((v) => v * 1000); // V4 in µV
    const p = prepareEcg(rec(signals));
    expect(p.mapping[9]).toBeNull();
    expect(p.warnings.join('\n')).toMatch(/lead V4 spans \d+ mV peak-to-peak .*looks like µV or ADC counts.*not used/);
    expect(() => prepareEcg(rec(signals), { checks: 'strict' })).toThrow(/lead V4 spans/);
    expect(prepareEcg(rec(signals), { checks: 'lenient' }).mapping[9]).toBe(9);
  });

  it('lenient mode turns the amplitude refusal into a warning', () => {
    const p = prepareEcg(rec(leads(1000)), { checks: 'lenient' });
    expect(p.warnings.join('\n')).toMatch(/looks like µV or ADC counts/);
  });

  it('refuses volts stored as mV (every lead below 1 µV std) with a units hint', () => {
    expect(() => prepareEcg(rec(leads(0.001)))).toThrow(/every lead is flat.*units/);
  });
});

describe('sampling rate', () => {
  it('refuses an absurd rate with a DataError before any allocation', () => {
    for (const fs of [1e-6, 0.36, 49, 10_001, 1e9, Infinity]) {
      expect(() => prepareEcg(rec(leads(), LEAD_NAMES, fs))).toThrow(/sampling frequency .* outside 50-10000 Hz/);
    }
    expect(() => parseWfdbHeader('r 1 0.001 1000\nr.dat 16 200 12 0 0 0 0 II\n', 'r.hea')).toThrow(/^r\.hea: .*sampling frequency/);
    expect(() => parseWfdbHeader('r 1 1e9 1000\nr.dat 16 200 12 0 0 0 0 II\n', 'r.hea')).toThrow(/^r\.hea: .*sampling frequency/);
  });

  it('refuses a heart rate far outside 20-300 bpm (a wrong rate), as a warning in lenient mode', () => {
    // 500 Hz data declared as 2500 Hz: 2 s long, the heart rate five times too high.
    expect(() => prepareEcg(rec(leads(), LEAD_NAMES, 2500))).toThrow(/^rec\.hea: heart rate \d+ bpm .*outside 20-300 bpm.*sampling frequency \(2500 Hz\)/);
    const lenient = prepareEcg(rec(leads(), LEAD_NAMES, 2500), { checks: 'lenient' });
    expect(lenient.warnings.join('\n')).toMatch(/heart rate \d+ bpm .*kept: lenient/);
    // Declared 100 Hz: 50 s long, five times too slow; the large deflections show it (warning, strict refuses).
    const slow = prepareEcg(rec(leads(), LEAD_NAMES, 100));
    expect(slow.warnings.join('\n')).toMatch(/heart rate 1\d bpm .*large deflections: 1\d bpm.*sampling frequency \(100 Hz\).*only a warning/);
    expect(() => prepareEcg(rec(leads(), LEAD_NAMES, 100), { checks: 'strict' })).toThrow(/heart rate 1\d bpm/);
  });

  it('NPY carries no rate: without fs it is an error that says --fs; with fs it is used', async () => {
    const fs = new MemoryFileSystem();
    await fs.writeFile('one.npy', writeNpy(leads()[1].subarray(0, 3600), [3600]));
    await expect(readEcgFile(fs, 'one.npy')).rejects.toThrow(/^one\.npy: .*--fs/);
    const r = await readEcgFile(fs, 'one.npy', { fs: 360 });
    expect(r.fs).toBe(360);
    await expect(readEcgFile(fs, 'one.npy', { fs: 5 })).rejects.toThrow(/one\.npy: .*sampling frequency/);
  });

  it('a time column in milliseconds is recognised by its step, whatever its name', () => {
    const rows = ['time,I,II'];
    for (let i = 0; i < 3000; i++) rows.push(`${i * 2},${good[0][i]},${good[1][i]}`);
    const r = parseEcgCsv(rows.join('\n'), { source: 'ms.csv' });
    expect(r.fs).toBeCloseTo(500, 6);
    expect(r.warnings.join('\n')).toMatch(/ms\.csv: .*'time'.*milliseconds/);
  });

  it('a time column with a gap or going backwards is refused', () => {
    const rows = ['t,II'];
    for (let i = 0; i < 3000; i++) rows.push(`${((i < 1500 ? i : i + 40) / 500).toFixed(4)},${good[1][i]}`);
    expect(() => parseEcgCsv(rows.join('\n'), { source: 'gap.csv' })).toThrow(/gap\.csv: .*time column 't'.*row 1502/);
    const back = ['t,II', '0,0.1', '0.002,0.2', '0.001,0.3'];
    expect(() => parseEcgCsv(back.join('\n'), { source: 'b.csv' })).toThrow(/b\.csv: .*not increasing/);
  });

  it('a time column whose step gives no plausible rate in s or ms is refused', () => {
    const rows = ['time,II'];
    for (let i = 0; i < 3000; i++) rows.push(`${i * 100},${good[1][i]}`);
    expect(() => parseEcgCsv(rows.join('\n'), { source: 'slow.csv' })).toThrow(/slow\.csv: .*sampling frequency/);
  });
});

describe('lead names', () => {
  it('refuses a 12-signal WFDB record with empty descriptions instead of an all-zero input', () => {
    const counts = leads().map((s) => Int32Array.from(s, (v) => Math.round(v * 200)));
    const header = wfdbHeader('r', 500, N, LEAD_NAMES.map(() => ({ file: 'r.dat', format: 16, gain: 200, baseline: 0, units: 'mV', name: '' })));
    const wfdb = parseWfdb(header, new Map([['r.dat', wfdbDat(counts, 16)]]), 'r.hea');
    expect(() => prepareEcg(wfdb)).toThrow(/^r\.hea: no lead could be identified/);
  });

  it('keeps a single unnamed lead as lead II with a warning', () => {
    const p = prepareEcg(rec([leads()[1]], ['sig0']));
    expect(p.mapping[1]).toBe(0);
    expect(p.warnings.join('\n')).toMatch(/single lead 'sig0' placed as lead II/);
  });

  it('warns that 12 unnamed NPY channels are taken in the standard order', async () => {
    const fs = new MemoryFileSystem();
    const flat = new Float32Array(12 * N);
    leads().forEach((s, c) => flat.set(s, c * N));
    await fs.writeFile('e.npy', writeNpy(flat, [12, N]));
    const r = await readEcgFile(fs, 'e.npy', { fs: 500 });
    expect(r.warnings.join('\n')).toMatch(/e\.npy: .*standard order I, II, III, aVR, aVL, aVF, V1-V6/);
  });
});

describe('flat leads', () => {
  it('zeroes one flat precordial lead among 11 good ones with a warning; strict refuses', () => {
    const signals = leads();
    signals[8] = new Float32Array(N).fill(0.3); // V3
    const p = prepareEcg(rec(signals));
    expect(p.mapping[8]).toBeNull();
    expect(p.data.subarray(8 * N, 9 * N).every((v) => v === 0)).toBe(true);
    expect(p.warnings.join('\n')).toMatch(/rec\.hea: lead V3 is a flat line .*zeros/);
    expect(() => prepareEcg(rec(signals), { strict: true })).toThrow(/lead V3 is a flat line/);
  });

  it('derives a flat limb lead from two good ones', () => {
    const signals = leads();
    signals[2] = new Float32Array(N); // III
    const p = prepareEcg(rec(signals));
    expect(p.mapping[2]).toBe('derived');
    for (const k of [100, 2500]) expect(p.data[2 * N + k]).toBeCloseTo(p.data[N + k] - p.data[k], 4);
  });

  it('refuses when every identified lead is flat', () => {
    expect(() => prepareEcg(rec([new Float32Array(N), new Float32Array(N)], ['I', 'II']))).toThrow(/every lead is flat/);
  });
});

describe('directories given as files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ecgcheck-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names the path when a reader is given a directory', async () => {
    const fs = new NodeFileSystem();
    for (const name of ['d.npy', 'd.csv', 'd.hea']) {
      mkdirSync(join(dir, name));
      await expect(readEcgFile(fs, join(dir, name), { fs: 500 })).rejects.toThrow(new RegExp(`${name}: .*is a directory`));
    }
    // The file systems themselves name the path, so the CMR readers' reads are covered too.
    await expect(fs.readFile(join(dir, 'd.npy'))).rejects.toThrow(/d\.npy: is a directory, not a file/);
    await expect(fs.readRange(join(dir, 'd.npy'), 0, 4)).rejects.toThrow(/d\.npy: is a directory, not a file/);
    const memory = new MemoryFileSystem();
    await memory.mkdir('m.csv');
    await expect(readEcgFile(memory, 'm.csv', { fs: 500 })).rejects.toThrow(/m\.csv: .*is a directory/);
  });
});

describe('resampling only the kept window', () => {
  it('gives the same samples as resampling everything and cropping', () => {
    const x = Float32Array.from({ length: 3000 }, (_, i) => Math.sin(i / 13) + 0.3 * Math.cos(i / 5));
    for (const [fsIn, fsOut] of [[250, 500], [1000, 500], [360, 500]]) {
      const full = resampleSignal(x, fsIn, fsOut);
      const start = Math.floor(full.length / 3);
      expect(resampleSignal(x, fsIn, fsOut, start, 700)).toEqual(full.subarray(start, start + 700));
    }
  });
});

describe('a given rate against the rate in the file', () => {
  it('WFDB keeps its header rate and says the given one is ignored', async () => {
    const counts = good.slice(0, 2).map((s) => Int32Array.from(s, (v) => Math.round(v * 200)));
    const fs = new MemoryFileSystem();
    await fs.writeFile('r.hea', wfdbHeader('r', 500, N, ['I', 'II'].map((name) => ({ file: 'r.dat', format: 16, gain: 200, baseline: 0, units: 'mV', name }))));
    await fs.writeFile('r.dat', wfdbDat(counts, 16));
    const r = await readEcgFile(fs, 'r.hea', { fs: 360 });
    expect(r.fs).toBe(500);
    expect(r.warnings.join('\n')).toMatch(/r\.hea: the given sampling frequency 360 Hz is ignored; the header's 500 Hz is used/);
  });

  it('CSV uses a given rate but warns when its time column disagrees; 12 headerless columns are warned', () => {
    const rows = ['time,II'];
    for (let i = 0; i < 1500; i++) rows.push(`${(i / 500).toFixed(3)},${good[1][i]}`);
    expect(parseEcgCsv(rows.join('\n'), { source: 'a.csv', fs: 250 }).warnings.join('\n')).toMatch(/a\.csv: the given sampling frequency 250 Hz is used, but column 'time' says 500 Hz/);
    const bare = Array.from({ length: 1500 }, (_, i) => good.map((s) => s[i].toFixed(4)).join(',')).join('\n');
    expect(parseEcgCsv(bare, { source: 'b.csv', fs: 500 }).warnings.join('\n')).toMatch(/b\.csv: no header row; the 12 columns are taken in the standard order/);
  });
});
