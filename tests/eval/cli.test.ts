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
import { Engine } from '../../src/engine/engine';
import { Generator } from '../../src/kernels/random';
import { HostTensor, writeSafetensors } from '../../src/models/io';
import type { Module } from '../../src/models/module';
import { InceptionV3 } from '../../src/models/inception-v3';
import { I3d } from '../../src/models/i3d';

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
  it('per-subject directory vs dataset: JSON per clip and aggregate, table, FID/FVD without weights skipped politely', () => {
    const out = join(dir, 'report.json');
    const r = evaluate(['--pred', join(dir, 'pred'), '--gt', join(dir, 'ds'), '--fid', '--fvd', '--fd-pixels', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/FID .*skipped: no weights given \(--fid-weights FILE\)/);
    expect(r.stderr).toMatch(/FVD .*skipped: no weights given \(--fvd-weights FILE\)/);
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
    // A noisy copy keeps each subject's function: EF over the clips follows the ground truth.
    expect(report.aggregate.anatomy.efCorrelation).toBeGreaterThan(0.9);
    expect(r.stdout).toMatch(/EF across clips, gen vs GT: Pearson r (0\.9|1\.0)/);
    expect(report.aggregate.anatomy.gtSegmentation.clips).toBe(3);
    expect(report.aggregate.anatomy.gtSegmentation.maxRelativeAreaError).toBeLessThan(0.1);
    expect(report.aggregate.frechet[0].extractor).toBe('pooled-pixels-8x8');
    expect(report.perClip[0].id).toMatch(/^phantom-s3-/);
    expect(report.perClip[0].anatomy.centreSource).toBe('phantom-params');
    expect(report.perClip[0].psnrPerFrame).toHaveLength(50);
    expect(report.notes.join(' ')).toMatch(/FID/);
  }, 60_000);

  it('--fid-weights / --fvd-weights (full-size networks, small smoke-test inputs) write FID and FVD into the report', () => {
    // Full-size state dicts with He-scaled pseudo-random convolutions and identity BatchNorms.
    const writeWeights = (model: Module, path: string) => {
      let s = 11;
      const tensors = new Map<string, HostTensor>();
      for (const [key, t] of model.stateDict()) {
        const data = new Float32Array(t.size);
        if (key.endsWith('.weight') && t.rank > 1) {
          const bound = Math.sqrt(6 / (t.size / t.shape[0]));
          for (let i = 0; i < data.length; i++) {
            s = (s * 1664525 + 1013904223) >>> 0;
            data[i] = (s / 2 ** 32 - 0.5) * 2 * bound;
          }
        } else if (key.endsWith('bn.weight') || key.endsWith('running_var')) data.fill(1);
        tensors.set(key, new HostTensor('f32', t.shape, data));
      }
      model.dispose();
      writeFileSync(path, writeSafetensors(tensors));
    };
    const ctx = { backend: Engine.cpu().backend, gen: new Generator(0) };
    writeWeights(new InceptionV3(ctx), join(dir, 'inception.safetensors'));
    writeWeights(new I3d(ctx), join(dir, 'i3d.safetensors'));
    // 3 clips of 3 frames at 16x16; the prediction is a shifted copy.
    const gt = Float32Array.from({ length: 3 * 3 * 16 * 16 }, (_, i) => 0.5 + 0.4 * Math.sin(i * 0.37));
    writeFileSync(join(dir, 'small-gt.npy'), writeNpy(gt, [3, 1, 3, 16, 16]));
    writeFileSync(join(dir, 'small-pred.npy'), writeNpy(gt.map((v) => Math.min(1, v + 0.1)), [3, 1, 3, 16, 16]));
    const out = join(dir, 'small-report.json');
    const r = evaluate(['--pred', join(dir, 'small-pred.npy'), '--gt', join(dir, 'small-gt.npy'), '--no-anatomy', '--out', out,
      '--fid-weights', join(dir, 'inception.safetensors'), '--fid-size', '75', '--fvd-weights', join(dir, 'i3d.safetensors'), '--fvd-size', '32']);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    const byName = Object.fromEntries(report.aggregate.frechet.map((f: { extractor: string }) => [f.extractor, f]));
    expect(byName['fid-inception-v3-75px']).toMatchObject({ unit: 'frame', dims: 2048 });
    expect(byName['fvd-i3d-32px']).toMatchObject({ unit: 'clip', dims: 1024 });
    for (const f of Object.values(byName) as { distance: number; meanTerm: number }[]) {
      expect(Number.isFinite(f.distance) && f.distance > 0).toBe(true);
      expect(f.meanTerm).toBeGreaterThan(0);
    }
    expect(r.stdout).toMatch(/Fréchet distance \(fid-inception-v3-75px, per frame, 2048-d\)/);
    const notes = report.notes.join(' ');
    expect(notes).toMatch(/not the reference's 299x299/);
    expect(notes).toMatch(/FVD .*3 clips per set for 1024-d features, so the covariances are singular/);
  }, 120_000);

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
