/**
 * Stage vae on the GPU, in process: a few tiny steps lower the reconstruction loss, the adversarial path
 * runs from discStart on (and is exactly 0 before), the adaptive weight matches a host recomputation,
 * a run stopped and resumed repeats the uninterrupted run bit for bit, and the latent dump has the right
 * shapes with the template equal to the mean of the latents.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { grad, noGrad } from '../../src/engine/autograd';
import { tidy } from '../../src/engine/scope';
import { Generator } from '../../src/kernels/random';
import { PatchGan3d } from '../../src/models/discriminator3d';
import { readSafetensors, writeSafetensors } from '../../src/models/io/safetensors';
import { HostTensor } from '../../src/models/io/tensor';
import { LPIPS_CONFIGS, Lpips } from '../../src/models/lpips';
import { VAE_CONFIGS, VAE3d } from '../../src/models/vae3d';
import { loadCheckpoint, parseRunArgs, train } from '../../src/train/index';
import { NodeTrainFileSystem } from '../../src/train/node-files';
import { resizeCine } from '../../src/train/cine-data';
import { loadLpips, vaeStage, type VaeStageConfig } from '../../src/train/stage-vae';
import { MemoryTrainFileSystem } from '../../src/train/files';
import { generatorLoss, REFERENCE_LOSS_WEIGHTS } from '../../src/train/stage-vae-loss';
import { gpuEngine, randomValues } from '../helpers/oracle';
import { CONTENDED_TIMEOUT, expectResumeRepeats, tempDirMaker, trainValues, valValues } from './run-helpers';

const tempDir = tempDirMaker('train-vae-');

const STEPS = 6;
const DISC_START = 3;

/** The tiny preset shrunk for tests: 4 training subjects (4 steps per epoch of batch 1), 2 for validation. */
function testConfig(extra: string[] = []): VaeStageConfig {
  const config = vaeStage.resolveConfig(parseRunArgs(['--stage', 'vae', '--steps', String(STEPS), '--batch', '1', '--seed', '3', '--disc-start', String(DISC_START), '--val-every', '3', '--lr', '3e-3', '--plot-every', '3', ...extra]));
  config.trainSubjects = 4;
  config.valSubjects = 2;
  config.stepsPerEpoch = 4;
  return config;
}

const fs = new NodeTrainFileSystem();
const readTensors = (path: string) => readSafetensors(new Uint8Array(readFileSync(path)));

describe('stage vae (GPU)', () => {
  let first = '';

  it('resizes 50 × 96 × 96 clips to the model input in [-1, 1]', () => {
    const clip = Float32Array.from(randomValues(50 * 96 * 96, 4), (v) => v);
    const small = resizeCine(clip, { frames: 4, size: 32 });
    expect(small.length).toBe(4 * 32 * 32);
    expect(Math.min(...small)).toBeCloseTo(-1, 6);
    expect(Math.max(...small)).toBeCloseTo(1, 6);
    expect(resizeCine(clip, { frames: 50, size: 96 })).toBe(clip);
  });

  it('tiny steps lower the loss; the GAN starts at discStart; checkpoints, latents and template are written', async () => {
    const engine = await gpuEngine();
    first = tempDir();
    const summary = await train(vaeStage, testConfig(), { engine, fs, runDir: first, progress: null });
    expect(summary.completed).toBe(true);
    const steps = trainValues(first);
    expect(steps).toHaveLength(STEPS);
    const l1 = steps.map((r) => r.l1);
    expect((l1[STEPS - 1] + l1[STEPS - 2]) / 2).toBeLessThan(0.9 * ((l1[0] + l1[1]) / 2));
    for (const r of steps) {
      expect(r.loss).toBeGreaterThan(0);
      if (r.step <= DISC_START) {
        // Step s (1-based) ran with index s − 1: the adversarial terms are exactly zero before discStart.
        expect([r.gAdv, r.wAdv, r.dLoss, r.dGradNorm]).toEqual([0, 0, 0, 0]);
        expect(r.loss).toBeCloseTo(r.l1 + 1e-6 * r.kl + r.penalty, 5);
      } else {
        expect(r.wAdv).toBeGreaterThan(0);
        expect(r.dLoss).toBeGreaterThan(0);
        expect(r.dGradNorm).toBeGreaterThan(0);
        expect(r.loss).toBeCloseTo(r.l1 + 1e-6 * r.kl + r.penalty + r.wAdv * r.gAdv, 4);
      }
    }
    expect(valValues(first).map((v) => v.step)).toEqual([3, 6]);
    const last = await loadCheckpoint(fs, first, 'last');
    expect(last.meta).toMatchObject({ stage: 'vae', step: STEPS, epoch: 1, batchInEpoch: 2 });
    expect(last.meta.best.name).toBe('rec');
    for (const key of ['model.decoder.conv_out.weight', 'disc.main.3.running_mean', 'optim.vae.decoder.conv_out.weight.exp_avg', 'optim.disc.main.0.weight.exp_avg_sq']) expect(last.tensors.has(key)).toBe(true);
    expect([...last.tensors.keys()].some((k) => k.startsWith('optim.vae.') && k.includes('temb_proj'))).toBe(false);
    const optimizers = (last.meta.stageState as { optimizers: { vae: { steps: number[] }; disc: { steps: number[] } } }).optimizers;
    // Both optimizers step every iteration (the discriminator on zero gradients before discStart).
    expect(new Set(optimizers.vae.steps)).toEqual(new Set([STEPS]));
    expect(new Set(optimizers.disc.steps)).toEqual(new Set([STEPS]));
    expect(readTensors(join(first, 'best-weights.safetensors')).tensors.has('loss.discriminator.main.0.weight')).toBe(true);

    expect(summary.files.latents).toBe(join(first, 'latents.safetensors'));
    const latentsFile = readTensors(summary.files.latents);
    const latents = latentsFile.tensors.get('latents')!;
    expect(latents.shape).toEqual([4, 4, 4, 16, 16]);
    expect(JSON.parse(latentsFile.metadata.rows)).toEqual([0, 1, 2, 3]);
    expect(JSON.parse(latentsFile.metadata.ids)).toHaveLength(4);
    const template = readTensors(summary.files.template).tensors.get('template')!;
    expect(template.shape).toEqual([1, 4, 1, 16, 16]);
    const values = latents.data as Float32Array;
    const plane = 16 * 16;
    for (let c = 0; c < 4; c++)
      for (let k = 0; k < plane; k += 37) {
        let acc = 0;
        for (let s = 0; s < 4; s++) for (let t = 0; t < 4; t++) acc += values[((s * 4 + c) * 4 + t) * plane + k];
        expect((template.data as Float32Array)[c * plane + k]).toBeCloseTo(acc / 16, 6);
      }
  }, CONTENDED_TIMEOUT);

  it('stopping mid-epoch after discStart and resuming repeats the uninterrupted run exactly', async () => {
    const engine = await gpuEngine();
    const dir = tempDir();
    await expectResumeRepeats(vaeStage, testConfig(['--checkpoint-every', '5']), { engine, fs, dir, first, stopAfterStep: 5, steps: STEPS, position: { epoch: 1, batchInEpoch: 1 } });
    expect(readTensors(join(dir, 'latents.safetensors')).tensors.get('latents')!.data).toEqual(readTensors(join(first, 'latents.safetensors')).tensors.get('latents')!.data);
  }, CONTENDED_TIMEOUT);

  it('the adaptive weight is 0.5·clamp(‖∇W nll‖ / (‖∇W g‖ + 1e-4), 0, 1e4), detached (hand check in float64)', async () => {
    const engine = await gpuEngine();
    const ctx = { backend: engine.backend, gen: new Generator(11) };
    const vae = new VAE3d(ctx, VAE_CONFIGS.tiny);
    const disc = new PatchGan3d(ctx, VAE_CONFIGS.tiny.discriminator);
    for (const p of disc.parameters()) p.requiresGrad = false;
    const x = engine.tensor(randomValues(4 * 32 * 32, 9), [1, 1, 4, 32, 32]);
    const W = vae.decoder.convOut.weight;
    const out = tidy(() => {
      const { reconstruction, posterior } = vae.forward(x, { gen: new Generator(12) });
      const loss = generatorLoss({ x, reconstruction, posterior, lpips: null, discriminator: disc, lastLayer: W, weights: REFERENCE_LOSS_WEIGHTS });
      // The two gradients again, from the same retained graph, for the host-side ratio.
      const gn = grad(loss.nll, [W], { retainGraph: true })[0]!;
      const gg = grad(loss.gAdv, [W], { retainGraph: true })[0]!;
      return { wAdv: loss.wAdv, gn, gg };
    });
    expect(out.wAdv.requiresGrad || out.wAdv.gradNode !== null).toBe(false);
    const norm = (v: Float64Array) => Math.sqrt(v.reduce((a, b) => a + b * b, 0));
    const hand = 0.5 * Math.min(1e4, norm(await out.gn.dataF64()) / (norm(await out.gg.dataF64()) + 1e-4));
    const wAdv = (await out.wAdv.dataF64())[0];
    expect(hand).toBeGreaterThan(0);
    expect(Math.abs(wAdv - hand) / hand).toBeLessThan(1e-5);
    for (const t of [out.wAdv, out.gn, out.gg, x]) t.dispose();
    vae.dispose();
    disc.dispose();
  }, CONTENDED_TIMEOUT);

  it('--lpips-weights: a lpips-layout file (under loss.perceptual_loss.) loads; nll = L1 + mean per-frame LPIPS', async () => {
    const engine = await gpuEngine();
    const source = new Lpips({ backend: engine.backend, gen: new Generator(21) }, LPIPS_CONFIGS.tiny);
    const weights = new Map<string, HostTensor>();
    for (const [k, t] of source.stateDict()) weights.set(`loss.perceptual_loss.${k}`, new HostTensor('f32', [...t.shape], Float32Array.from(await t.data())));
    source.dispose();
    const memory = new MemoryTrainFileSystem();
    await memory.writeFile('/lpips.safetensors', writeSafetensors(weights));
    const lpips = await loadLpips(memory, '/lpips.safetensors', engine.backend, new Generator(22));
    lpips.eval();
    const vae = new VAE3d({ backend: engine.backend, gen: new Generator(23) }, VAE_CONFIGS.tiny);
    const x = engine.tensor(randomValues(2 * 4 * 32 * 32, 5), [2, 1, 4, 32, 32]);
    const out = noGrad(() =>
      tidy(() => {
        const { reconstruction, posterior } = vae.forward(x, { gen: new Generator(24) });
        const loss = generatorLoss({ x, reconstruction, posterior, lpips, discriminator: null, lastLayer: vae.decoder.convOut.weight, weights: REFERENCE_LOSS_WEIGHTS });
        return { nll: loss.nll, l1: loss.l1, perceptual: loss.lpips!, perFrame: lpips.video(x, reconstruction) };
      }),
    );
    const [nll, l1, perceptual] = [(await out.nll.dataF64())[0], (await out.l1.dataF64())[0], (await out.perceptual.dataF64())[0]];
    const perFrame = await out.perFrame.dataF64();
    expect(out.perFrame.shape).toEqual([2, 1, 4, 1, 1]);
    // (Random heads may be negative; real LPIPS heads are not.)
    expect(Math.abs(perceptual)).toBeGreaterThan(0);
    expect(perceptual).toBeCloseTo(perFrame.reduce((a, b) => a + b, 0) / 8, 6);
    expect(nll).toBeCloseTo(l1 + perceptual, 6);
    for (const t of [out.nll, out.l1, out.perceptual, out.perFrame, x]) t.dispose();
    vae.dispose();
    lpips.dispose();
  }, CONTENDED_TIMEOUT);
});
