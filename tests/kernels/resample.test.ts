import { afterAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../src/engine/tensor';
import { interpolateLinear1d, resizeBilinear2d, upsampleNearest } from '../../src/kernels/resample';
import { compareWithReference, cpu, expectClose, gpuEngine, gradCheck, releaseGpu, expectNoLeak } from '../helpers/oracle';

afterAll(releaseGpu);

describe('upsampleNearest', () => {
  it('3-D ×(1,2,2) (VAE), 2-D ×(3,2), 1-D ×2: GPU matches float64', async () => {
    await compareWithReference((x) => upsampleNearest(x, [1, 2, 2]), [{ shape: [1, 3, 2, 3, 5] }]);
    await compareWithReference((x) => upsampleNearest(x, [3, 2]), [{ shape: [2, 2, 3, 1] }]);
    await compareWithReference((x) => upsampleNearest(x, 2), [{ shape: [2, 3, 7] }]);
  });
  it('non-contiguous input, scale 1', async () => {
    await compareWithReference((x) => upsampleNearest(x, [2, 1]), [{ shape: [2, 3, 4, 5], permuted: [3, 2, 1, 0] }]);
  });
  it('gradient check', async () => {
    await gradCheck((x) => upsampleNearest(x, [1, 2, 3]), [{ shape: [1, 2, 2, 2, 2] }]);
  });
  it('values and bad scales', async () => {
    const y = upsampleNearest(cpu.tensor([1, 2, 3], [1, 1, 3]), 2);
    expectClose(await y.dataF64(), [1, 1, 2, 2, 3, 3], 0, 0, 'nearest ×2');
    y.dispose();
    expect(() => upsampleNearest(cpu.tensor([1, 2], [1, 1, 2]), 1.5)).toThrow(/integer scales/);
  });
});

describe('interpolateLinear1d (align_corners = false)', () => {
  it('×2 matches PyTorch values on GPU and reference', async () => {
    const gpu = await gpuEngine();
    for (const engine of [gpu, cpu]) {
      const x = engine.tensor([0, 1, 2, 3], [1, 1, 4]);
      const y = interpolateLinear1d(x, { scaleFactor: 2 });
      expectClose(await y.dataF64(), [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3], 1e-6, 1e-6, 'linear ×2');
      x.dispose();
      y.dispose();
    }
  });
  it('scaleFactor uses 1/scaleFactor for the source coordinate (PyTorch, recompute_scale_factor unset)', async () => {
    const x = cpu.tensor([0, 1, 4, 9, 16], [1, 1, 5]);
    const bySize = interpolateLinear1d(x, { size: 7 });
    const byFactor = interpolateLinear1d(x, { scaleFactor: 1.5 });
    expect(byFactor.shape).toEqual([1, 1, 7]);
    expectClose((await byFactor.dataF64()).slice(6), [9 + (5 / 6) * 7], 1e-9, 1e-9, 'scaleFactor 1.5, last step');
    expectClose((await bySize.dataF64()).slice(6), [16], 1e-9, 1e-9, 'size 7, last step');
    for (const t of [x, bySize, byFactor]) t.dispose();
  });
  it('×2 upsample and ROI resize to 50 (down and up): GPU matches float64 incl. backward', async () => {
    await compareWithReference((x) => interpolateLinear1d(x, { scaleFactor: 2 }), [{ shape: [2, 3, 13] }]);
    await compareWithReference((x) => interpolateLinear1d(x, { size: 50 }), [{ shape: [2, 5, 173] }]);
    await compareWithReference((x) => interpolateLinear1d(x, { size: 50 }), [{ shape: [1, 4, 17] }]);
    await compareWithReference((x) => interpolateLinear1d(x, { size: 3 }), [{ shape: [1, 2, 1] }]);
  });
  it('non-contiguous (B, L, 768)-style input viewed as (B, C, L)', async () => {
    await compareWithReference((x) => interpolateLinear1d(x, { size: 9 }), [{ shape: [2, 6, 11], permuted: [0, 2, 1] }]);
  });
  it('gradient check (up, down, non-integer factor)', async () => {
    await gradCheck((x) => interpolateLinear1d(x, { size: 7 }), [{ shape: [1, 2, 5] }]);
    await gradCheck((x) => interpolateLinear1d(x, { size: 3 }), [{ shape: [2, 1, 8] }]);
    await gradCheck((x) => interpolateLinear1d(x, { scaleFactor: 1.7 }), [{ shape: [1, 1, 6] }]);
  });
});

describe('resizeBilinear2d (align_corners = false)', () => {
  const resize = (size: [number, number]) => (x: Tensor) => resizeBilinear2d(x, size);
  it('GPU matches float64 (up, down, mixed) incl. backward', async () => {
    await compareWithReference(resize([9, 4]), [{ shape: [2, 3, 5, 7] }]);
    await compareWithReference(resize([3, 3]), [{ shape: [1, 2, 10, 6], permuted: [0, 3, 1, 2] }]);
  });
  it('PyTorch values for 2×2 → 4×4', async () => {
    const y = resizeBilinear2d(cpu.tensor([0, 1, 2, 3], [1, 1, 2, 2]), [4, 4]);
    const row0 = [0, 0.25, 0.75, 1];
    const expected = [0, 0.5, 1.5, 2].flatMap((r) => row0.map((v) => v + r));
    expectClose(await y.dataF64(), expected, 1e-9, 1e-9, 'bilinear 2×2 → 4×4');
    y.dispose();
  });
  it('gradient check', async () => {
    await gradCheck(resize([3, 5]), [{ shape: [1, 1, 4, 3] }]);
  });
});

it('forward + backward frees all temporaries (GPU)', async () => {
  const gpu = await gpuEngine();
  const { backward } = await import('../../src/engine/autograd');
  const { sum } = await import('../../src/kernels/reduce');
  const run = () => {
    const x = gpu.tensor(Array.from({ length: 2 * 3 * 4 * 5 }, (_, i) => Math.cos(i)), [2, 3, 4, 5]);
    x.requiresGrad = true;
    const x1 = gpu.tensor(Array.from({ length: 2 * 3 * 7 }, (_, i) => Math.cos(i)), [2, 3, 7]);
    x1.requiresGrad = true;
    for (const y of [upsampleNearest(x, [2, 2]), resizeBilinear2d(x, [7, 3]), interpolateLinear1d(x1, { size: 50 })]) {
      const loss = sum(y);
      backward(loss);
      for (const t of [loss, y]) t.dispose();
    }
    x.dispose();
    x1.dispose();
  };
  await expectNoLeak(run);
});
