import { afterAll, describe, expect, it } from 'vitest';
import { Engine, backward, mul, sum, tidy } from '../../src/index';
import type { HostTensor } from '../../src/models/module';
import { LPIPS_CONFIGS, Lpips, lpipsFromTorchvisionVgg16 } from '../../src/models/lpips';
import { cpu, gpuEngine, releaseGpu } from '../helpers/oracle';
import { expectRelativeNear, goldenNpy, goldenStateDict, initContext as ctx, VAE_GOLDEN } from '../helpers/golden';

afterAll(releaseGpu);

const npy = (name: string) => goldenNpy(VAE_GOLDEN, name);
const weights: Map<string, HostTensor> = goldenStateDict(VAE_GOLDEN, 'lpips_weights.pth');

function expectNear(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string, floor = 1e-3) {
  expectRelativeNear(actual, expected, tol, what, floor);
}

function tinyLpips(e: Engine, seed = 1): Lpips {
  const m = new Lpips(ctx(e, seed), LPIPS_CONFIGS.tiny);
  m.loadWeights(weights);
  return m;
}

/** Per-frame LPIPS of the golden clips and the gradient wrt the first clip for the oracle's upstream. */
async function run(e: Engine, training: boolean, seed = 1) {
  const m = tinyLpips(e, seed).train(training);
  const a = npy('lpips_input');
  const b = npy('lpips_target');
  const x = e.tensor(a.data, a.shape);
  x.requiresGrad = true;
  const target = e.tensor(b.data, b.shape);
  const y = m.video(x, target);
  expect(y.shape).toEqual([1, 1, 2, 1, 1]);
  const w = npy('lpips_w');
  backward(tidy(() => sum(mul(y, e.tensor(w.data, w.shape)))));
  const out = { y: await y.dataF64(), gx: await x.grad!.dataF64(), paramGrads: m.parameters().filter((p) => p.grad).length };
  for (const t of [x, target, y]) t.dispose();
  m.dispose();
  return out;
}

describe('Lpips', () => {
  it('key layout of the lpips package (torchvision indices kept); frozen; VGG16 size', () => {
    const tiny = new Lpips(ctx(cpu), LPIPS_CONFIGS.tiny);
    expect([...tiny.stateDict()].map(([k, t]) => `${k}:${t.shape}`)).toEqual([...weights].map(([k, t]) => `${k}:${t.shape}`));
    expect(tiny.numParameters(true)).toBe(0);
    tiny.dispose();
    const vgg = new Lpips(ctx(cpu));
    // VGG16's 13 convolutions (14,714,688) + the five heads (64+128+256+512+512).
    expect(vgg.numParameters()).toBe(14_716_160);
    const keys = [...vgg.stateDict().keys()];
    expect(keys.slice(0, 4)).toEqual(['scaling_layer.shift', 'scaling_layer.scale', 'net.slice1.0.weight', 'net.slice1.0.bias']);
    expect(keys).toContain('net.slice5.28.weight');
    expect(keys.at(-1)).toBe('lin4.model.1.weight');
    vgg.dispose();
  });

  it('loads torchvision vgg16 + head weights; scaling_layer defaults when absent', () => {
    const vggKeys = new Map<string, HostTensor>();
    const heads = new Map<string, HostTensor>();
    for (const [k, t] of weights) {
      const m = /^net\.slice\d\.(\d+)\.(weight|bias)$/.exec(k);
      if (m) vggKeys.set(`features.${m[1]}.${m[2]}`, t);
      else if (k.startsWith('lin')) heads.set(k, t);
    }
    vggKeys.set('classifier.0.weight', { shape: [1], data: [0] });
    const mapped = lpipsFromTorchvisionVgg16(vggKeys, heads);
    const m = new Lpips(ctx(cpu), LPIPS_CONFIGS.tiny);
    expect(m.loadWeights(mapped).loaded).toBe(weights.size);
    expect(Array.from(m.scalingLayer.scale.toFloat64Sync(), (v) => +v.toFixed(3))).toEqual([0.458, 0.448, 0.45]);
    m.dispose();
  });

  it('golden parity in eval mode on the float64 reference: per-frame value and input gradient, no weight gradients', async () => {
    const r = await run(cpu, false);
    expectNear(r.y, npy('lpips_out').data, 1e-5, 'lpips');
    expectNear(r.gx, npy('lpips_grad_input').data, 1e-5, 'input gradient');
    expect(r.paramGrads).toBe(0);
  });

  it('golden parity in eval mode on the GPU', async () => {
    const r = await run(await gpuEngine(), false);
    expectNear(r.y, npy('lpips_out').data, 2e-4, 'lpips');
    expectNear(r.gx, npy('lpips_grad_input').data, 2e-4, 'input gradient');
    expect(r.paramGrads).toBe(0);
  });

  it('train mode: head dropout is active, seeded, and the same on GPU and reference', async () => {
    const gpu = await gpuEngine();
    const g = await run(gpu, true, 7);
    const c = await run(cpu, true, 7);
    expectNear(g.y, c.y, 2e-4, 'train-mode lpips GPU vs reference');
    expectNear(g.gx, c.gx, 2e-4, 'train-mode input gradient GPU vs reference');
    const evalOut = npy('lpips_out').data;
    expect(Math.abs(c.y[0] - evalOut[0]) + Math.abs(c.y[1] - evalOut[1])).toBeGreaterThan(1e-4);
  });

  it('a grey frame equals the same frame repeated on three channels', async () => {
    const m = tinyLpips(cpu).eval();
    const a = npy('lpips_input').data.slice(0, 256);
    const b = npy('lpips_target').data.slice(0, 256);
    const rgb = (v: Float32Array) => cpu.tensor([...v, ...v, ...v], [1, 3, 16, 16]);
    const grey = await m.forward(cpu.tensor(a, [1, 1, 16, 16]), cpu.tensor(b, [1, 1, 16, 16])).dataF64();
    const colour = await m.forward(rgb(a), rgb(b)).dataF64();
    expect(grey[0]).toBeCloseTo(colour[0], 10);
    expectNear(grey, npy('lpips_out').data.slice(0, 1), 1e-5, 'first frame');
    m.dispose();
  });
});
