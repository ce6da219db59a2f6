/**
 * Stage `ecg` on the GPU, in process: the loss goes down, runs are deterministic, a run stopped and resumed
 * from its checkpoint repeats the uninterrupted run's losses bit for bit, the run directory holds the
 * metrics log, the SVG and the checkpoints, and the learning rate follows the cosine per iteration.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cosineLr } from '../../src/kernels/optimizer';
import { ecgStage, loadCheckpoint, parseRunArgs, train, type EcgStageConfig } from '../../src/train/index';
import { NodeTrainFileSystem } from '../../src/train/node-files';
import { writeSyntheticDataset } from '../../src/data/dataset';
import { gpuEngine } from '../helpers/oracle';
import { CONTENDED_TIMEOUT, expectResumeRepeats, tempDirMaker, trainValues as loggedTrainValues, valValues } from './run-helpers';

const tempDir = tempDirMaker('train-ecg-');

/** The tiny preset shrunk for tests: 16 training subjects (4 steps per epoch), 8 for validation. */
function testConfig(steps: number, extra: string[] = []): EcgStageConfig {
  const config = ecgStage.resolveConfig(parseRunArgs(['--stage', 'ecg', '--steps', String(steps), '--batch', '4', '--seed', '7', '--plot-every', '4', ...extra]));
  config.trainSubjects = 16;
  config.valSubjects = 8;
  config.stepsPerEpoch = 4;
  return config;
}

const fs = new NodeTrainFileSystem();
const trainValues = (runDir: string) => loggedTrainValues<{ loss: number; recon: number; phase: number; gradNorm: number }>(runDir);

describe('stage ecg (GPU)', () => {
  const steps = 12;
  let first = '';

  it('a few steps reduce the loss; metrics, SVG and checkpoints are written', async () => {
    const engine = await gpuEngine();
    first = tempDir();
    const summary = await train(ecgStage, testConfig(steps, ['--val-every', '6', '--lr', '3e-3']), { engine, fs, runDir: first, progress: null });
    expect(summary.completed).toBe(true);
    const losses = trainValues(first).map((r) => r.loss);
    expect(losses).toHaveLength(steps);
    const head = (losses[0] + losses[1] + losses[2]) / 3;
    const tail = (losses[steps - 1] + losses[steps - 2] + losses[steps - 3]) / 3;
    expect(tail).toBeLessThan(0.8 * head);
    for (const r of trainValues(first)) {
      expect(r.loss).toBeCloseTo(100 * r.recon + 10 * r.phase, 3);
      expect(r.gradNorm).toBeGreaterThan(0);
    }
    expect(valValues(first).map((v) => v.step)).toEqual([6, 12]);
    const names = readdirSync(first).sort();
    expect(names).toEqual(['best-weights.safetensors', 'checkpoints', 'config.json', 'loss.svg', 'metrics.jsonl', 'summary.json']);
    expect(readdirSync(join(first, 'checkpoints')).sort()).toEqual(['best.json', 'best.safetensors', 'last.json', 'last.safetensors']);
    const svg = readFileSync(join(first, 'loss.svg'), 'utf8');
    expect(svg).toMatch(/^<svg[\s\S]*<path d="M[\s\S]*<\/svg>$/);
    const last = await loadCheckpoint(fs, first, 'last');
    expect(last.meta).toMatchObject({ stage: 'ecg', step: steps, epoch: 3, batchInEpoch: 0 });
    expect(last.meta.best.name).toBe('recon');
    expect(last.tensors.has('model.encoder.stem.0.weight')).toBe(true);
    expect(last.tensors.has('optim.encoder.stem.0.weight.exp_avg_sq')).toBe(true);
    expect(last.tensors.has('model.encoder.stem.1.running_mean')).toBe(true);
    const stageState = last.meta.stageState as { generators: { mask: { counter: number } }; optimizer: { steps: number[] } };
    expect(stageState.generators.mask.counter).toBeGreaterThan(0);
    expect(new Set(stageState.optimizer.steps)).toEqual(new Set([steps]));
  }, CONTENDED_TIMEOUT);

  it('the learning rate follows the cosine schedule per iteration', () => {
    const lrs = trainValues(first).map((r) => r.lr);
    lrs.forEach((lr, i) => expect(lr).toBe(cosineLr(i, steps, 3e-3, 1e-6)));
    expect(new Set(lrs).size).toBe(steps);
  }, CONTENDED_TIMEOUT);

  it('the same seed gives identical losses', async () => {
    const engine = await gpuEngine();
    const again = tempDir();
    await train(ecgStage, testConfig(steps, ['--val-every', '6', '--lr', '3e-3']), { engine, fs, runDir: again, progress: null });
    expect(trainValues(again)).toEqual(trainValues(first));
    expect(valValues(again)).toEqual(valValues(first));
  }, CONTENDED_TIMEOUT);

  it('stopping after a checkpoint and resuming repeats the uninterrupted run exactly', async () => {
    const engine = await gpuEngine();
    const dir = tempDir();
    const config = testConfig(steps, ['--val-every', '6', '--lr', '3e-3', '--checkpoint-every', '5']);
    // The stop happens in epoch 1 (4 steps per epoch): the resumed loader must continue mid-epoch.
    await expectResumeRepeats(ecgStage, config, { engine, fs, dir, first, stopAfterStep: 7, steps, position: { epoch: 1, batchInEpoch: 3 } });
    const best = (await loadCheckpoint(fs, dir, 'best')).meta.best;
    expect(best).toEqual((await loadCheckpoint(fs, first, 'best')).meta.best);
  }, CONTENDED_TIMEOUT);

  it('--data DIR trains on the dataset splits; the epoch length follows the dataset', async () => {
    const engine = await gpuEngine();
    const data = join(tempDir(), 'data');
    await writeSyntheticDataset(fs, data, { n: 10, seed: 5, split: [0.6, 0.2, 0.2] });
    const runDir = tempDir();
    const config = ecgStage.resolveConfig(parseRunArgs(['--stage', 'ecg', '--data', data, '--batch', '2', '--epochs', '1', '--seed', '1']));
    const summary = await train(ecgStage, config, { engine, fs, runDir, progress: null });
    expect(summary).toMatchObject({ completed: true, steps: 3, totalSteps: 3 });
    expect(JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8'))).toMatchObject({ stepsPerEpoch: 3, trainSubjects: 6, valSubjects: 2, valEvery: 3, data });
    expect(valValues(runDir).map((v) => v.step)).toEqual([3]);
  }, CONTENDED_TIMEOUT);
});
