import { afterAll, describe, expect, it } from 'vitest';
import { backward } from '../../src/engine/autograd';
import type { Tensor } from '../../src/engine/tensor';
import { avgPool1d, avgPool2d, avgPool3d, maxPool1d, maxPool2d, maxPool3d, type PoolOptions } from '../../src/kernels/pool';
import { sum } from '../../src/kernels/reduce';
import { compareWithReference, cpu, expectClose, gpuEngine, gradCheck, releaseGpu, expectNoLeak } from '../helpers/oracle';

afterAll(releaseGpu);

type Pool = (x: Tensor, o: PoolOptions) => Tensor;
const cases: [string, Pool, PoolOptions, number[]][] = [
  ['maxPool1d k3 s2 p1 (ECG stem)', maxPool1d, { kernel: 3, stride: 2, padding: 1 }, [2, 3, 11]],
  ['maxPool2d 2×2 s2 (VGG), odd size', maxPool2d, { kernel: 2 }, [1, 3, 7, 5]],
  ['maxPool2d k3 s1 p1, anisotropic', maxPool2d, { kernel: [3, 2], stride: [1, 2], padding: [1, 0] }, [2, 2, 4, 5]],
  ['maxPool3d k(1,3,3) s(1,2,2) p(0,1,1)', maxPool3d, { kernel: [1, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1] }, [1, 2, 3, 5, 4]],
  ['avgPool1d k3 s2 p1 (padding counts)', avgPool1d, { kernel: 3, stride: 2, padding: 1 }, [2, 3, 9]],
  ['avgPool2d 2×2', avgPool2d, { kernel: 2 }, [2, 2, 5, 6]],
  ['avgPool3d k3 s2 p1', avgPool3d, { kernel: 3, stride: 2, padding: 1 }, [1, 2, 5, 4, 3]],
];

describe('pooling', () => {
  for (const [name, fn, options, shape] of cases) {
    it(`${name}: GPU matches float64`, async () => {
      await compareWithReference((x) => fn(x, options), [{ shape }]);
    });
    it(`${name}: gradient check`, async () => {
      const small = shape.map((d, i) => (i < 2 ? 1 : Math.min(d, 5)));
      await gradCheck((x) => fn(x, options), [{ shape: small }]);
    });
  }
  it('non-contiguous input and size-1 dims', async () => {
    await compareWithReference((x) => maxPool2d(x, { kernel: 2 }), [{ shape: [2, 3, 4, 6], permuted: [3, 1, 0, 2] }]);
    await compareWithReference((x) => avgPool1d(x, { kernel: 1 }), [{ shape: [1, 1, 1] }]);
    await compareWithReference((x) => maxPool3d(x, { kernel: 1 }), [{ shape: [1, 2, 1, 1, 3] }]);
  });
  it('padding never wins a max; ties send the gradient to the first maximum', async () => {
    const gpu = await gpuEngine();
    for (const engine of [gpu, cpu]) {
      // Windows {pad,-5,-3}, {-3,-3,-7}, {-7,-2,-2}: a zero pad would win the first; ties at 1-2 and 4-5.
      const x = engine.tensor([-5, -3, -3, -7, -2, -2], [1, 1, 6]);
      x.requiresGrad = true;
      const y = maxPool1d(x, { kernel: 3, stride: 2, padding: 1 });
      expectClose(await y.dataF64(), [-3, -3, -2], 0, 0, 'max with padding');
      const loss = sum(y);
      backward(loss);
      expectClose(await x.grad!.dataF64(), [0, 2, 0, 0, 1, 0], 0, 0, 'gradient to the first maximum');
      for (const t of [x, y, loss]) t.dispose();
    }
  });
  it('rejects bad arguments', () => {
    const x = cpu.tensor([1, 2, 3, 4], [1, 1, 4]);
    expect(() => maxPool1d(x, { kernel: 2, padding: 2 })).toThrow(/padding/);
    expect(() => maxPool2d(x, { kernel: 2 })).toThrow(/2-D pooling/);
    x.dispose();
  });
});

it('forward + backward frees all temporaries (GPU)', async () => {
  const gpu = await gpuEngine();
  const run = () => {
    const x = gpu.tensor(Array.from({ length: 2 * 3 * 4 * 5 }, (_, i) => Math.sin(i)), [2, 3, 4, 5]);
    x.requiresGrad = true;
    for (const y of [maxPool2d(x, { kernel: 3, stride: 2, padding: 1 }), avgPool2d(x, { kernel: 2 })]) {
      const loss = sum(y);
      backward(loss);
      for (const t of [loss, y]) t.dispose();
    }
    x.dispose();
  };
  await expectNoLeak(run);
});
