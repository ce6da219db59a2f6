/**
 * Non-finite losses and gradients (GPU, stage ecg, tiny). NaN is injected into the phase targets of chosen
 * steps (targets do not enter the forward pass, so only the loss and the gradients turn NaN): `skip` skips
 * exactly that update on the device and counts it; `stop` stops after 3 in a row with an error naming the
 * step and the tensors; `best` stays finite. Then the CLI with an absurd learning rate exits with code 3.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { HostTensor } from '../../src/models/io/tensor';
import type { EcgBatch } from '../../src/train/ecg-data';
import {
  ecgStage, findNonFinite, loadCheckpoint, NonFiniteMonitor, NonFiniteTrainingError, parseRunArgs, train,
  type EcgStageConfig, type NonFinitePolicy, type StageFactory, type StageBatches,
} from '../../src/train/index';
import { NodeTrainFileSystem } from '../../src/train/node-files';
import { gpuEngine } from '../helpers/oracle';
import { CONTENDED_TIMEOUT, records, tempDirMaker, trainValues } from './run-helpers';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const tempDir = tempDirMaker('train-nonfinite-');
const fs = new NodeTrainFileSystem();

function testConfig(steps: number): EcgStageConfig {
  const config = ecgStage.resolveConfig(parseRunArgs(['--stage', 'ecg', '--steps', String(steps), '--batch', '4', '--seed', '5', '--val-every', '3', '--lr', '3e-3']));
  config.trainSubjects = 16;
  config.valSubjects = 4;
  config.stepsPerEpoch = 4;
  return config;
}

/** Stage ecg whose training batches of the given (1-based) steps carry one NaN phase target. */
function poisoned(steps: number[]): StageFactory<EcgStageConfig> {
  return {
    ...ecgStage,
    async create(config, context) {
      const stage = await ecgStage.create(config, context);
      const real = stage.train as StageBatches<EcgBatch>;
      const bpe = real.batchesPerEpoch;
      const batches: StageBatches<EcgBatch> = {
        batchesPerEpoch: bpe,
        async load(epoch, index) {
          const batch = await real.load(epoch, index);
          if (!steps.includes(epoch * bpe + index + 1)) return batch;
          const phase = Float32Array.from(batch.phase);
          phase[3] = NaN;
          return { ...batch, phase };
        },
      };
      (stage as { train: StageBatches<EcgBatch> }).train = batches;
      return stage;
    },
  };
}

/** Parameters and AdamW moments (not the BatchNorm statistics, which every forward pass updates). */
const trained = (tensors: Map<string, HostTensor>) =>
  new Map([...tensors].filter(([k]) => !k.includes('running_') && !k.includes('num_batches_tracked')).map(([k, t]) => [k, Array.from(t.data as Float32Array)]));

describe('non-finite steps (GPU, stage ecg)', () => {
  it('skip: the poisoned step changes no weight, moment or step count, and is counted', async () => {
    const engine = await gpuEngine();
    const dir = tempDir();
    const factory = poisoned([3]);
    const policy: NonFinitePolicy = { action: 'skip' };
    const warnings: string[] = [];
    const options = { engine, fs, runDir: dir, progress: null, nonFinite: policy, warn: (m: string) => warnings.push(m) };
    await train(factory, testConfig(6), { ...options, stopAfterStep: 2 });
    const before = await loadCheckpoint(fs, dir, 'last');
    await train(factory, null, { ...options, resume: true, stopAfterStep: 3 });
    const after = await loadCheckpoint(fs, dir, 'last');
    expect(after.meta.step).toBe(3);
    const a = trained(before.tensors);
    const b = trained(after.tensors);
    expect([...a.keys()].length).toBeGreaterThan(10);
    expect(b).toEqual(a);
    expect(new Set((after.meta.stageState as { optimizer: { steps: number[] } }).optimizer.steps)).toEqual(new Set([2]));
    expect(after.meta.stageState.nonfinite).toEqual({ skippedSteps: 1 });
    // A clean step afterwards does change them again, and the run finishes.
    const summary = await train(factory, null, { ...options, resume: true });
    expect(summary).toMatchObject({ completed: true, steps: 6, nonFinite: { consecutive: 0, total: 1 } });
    const last = await loadCheckpoint(fs, dir, 'last');
    expect(trained(last.tensors)).not.toEqual(a);
    expect(new Set((last.meta.stageState as { optimizer: { steps: number[] } }).optimizer.steps)).toEqual(new Set([5]));
    const logged = records(dir).filter((r) => r.type === 'train') as unknown as { step: number; values: { loss: number | null }; nonfinite: { skipped: number; skippedSteps: number } }[];
    expect(logged.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(logged.map((r) => r.nonfinite.skipped)).toEqual([0, 0, 1, 0, 0, 0]);
    expect(logged.map((r) => r.nonfinite.skippedSteps)).toEqual([0, 0, 1, 1, 1, 1]);
    expect(logged[2].values.loss).toBeNull(); // NaN is written as null in JSON
    expect(warnings.filter((w) => w.startsWith('step 3: non-finite loss = NaN'))).toHaveLength(1);
    expect(warnings[0]).toContain('the update was skipped on the device');
  }, CONTENDED_TIMEOUT);

  it('stop: three poisoned steps in a row end the run naming the step and the tensors; best stays finite', async () => {
    const engine = await gpuEngine();
    const dir = tempDir();
    const error = await train(poisoned([4, 5, 6]), testConfig(9), { engine, fs, runDir: dir, progress: null, warn: () => undefined }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonFiniteTrainingError);
    const e = error as NonFiniteTrainingError;
    expect(e.step).toBe(6);
    expect(e.tensors).toEqual(expect.arrayContaining(['loss', 'phase', 'gradients']));
    expect(e.message).toMatch(/^training stopped at step 6: 3 consecutive non-finite step\(s\) \(--on-nonfinite stop, limit 3\); step 6: non-finite loss = NaN/);
    expect(e.message).toContain('model state: finite (the non-finite updates were skipped)');
    expect(e.message).toContain('the checkpoints on disk are from step 3 or earlier');
    // Validation at step 6 never ran; the checkpoints are the step-3 ones, finite.
    for (const name of ['last', 'best'] as const) {
      const c = await loadCheckpoint(fs, dir, name);
      expect(c.meta.step).toBe(3);
      expect(findNonFinite(c.tensors)).toBeNull();
    }
    expect(trainValues(dir).map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
  }, CONTENDED_TIMEOUT);

  it('a NaN validation score is never best and stops under stop', () => {
    const skip = new NonFiniteMonitor({ action: 'skip' }, false);
    expect(skip.observeValidation(9, { recon: NaN, loss: 1 }, 'recon')).toBe('validation at step 9: non-finite recon = NaN; not taken as best');
    const stop = new NonFiniteMonitor(undefined, false);
    expect(() => stop.observeValidation(9, { recon: Infinity }, 'recon')).toThrow(/training stopped: validation at step 9: non-finite recon = Infinity/);
    // Limits: 3 by default, 25 with AMP (loss-scale back-offs), or as given; a clean step resets the streak.
    expect([new NonFiniteMonitor(undefined, false).limit, new NonFiniteMonitor(undefined, true).limit, new NonFiniteMonitor({ action: 'stop', limit: 1 }, true).limit]).toEqual([3, 25, 1]);
    const m = new NonFiniteMonitor({ action: 'stop', limit: 2 }, false);
    expect(m.observe(1, { loss: NaN }, 1)).toMatch(/^step 1: non-finite loss = NaN; Inf\/NaN gradients/);
    expect(m.observe(2, { loss: 1 }, 0)).toBeNull();
    expect(m.observe(3, { loss: 1 }, 1)).toContain('1 in a row, 2 in this run');
    expect(() => m.observe(4, { loss: Infinity }, 0)).toThrow(/step 4: non-finite loss = Infinity; the update was applied/);
  });

  it('npm run train with an absurd learning rate exits with code 3 and names the step and the tensors', async () => {
    const out = join(tempDir(), 'run');
    const args = ['--stage', 'ecg', '--steps', '10', '--batch', '2', '--lr', '1e10', '--out', out, '--quiet'];
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/train.ts', ...args], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code, stderr }));
    });
    expect(result.code, result.stderr).toBe(3);
    expect(result.stderr).toMatch(/error: training stopped at step \d+: 3 consecutive non-finite step\(s\)/);
    expect(result.stderr).toMatch(/non-finite loss = (NaN|Infinity)/);
    // The gate skipped every bad update and BatchNorm kept its running statistics (a non-finite batch does not
    // enter them), so the model state the run stops with is still finite.
    expect(result.stderr).toMatch(/model state: finite \(the non-finite updates were skipped\)/);
    // Nothing diverged was saved: no best, and any 'last' is finite.
    expect(existsSync(join(out, 'best-weights.safetensors'))).toBe(false);
    if (existsSync(join(out, 'checkpoints', 'last.safetensors'))) expect(findNonFinite((await loadCheckpoint(fs, out, 'last')).tensors)).toBeNull();
    expect(readFileSync(join(out, 'metrics.jsonl'), 'utf8')).toContain('"nonfinite":{"skipped":1');
  }, CONTENDED_TIMEOUT);
});
