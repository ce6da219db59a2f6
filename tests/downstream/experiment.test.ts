/**
 * The downstream experiment end to end on a tiny phantom cohort (GPU): every arm runs, every (arm, mix,
 * seed, fold) lands once in the results, a rerun resumes without redoing anything, two shards give the
 * same numbers as one run, and the report (JSON, markdown, plots) is written.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { NodeFileSystem } from '../../src/data/node-fs';
import { writeSyntheticDataset } from '../../src/data/dataset';
import { VideoEncoder } from '../../src/downstream/model';
import { Generator } from '../../src/kernels/random';
import { cpu } from '../helpers/oracle';
import { CONTENDED_TIMEOUT, tempDirMaker } from '../train/run-helpers';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const tempDir = tempDirMaker('downstream-');

function run(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/downstream.ts', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => resolve({ code, out }));
  });
}

const lines = (dir: string) => readdirSync(dir).filter((n) => /^results-.*\.jsonl$/.test(n)).flatMap((n) => readFileSync(join(dir, n), 'utf8').trim().split('\n'));

describe('video encoder', () => {
  it('maps [B, 1, T, H, W] to [B, 4·width] features', () => {
    const encoder = new VideoEncoder({ backend: cpu.backend, gen: new Generator(1) }, { width: 4, groups: 2 });
    const y = encoder.forward(cpu.tensor(new Float32Array(2 * 8 * 16 * 16).map((_, i) => Math.sin(i)), [2, 1, 8, 16, 16]));
    expect(y.shape).toEqual([2, 16]);
    encoder.dispose();
  });
});

describe('npm run downstream (GPU, tiny phantom cohort)', () => {
  let data = '';
  const common = ['--task', 'classify', '--frames', '8', '--size', '16', '--width', '4', '--folds', '2', '--seeds', '1', '--mix', '0,1',
    '--pretrain-epochs', '1', '--pretrain-batch', '8', '--finetune-epochs', '2', '--finetune-batch', '8'];

  beforeAll(async () => {
    data = join(tempDir(), 'phantom');
    await writeSyntheticDataset(new NodeFileSystem(), data, { n: 24, seed: 3, split: [0.75, 0, 0.25] });
  }, CONTENDED_TIMEOUT);

  it('runs every arm, resumes, shards to the same numbers, and writes the report', async () => {
    const out = join(tempDir(), 'exp');
    const args = [...common, '--real', data, '--synthetic', data, '--unconditional', data, '--out', out];
    const first = await run(args);
    expect(first.code, first.out).toBe(0);
    // Units: none, real, synthetic × mix 1, unconditional × mix 1 → 4 × 2 folds.
    const records = lines(out).map((l) => JSON.parse(l));
    expect(records).toHaveLength(8);
    expect(new Set(records.map((r) => `${r.arm}/${r.mix}/${r.fold}`)).size).toBe(8);
    for (const r of records) {
      expect(r.test.acc).toBeGreaterThanOrEqual(0);
      expect(r.test.acc).toBeLessThanOrEqual(1);
      expect(r.testPredictions).toHaveLength(6 * 4);
    }
    expect(records.find((r) => r.arm === 'synthetic').pretrainClips).toBe(36);
    expect(records.find((r) => r.arm === 'none').pretrainLoss).toBeNull();
    const report = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(report.rows.map((r: { arm: string }) => r.arm)).toEqual(['none', 'real', 'synthetic', 'unconditional']);
    expect(report.rows[0].test.acc.ci).toHaveLength(2);
    expect(readFileSync(join(out, 'results.md'), 'utf8')).toMatch(/\| synthetic \| 1 \| 2 \|/);
    expect(existsSync(join(out, 'plot-macroAuc.svg'))).toBe(true);

    // A rerun finds every run done and redoes nothing.
    const again = await run(args);
    expect(again.code, again.out).toBe(0);
    expect(lines(out)).toHaveLength(8);
    expect(again.out).toMatch(/8 run\(s\) already/);

    // Two shards, then the report: the same runs with the same numbers.
    const sharded = join(tempDir(), 'sharded');
    for (const shard of ['0/2', '1/2']) {
      const r = await run([...args.slice(0, -1), sharded, '--shard', shard]);
      expect(r.code, r.out).toBe(0);
    }
    const rep = await run(['report', '--out', sharded]);
    expect(rep.code, rep.out).toBe(0);
    const byKey = (rs: { arm: string; mix: number; fold: number; test: Record<string, number> }[]) => Object.fromEntries(rs.map((r) => [`${r.arm}/${r.mix}/${r.fold}`, r.test.acc]));
    expect(byKey(lines(sharded).map((l) => JSON.parse(l)))).toEqual(byKey(records));

    // Other settings in the same folder are refused.
    const other = await run([...args, '--seed', '5']);
    expect(other.code).toBe(1);
    expect(other.out).toMatch(/other settings/);

    // A regression run with the same pretraining settings and clips shares the pretrained encoders…
    const regressArgs = [...args.slice(0, -1), join(tempDir(), 'regress'), '--task', 'regress', '--targets', 'efProxy', '--pretrained-cache', join(out, 'pretrained')];
    const regress = await run(regressArgs);
    expect(regress.code, regress.out).toBe(0);
    expect(regress.out).not.toMatch(/pretrain epoch/);
    expect(lines(regressArgs[regressArgs.indexOf('--out') + 1]).map((l) => JSON.parse(l).test['efProxy.mae'])).toHaveLength(8);
    // …and one with other pretraining settings is refused instead of reusing them.
    const changed = await run([...regressArgs.slice(0, regressArgs.indexOf('--out') + 1), join(tempDir(), 'regress2'), ...regressArgs.slice(regressArgs.indexOf('--out') + 2), '--pretrain-epochs', '2']);
    expect(changed.code).toBe(1);
    expect(changed.out).toMatch(/pretrained with other settings or clips/);
  }, CONTENDED_TIMEOUT * 3);
});
