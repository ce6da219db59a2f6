import { afterAll, describe, expect, it } from 'vitest';
import { fromArray } from '../../src/engine/create';
import type { Tensor } from '../../src/engine/tensor';
import { batchNorm, groupNorm, l2NormalizeChannels, layerNorm } from '../../src/kernels/norm';
import { compareWithReference, cpu, expectClose, gpuEngine, gradCheck, randomValues, releaseGpu, expectNoLeak } from '../helpers/oracle';

afterAll(releaseGpu);

const offsetValues = (n: number, seed: number, center: number) => Array.from(randomValues(n, seed), (v) => center + v);

/** BatchNorm with fresh running buffers on the input's backend (their values are checked separately). */
const bn = (training: boolean) => (x: Tensor, w?: Tensor, b?: Tensor) => {
  const c = x.shape[1];
  const rm = fromArray(x.backend, Array.from({ length: c }, (_, i) => 0.1 * i), [c]);
  const rv = fromArray(x.backend, Array.from({ length: c }, (_, i) => 0.5 + 0.25 * i), [c]);
  const y = batchNorm(x, rm, rv, w ?? null, b ?? null, { training });
  rm.dispose();
  rv.dispose();
  return y;
};

describe('groupNorm', () => {
  const gn = (groups: number) => (x: Tensor, w?: Tensor, b?: Tensor) => groupNorm(x, groups, w ?? null, b ?? null, 1e-6);
  it('GPU matches float64 with affine (odd spatial dims, 3-D)', async () => {
    await compareWithReference(gn(2), [{ shape: [2, 6, 3, 5, 3] }, { shape: [6] }, { shape: [6] }], { rtol: 1e-3, atol: 1e-4 });
  });
  it('without affine, one group per channel, size-1 spatial', async () => {
    await compareWithReference(gn(3), [{ shape: [3, 3, 1] }], { rtol: 1e-3, atol: 1e-4 });
  });
  it('non-contiguous input', async () => {
    await compareWithReference(gn(2), [{ shape: [2, 4, 5], permuted: [2, 0, 1] }, { shape: [4] }, { shape: [4] }], { rtol: 1e-3, atol: 1e-4 });
  });
  it('large group offset by a big mean is numerically sound (chunked Chan merge)', async () => {
    const shape = [1, 4, 48, 48];
    await compareWithReference(gn(2), [{ shape, values: offsetValues(4 * 48 * 48, 5, 100) }, { shape: [4] }, { shape: [4] }], { rtol: 2e-3, atol: 2e-4 });
  });
  it('VAE-sized group (921,600 elements around 100) stays accurate in f32', async () => {
    const shape = [1, 2, 50, 96, 96];
    await compareWithReference(gn(1), [{ shape, values: offsetValues(2 * 50 * 96 * 96, 13, 100) }], { rtol: 1e-3, atol: 5e-4, forwardOnly: true });
  });
  it('gradient check', async () => {
    await gradCheck(gn(2), [{ shape: [2, 4, 3] }, { shape: [4] }, { shape: [4] }], { tol: 1e-5 });
  });
});

describe('layerNorm', () => {
  const ln = (shape: number[]) => (x: Tensor, w?: Tensor, b?: Tensor) => layerNorm(x, shape, w ?? null, b ?? null, 1e-6);
  it('no affine (DiT), odd width', async () => {
    await compareWithReference(ln([7]), [{ shape: [3, 5, 7] }], { rtol: 1e-3, atol: 1e-4 });
  });
  it('affine over two trailing dims, non-contiguous input', async () => {
    await compareWithReference(ln([3, 4]), [{ shape: [5, 3, 4], permuted: [1, 2, 0] }, { shape: [3, 4] }, { shape: [3, 4] }], { rtol: 1e-3, atol: 1e-4 });
  });
  it('long rows offset by a big mean', async () => {
    await compareWithReference(ln([5000]), [{ shape: [2, 5000], values: offsetValues(10000, 9, 100) }, { shape: [5000] }], { rtol: 2e-3, atol: 2e-4 });
  });
  it('gradient check (with and without affine)', async () => {
    await gradCheck(ln([4]), [{ shape: [3, 4] }, { shape: [4] }, { shape: [4] }], { tol: 1e-5 });
    await gradCheck(ln([2, 3]), [{ shape: [2, 2, 3] }], { tol: 1e-5 });
  });
  it('rejects a shape that does not end the input', () => {
    expect(() => layerNorm(cpu.tensor([1, 2, 3, 4], [2, 2]), [3])).toThrow(/normalized shape/);
  });
});

describe('batchNorm', () => {
  it('training: GPU matches float64 (1-D and 3-D, odd sizes)', async () => {
    await compareWithReference(bn(true), [{ shape: [3, 5, 7] }, { shape: [5] }, { shape: [5] }], { rtol: 1e-3, atol: 1e-4 });
    await compareWithReference(bn(true), [{ shape: [2, 3, 2, 3, 3] }, { shape: [3] }, { shape: [3] }], { rtol: 1e-3, atol: 1e-4 });
  });
  it('training: non-contiguous, no affine, large offset', async () => {
    await compareWithReference(bn(true), [{ shape: [4, 3, 5], permuted: [2, 1, 0] }], { rtol: 1e-3, atol: 1e-4 });
    await compareWithReference(bn(true), [{ shape: [8, 2, 1250], values: offsetValues(20000, 3, 100) }, { shape: [2] }, { shape: [2] }], { rtol: 2e-3, atol: 2e-4 });
  });
  it('eval: running statistics are constants', async () => {
    await compareWithReference(bn(false), [{ shape: [3, 4, 5] }, { shape: [4] }, { shape: [4] }], { rtol: 1e-3, atol: 1e-4 });
    await compareWithReference(bn(false), [{ shape: [1, 2, 1] }]);
  });
  it('gradient check (training and eval)', async () => {
    await gradCheck(bn(true), [{ shape: [3, 2, 2] }, { shape: [2] }, { shape: [2] }], { tol: 1e-5 });
    await gradCheck(bn(false), [{ shape: [2, 3, 2] }, { shape: [3] }, { shape: [3] }], { tol: 1e-5 });
  });
  it('updates running statistics in place with the unbiased variance (GPU and reference)', async () => {
    const gpu = await gpuEngine();
    const x = [1, 2, 4, 7, -1, 0, 3, 3, 5, 2, 2, 6]; // [2, 2, 3]
    // Channel 0: {1,2,4,3,3,5}; channel 1: {7,-1,0,2,2,6}.
    const moments = [[1, 2, 4, 3, 3, 5], [7, -1, 0, 2, 2, 6]].map((v) => {
      const m = v.reduce((a, b) => a + b, 0) / v.length;
      return { m, unbiased: v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1) };
    });
    const expectedMean = moments.map((s, c) => 0.8 * [0.5, -1][c] + 0.2 * s.m);
    const expectedVar = moments.map((s, c) => 0.8 * [2, 0.5][c] + 0.2 * s.unbiased);
    for (const engine of [gpu, cpu]) {
      const xt = engine.tensor(x, [2, 2, 3]);
      // Running buffers as strided views into a bigger tensor (stride 2, offset 1).
      const store = engine.tensor([9, 0.5, 9, -1, 9, 2, 9, 0.5], [8]);
      const { slice } = await import('../../src/kernels/views');
      const rm = slice(store, 0, 1, 4, 2);
      const rv = slice(store, 0, 5, 8, 2);
      const y = batchNorm(xt, rm, rv, null, null, { training: true, momentum: 0.2 });
      expectClose(await rm.dataF64(), expectedMean, 1e-5, 1e-6, `${engine === cpu ? 'cpu' : 'gpu'} running mean`);
      expectClose(await rv.dataF64(), expectedVar, 1e-5, 1e-6, `${engine === cpu ? 'cpu' : 'gpu'} running var`);
      expectClose((await store.dataF64()).filter((_, i) => i % 2 === 0), [9, 9, 9, 9], 0, 0, 'untouched neighbours');
      for (const t of [xt, store, rm, rv, y]) t.dispose();
    }
  });

  it('a non-finite batch leaves the running statistics of its channels as they were (GPU and reference)', async () => {
    const gpu = await gpuEngine();
    // [2, 3, 2]: channel 0 finite, channel 1 holds a NaN, channel 2 an Inf.
    const x = [1, 2, NaN, 4, 5, Infinity, 3, 3, 5, 2, 2, 6];
    const finite = [1, 2, 3, 3];
    const m = finite.reduce((a, b) => a + b, 0) / 4;
    const unbiased = finite.reduce((a, b) => a + (b - m) ** 2, 0) / 3;
    for (const engine of [gpu, cpu]) {
      const xt = engine.tensor(x, [2, 3, 2]);
      const rm = engine.tensor([0.5, -1, 2], [3]);
      const rv = engine.tensor([2, 0.5, 3], [3]);
      const y = batchNorm(xt, rm, rv, null, null, { training: true, momentum: 0.2 });
      const name = engine === cpu ? 'cpu' : 'gpu';
      expectClose(await rm.dataF64(), [0.8 * 0.5 + 0.2 * m, -1, 2], 1e-5, 1e-6, `${name} running mean`);
      expectClose(await rv.dataF64(), [0.8 * 2 + 0.2 * unbiased, 0.5, 3], 1e-5, 1e-6, `${name} running var`);
      for (const t of [xt, rm, rv, y]) t.dispose();
    }
  });
});

describe('l2NormalizeChannels', () => {
  it('GPU matches float64 (odd shapes, non-contiguous, size-1 channel)', async () => {
    await compareWithReference((x) => l2NormalizeChannels(x), [{ shape: [2, 5, 3, 3] }]);
    await compareWithReference((x) => l2NormalizeChannels(x), [{ shape: [2, 3, 4], permuted: [2, 1, 0] }]);
    await compareWithReference((x) => l2NormalizeChannels(x), [{ shape: [3, 1, 2] }]);
  });
  it('gradient check', async () => {
    await gradCheck((x) => l2NormalizeChannels(x), [{ shape: [2, 3, 2] }]);
  });
});

describe('many short groups (one invocation per group)', () => {
  it('layerNorm, batchNorm and groupNorm with ≥ 512 groups', async () => {
    await compareWithReference((x, w, b) => layerNorm(x, [6], w, b), [{ shape: [4, 130, 6] }, { shape: [6] }, { shape: [6] }], { rtol: 1e-3, atol: 1e-4 });
    await compareWithReference(bn(true), [{ shape: [3, 520, 2] }, { shape: [520] }, { shape: [520] }], { rtol: 1e-3, atol: 1e-4 });
    await compareWithReference((x, w) => groupNorm(x, 256, w, null), [{ shape: [2, 512, 3] }, { shape: [512] }], { rtol: 1e-3, atol: 1e-4 });
  });
});

describe('memory', () => {
  it('forward + backward of every norm frees all temporaries (GPU)', async () => {
    const gpu = await gpuEngine();
    const { grad } = await import('../../src/engine/autograd');
    const run = () => {
      const x = gpu.tensor(randomValues(2 * 4 * 6, 11), [2, 4, 6]);
      x.requiresGrad = true;
      const w = gpu.tensor([1, 2, 3, 4], [4]);
      const b = gpu.tensor([0, 1, 0, 1], [4]);
      w.requiresGrad = true;
      b.requiresGrad = true;
      const rm = gpu.tensor([0, 0, 0, 0], [4]);
      const rv = gpu.tensor([1, 1, 1, 1], [4]);
      const outs = [groupNorm(x, 2, w, b), batchNorm(x, rm, rv, w, b, { training: true }), batchNorm(x, rm, rv, w, b, { training: false }), l2NormalizeChannels(x)];
      const lw = gpu.tensor(randomValues(6, 2), [6]);
      outs.push(layerNorm(x, [6], lw, null));
      lw.requiresGrad = true;
      for (const y of outs) {
        const gy = gpu.tensor(randomValues(y.size, 3), y.shape);
        for (const g of grad([y], [x], { gradOutputs: [gy] })) g?.dispose();
        gy.dispose();
        y.dispose();
      }
      for (const t of [x, w, b, rm, rv, lw]) t.dispose();
    };
    await expectNoLeak(run);
  });
});
