import { afterAll, describe, expect, it } from 'vitest';
import { backward } from '../../src/engine/autograd';
import { dropout } from '../../src/kernels/dropout';
import { sum } from '../../src/kernels/reduce';
import { Generator } from '../../src/kernels/random';
import { compareWithReference, cpu, gpuEngine, gradCheck, releaseGpu } from '../helpers/oracle';

afterAll(releaseGpu);

describe('dropout', () => {
  it('GPU matches the float64 reference for the same seed (forward and backward), odd and strided shapes', async () => {
    await compareWithReference((x) => dropout(x, 0.3, new Generator(7)), [{ shape: [3, 5, 7] }]);
    await compareWithReference((x) => dropout(x, 0.5, new Generator(8)), [{ shape: [4, 3, 5], permuted: [2, 0, 1] }]);
    await compareWithReference((x) => dropout(x, 0.2, new Generator(9)), [{ shape: [1] }]);
  });

  it('gradCheck with a fixed mask', async () => {
    await gradCheck((x) => dropout(x, 0.4, new Generator(3)), [{ shape: [3, 4] }]);
  });

  it('same seed gives the same mask, another seed another; draws advance the generator', async () => {
    const gpu = await gpuEngine();
    const x = gpu.tensor(new Float32Array(256).fill(1), [256]);
    const g1 = new Generator(42);
    const draw = async (gen: Generator) => {
      const y = dropout(x, 0.5, gen);
      const v = Array.from(await y.data());
      y.dispose();
      return v;
    };
    const a = await draw(g1);
    const b = await draw(new Generator(42));
    const c = await draw(new Generator(43));
    const d = await draw(g1);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a).not.toEqual(d);
    x.dispose();
  });

  it('preserves the mean and drops about a fraction p', async () => {
    const gpu = await gpuEngine();
    const n = 40000;
    const x = gpu.tensor(new Float32Array(n).fill(1), [n]);
    const out = dropout(x, 0.3, new Generator(1));
    const y = Array.from(await out.data());
    out.dispose();
    const mean = y.reduce((s, v) => s + v, 0) / n;
    const dropped = y.filter((v) => v === 0).length / n;
    expect(Math.abs(mean - 1)).toBeLessThan(0.02);
    expect(Math.abs(dropped - 0.3)).toBeLessThan(0.01);
    expect(new Set(y)).toEqual(new Set([0, Math.fround(1 / 0.7)]));
    x.dispose();
  });

  it('backward reuses the forward mask', async () => {
    for (const e of [cpu, await gpuEngine()]) {
      const x = e.tensor(new Float32Array(500).fill(1), [500]);
      x.requiresGrad = true;
      const y = dropout(x, 0.6, new Generator(5));
      const loss = sum(y);
      backward(loss);
      // x = 1 and dL/dy = 1: both the output and the gradient are exactly the scaled mask.
      expect(Array.from(await x.grad!.data())).toEqual(Array.from(await y.data()));
      for (const t of [x, y, loss]) t.dispose();
    }
  });

  it('eval mode and p = 0 are the identity; p = 1 drops everything; bad p throws', async () => {
    const gpu = await gpuEngine();
    const x = gpu.tensor([1, -2, 3], [3]);
    x.requiresGrad = true;
    const gen = new Generator(1);
    const evalOut = dropout(x, 0.5, gen, false);
    expect(Array.from(await evalOut.data())).toEqual([1, -2, 3]);
    evalOut.dispose();
    const identity = dropout(x, 0, gen);
    expect(Array.from(await identity.data())).toEqual([1, -2, 3]);
    const l0 = sum(identity);
    backward(l0);
    expect(Array.from(await x.grad!.data())).toEqual([1, 1, 1]);
    x.grad!.dispose();
    x.grad = null;
    const zero = dropout(x, 1, gen);
    expect(Array.from(await zero.data())).toEqual([0, 0, 0]);
    const l1 = sum(zero);
    backward(l1);
    expect(Array.from(await x.grad!.data())).toEqual([0, 0, 0]);
    expect(() => dropout(x, 1.5, gen)).toThrow(RangeError);
    expect(gen.state().counter).toBe(0);
    for (const t of [x, identity, l0, zero, l1]) t.dispose();
  });
});
