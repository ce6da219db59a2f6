import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine, Generator, add, backward, mul, sum, tidy, type Tensor } from '../../src/index';
import { readNpy, toFloat32 } from '../../src/data/npy';
import { readPth, extractStateDict, extractEcgEncoderStateDict, type StateDict } from '../../src/models/io';
import type { HostTensor } from '../../src/models/module';
import {
  EcgDecoder, EcgEncoder, PAMAE_CONFIGS, PaMae, alignTokens, alignedAngleFromHost, countParameters, cycleWindowsFromHost,
  decoderParameterShapes, encoderParameterShapes, encoderSteps,
} from '../../src/models/pamae';
import { resizeLinear1d, type CycleWindow } from '../../src/data/ecg-phase';
import { cpu, gpuEngine, releaseGpu } from '../helpers/oracle';

afterAll(releaseGpu);

const golden = new URL('../fixtures/golden/pamae/', import.meta.url);
function npy(name: string): { data: Float32Array; shape: number[] } {
  const a = readNpy(new Uint8Array(readFileSync(new URL(name, golden))), name);
  return { data: toFloat32(a.data), shape: [...a.shape] };
}
const pth = readPth(new Uint8Array(readFileSync(new URL('weights.pth', golden))), { name: 'weights.pth' });
/** Module.loadStateDict wants plain numbers (num_batches_tracked is int64 in the file). */
function loadable(sd: StateDict): Map<string, HostTensor> {
  return new Map([...sd].map(([k, t]) => [k, { shape: t.shape, data: t.toFloat32() }]));
}
const weights = loadable(extractStateDict(pth));
const ctx = (e: Engine, seed = 1) => ({ backend: e.backend, gen: new Generator(seed) });

/** max |a - b| relative to the largest reference magnitude: fp32 parity over a deep net. */
function expectNear(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string, minScale = 0) {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let scale = minScale;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst / (scale || 1), `${what}: max error ${worst.toExponential(2)} vs scale ${scale.toExponential(2)}`).toBeLessThan(tol);
}

const windowsOf = (name: string): CycleWindow[] => {
  const w = npy(name).data;
  return [0, 1].map((i) => ({ start: w[2 * i], end: w[2 * i + 1], wraps: [], rule: 'middle-pair' as const }));
};

/** One golden step: train or eval forward with the saved keep-mask, loss + Σ tokens·w, backward. */
async function goldenRun(e: Engine, mode: 'train' | 'eval', tol: number) {
  const model = new PaMae(ctx(e), PAMAE_CONFIGS.tiny);
  expect(model.loadStateDict(weights).loaded).toBe(weights.size);
  model.train(mode === 'train');
  const input = npy('ecg.npy');
  const ecg = e.tensor(input.data, input.shape);
  ecg.requiresGrad = true;
  const t = npy('phase_target.npy');
  const k = npy('keep_mask.npy');
  const w = npy('token_weight.npy');
  const target = e.tensor(t.data, t.shape);
  const keepMask = e.tensor(k.data, k.shape);
  const tokenWeight = e.tensor(w.data, w.shape);
  const out = model.loss(ecg, target, { mask: keepMask });
  const tokens = alignTokens(out.features, windowsOf('token_windows.npy'), 50);
  backward(tidy(() => add(out.loss, sum(mul(tokens, tokenWeight)))));

  const p = `${mode}_`;
  expectNear(await out.features.dataF64(), npy(`${p}features.npy`).data, tol, `${mode} features`);
  expectNear(await out.predictedPhase.dataF64(), npy(`${p}phase.npy`).data, tol, `${mode} phase`);
  expectNear(await out.reconstruction.dataF64(), npy(`${p}recon.npy`).data, tol, `${mode} reconstruction`);
  expectNear(await tokens.dataF64(), npy(`${p}tokens.npy`).data, tol, `${mode} tokens`);
  const losses = [await out.loss.item(), await out.recon.item(), await out.phase.item()];
  expectNear(losses, npy(`${p}losses.npy`).data, tol, `${mode} losses`);
  expectNear(await ecg.grad!.dataF64(), npy(`${p}grad_ecg.npy`).data, tol * 5, `${mode} ECG gradient`);
  const expectedGrads = npy(`${p}grad_params.npy`).data;
  // Biases of convs followed by train-mode BN have zero true gradients (fp32 noise only): judge them
  // against the overall gradient scale.
  const gradFloor = 1e-3 * expectedGrads.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  let offset = 0;
  for (const [name, param] of model.namedParameters()) {
    const g = await param.grad!.dataF64();
    expectNear(g, expectedGrads.subarray(offset, offset + g.length), tol * 10, `${mode} gradient of ${name}`, gradFloor);
    offset += g.length;
  }
  expect(offset).toBe(expectedGrads.length);
  if (mode === 'train') {
    const stats: number[] = [];
    for (const [name, b] of model.namedBuffers()) if (!name.endsWith('num_batches_tracked')) stats.push(...(await b.dataF64()));
    expectNear(stats, npy('train_running_stats.npy').data, tol, 'running statistics after one train forward');
  }
  for (const x of [ecg, target, keepMask, tokenWeight, tokens, out.loss, out.recon, out.phase, out.reconstruction, out.predictedPhase, out.features]) x.dispose();
  model.dispose();
}

describe('PA-MAE', () => {
  it('paper config: parameter counts of spec §3.7, shapes and key layout', () => {
    const { encoder, decoder } = PAMAE_CONFIGS.paper;
    expect(countParameters(encoderParameterShapes(encoder))).toBe(4_374_658);
    expect(countParameters(decoderParameterShapes(decoder))).toBe(916_556);
    expect(encoderSteps(encoder, 5000)).toBe(625);
    // Counted from constructed modules too (float64 on the reference backend, ~40 MB).
    const enc = new EcgEncoder(ctx(cpu), encoder);
    const dec = new EcgDecoder(ctx(cpu), decoder);
    expect(enc.numParameters()).toBe(4_374_658);
    expect(dec.numParameters()).toBe(916_556);
    const shapesOf = (m: EcgEncoder | EcgDecoder) => m.namedParameters().map(([n, t]) => [n, [...t.shape]]);
    expect(shapesOf(enc)).toEqual(encoderParameterShapes(encoder));
    expect(shapesOf(dec)).toEqual(decoderParameterShapes(decoder));
    const keys = [...enc.stateDict().keys()];
    expect(keys.slice(0, 6)).toEqual(['stem.0.weight', 'stem.1.weight', 'stem.1.bias', 'stem.1.running_mean', 'stem.1.running_var', 'stem.1.num_batches_tracked']);
    expect(keys).toContain('layer2.0.downsample.0.weight');
    expect(keys).not.toContain('layer1.0.downsample.0.weight');
    expect(keys.slice(-6)).toEqual(['feature_proj.weight', 'feature_proj.bias', 'phase_head.0.weight', 'phase_head.0.bias', 'phase_head.2.weight', 'phase_head.2.bias']);
    expect([...dec.stateDict().keys()].filter((k) => k.endsWith('weight'))).toEqual(['proj.weight', 'up1.1.weight', 'up1.2.weight', 'up2.1.weight', 'up2.2.weight', 'up3.1.weight', 'up3.2.weight', 'final_conv.weight']);
    enc.dispose();
    dec.dispose();
    const small = PAMAE_CONFIGS.small;
    expect(countParameters(encoderParameterShapes(small.encoder)) + countParameters(decoderParameterShapes(small.decoder))).toBeLessThan(1_500_000);
  });

  it('loads the golden checkpoint strictly: same keys, order and shapes; encoder alone via prefix stripping', () => {
    const model = new PaMae(ctx(cpu), PAMAE_CONFIGS.tiny);
    expect([...model.stateDict()].map(([k, t]) => `${k}:${t.shape}`)).toEqual([...weights].map(([k, t]) => `${k}:${t.shape}`));
    model.dispose();
    const encoder = new EcgEncoder(ctx(cpu), PAMAE_CONFIGS.tiny.encoder);
    const encoderWeights = loadable(extractEcgEncoderStateDict(pth));
    expect(encoder.loadStateDict(encoderWeights)).toEqual({ missing: [], unexpected: [], loaded: encoderWeights.size });
    encoder.dispose();
  });

  it('golden parity on the float64 reference backend (train and eval)', async () => {
    await goldenRun(cpu, 'train', 1e-4);
    await goldenRun(cpu, 'eval', 1e-4);
  });

  it('golden parity on the GPU (train and eval)', async () => {
    const gpu = await gpuEngine();
    await goldenRun(gpu, 'train', 2e-4);
    await goldenRun(gpu, 'eval', 2e-4);
  });

  it('default mode: cycle windows from the predicted phase, tokens [B, 50, C], angle [B, 50]', async () => {
    const gpu = await gpuEngine();
    const encoder = new EcgEncoder(ctx(gpu), PAMAE_CONFIGS.tiny.encoder);
    encoder.loadStateDict(loadable(extractEcgEncoderStateDict(pth)));
    encoder.eval();
    const input = npy('ecg.npy');
    const ecg = gpu.tensor(input.data, input.shape);
    const before = gpu.memory().liveBytes;
    const out = await encoder.forward(ecg, { cycle: 'faithful' });
    // The golden train-mode phase gives the torch rule's windows; eval mode may differ, so recompute from the eval phase.
    const expectedWindows = cycleWindowsFromHost(npy('eval_phase.npy').data, [2, 2, 50], 'faithful');
    expect(out.windows.map((w) => [w.start, w.end])).toEqual(expectedWindows.map((w) => [w.start, w.end]));
    expect(out.tokens.shape).toEqual([2, 50, 32]);
    expect(out.angle.shape).toEqual([2, 50]);
    const evalFeatures = npy('eval_features.npy');
    const reference = tidy(() => alignTokens(cpu.tensor(evalFeatures.data, evalFeatures.shape), out.windows, 50));
    expectNear(await out.tokens.dataF64(), reference.toFloat64Sync(), 2e-4, 'tokens from the selected windows');
    expectNear(await out.angle.dataF64(), alignedAngleFromHost(npy('eval_phase.npy').data, [2, 2, 50], out.windows, 50), 1e-3, 'angle');
    out.tokens.dispose();
    out.angle.dispose();
    expect(gpu.memory().liveBytes).toBe(before);
    ecg.dispose();
    encoder.dispose();
  });

  it('cycle selection on a synthetic phase picks the middle cycle (faithful: mid R-R; fixed: R to R) and aligns per sample', () => {
    const steps = 50;
    const period = 12;
    const phase = new Float32Array(2 * 2 * steps);
    for (let b = 0; b < 2; b++) {
      for (let i = 0; i < steps; i++) {
        const phi = (2 * Math.PI * ((i + 3 * b) % period)) / period;
        phase[b * 2 * steps + i] = Math.sin(phi);
        phase[b * 2 * steps + steps + i] = Math.cos(phi);
      }
    }
    const faithful = cycleWindowsFromHost(phase, [2, 2, steps], 'faithful');
    const fixed = cycleWindowsFromHost(phase, [2, 2, steps], 'fixed');
    for (const w of [...faithful, ...fixed]) {
      expect(w.rule).toBe('middle-pair');
      expect(w.end - w.start).toBe(period);
    }
    // Sample 0: R peaks (φ = 0) at multiples of 12; the faithful window starts just past φ = π.
    expect(fixed[0].start % period).toBe(0);
    expect(faithful[0].start % period).toBe(7);
    const features = cpu.tensor(Array.from({ length: 2 * 3 * steps }, (_, i) => Math.sin(i * 0.37)), [2, 3, steps]);
    const tokens = alignTokens(features, [faithful[0], fixed[1]], 50);
    const host = features.toFloat64Sync();
    const tokenHost = tokens.toFloat64Sync();
    [faithful[0], fixed[1]].forEach((w, b) => {
      const expected = resizeLinear1d(host.subarray(b * 3 * steps, (b + 1) * 3 * steps), 3, steps, w.start, w.end, 50);
      for (let c = 0; c < 3; c++) for (let t = 0; t < 50; t++) expect(tokenHost[(b * 50 + t) * 3 + c]).toBeCloseTo(expected[c * 50 + t], 6);
    });
  });

  it('a training step with a drawn mask frees every temporary (GPU)', async () => {
    const gpu = await gpuEngine();
    const model = new PaMae(ctx(gpu), PAMAE_CONFIGS.tiny);
    const input = npy('ecg.npy');
    const t = npy('phase_target.npy');
    const ecg = gpu.tensor(input.data, input.shape);
    const target = gpu.tensor(t.data, t.shape);
    const gen = new Generator(3);
    const step = async () => {
      const parts = tidy(() => {
        const out = model.loss(ecg, target, { gen });
        backward(out.loss);
        return [out.loss, out.recon, out.phase];
      });
      const values = await Promise.all(parts.map((x) => x.item()));
      parts.forEach((x) => x.dispose());
      return values;
    };
    const first = await step();
    expect(first[0]).toBeCloseTo(100 * first[1] + 10 * first[2], 3);
    const live = gpu.memory().liveBytes;
    await step();
    // Parameter gradients accumulate in place; nothing else may survive the step.
    expect(gpu.memory().liveBytes).toBe(live);
    ecg.dispose();
    target.dispose();
    model.dispose();
  });

  it('mask: one U(0,1) > ρ draw per (sample, position), shared by all channels', () => {
    const model = new PaMae(ctx(cpu), PAMAE_CONFIGS.tiny);
    const features = cpu.tensor(new Float64Array(2 * 4 * 2000).fill(1), [2, 4, 2000]);
    const masked = model.mask(features, 0.5, new Generator(7)).toFloat64Sync();
    const keep = model.drawMask(features, 0.5, new Generator(7));
    expect(keep.shape).toEqual([2, 1, 2000]);
    const k = keep.toFloat64Sync();
    let kept = 0;
    for (let b = 0; b < 2; b++) {
      for (let c = 0; c < 4; c++) for (let i = 0; i < 2000; i++) expect(masked[(b * 4 + c) * 2000 + i]).toBe(k[b * 2000 + i]);
      for (let i = 0; i < 2000; i++) kept += k[b * 2000 + i];
    }
    expect(new Set(k)).toEqual(new Set([0, 1]));
    expect(kept / 4000).toBeGreaterThan(0.46);
    expect(kept / 4000).toBeLessThan(0.54);
    expect(() => model.loss(features, features)).toThrow(/mask or a generator/);
    model.dispose();
  });
});
