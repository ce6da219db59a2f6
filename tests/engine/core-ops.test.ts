import { afterAll, describe, expect, it } from 'vitest';
import * as ops from '../../src/index';
import type { Tensor } from '../../src/index';
import { compareWithReference, cpu, gpuEngine, gradCheck, randomValues, releaseGpu } from '../helpers/oracle';

afterAll(releaseGpu);

describe('reductions', () => {
  const cases: [string, (x: Tensor) => Tensor][] = [
    ['sum all', (x) => ops.sum(x)],
    ['sum axis 1 keepdim', (x) => ops.sum(x, 1, { keepdim: true })],
    ['sum axes 0,2', (x) => ops.sum(x, [0, 2])],
    ['mean axis -1', (x) => ops.mean(x, -1)],
    ['max axis 1', (x) => ops.max(x, 1)],
    ['min axes 0,1 keepdim', (x) => ops.min(x, [0, 1], { keepdim: true })],
    ['variance unbiased', (x) => ops.variance(x, [1, 2])],
    ['variance biased keepdim', (x) => ops.variance(x, 0, { unbiased: false, keepdim: true })],
    ['std unbiased', (x) => ops.std(x, 2)],
  ];
  for (const [name, fn] of cases) {
    it(`${name}: GPU vs reference and gradient check`, async () => {
      await compareWithReference(fn, [{ shape: [3, 5, 7] }]);
      await compareWithReference(fn, [{ shape: [3, 5, 7], permuted: [2, 0, 1] }]);
      await gradCheck(fn, [{ shape: [2, 3, 2] }]);
    });
  }
  it('long axes use the chunked path (many elements, few outputs)', async () => {
    await compareWithReference((x) => ops.sum(x, 1), [{ shape: [2, 20001] }], { rtol: 1e-4, atol: 1e-3 });
    await compareWithReference((x) => ops.max(x), [{ shape: [9001, 3] }]);
    await compareWithReference((x) => ops.mean(x, 0), [{ shape: [5000, 2] }], { atol: 1e-5 });
  });
  it('size-1 dims and a scalar result', async () => {
    await compareWithReference((x) => ops.sum(x, [0, 2]), [{ shape: [1, 4, 1] }]);
    await compareWithReference((x) => ops.mean(x), [{ shape: [1] }]);
  });
  it('ties in max share the gradient', async () => {
    await compareWithReference((x) => ops.max(x, 1), [{ shape: [2, 3], values: [1, 3, 3, 2, 2, 2] }]);
  });
  it('rejects repeated and out-of-range axes', async () => {
    const e = await gpuEngine();
    const x = e.tensor([1, 2, 3, 4], [2, 2]);
    expect(() => ops.sum(x, [1, 1])).toThrow(/repeated axis/);
    expect(() => ops.sum(x, 2)).toThrow(/out of range/);
    x.dispose();
  });
});

describe('views', () => {
  it('reshape, permute, transpose, slice, expand, squeeze, unsqueeze are differentiable', async () => {
    const chains: ((x: Tensor) => Tensor)[] = [
      (x) => ops.reshape(x, [6, -1]),
      (x) => ops.permute(x, [2, 0, 1]),
      (x) => ops.transpose(x, 0, 2),
      (x) => ops.slice(x, 1, 1, 3),
      (x) => ops.slice(x, 2, 0, 4, 2),
      (x) => ops.slice(x, -1, -2),
      (x) => ops.expand(ops.slice(x, 0, 0, 1), [5, 3, 4]),
      (x) => ops.unsqueeze(x, 1),
      (x) => ops.squeeze(ops.slice(x, 0, 1, 2), 0),
      (x) => ops.reshape(ops.permute(x, [1, 0, 2]), [3, 8]),
      (x) => ops.flatten(x, 1),
      (x) => ops.mul(ops.contiguous(ops.transpose(x, 0, 1)), 2),
    ];
    for (const fn of chains) {
      await compareWithReference((x) => ops.mul(fn(x), 1), [{ shape: [2, 3, 4] }]);
      await gradCheck((x) => ops.mul(fn(x), 1), [{ shape: [2, 3, 4] }]);
    }
  });
  it('views share storage; contiguous copies only when needed', async () => {
    const e = await gpuEngine();
    const x = e.tensor(randomValues(24), [2, 3, 4]);
    const t = ops.transpose(x, 0, 2);
    expect(t.storage).toBe(x.storage);
    expect(t.isContiguous).toBe(false);
    const c = ops.contiguous(t);
    expect(c.storage).not.toBe(x.storage);
    const r = ops.reshape(x, [4, 6]);
    expect(r.storage).toBe(x.storage);
    const s = ops.slice(x, 1, 1, 2);
    expect(s.offset).toBe(4);
    expect(Array.from(await s.data())).toEqual(Array.from(randomValues(24)).filter((_, i) => Math.floor(i / 4) % 3 === 1).map((v) => Math.fround(v)));
    for (const v of [x, t, c, r, s]) v.dispose();
  });
  it('split and chunk', async () => {
    await compareWithReference((x) => ops.concat(ops.split(x, [1, 3], 1).reverse(), 1), [{ shape: [2, 4, 3] }]);
    await compareWithReference((x) => ops.mul(ops.chunk(x, 2, 0)[1], 3), [{ shape: [5, 2] }]);
  });
});

describe('matmul', () => {
  const cases: [string, number[], number[], boolean?][] = [
    ['2-D square', [16, 16], [16, 16]],
    ['odd sizes', [17, 33], [33, 5]],
    ['batched', [3, 7, 9], [3, 9, 11]],
    ['broadcast batch', [2, 1, 7, 9], [3, 9, 4]],
    ['vector × matrix', [9], [9, 5]],
    ['matrix × vector', [6, 9], [9]],
    ['size 1', [1, 1], [1, 1]],
    ['transposed operands (strided views)', [9, 7], [11, 9], true],
    ['tall-skinny', [130, 3], [3, 70]],
  ];
  for (const [name, a, b, transposed] of cases) {
    it(name, async () => {
      const fn = transposed ? (x: Tensor, y: Tensor) => ops.matmul(ops.transpose(x), ops.transpose(y)) : ops.matmul;
      await compareWithReference(fn, [{ shape: a }, { shape: b }], { rtol: 1e-4, atol: 1e-4 });
    });
  }
  it('gradient check', async () => {
    await gradCheck(ops.matmul, [{ shape: [2, 3, 4] }, { shape: [4, 2] }]);
  });
  it('linear with and without bias', async () => {
    await compareWithReference((x, w, b) => ops.linear(x, w, b), [{ shape: [2, 5, 7] }, { shape: [3, 7] }, { shape: [3] }], { atol: 1e-4 });
    await compareWithReference((x, w) => ops.linear(x, w), [{ shape: [4, 7] }, { shape: [6, 7] }], { atol: 1e-4 });
    await gradCheck((x, w, b) => ops.linear(x, w, b), [{ shape: [2, 3] }, { shape: [2, 3] }, { shape: [2] }]);
  });
  it('larger than one tile in every direction', async () => {
    await compareWithReference(ops.matmul, [{ shape: [2, 70, 150] }, { shape: [150, 90] }], { rtol: 1e-4, atol: 1e-4, forwardOnly: true });
  });
  it('both kernel variants (shared-memory tiles and direct) agree with the reference', async () => {
    const variants = [
      { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 },
      { bm: 16, bn: 64, bk: 16, tm: 1, tn: 4 },
      { direct: true, workgroup: 64, bm: 0, bn: 0, bk: 0, tm: 4, tn: 8 },
    ];
    try {
      for (const t of variants) {
        ops.setMatmulTiling(t);
        await compareWithReference(ops.matmul, [{ shape: [2, 67, 33] }, { shape: [33, 71] }], { rtol: 1e-4, atol: 1e-4 });
        await compareWithReference((a, b, c) => ops.linear(a, b, c), [{ shape: [5, 9] }, { shape: [7, 9] }, { shape: [7] }], { atol: 1e-4 });
      }
    } finally {
      ops.setMatmulTiling(null);
    }
  });
  it('rejects mismatched inner sizes', async () => {
    const e = await gpuEngine();
    const a = e.tensor(randomValues(6), [2, 3]);
    const b = e.tensor(randomValues(8), [4, 2]);
    expect(() => ops.matmul(a, b)).toThrow(/inner sizes differ/);
    a.dispose();
    b.dispose();
  });
});

describe('softmax', () => {
  it('forward and backward over each axis, short and long rows', async () => {
    for (const axis of [0, 1, -1]) {
      await compareWithReference((x) => ops.softmax(x, axis), [{ shape: [3, 4, 5] }]);
      await compareWithReference((x) => ops.logSoftmax(x, axis), [{ shape: [3, 4, 5] }]);
    }
    await compareWithReference((x) => ops.softmax(x), [{ shape: [3, 300] }]);
    await compareWithReference((x) => ops.logSoftmax(x), [{ shape: [2, 1000] }]);
    await compareWithReference((x) => ops.softmax(x, 0), [{ shape: [6, 4], permuted: [1, 0] }]);
  });
  it('is stable for large logits', async () => {
    const big = Array.from({ length: 8 }, (_, i) => 1000 + i);
    await compareWithReference((x) => ops.softmax(x), [{ shape: [2, 4], values: big }]);
  });
  it('gradient check', async () => {
    await gradCheck((x) => ops.softmax(x, 1), [{ shape: [2, 3] }]);
    await gradCheck((x) => ops.logSoftmax(x, 0), [{ shape: [3, 2] }]);
  });
});

describe('layout ops', () => {
  it('concat and stack', async () => {
    await compareWithReference((a, b) => ops.concat([a, b], 1), [{ shape: [2, 3, 2] }, { shape: [2, 1, 2] }]);
    await compareWithReference((a, b) => ops.concat([a, b], 0), [{ shape: [2, 3], permuted: [1, 0] }, { shape: [1, 3] }]);
    await compareWithReference((a, b) => ops.stack([a, b], 1), [{ shape: [2, 3] }, { shape: [2, 3] }]);
    await gradCheck((a, b) => ops.concat([a, b], -1), [{ shape: [2, 2] }, { shape: [2, 1] }]);
  });
  it('pad (constant, crop with negative pads)', async () => {
    await compareWithReference((x) => ops.pad(x, [1, 2]), [{ shape: [2, 3] }]);
    await compareWithReference((x) => ops.pad(x, [0, 1, 2, 0], -1), [{ shape: [2, 3, 4] }]);
    await compareWithReference((x) => ops.pad(x, [-1, 2]), [{ shape: [3, 4] }]);
    await gradCheck((x) => ops.pad(x, [1, -1, 1, 0]), [{ shape: [3, 3] }]);
  });
  it('indexSelect with repeated indices', async () => {
    const idx = { shape: [5], values: [2, 0, 2, 1, 2], dtype: 'i32' as const, requiresGrad: false };
    await compareWithReference((x, i) => ops.indexSelect(x, 1, i), [{ shape: [2, 3, 4] }, idx]);
    await compareWithReference((x, i) => ops.indexSelect(x, 0, i), [{ shape: [3, 2], permuted: [1, 0] }, idx]);
    await gradCheck((x, i) => ops.indexSelect(x, 2, i), [{ shape: [2, 2, 3] }, idx]);
  });
  it('gather along a middle dim with repeated indices', async () => {
    const idx = { shape: [2, 4, 3], values: [0, 1, 2, 2, 2, 0, 1, 0, 1, 2, 2, 2, 0, 0, 0, 1, 1, 1, 2, 1, 0, 0, 2, 1], dtype: 'i32' as const, requiresGrad: false };
    await compareWithReference((x, i) => ops.gather(x, 1, i), [{ shape: [2, 3, 3] }, idx]);
    await compareWithReference((x, i) => ops.gather(x, 1, i), [{ shape: [2, 3, 3], permuted: [2, 0, 1] }, idx]);
    await gradCheck((x, i) => ops.gather(x, 1, i), [{ shape: [2, 3, 3] }, idx]);
  });
  it('an index outside [0, n) gives NaN forward and adds nowhere backward (GPU, f32 and f16, and reference)', async () => {
    const gpu = await gpuEngine();
    const x = [1, 2, 3, 4, 5, 6]; // [3, 2]
    const cases = [
      { name: 'indexSelect', op: (t: Tensor, i: Tensor) => ops.indexSelect(t, 0, i), index: [2, -1, 0, 3], shape: [4], forward: [5, 6, NaN, NaN, 1, 2, NaN, NaN] },
      { name: 'gather', op: (t: Tensor, i: Tensor) => ops.gather(t, 0, i), index: [2, 7, -3, 0], shape: [2, 2], forward: [5, NaN, NaN, 2] },
    ];
    for (const engine of [gpu, cpu]) {
      const dtypes = ops.supportsF16(engine.backend) ? (['f32', 'f16'] as const) : (['f32'] as const);
      for (const c of cases) {
        for (const dtype of dtypes) {
          const xt = ops.cast(engine.tensor(x, [3, 2]), dtype);
          const it = engine.tensor(c.index, c.shape, 'i32');
          const y = c.op(xt, it);
          const got = Array.from(await y.dataF64());
          expect(got.map((v) => (Number.isNaN(v) ? 'NaN' : v)), `${c.name} ${dtype} on ${engine.backend.kind}`).toEqual(c.forward.map((v) => (Number.isNaN(v) ? 'NaN' : v)));
          for (const t of [xt, it, y]) t.dispose();
        }
        // Backward: only the in-range entries receive their gradient.
        const xt = engine.tensor(x, [3, 2]);
        xt.requiresGrad = true;
        const it = engine.tensor(c.index, c.shape, 'i32');
        const y = c.op(xt, it);
        const g = engine.tensor(c.forward.map((_, k) => k + 1), y.shape);
        ops.backward(y, g);
        const expected = new Array(6).fill(0);
        c.forward.forEach((v, k) => {
          if (Number.isNaN(v)) return;
          expected[x.indexOf(v)] += k + 1;
        });
        expect(Array.from(await xt.grad!.dataF64()), `${c.name} backward on ${engine.backend.kind}`).toEqual(expected);
        for (const t of [xt, it, y, g]) t.dispose();
      }
    }
  });
});

describe('random', () => {
  it('is reproducible and matches the CPU twin bit for bit (uniform) and closely (normal)', async () => {
    const e = await gpuEngine();
    const g1 = new ops.Generator(42);
    const g2 = new ops.Generator(42);
    const gc = new ops.Generator(42);
    const a = ops.rand(e.backend, [1000], g1);
    const b = ops.rand(e.backend, [1000], g2);
    const c = ops.rand(cpu.backend, [1000], gc);
    const av = await a.data();
    expect(Array.from(av)).toEqual(Array.from(await b.data()));
    expect(Array.from(av)).toEqual(Array.from(c.toFloat64Sync()));
    const n1 = ops.randn(e.backend, [4000], g1);
    const n2 = ops.randn(cpu.backend, [4000], gc);
    const nv = await n1.data();
    const nr = n2.toFloat64Sync();
    for (let i = 0; i < nv.length; i++) expect(Math.abs(nv[i] - nr[i])).toBeLessThan(1e-4);
    for (const t of [a, b, c, n1, n2]) t.dispose();
  });
  it('has the right moments and advances its counter', async () => {
    const e = await gpuEngine();
    const g = new ops.Generator(7);
    const u = await ops.rand(e.backend, [20000], g).data();
    const n = await ops.randn(e.backend, [20000], g, 2, 3).data();
    const bern = await ops.bernoulli(e.backend, [20000], g, 0.3).data();
    const m = (v: ArrayLike<number>) => Array.from(v).reduce((s, x) => s + x, 0) / v.length;
    const sd = (v: ArrayLike<number>) => {
      const mu = m(v);
      return Math.sqrt(m(Array.from(v).map((x) => (x - mu) ** 2)));
    };
    expect(m(u)).toBeCloseTo(0.5, 1);
    expect(Math.min(...u)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...u)).toBeLessThan(1);
    expect(m(n)).toBeCloseTo(2, 1);
    expect(sd(n)).toBeCloseTo(3, 1);
    expect(m(bern)).toBeCloseTo(0.3, 1);
    expect(g.state().counter).toBe(20000 + 40000 + 20000);
    const first = await ops.rand(e.backend, [4], new ops.Generator(7)).data();
    const resumed = await ops.rand(e.backend, [4], ops.Generator.fromState({ seed: 7, counter: 0 })).data();
    expect(Array.from(first)).toEqual(Array.from(resumed));
  });
});
