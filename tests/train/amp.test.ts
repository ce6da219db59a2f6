/**
 * Mixed precision training (--amp) on the GPU, in process: stage ecg with AMP lowers the loss and tracks the
 * f32 run closely, logs the loss scale, keeps device memory flat, and a stopped and resumed AMP run repeats
 * the uninterrupted one bit for bit (scaler state and step counts in the checkpoint); stages vae and flow run
 * with AMP; --amp is refused where the device has no shader-f16.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine';
import { ecgStage, loadCheckpoint, parseRunArgs, train, Trainer, UsageError, type EcgStageConfig, type TrainRecord } from '../../src/train/index';
import { NodeTrainFileSystem } from '../../src/train/node-files';
import { AMP_NEEDS_F16 } from '../../src/train/stage-common';
import { flowStage } from '../../src/train/stage-flow';
import { writeTinyChain } from '../../src/train/stage-flow-fixture';
import { vaeStage } from '../../src/train/stage-vae';
import { gpuEngine } from '../helpers/oracle';
import { CONTENDED_TIMEOUT, expectResumeRepeats, records, tempDirMaker, trainValues } from './run-helpers';

const tempDir = tempDirMaker('train-amp-');
const fs = new NodeTrainFileSystem();

/** The tiny ecg preset shrunk for tests (as tests/train/ecg-train.test.ts): 16 subjects, 4 steps per epoch. */
function ecgConfig(steps: number, extra: string[] = []): EcgStageConfig {
  const config = ecgStage.resolveConfig(parseRunArgs(['--stage', 'ecg', '--steps', String(steps), '--batch', '4', '--seed', '7', '--val-every', '6', '--lr', '3e-3', '--plot-every', '4', ...extra]));
  config.trainSubjects = 16;
  config.valSubjects = 8;
  config.stepsPerEpoch = 4;
  return config;
}

type AmpRecord = TrainRecord & { amp?: { scale: number; skipped: number; skippedSteps: number } };
const ampRecords = (runDir: string) => records(runDir).filter((r): r is AmpRecord => r.type === 'train');

describe('--amp options', () => {
  it('parses, is stored in the config, and is refused with --resume (the stored config decides)', () => {
    expect(parseRunArgs(['--stage', 'ecg', '--amp']).amp).toBe(true);
    expect(ecgConfig(4, ['--amp']).amp).toBe(true);
    expect(ecgConfig(4).amp, 'f32 configs are unchanged').toBeUndefined();
    expect(() => parseRunArgs(['--resume', 'runs/x', '--amp'])).toThrow(UsageError);
  });
  it('is refused with a clear message where the device has no shader-f16 (here: the float64 reference backend)', async () => {
    await expect(train(ecgStage, ecgConfig(2, ['--amp']), { engine: Engine.cpu(), fs, runDir: tempDir(), progress: null })).rejects.toThrow(AMP_NEEDS_F16);
  });
});

describe('stage ecg with --amp (GPU)', () => {
  const steps = 12;
  let f32 = '';
  let amp = '';

  beforeAll(async () => {
    const engine = await gpuEngine();
    f32 = tempDir();
    amp = tempDir();
    await train(ecgStage, ecgConfig(steps), { engine, fs, runDir: f32, progress: null });
    await train(ecgStage, ecgConfig(steps, ['--amp']), { engine, fs, runDir: amp, progress: null });
  }, CONTENDED_TIMEOUT);

  it('lowers the loss and tracks the f32 run closely; the log records the scale and no skipped step', () => {
    const a = trainValues(amp);
    const f = trainValues(f32);
    expect(a).toHaveLength(steps);
    const head = (a[0].loss + a[1].loss + a[2].loss) / 3;
    const tail = (a[steps - 1].loss + a[steps - 2].loss + a[steps - 3].loss) / 3;
    expect(tail).toBeLessThan(0.8 * head);
    // Same data, masks and initial weights; only the f16 rounding of the conv operands differs. At this
    // learning rate (3e-3) the two trajectories drift apart slowly (measured: < 5 % per step, 2 % at the end).
    expect(Math.abs(a[0].loss - f[0].loss) / f[0].loss).toBeLessThan(1e-3);
    a.forEach((r, i) => expect(Math.abs(r.loss - f[i].loss) / f[i].loss, `step ${i + 1}`).toBeLessThan(0.08));
    const tailF = (f[steps - 1].loss + f[steps - 2].loss + f[steps - 3].loss) / 3;
    expect(Math.abs(tail - tailF) / tailF).toBeLessThan(0.05);
    // Clipping sees unscaled gradients: the logged pre-clip norm is the f32 run's (not 65536 times it). (At
    // initialisation this model's gradients are sensitive: a 5e-4 relative change of the input alone moves them
    // by ~14 %; their norm moved by < 1 % here.)
    expect(Math.abs(a[0].gradNorm - f[0].gradNorm) / f[0].gradNorm).toBeLessThan(0.05);
    expect(ampRecords(amp).map((r) => r.amp)).toEqual(Array.from({ length: steps }, () => ({ scale: 65536, skipped: 0, skippedSteps: 0 })));
    expect(ampRecords(f32).every((r) => r.amp === undefined)).toBe(true);
    expect(Object.keys(a[0]).sort(), 'loss curves get no scaler values').toEqual(Object.keys(f[0]).sort());
  });

  it('keeps device memory flat over the steps', () => {
    const live = ampRecords(amp).map((r) => r.memory.liveMiB);
    expect(new Set(live.slice(2)).size, `live MiB per step: ${live.join(', ')}`).toBe(1);
  });

  it('checkpoints hold the scaler state; stopping and resuming repeats the uninterrupted AMP run exactly', async () => {
    const engine = await gpuEngine();
    const last = await loadCheckpoint(fs, amp, 'last');
    expect(last.meta.stageState.amp).toEqual({ scale: 65536, growthTracker: steps, skippedSteps: 0 });
    expect(last.meta.config.amp).toBe(true);
    const dir = tempDir();
    await expectResumeRepeats(ecgStage, ecgConfig(steps, ['--amp', '--checkpoint-every', '5']), { engine, fs, dir, first: amp, stopAfterStep: 7, steps, position: { epoch: 1, batchInEpoch: 3 } });
    expect(ampRecords(dir).map((r) => r.amp)).toEqual(ampRecords(amp).map((r) => r.amp));
  }, CONTENDED_TIMEOUT);
});

describe('stages vae and flow with --amp (GPU)', () => {
  it('vae: the generator step (adaptive weight through grad()) and the discriminator step run with one scaler', async () => {
    const engine = await gpuEngine();
    const config = vaeStage.resolveConfig(parseRunArgs(['--stage', 'vae', '--amp', '--steps', '3', '--batch', '1', '--seed', '3', '--disc-start', '1', '--val-every', '3', '--lr', '3e-3']));
    config.trainSubjects = 4;
    config.valSubjects = 1;
    config.stepsPerEpoch = 4;
    const runDir = tempDir();
    // The Trainer alone: no latent dump after the run (a VAE step costs seconds on lavapipe).
    const trainer = await Trainer.open(vaeStage, config, { engine, fs, runDir, progress: null });
    try {
      expect((await trainer.run()).completed).toBe(true);
    } finally {
      trainer.dispose();
    }
    const v = trainValues<{ loss: number; l1: number; dLoss: number; wAdv: number; dGradNorm: number }>(runDir);
    // (batch 1: each step sees another clip, so 3 steps show no trend; ecg above checks the descent)
    expect(v.every((r) => Number.isFinite(r.loss) && Number.isFinite(r.dLoss) && r.l1 > 0)).toBe(true);
    expect(v[1].wAdv).toBeGreaterThan(0);
    expect(v[1].dGradNorm).toBeGreaterThan(0);
    expect(ampRecords(runDir).map((r) => r.amp)).toEqual([1, 2, 3].map(() => ({ scale: 65536, skipped: 0, skippedSteps: 0 })));
    const state = (await loadCheckpoint(fs, runDir, 'last')).meta.stageState as { amp: unknown; optimizers: { vae: { steps: number[] }; disc: { steps: number[] } } };
    expect(state.amp).toEqual({ scale: 65536, growthTracker: 3, skippedSteps: 0 });
    expect(Math.max(...state.optimizers.disc.steps)).toBe(3);
  }, CONTENDED_TIMEOUT);

  it('flow: DiT attention and the fine-tuned encoder train under autocast', async () => {
    const engine = await gpuEngine();
    const chain = await writeTinyChain(engine, fs, join(tempDir(), 'chain'), { seed: 5, trainSubjects: 8 });
    const config = flowStage.resolveConfig(parseRunArgs(['--stage', 'flow', '--amp', '--vae-run', chain.vaeRun, '--ecg-run', chain.ecgRun, '--steps', '4', '--seed', '3', '--val-every', '4']));
    config.valSubjects = 4;
    const runDir = tempDir();
    const summary = await train(flowStage, config, { engine, fs, runDir, progress: null });
    expect(summary.completed).toBe(true);
    const v = trainValues<{ loss: number; gradNorm: number }>(runDir);
    const a = ampRecords(runDir).map((r) => r.amp!);
    // Overflowed steps (f16 attention gradients at scale 65536) are skipped and halve the scale; the rest train.
    a.forEach((r, i) => {
      if (i > 0) expect(r.scale).toBe(a[i - 1].skipped ? a[i - 1].scale / 2 : a[i - 1].scale);
    });
    expect(a[a.length - 1].skippedSteps).toBe(a.reduce((n, r) => n + r.skipped, 0));
    expect(a.some((r) => r.skipped === 0)).toBe(true);
    expect(v.filter((_, i) => !a[i].skipped).every((r) => Number.isFinite(r.loss) && r.gradNorm > 0)).toBe(true);
    const state = (await loadCheckpoint(fs, runDir, 'last')).meta.stageState as { amp: { scale: number; skippedSteps: number }; optimizer: { steps: number[] } };
    expect(state.amp.skippedSteps).toBe(a[a.length - 1].skippedSteps);
    // Skipped steps do not count: the DiT's parameters were stepped once per clean iteration.
    expect(Math.max(...state.optimizer.steps)).toBe(4 - state.amp.skippedSteps);
  }, CONTENDED_TIMEOUT);
});
