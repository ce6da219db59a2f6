import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeFileSystem } from '../../src/data/node-fs';
import { MemoryFileSystem } from '../../src/data/fs';
import { writeSyntheticDataset } from '../../src/data/dataset';
import { readNpy, toFloat32, writeNpy } from '../../src/data/npy';
import { loadClipSource, loadSubjectMeta } from '../../src/eval/sources';
import { clipSetFromArray, detectRange } from '../../src/eval/inputs';

let dir = '';
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'eval-cli-'));
  await writeSyntheticDataset(new NodeFileSystem(), join(dir, 'ds'), { n: 6, seed: 3, split: [0.34, 0, 0.66] });
  // Per-subject predictions as the generator writes them: <id>.npy (1, 50, 96, 96) in [-1, 1], noisy copies.
  const meta = JSON.parse(readFileSync(join(dir, 'ds/test/meta.json'), 'utf8')) as { subjects: { id: string }[] };
  const cmr = readNpy(new Uint8Array(readFileSync(join(dir, 'ds/test/cmr.npy'))));
  const size = 50 * 96 * 96;
  mkdirSync(join(dir, 'pred'));
  let s = 1;
  meta.subjects.forEach((subject, row) => {
    const clip = toFloat32(cmr.data).slice(row * size, (row + 1) * size).map((v) => {
      s = (s * 1664525 + 1013904223) >>> 0;
      return Math.max(-1, Math.min(1, v + 0.1 * (s / 2 ** 32 - 0.5)));
    });
    writeFileSync(join(dir, 'pred', `${subject.id}.npy`), writeNpy(clip, [1, 50, 96, 96]));
  });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function evaluate(args: string[]) {
  return spawnSync('npx', ['tsx', 'src/cli/evaluate.ts', ...args], { encoding: 'utf8', cwd: join(__dirname, '../..') });
}

describe('npm run evaluate', () => {
  it('per-subject directory vs dataset: JSON per clip and aggregate, table, FID refused politely', () => {
    const out = join(dir, 'report.json');
    const r = evaluate(['--pred', join(dir, 'pred'), '--gt', join(dir, 'ds'), '--fid', '--fvd', '--fd-pixels', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/FID .*not available in this version/);
    expect(r.stderr).toMatch(/FVD .*not available in this version/);
    expect(r.stdout).toMatch(/PSNR \(dB, per-clip means\)/);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    expect(report.clips).toBe(3); // floor(6 x 0.66) test subjects
    expect(report.inputRange).toEqual({ pred: 'signed', gt: 'signed' });
    // Uniform noise of width 0.1 in [-1, 1] is width 0.05 in [0, 1]: MSE ≈ 0.05² / 12 → PSNR ≈ 36.8 dB.
    expect(report.aggregate.psnr.mean).toBeGreaterThan(35);
    expect(report.aggregate.psnr.mean).toBeLessThan(39);
    expect(report.aggregate.ssim.mean).toBeGreaterThan(0.8);
    expect(report.aggregate.anatomy.efAbsError.max).toBeLessThan(0.05);
    expect(report.aggregate.anatomy.areaCorrelation.min).toBeGreaterThan(0.95);
    expect(report.aggregate.anatomy.gtSegmentation.clips).toBe(3);
    expect(report.aggregate.anatomy.gtSegmentation.maxRelativeAreaError).toBeLessThan(0.1);
    expect(report.aggregate.frechet[0].extractor).toBe('pooled-pixels-8x8');
    expect(report.perClip[0].id).toMatch(/^phantom-s3-/);
    expect(report.perClip[0].anatomy.centreSource).toBe('phantom-params');
    expect(report.perClip[0].psnrPerFrame).toHaveLength(50);
    expect(report.notes.join(' ')).toMatch(/FID/);
  }, 60_000);

  it('usage errors exit with status 2', () => {
    const r = evaluate(['--pred', join(dir, 'pred')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--pred and --gt are required/);
  }, 30_000);
});

describe('input sources', () => {
  it('range detection: 0-255, [-1, 1], [0, 1]', () => {
    expect(detectRange([0, 200])).toBe('byte');
    expect(detectRange([-1, 1])).toBe('signed');
    expect(detectRange([0, 1])).toBe('unit');
    const set = clipSetFromArray(Float32Array.from([0, 127.5, 255, 300]), [1, 1, 2, 2], 'x');
    expect([...set.clips[0]]).toEqual([0, 0.5, 1, 1]);
  });

  it('NPY (N, 1, T, H, W), per-subject files and metadata through a memory file system', async () => {
    const fs = new MemoryFileSystem();
    const data = Float32Array.from({ length: 2 * 3 * 11 * 11 }, (_, i) => (i % 7) / 7);
    await fs.writeFile('a.npy', writeNpy(data, [2, 1, 3, 11, 11]));
    const a = await loadClipSource(fs, 'a.npy');
    expect([a.set.clips.length, a.set.frames, a.set.height, a.set.width, a.set.range]).toEqual([2, 3, 11, 11, 'unit']);
    await fs.mkdir('d');
    await fs.writeFile('d/s2.npy', writeNpy(data.slice(0, 363), [3, 11, 11]));
    await fs.writeFile('d/s1.npy', writeNpy(data.slice(363), [1, 1, 3, 11, 11]));
    const d = await loadClipSource(fs, 'd');
    expect(d.set.ids).toEqual(['s1', 's2']);
    expect([...d.set.clips[1]]).toEqual([...a.set.clips[0]]);
    await fs.writeFile('meta.json', JSON.stringify({ split: 'test', subjects: [{ id: 's1', cls: 'healthy' }] }));
    expect((await loadSubjectMeta(fs, 'meta.json'))[0].cls).toBe('healthy');
  });
});
