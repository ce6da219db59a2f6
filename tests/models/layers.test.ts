import { afterAll, describe, expect, it } from 'vitest';
import { Engine, Generator, mul, sum, backward, tidy, type Tensor } from '../../src/index';
import { BatchNorm, Conv, GroupNorm, LayerNorm, Linear, MultiheadAttention, Sequential, conv3d } from '../../src/models/layers';
import type { Module } from '../../src/models/module';
import { cpu, expectClose, gpuEngine, randomValues, releaseGpu } from '../helpers/oracle';

afterAll(releaseGpu);

/** Host copy of a module's state dict (float64 values), to load the same weights on another backend. */
async function hostStateDict(m: Module) {
  const out = new Map<string, { shape: number[]; data: Float64Array }>();
  for (const [k, t] of m.stateDict()) out.set(k, { shape: [...t.shape], data: await t.dataF64() });
  return out;
}

/** Runs the same module (same weights) on the GPU and the float64 reference; compares output and grads. */
async function compareModule<M extends Module>(make: (e: Engine) => M, run: (m: M, x: Tensor, e: Engine) => Tensor, inputShape: number[], tol = { rtol: 1e-4, atol: 1e-4 }) {
  const gpu = await gpuEngine();
  const ref = make(cpu);
  const dev = make(gpu);
  dev.loadStateDict(await hostStateDict(ref));
  const values = randomValues(inputShape.reduce((a, b) => a * b, 1), 5);
  const results: { y: Float64Array; grads: Float64Array[]; gx: Float64Array }[] = [];
  for (const [e, m] of [[gpu, dev], [cpu, ref]] as const) {
    const x = e.tensor(values, inputShape);
    x.requiresGrad = true;
    const y = run(m, x, e);
    const w = e.tensor(randomValues(y.size, 9), y.shape);
    backward(tidy(() => sum(mul(y, w))));
    results.push({
      y: await y.dataF64(),
      gx: await x.grad!.dataF64(),
      grads: await Promise.all(m.parameters().map((p) => p.grad!.dataF64())),
    });
  }
  const [g, r] = results;
  expectClose(g.y, r.y, tol.rtol, tol.atol, 'output');
  expectClose(g.gx, r.gx, tol.rtol * 10, tol.atol * 10, 'input gradient');
  r.grads.forEach((rg, i) => expectClose(g.grads[i], rg, tol.rtol * 10, tol.atol * 10, `parameter ${dev.namedParameters()[i][0]} gradient`));
  dev.dispose();
  ref.dispose();
}

const ctx = (e: Engine, seed = 1) => ({ backend: e.backend, gen: new Generator(seed) });

describe('layers', () => {
  it('state-dict names, order and shapes follow PyTorch', () => {
    const bn = new BatchNorm(ctx(cpu), 8);
    expect([...bn.stateDict().keys()]).toEqual(['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
    bn.forward(cpu.tensor(randomValues(16), [2, 8])).dispose();
    bn.forward(cpu.tensor(randomValues(16), [2, 8])).dispose();
    expect(bn.numBatchesTracked.toFloat64Sync()[0]).toBe(2);
    bn.eval().forward(cpu.tensor(randomValues(16), [2, 8])).dispose();
    expect(bn.numBatchesTracked.toFloat64Sync()[0]).toBe(2);
    const seq = new Sequential(cpu.backend, new Linear(ctx(cpu), 4, 3), (x: Tensor) => x, new Linear(ctx(cpu), 3, 2, { bias: false }));
    expect([...seq.stateDict().entries()].map(([k, t]) => `${k}:${t.shape}`)).toEqual(['0.weight:3,4', '0.bias:3', '2.weight:2,3']);
    expect(seq.numParameters()).toBe(12 + 3 + 6);
    const mha = new MultiheadAttention(ctx(cpu), 16, 4);
    expect([...mha.stateDict().keys()]).toEqual(['in_proj_weight', 'in_proj_bias', 'out_proj.weight', 'out_proj.bias']);
    const ln = new LayerNorm(ctx(cpu), [16], 1e-6, false);
    expect(ln.numParameters()).toBe(0);
  });

  it('PyTorch default init bounds (kaiming-uniform a=√5 → U(±1/√fan_in))', async () => {
    const conv = conv3d(ctx(cpu), 4, 6, 3);
    const w = conv.weight.toFloat64Sync();
    const bound = 1 / Math.sqrt(4 * 27);
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...w.map(Math.abs))).toBeGreaterThan(bound * 0.9);
  });

  it('loadStateDict checks keys and shapes', () => {
    const lin = new Linear(ctx(cpu), 3, 2);
    expect(() => lin.loadStateDict({ weight: { shape: [2, 3], data: new Float64Array(6) } })).toThrow(/missing key.*bias/);
    expect(() => lin.loadStateDict({ weight: { shape: [3, 2], data: new Float64Array(6) }, bias: { shape: [2], data: [1, 2] } })).toThrow(/shape \[3, 2\] in the file, \[2, 3\]/);
    expect(() => lin.loadStateDict({ weight: { shape: [2, 3], data: new Float64Array(6) }, bias: { shape: [2], data: [1, 2] }, extra: { shape: [1], data: [0] } })).toThrow(/unexpected.*extra/);
    const report = lin.loadStateDict({ weight: { shape: [2, 3], data: [1, 2, 3, 4, 5, 6] }, bias: { shape: [2], data: [1, 2] }, extra: { shape: [1], data: [0] } }, { strict: false });
    expect(report).toEqual({ missing: [], unexpected: ['extra'], loaded: 2 });
    expect(Array.from(lin.weight.toFloat64Sync())).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('Linear, Conv, norms: GPU matches the float64 reference with gradients', async () => {
    await compareModule((e) => new Linear(ctx(e), 5, 3), (m, x) => m.forward(x), [2, 4, 5]);
    await compareModule((e) => new Conv(ctx(e), 2, 3, [3], { stride: 2, padding: 1 }), (m, x) => m.forward(x), [2, 2, 9]);
    await compareModule((e) => conv3d(ctx(e), 2, 2, [1, 3, 3], { stride: [1, 2, 2], padding: [0, 1, 1] }), (m, x) => m.forward(x), [1, 2, 3, 5, 5]);
    await compareModule((e) => new GroupNorm(ctx(e), 2, 4), (m, x) => m.forward(x), [2, 4, 3, 3]);
    await compareModule((e) => new LayerNorm(ctx(e), [6], 1e-6, false), (m, x) => m.forward(x), [3, 6]);
    await compareModule((e) => new BatchNorm(ctx(e), 3), (m, x) => m.forward(x), [4, 3, 5]);
  });

  it('MultiheadAttention (self and cross) matches the reference', async () => {
    await compareModule((e) => new MultiheadAttention(ctx(e), 8, 2), (m, x) => m.forward(x), [2, 5, 8]);
    const context = randomValues(3 * 8, 77);
    await compareModule(
      (e) => new MultiheadAttention(ctx(e), 8, 2),
      (m, x, e) => m.forward(x, e.tensor(context, [1, 3, 8])),
      [1, 4, 8],
    );
  });
});

