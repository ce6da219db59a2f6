/**
 * Stage `flow` on the GPU, in process, on a tiny untrained chain (PA-MAE tiny, VAE tiny: latents 4 × 4 × 8 × 8):
 * a few steps lower the flow loss, the encoder is fine-tuned (not its phase head), a stopped and resumed
 * run repeats the uninterrupted one bit for bit, and the condition drop keeps samples at rate 0.9.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cosineLr } from '../../src/kernels/optimizer';
import { Generator } from '../../src/kernels/random';
import { readSafetensors } from '../../src/models/io/safetensors';
import { loadCheckpoint, parseRunArgs, train, UsageError } from '../../src/train/index';
import { NodeTrainFileSystem } from '../../src/train/node-files';
import { conditionKeepMask, flowStage, type FlowStageConfig } from '../../src/train/stage-flow';
import { writeTinyChain } from '../../src/train/stage-flow-fixture';
import { latentSubjects } from '../../src/train/stage-flow-data';
import { gpuEngine } from '../helpers/oracle';
import { CONTENDED_TIMEOUT, expectResumeRepeats, tempDirMaker, trainValues as loggedTrainValues, valValues } from './run-helpers';

const tempDir = tempDirMaker('train-flow-');

const fs = new NodeTrainFileSystem();
let chain: { ecgRun: string; vaeRun: string };

beforeAll(async () => {
  chain = await writeTinyChain(await gpuEngine(), fs, join(tempDir(), 'chain'), { seed: 5, trainSubjects: 8 });
}, CONTENDED_TIMEOUT);

/** 8 latents, batch 4: 2 steps per epoch; 4 validation subjects. */
function testConfig(steps: number, extra: string[] = []): FlowStageConfig {
  const config = flowStage.resolveConfig(parseRunArgs(['--stage', 'flow', '--vae-run', chain.vaeRun, '--ecg-run', chain.ecgRun, '--steps', String(steps), '--seed', '3', '--plot-every', '4', ...extra]));
  config.valSubjects = 4;
  return config;
}

const trainValues = (runDir: string) => loggedTrainValues<{ loss: number; gradNorm: number }>(runDir);

describe('latent pairing', () => {
  it('pairs latent rows with phantom ids, dataset ids or rows, or falls back to the VAE run order', () => {
    const phantom = latentSubjects({ ids: JSON.stringify(['phantom-s7-000004', 'phantom-s7-000002']) }, 2, { seed: 1, data: null });
    expect(phantom).toEqual([{ kind: 'phantom', seed: 7, index: 4 }, { kind: 'phantom', seed: 7, index: 2 }]);
    const byId = latentSubjects({ ids: JSON.stringify(['b', 'a']) }, 2, { seed: 1, data: 'd' }, ['a', 'b', 'c']);
    expect(byId.map((s) => (s.kind === 'dataset' ? s.row : -1))).toEqual([1, 0]);
    expect(latentSubjects({ rows: '[2, 0]' }, 2, { seed: 1, data: 'd' })).toEqual([{ kind: 'dataset', dir: 'd', split: 'train', row: 2 }, { kind: 'dataset', dir: 'd', split: 'train', row: 0 }]);
    expect(latentSubjects({}, 2, { seed: 3, data: null })).toEqual([{ kind: 'phantom', seed: 3, index: 0 }, { kind: 'phantom', seed: 3, index: 1 }]);
    expect(() => latentSubjects({ rows: '[0]' }, 2, { seed: 3, data: null })).toThrow(/1 subjects for 2 latents/);
  });
});

describe('stage flow (GPU)', () => {
  const steps = 8;
  let first = '';

  it('needs both runs; the DiT follows the latent geometry and the encoder width', () => {
    expect(() => flowStage.resolveConfig(parseRunArgs(['--stage', 'flow', '--vae-run', 'v']))).toThrow(UsageError);
    const c = flowStage.resolveConfig(parseRunArgs(['--stage', 'flow', '--vae-run', 'v', '--ecg-run', 'e', '--config', 'paper']));
    expect(c).toMatchObject({ lr: 1e-4, minLr: 1e-6, betas: [0.9, 0.999], weightDecay: 1e-4, clipNorm: 1, alpha: 0.8, conditionDrop: 0.1, cycle: 'faithful', ditWidth: { hiddenSize: 512, depth: 8 } });
  });

  it('a few steps lower the loss; checkpoints hold the DiT and the fine-tuned encoder', async () => {
    const engine = await gpuEngine();
    first = tempDir();
    const started = performance.now();
    const summary = await train(flowStage, testConfig(steps, ['--val-every', '4', '--lr', '3e-3']), { engine, fs, runDir: first, progress: null });
    const seconds = (performance.now() - started) / 1000;
    expect(summary.completed).toBe(true);
    const losses = trainValues(first).map((r) => r.loss);
    expect(losses).toHaveLength(steps);
    const head = (losses[0] + losses[1] + losses[2]) / 3;
    const tail = (losses[steps - 1] + losses[steps - 2] + losses[steps - 3]) / 3;
    console.log(`flow tiny: ${steps} steps in ${seconds.toFixed(1)} s (${summary.stepsPerSecond.toFixed(2)} steps/s), loss ${losses[0].toFixed(4)} → ${losses[steps - 1].toFixed(4)}, val ${JSON.stringify(valValues(first))}`);
    expect(tail).toBeLessThan(0.9 * head);
    expect(valValues(first).map((v) => v.step)).toEqual([4, 8]);

    const config = JSON.parse(readFileSync(join(first, 'config.json'), 'utf8')) as FlowStageConfig;
    expect(config).toMatchObject({ trainSubjects: 8, stepsPerEpoch: 2, dit: { latentChannels: 4, numFrames: 4, latentSize: [8, 8], ecgDim: 32 }, vaeInput: { frames: 4, size: 16 } });
    const last = await loadCheckpoint(fs, first, 'last');
    expect(last.meta).toMatchObject({ stage: 'flow', step: steps, epoch: 4, batchInEpoch: 0 });
    expect(last.tensors.has('model.dit.pos_embed')).toBe(true);
    expect(last.tensors.has('model.encoder.stem.1.running_mean')).toBe(true);
    expect(last.tensors.has('optim.dit.final_linear.weight.exp_avg')).toBe(true);
    const optimizer = (last.meta.stageState as { optimizer: { steps: number[]; parameterNames: string[] } }).optimizer;
    // The phase head gets no gradient in this stage; everything else steps every time.
    optimizer.parameterNames.forEach((name, i) => expect([name, optimizer.steps[i]]).toEqual([name, name.startsWith('encoder.phase_head') ? 0 : steps]));

    const best = readSafetensors(readFileSync(join(first, 'best-weights.safetensors'))).tensors;
    expect(best.has('dit.blocks.0.attn_cross.in_proj_weight')).toBe(true);
    expect(best.get('template')!.shape).toEqual([1, 4, 1, 8, 8]);
    const stage1 = readSafetensors(readFileSync(join(chain.ecgRun, 'best-weights.safetensors'))).tensors;
    const changed = (key: string) => best.get(`encoder.${key}`)!.toFloat32().some((v, i) => v !== stage1.get(`encoder.${key}`)!.toFloat32()[i]);
    expect(changed('stem.0.weight')).toBe(true);
    expect(changed('phase_head.0.weight')).toBe(false);
  }, CONTENDED_TIMEOUT);

  it('the learning rate follows the cosine schedule per iteration', () => {
    trainValues(first).forEach((r, i) => expect(r.lr).toBe(cosineLr(i, steps, 3e-3, 1e-6)));
  });

  it('stopping after a checkpoint and resuming repeats the uninterrupted run exactly', async () => {
    const engine = await gpuEngine();
    const dir = tempDir();
    const config = testConfig(steps, ['--val-every', '4', '--lr', '3e-3', '--checkpoint-every', '3']);
    // Mid-epoch (2 steps per epoch): the resumed loader continues with the second batch of epoch 1.
    await expectResumeRepeats(flowStage, config, { engine, fs, dir, first, stopAfterStep: 3, steps, position: { epoch: 1, batchInEpoch: 1 } });
  }, CONTENDED_TIMEOUT);

  it('the condition drop zeroes a sample with probability 0.1', async () => {
    const engine = await gpuEngine();
    const gen = new Generator(11);
    const n = 40_000;
    const keep = conditionKeepMask(engine.backend, n, 0.1, gen);
    expect(keep.shape).toEqual([n, 1, 1]);
    const host = await keep.data();
    keep.dispose();
    const kept = Array.from(host).reduce((a, b) => a + b, 0);
    expect(new Set(host)).toEqual(new Set([0, 1]));
    // 3 standard deviations of a binomial(40000, 0.1) draw: 0.0045.
    expect(Math.abs(1 - kept / n - 0.1)).toBeLessThan(0.0045);
    expect(gen.state().counter).toBe(n);
  }, CONTENDED_TIMEOUT);
});
