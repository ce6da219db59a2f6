import { afterAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../src/engine/tensor';
import { backward } from '../../src/engine/autograd';
import { flowInterpolate, gaussianKl, hingeDiscriminatorLoss, hingeGeneratorLoss, l1Loss, mseLoss, pixelOutlierPenalty, rectifiedFlowLoss } from '../../src/kernels/loss';
import { add, mul, mulScalar } from '../../src/kernels/elementwise';
import { transpose } from '../../src/kernels/views';
import { compareWithReference, cpu, gpuEngine, gradCheck, randomValues, releaseGpu } from '../helpers/oracle';

afterAll(releaseGpu);

const spread = (shape: number[], seed: number, lo: number, hi: number) => ({ shape, values: randomValues(shape.reduce((a, b) => a * b, 1), seed, lo, hi) });

describe('mseLoss / l1Loss', () => {
  for (const [name, fn] of [
    ['mse', mseLoss],
    ['l1', l1Loss],
  ] as const) {
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      it(`${name} ${reduction}: GPU matches float64 (odd shape)`, async () => {
        await compareWithReference((a, b) => fn(a, b, reduction), [{ shape: [3, 5, 7] }, { shape: [3, 5, 7] }]);
      });
    }
    it(`${name}: gradCheck with broadcasting`, async () => {
      await gradCheck((a, b) => fn(a, b), [{ shape: [2, 3] }, { shape: [1, 3] }]);
    });
    it(`${name}: non-contiguous and broadcast inputs on the GPU`, async () => {
      await compareWithReference((a, b) => fn(a, b), [{ shape: [4, 3, 5], permuted: [2, 0, 1] }, { shape: [3, 1] }]);
      await compareWithReference((a, b) => fn(a, b, 'none'), [{ shape: [4, 3, 5], permuted: [1, 2, 0] }, { shape: [5] }]);
    });
    it(`${name} none: a strided upstream gradient`, async () => {
      // The transpose makes the gradient reaching the loss a non-contiguous view.
      await compareWithReference((a, b) => transpose(fn(a, b, 'none'), 0, 2), [{ shape: [2, 3, 4] }, { shape: [2, 3, 4] }]);
    });
    it(`${name}: size-1 input`, async () => {
      await compareWithReference((a, b) => fn(a, b), [{ shape: [1] }, { shape: [1] }]);
    });
  }
  it('mse: large input exercises several partial sums', async () => {
    await compareWithReference((a, b) => mseLoss(a, b), [{ shape: [4, 4, 50, 12, 12] }, { shape: [4, 4, 50, 12, 12] }], { rtol: 1e-4 });
  });
  it('mse of known values', async () => {
    const gpu = await gpuEngine();
    const a = gpu.tensor([1, 2, 3, 4], [2, 2]);
    const b = gpu.tensor([0, 0, 0, 0], [2, 2]);
    const y = mseLoss(a, b);
    expect(await y.item()).toBeCloseTo(7.5, 5);
    expect(y.shape).toEqual([]);
    for (const t of [a, b, y]) t.dispose();
  });
});

describe('hinge losses', () => {
  it('discriminator: GPU matches float64 and the closed form', async () => {
    await compareWithReference(hingeDiscriminatorLoss, [spread([2, 1, 3, 5, 5], 2, -2, 2), spread([2, 1, 3, 5, 5], 3, -2, 2)]);
    const gpu = await gpuEngine();
    const real = gpu.tensor([0.5, 2, -1], [3]);
    const fake = gpu.tensor([-2, 0, 1], [3]);
    const y = hingeDiscriminatorLoss(real, fake);
    // real: relu(1 - x) = 0.5, 0, 2 → mean 2.5/3; fake: relu(1 + x) = 0, 1, 2 → mean 1
    expect(await y.item()).toBeCloseTo(0.5 * (2.5 / 3 + 1), 5);
    for (const t of [real, fake, y]) t.dispose();
  });
  it('discriminator: gradCheck (away from the kinks)', async () => {
    await gradCheck(hingeDiscriminatorLoss, [{ shape: [3, 2], values: [0.3, 1.7, -0.4, 2.2, 0.1, -1.3] }, { shape: [5], values: [-0.5, -1.6, 0.2, 1.1, -3] }]);
  });
  it('generator: −mean(fake)', async () => {
    await compareWithReference(hingeGeneratorLoss, [{ shape: [2, 1, 3, 4, 4] }]);
    await gradCheck(hingeGeneratorLoss, [{ shape: [3, 2] }]);
  });
});

describe('gaussianKl', () => {
  for (const reduction of ['mean', 'sum', 'none'] as const) {
    it(`${reduction}: GPU matches float64 (logvar partly clamped)`, async () => {
      const shape = [3, 2, 5, 3];
      const lv = randomValues(90, 5, -2, 2);
      lv[3] = -35;
      lv[17] = 25;
      await compareWithReference((m, v) => gaussianKl(m, v, reduction), [{ shape }, { shape, values: lv }]);
    });
  }
  it('gradCheck', async () => {
    await gradCheck((m, v) => gaussianKl(m, v), [{ shape: [2, 3] }, { shape: [2, 3], values: [0.5, -1.5, 2.1, -0.3, 1.2, -2] }]);
  });
  it('clamped logvar passes no gradient (as torch.clamp)', async () => {
    // Finite differences are useless next to exp(20); check the rule directly on both backends.
    for (const e of [cpu, await gpuEngine()]) {
      const mu = e.tensor([0, 0, 0], [1, 3]);
      const lv = e.tensor([-31, 0.5, 21], [1, 3]);
      lv.requiresGrad = true;
      const y = gaussianKl(mu, lv);
      backward(y);
      const g = Array.from(await lv.grad!.data());
      expect(g[0]).toBe(0);
      expect(g[2]).toBe(0);
      expect(g[1]).toBeCloseTo(0.5 * (Math.exp(0.5) - 1), 5);
      for (const t of [mu, lv, y]) t.dispose();
    }
  });
  it('matches ½Σ(μ² + σ² − 1 − log σ²)/B', async () => {
    const gpu = await gpuEngine();
    const mu = gpu.tensor([1, 0, 0.5, -1], [2, 2]);
    const lv = gpu.tensor([0, Math.log(2), -1, 0.5], [2, 2]);
    const y = gaussianKl(mu, lv);
    const expected = 0.5 * ([1, 0, 0.25, 1].reduce((a, b) => a + b) + [1, 2, Math.exp(-1), Math.exp(0.5)].reduce((a, b) => a + b) - 4 - (Math.log(2) - 1 + 0.5)) / 2;
    expect(await y.item()).toBeCloseTo(expected, 5);
    for (const t of [mu, lv, y]) t.dispose();
  });
  it('non-contiguous posterior', async () => {
    await compareWithReference((m, v) => gaussianKl(m, v), [{ shape: [2, 3, 4], permuted: [2, 1, 0] }, { shape: [2, 3, 4], permuted: [0, 2, 1] }]);
  });
});

describe('pixelOutlierPenalty', () => {
  const spiky = (shape: number[]) => {
    const v = randomValues(shape.reduce((a, b) => a * b, 1), 11, -0.5, 0.5);
    for (let i = 0; i < v.length; i += 13) v[i] = 4;
    return { shape, values: v };
  };
  it('GPU matches float64', async () => {
    await compareWithReference((x) => pixelOutlierPenalty(x), [spiky([2, 1, 3, 6, 5])]);
  });
  it('gradCheck', async () => {
    await gradCheck((x) => pixelOutlierPenalty(x, 1), [spiky([1, 1, 2, 3, 4])], { tol: 1e-5 });
  });
  it('zero without outliers', async () => {
    const gpu = await gpuEngine();
    const x = gpu.tensor(randomValues(2 * 16, 4, -0.1, 0.1), [2, 4, 4]);
    const y = pixelOutlierPenalty(x);
    expect(await y.item()).toBe(0);
    x.dispose();
    y.dispose();
  });
});

describe('rectified flow', () => {
  const interp = (x0: Tensor, x1: Tensor, t: Tensor) => {
    const { xt, target } = flowInterpolate(x0, x1, t);
    // Combine both outputs so one comparison covers both values and gradients.
    const both = mulScalar(target, 0.5);
    const out = add(xt, both);
    for (const u of [xt, target, both]) u.dispose();
    return out;
  };
  it('flowInterpolate: GPU matches float64, t per sample', async () => {
    await compareWithReference(interp, [{ shape: [3, 2, 5] }, { shape: [3, 2, 5], permuted: [2, 1, 0] }, spread([3], 9, 0, 1)]);
  });
  it('flowInterpolate: gradCheck incl. t', async () => {
    await gradCheck(interp, [{ shape: [2, 3] }, { shape: [2, 3] }, spread([2], 9, 0, 1)]);
  });
  it('flowInterpolate: t broadcast along another dim (general strided path)', async () => {
    await compareWithReference(interp, [{ shape: [2, 3] }, { shape: [2, 3] }, spread([1, 3], 6, 0, 1)]);
  });
  it('flowInterpolate: broadcast template source', async () => {
    await compareWithReference(interp, [{ shape: [1, 2, 1, 3] }, { shape: [2, 2, 4, 3] }, spread([2], 4, 0, 1)]);
  });
  it('rectifiedFlowLoss = mse(v(x_t), x1 − x0) with a differentiable predictor', async () => {
    const op = (x0: Tensor, x1: Tensor, t: Tensor, w: Tensor) => {
      const { loss, xt } = rectifiedFlowLoss((x) => mul(x, w), x0, x1, t);
      xt.dispose();
      return loss;
    };
    await compareWithReference(op, [{ shape: [2, 3, 4] }, { shape: [2, 3, 4] }, spread([2], 5, 0, 1), { shape: [4] }]);
    await gradCheck(op, [{ shape: [2, 3] }, { shape: [2, 3] }, spread([2], 5, 0, 1), { shape: [3] }]);
  });
  it('x_t endpoints: t = 0 gives x0, t = 1 gives x1', async () => {
    for (const e of [cpu, await gpuEngine()]) {
      const x0 = e.tensor([1, 2, 3, 4], [2, 2]);
      const x1 = e.tensor([5, 6, 7, 8], [2, 2]);
      const t = e.tensor([0, 1], [2]);
      const { xt, target } = flowInterpolate(x0, x1, t);
      expect(Array.from(await xt.data())).toEqual([1, 2, 7, 8]);
      expect(Array.from(await target.data())).toEqual([4, 4, 4, 4]);
      for (const u of [x0, x1, t, xt, target]) u.dispose();
    }
  });
});
