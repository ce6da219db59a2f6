import { afterAll, describe, expect, it } from 'vitest';
import { Engine, backward, mul, sum, tidy } from '../../src/index';
import { splitVaeCheckpoint } from '../../src/models/vae3d';
import { PATCHGAN_CHECKPOINT_PREFIX, PATCHGAN_CONFIGS, PatchGan3d } from '../../src/models/discriminator3d';
import { cpu, gpuEngine, releaseGpu } from '../helpers/oracle';
import { expectRelativeNear, goldenNpy, goldenStateDict, initContext as ctx, VAE_GOLDEN } from '../helpers/golden';

afterAll(releaseGpu);

const npy = (name: string) => goldenNpy(VAE_GOLDEN, name);
const pthStateDict = (name: string) => goldenStateDict(VAE_GOLDEN, name);
const weights = pthStateDict('disc_weights.pth');

function expectNear(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string, floor = 1e-3) {
  expectRelativeNear(actual, expected, tol, what, floor);
}

/** Train-mode forward + backward for the oracle's upstream gradient, then eval mode with the updated running statistics. */
async function runGolden(e: Engine, tol: number) {
  const d = new PatchGan3d(ctx(e), PATCHGAN_CONFIGS.tiny);
  d.loadStateDict(weights);
  const input = npy('disc_input');
  const x = e.tensor(input.data, input.shape);
  x.requiresGrad = true;
  const y = d.forward(x);
  expect(y.shape).toEqual([2, 1, 1, 2, 2]);
  const w = npy('disc_w');
  backward(tidy(() => sum(mul(y, e.tensor(w.data, w.shape)))));
  expectNear(await y.dataF64(), npy('disc_train_out').data, tol, 'train-mode logits');
  expectNear(await x.grad!.dataF64(), npy('disc_grad_input').data, tol, 'input gradient');
  const grads = pthStateDict('disc_param_grads.pth');
  expect(d.namedParameters().map(([k]) => k)).toEqual([...grads.keys()]);
  for (const [k, p] of d.namedParameters()) expectNear(await p.grad!.dataF64(), grads.get(k)!.data, tol, `${k} gradient`);
  const running = pthStateDict('disc_running_after_train.pth');
  const own = d.stateDict();
  for (const [k, t] of running) expectNear(await own.get(k)!.dataF64(), t.data, tol, `${k} after one train step`);
  d.eval();
  const yEval = d.forward(x);
  expectNear(await yEval.dataF64(), npy('disc_eval_out').data, tol, 'eval-mode logits');
  for (const t of [x, y, yEval]) t.dispose();
  d.dispose();
}

describe('PatchGan3d', () => {
  it('keys follow the reference nn.Sequential indexing; paper config has 4,208,449 parameters; init statistics', async () => {
    const d = new PatchGan3d(ctx(cpu), PATCHGAN_CONFIGS.tiny);
    expect([...d.stateDict()].map(([k, t]) => `${k}:${t.shape}`)).toEqual([...weights].map(([k, t]) => `${k}:${t.shape}`));
    d.dispose();
    const paper = new PatchGan3d(ctx(cpu, 3), PATCHGAN_CONFIGS.paper);
    expect(paper.numParameters()).toBe(4_208_449);
    const w = paper.stateDict().get('main.8.weight')!.toFloat64Sync();
    const m = w.reduce((a, b) => a + b, 0) / w.length;
    const s = Math.sqrt(w.reduce((a, b) => a + (b - m) ** 2, 0) / w.length);
    expect(Math.abs(m)).toBeLessThan(1e-3);
    expect(s).toBeCloseTo(0.02, 3);
    const bn = paper.stateDict().get('main.9.weight')!.toFloat64Sync();
    expect(Math.abs(bn.reduce((a, b) => a + b, 0) / bn.length - 1)).toBeLessThan(0.01);
    expect(Array.from(paper.stateDict().get('main.9.bias')!.toFloat64Sync()).every((v) => v === 0)).toBe(true);
    paper.dispose();
  });

  it('loads from a VAE checkpoint (loss.discriminator.*) through splitVaeCheckpoint', () => {
    const checkpoint = new Map([...weights].map(([k, t]) => [`${PATCHGAN_CHECKPOINT_PREFIX}${k}`, t]));
    checkpoint.set('encoder_3d.conv_in.weight', { shape: [1], data: new Float32Array(1) });
    checkpoint.set('loss.perceptual_loss.lin0.model.1.weight', { shape: [1], data: new Float32Array(1) });
    checkpoint.set('loss.logvar', { shape: [], data: new Float32Array(1) });
    const parts = splitVaeCheckpoint(checkpoint);
    expect([...parts.vae.keys()]).toEqual(['encoder_3d.conv_in.weight']);
    expect([...parts.perceptual.keys()]).toEqual(['lin0.model.1.weight']);
    expect([...parts.other.keys()]).toEqual(['loss.logvar']);
    const d = new PatchGan3d(ctx(cpu), PATCHGAN_CONFIGS.tiny);
    expect(d.loadStateDict(parts.discriminator).loaded).toBe(weights.size);
    d.dispose();
  });

  it('golden parity (train-mode BatchNorm, gradients, running stats, eval mode) on the float64 reference', async () => {
    await runGolden(cpu, 1e-5);
  });

  it('golden parity on the GPU at fp32 tolerance', async () => {
    await runGolden(await gpuEngine(), 2e-4);
  });
});
