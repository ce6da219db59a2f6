import { afterAll, describe, expect, it } from 'vitest';
import { Engine, Generator, add, backward, mul, sum, tidy } from '../../src/index';
import type { HostTensor } from '../../src/models/module';
import { VAE3d, VAE_CONFIGS, isVaeLossKey } from '../../src/models/vae3d';
import { cpu, gpuEngine, releaseGpu } from '../helpers/oracle';
import { expectRelativeNear, goldenNpy, goldenStateDict, initContext as ctx, VAE_GOLDEN } from '../helpers/golden';

afterAll(releaseGpu);

const npy = (name: string) => goldenNpy(VAE_GOLDEN, name);
const weights = goldenStateDict(VAE_GOLDEN, 'vae_weights.pth');
const paramGrads = goldenStateDict(VAE_GOLDEN, 'vae_param_grads.pth');

/**
 * max |a − b| relative to the largest reference magnitude (fp32 parity through a deep net), with a floor on
 * that magnitude for tensors that are exactly zero in theory (e.g. the attention key bias gradient).
 */
function expectNear(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string, floor = 1e-2) {
  expectRelativeNear(actual, expected, tol, what, floor);
}

function tinyVae(e: Engine): VAE3d {
  const vae = new VAE3d(ctx(e), VAE_CONFIGS.tiny);
  vae.loadStateDict(weights);
  return vae;
}

/** The oracle's forward and upstream gradient: encode, decode the mode, loss = Σ rec·w + Σ μ·w' + Σ logvar·w''. */
async function runGolden(e: Engine) {
  const vae = tinyVae(e);
  const input = npy('vae_input');
  const x = e.tensor(input.data, input.shape);
  x.requiresGrad = true;
  const posterior = vae.encode(x);
  const z = posterior.mode();
  const rec = vae.decode(z);
  const upstream = (name: string) => e.tensor(npy(name).data, npy(name).shape);
  const loss = tidy(() =>
    add(add(sum(mul(rec, upstream('vae_w_rec'))), sum(mul(posterior.mean, upstream('vae_w_mean')))), sum(mul(posterior.logvar, upstream('vae_w_logvar')))),
  );
  backward(loss);
  const out = {
    mean: await posterior.mean.dataF64(),
    logvar: await posterior.logvar.dataF64(),
    rec: await rec.dataF64(),
    gradInput: await x.grad!.dataF64(),
    paramGrads: new Map<string, Float64Array | null>(),
  };
  for (const [k, p] of vae.namedParameters()) out.paramGrads.set(k, p.grad ? await p.grad.dataF64() : null);
  for (const t of [x, z, rec, loss]) t.dispose();
  posterior.dispose();
  vae.dispose();
  return out;
}

function checkAgainstGolden(r: Awaited<ReturnType<typeof runGolden>>, tol: number) {
  expectNear(r.mean, npy('vae_mean').data, tol, 'posterior mean');
  expectNear(r.logvar, npy('vae_logvar').data, tol, 'posterior logvar');
  expectNear(r.rec, npy('vae_rec').data, tol, 'reconstruction');
  expectNear(r.gradInput, npy('vae_grad_input').data, tol, 'input gradient');
  for (const [k, g] of r.paramGrads) {
    if (k.includes('temb_proj')) {
      expect(g, `${k} gets no gradient`).toBeNull();
      expect(paramGrads.has(k)).toBe(false);
      continue;
    }
    expect(g, `${k} gradient`).not.toBeNull();
    expectNear(g!, paramGrads.get(k)!.data, tol, `${k} gradient`);
  }
  expect([...r.paramGrads.values()].filter((g) => g).length).toBe(paramGrads.size);
}

describe('VAE3d', () => {
  it('tiny state dict: keys, order and shapes equal the torch oracle; loss.* checkpoint keys are ignored', () => {
    const vae = new VAE3d(ctx(cpu), VAE_CONFIGS.tiny);
    expect([...vae.stateDict()].map(([k, t]) => `${k}:${t.shape}`)).toEqual([...weights].map(([k, t]) => `${k}:${t.shape}`));
    const keys = [...vae.stateDict().keys()];
    for (const k of ['encoder_3d.down.0.downsample.conv.weight', 'encoder_3d.down.1.attn.0.proj_out.weight', 'encoder_3d.mid.attn_1.q.weight',
      'decoder.up.1.upsample.conv.weight', 'decoder.up.0.block.0.nin_shortcut.weight', 'decoder.up.1.attn.1.norm.weight', 'quant_conv.weight', 'post_quant_conv.bias']) {
      expect(keys).toContain(k);
    }
    expect(keys.some((k) => k.startsWith('decoder.up.0.upsample') || k.startsWith('encoder_3d.down.1.downsample'))).toBe(false);
    const checkpoint = new Map<string, HostTensor>(weights);
    checkpoint.set('loss.logvar', { shape: [], data: [0] });
    checkpoint.set('loss.discriminator.main.0.weight', { shape: [4, 1, 4, 4, 4], data: new Float32Array(256) });
    expect(isVaeLossKey('loss.perceptual_loss.lin0.model.1.weight')).toBe(true);
    const report = vae.loadCheckpoint(checkpoint);
    expect(report.loaded).toBe(weights.size);
    expect(() => vae.loadStateDict(checkpoint)).toThrow(/unexpected/);
    const incomplete = new Map(weights);
    incomplete.delete('decoder.conv_out.weight');
    expect(() => vae.loadCheckpoint(incomplete)).toThrow(/missing.*decoder\.conv_out\.weight/);
    // temb_proj is stored but frozen: it never receives a gradient in the reference.
    expect(vae.numParameters()).toBe(vae.numParameters(true) + vae.namedParameters().filter(([k]) => k.includes('temb_proj')).reduce((a, [, t]) => a + t.size, 0));
    vae.dispose();
  });

  it('golden parity on the float64 reference backend: posterior, reconstruction, input and parameter gradients', async () => {
    checkAgainstGolden(await runGolden(cpu), 1e-5);
  });

  it('golden parity on the GPU at fp32 tolerance', async () => {
    checkAgainstGolden(await runGolden(await gpuEngine()), 2e-4);
  });

  it('forward: sampled posterior is reproducible per seed on both backends; KL per sample; shapes', async () => {
    const gpu = await gpuEngine();
    const input = npy('vae_input');
    const results: Float64Array[] = [];
    for (const e of [gpu, cpu]) {
      const vae = tinyVae(e);
      const x = e.tensor(input.data, input.shape);
      expect(() => vae.forward(x)).toThrow(/generator/);
      const { reconstruction, posterior } = vae.forward(x, { gen: new Generator(5) });
      expect(reconstruction.shape).toEqual([1, 1, 4, 16, 16]);
      expect(posterior.mean.shape).toEqual([1, 4, 4, 8, 8]);
      const kl = posterior.kl();
      expect(kl.shape).toEqual([1]);
      const mu = await posterior.mean.dataF64();
      const lv = await posterior.logvar.dataF64();
      let expected = 0;
      for (let i = 0; i < mu.length; i++) expected += 0.5 * (mu[i] ** 2 + Math.exp(lv[i]) - 1 - lv[i]);
      expect((await kl.dataF64())[0]).toBeCloseTo(expected, 2);
      const std = await posterior.std.dataF64();
      std.forEach((s, i) => expect(s).toBeCloseTo(Math.exp(lv[i] / 2), 5));
      results.push(await reconstruction.dataF64());
      for (const t of [x, reconstruction, kl]) t.dispose();
      posterior.dispose();
      vae.dispose();
    }
    expectNear(results[0], results[1], 2e-4, 'sampled reconstruction GPU vs reference');
  });

  it('does not leak: a training-style step inside tidy() returns the pool to where it started', async () => {
    const gpu = await gpuEngine();
    const vae = tinyVae(gpu);
    const input = npy('vae_input');
    const x = gpu.tensor(input.data, input.shape);
    const step = () => {
      tidy(() => {
        const { reconstruction, posterior } = vae.forward(x, { gen: new Generator(1) });
        const kl = posterior.kl();
        posterior.dispose();
        backward(add(sum(reconstruction), mul(sum(kl), 1e-6)));
      });
      for (const p of vae.parameters()) {
        p.grad?.dispose();
        p.grad = null;
      }
    };
    step();
    await gpu.sync();
    const before = gpu.memory().liveBytes;
    step();
    await gpu.sync();
    expect(gpu.memory().liveBytes).toBe(before);
    x.dispose();
    vae.dispose();
  });

  it('paper config: 62,639,781 trainable parameters (+2,331,072 unused temb_proj), latent 4×50×12×12', () => {
    const vae = new VAE3d(ctx(cpu), VAE_CONFIGS.paper);
    expect(vae.numParameters(true)).toBe(62_639_781);
    expect(vae.numParameters()).toBe(64_970_853);
    expect(vae.encoder.numParameters(true)).toBe(24_542_664);
    expect(vae.decoder.numParameters(true)).toBe(38_097_025);
    expect(vae.spatialFactor).toBe(8);
    vae.dispose();
  });
});

