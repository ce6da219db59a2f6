import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine, Generator, backward, mul, noGrad, sum, tidy, type Tensor } from '../../src/index';
import { readNpy } from '../../src/data/npy';
import { extractStateDict, readPth } from '../../src/models/io';
import { ADALN_CHUNK_ORDER, DIT_CONFIGS, EcgDiT, countDitParameters, ditParameterShapes, type DitConfig } from '../../src/models/dit';
import { cpu, expectClose, gpuEngine, randomValues, releaseGpu } from '../helpers/oracle';

afterAll(releaseGpu);

const GOLDEN = join(__dirname, '..', 'fixtures', 'golden', 'dit');
const npy = (name: string) => readNpy(new Uint8Array(readFileSync(join(GOLDEN, name))));
const goldenWeights = () => extractStateDict(readPth(new Uint8Array(readFileSync(join(GOLDEN, 'weights.pth'))), { name: 'weights.pth' }));
const ctx = (e: Engine, seed = 7) => ({ backend: e.backend, gen: new Generator(seed) });
const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** fp32 agreement with tolerances scaled to the array's magnitude (errors accumulate over the blocks). */
function expectMatches(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rel = 1e-5): void {
  expectClose(actual, expected, rel * 5, rel * Math.max(maxAbs(expected), 1e-3), what);
}

/** Loads the golden weights and runs forward + backward of sum(v · upstream); checks everything. */
async function checkGolden(engine: Engine): Promise<void> {
  const model = new EcgDiT(ctx(engine), DIT_CONFIGS.tiny);
  const report = model.loadReferenceStateDict(goldenWeights());
  expect(report.missing).toEqual([]);
  const load = (name: string, grad = false) => {
    const a = npy(name);
    const t = engine.tensor(a.data, a.shape);
    t.requiresGrad = grad;
    return t;
  };
  const x = load('x.npy', true);
  const t = load('t.npy');
  const ecg = load('ecg.npy', true);
  const upstream = load('upstream.npy');
  const v = model.forward(x, t, ecg);
  expect(v.shape).toEqual(x.shape);
  backward(tidy(() => sum(mul(v, upstream))));
  expectMatches(await v.dataF64(), npy('velocity.npy').data, `${engine.kind} velocity`);
  expectMatches(await x.grad!.dataF64(), npy('grad_x.npy').data, `${engine.kind} dL/dx`, 2e-5);
  expectMatches(await ecg.grad!.dataF64(), npy('grad_ecg.npy').data, `${engine.kind} dL/d(ecg tokens)`, 2e-5);
  for (const [key, p] of model.namedParameters()) {
    expectMatches(await p.grad!.dataF64(), npy(`grads/${key}.npy`).data, `${engine.kind} dL/d${key}`, 2e-5);
  }
  const guided = noGrad(() => model.forwardWithGuidance(x, t, ecg, 2));
  expectMatches(await guided.dataF64(), npy('guided.npy').data, `${engine.kind} guided velocity`);
  for (const tensor of [x, t, ecg, upstream, v, guided]) tensor.dispose();
  model.dispose();
}

describe('EcgDiT', () => {
  it('paper config has the reference parameter count (from shapes, no allocation)', () => {
    const paper: DitConfig = DIT_CONFIGS.paper;
    expect(countDitParameters(paper)).toBe(72_757_252);
    const shapes = new Map(ditParameterShapes(paper));
    expect(size(shapes.get('pos_embed')!)).toBe(3_686_400);
    const block0 = ditParameterShapes(paper).filter(([k]) => k.startsWith('blocks.0.'));
    expect(block0.reduce((a, [, s]) => a + size(s), 0)).toBe(8_403_456);
    expect(shapes.get('blocks.7.adaLN_modulation.1.weight')).toEqual([6144, 512]);
    expect(shapes.get('blocks.0.attn_cross.in_proj_weight')).toEqual([1536, 512]);
    expect(shapes.get('ecg_proj.weight')).toEqual([512, 768]);
    expect(shapes.get('final_linear.weight')).toEqual([4, 512]);
    expect(shapes.has('blocks.8.mlp.0.weight')).toBe(false);
    // ecg_proj is an identity (no parameters) when the ECG width equals the hidden width.
    expect(countDitParameters({ ...paper, ecgDim: 512 })).toBe(72_757_252 - 768 * 512 - 512);
  });

  it('module state dict equals the shape table and the PyTorch file (keys, order, shapes)', () => {
    const model = new EcgDiT(ctx(cpu), DIT_CONFIGS.tiny);
    const own = [...model.stateDict()].map(([k, t]) => [k, [...t.shape]]);
    expect(own).toEqual(ditParameterShapes(DIT_CONFIGS.tiny));
    const file = [...goldenWeights()].map(([k, t]) => [k, [...t.shape]]);
    expect(own).toEqual(file);
    expect(model.numParameters()).toBe(countDitParameters(DIT_CONFIGS.tiny));
    expect(ADALN_CHUNK_ORDER).toEqual(['spatial', 'temporal', 'cross', 'mlp']);
    model.dispose();
  });

  it('initialisation: adaLN outputs zero, final_linear not zero, N(0, 0.02) tables; blocks start as identity', () => {
    const config = DIT_CONFIGS.tiny;
    const model = new EcgDiT(ctx(cpu, 3), config);
    const params = new Map(model.namedParameters());
    for (const key of ['blocks.0.adaLN_modulation.1.weight', 'blocks.1.adaLN_modulation.1.bias', 'final_adaLN_modulation.1.weight', 'final_adaLN_modulation.1.bias']) {
      expect(maxAbs(params.get(key)!.toFloat64Sync()), key).toBe(0);
    }
    expect(maxAbs(params.get('final_linear.weight')!.toFloat64Sync())).toBeGreaterThan(0.01);
    const pos = params.get('pos_embed')!.toFloat64Sync();
    const std = Math.sqrt(pos.reduce((a, v) => a + v * v, 0) / pos.length);
    expect(std).toBeGreaterThan(0.015);
    expect(std).toBeLessThan(0.025);
    expect(maxAbs(params.get('blocks.0.attn_temporal.in_proj_bias')!.toFloat64Sync())).toBe(0);
    // Zero gates: every block returns its input exactly.
    const [h, w] = config.latentSize;
    const d = config.hiddenSize;
    const tokens = cpu.tensor(randomValues(2 * config.numFrames * h * w * d, 4), [2, config.numFrames, h * w, d]);
    const c = cpu.tensor(randomValues(2 * d, 5), [2, d]);
    const ecg = cpu.tensor(randomValues(2 * 3 * d, 6), [2, 3, d]);
    const out = noGrad(() => model.blocks.items[0].forward(tokens, c, ecg));
    expect(Array.from(out.toFloat64Sync())).toEqual(Array.from(tokens.toFloat64Sync()));
    model.dispose();
  });

  it('rejects inputs of the wrong shape', () => {
    const model = new EcgDiT(ctx(cpu), DIT_CONFIGS.tiny);
    const x = cpu.tensor(new Float64Array(2 * 4 * 5 * 4 * 3), [2, 4, 5, 4, 3]);
    const t = cpu.tensor([0.1, 0.2], [2]);
    const ecg = cpu.tensor(new Float64Array(2 * 6 * 24), [2, 6, 24]);
    expect(() => model.forward(x, t, ecg)).toThrow(/x must be \[2, 4, 5, 3, 4\]/);
    model.dispose();
  });

  it('matches the PyTorch golden (forward, input and parameter gradients, CFG) on the float64 reference', async () => {
    await checkGolden(cpu);
  });

  it('matches the PyTorch golden on the GPU and frees its intermediates', async () => {
    const gpu = await gpuEngine();
    await checkGolden(gpu);
    // A second no-grad forward leaves no live tensors behind beyond the model itself.
    const model = new EcgDiT(ctx(gpu), DIT_CONFIGS.tiny);
    const x = gpu.tensor(randomValues(2 * 4 * 5 * 12, 8), [2, 4, 5, 3, 4]);
    const t = gpu.tensor([0.5, 0.25], [2]);
    const ecg = gpu.tensor(randomValues(2 * 6 * 24, 9), [2, 6, 24]);
    const before = gpu.memory().liveBytes;
    const v = noGrad(() => model.forwardWithGuidance(x, t, ecg, 2));
    await gpu.sync();
    v.dispose();
    expect(gpu.memory().liveBytes).toBe(before);
    for (const tensor of [x, t, ecg]) tensor.dispose();
    model.dispose();
  });
});
