import { afterAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine';
import type { Tensor } from '../../src/engine/tensor';
import { GradScaler } from '../../src/kernels/grad-scaler';
import { AdamW, clipGradNorm, cosineLr } from '../../src/kernels/optimizer';
import { adamwStepRef, clipGradNormRef, cosineAnnealingRecursiveRef, type AdamWHyper } from '../../src/kernels/reference/optimizer';
import { permute, transpose } from '../../src/kernels/views';
import { backward } from '../../src/engine/autograd';
import { tidy } from '../../src/engine/scope';
import { matmul } from '../../src/kernels/matmul';
import { mseLoss } from '../../src/kernels/loss';
import { cpu, expectClose, gpuEngine, randomValues, releaseGpu } from '../helpers/oracle';

afterAll(releaseGpu);

function param(e: Engine, values: ArrayLike<number>, shape: number[]): Tensor {
  const t = e.tensor(values, shape);
  t.requiresGrad = true;
  return t;
}

const shapes = [[3, 5], [7], [2, 2], [1]];
const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
/** Which parameters get a gradient at step k: #1 never, #2 on even steps only. */
const hasGrad = (i: number, k: number) => i !== 1 && (i !== 2 || k % 2 === 0);

describe('AdamW', () => {
  const hyper = (k: number): AdamWHyper => ({ lr: cosineLr(k, 6, 1e-2, 1e-4), beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.05 });
  const gradValues = (i: number, k: number) => randomValues(sizes[i], 100 * k + i, -2, 2);

  /** Host float64 simulation of torch's AdamW over the same schedule. */
  function simulate(steps: number): Float64Array[] {
    const p = shapes.map((_, i) => randomValues(sizes[i], 50 + i));
    const m = sizes.map((n) => new Float64Array(n));
    const v = sizes.map((n) => new Float64Array(n));
    const count = sizes.map(() => 0);
    for (let k = 0; k < steps; k++) {
      shapes.forEach((_, i) => {
        if (!hasGrad(i, k)) return;
        count[i]++;
        adamwStepRef(p[i], gradValues(i, k), m[i], v[i], count[i], hyper(k));
      });
    }
    return p;
  }

  async function run(e: Engine, steps: number, nonContiguousAt = -1): Promise<{ values: Float64Array[]; opt: AdamW; params: Tensor[] }> {
    const params = shapes.map((s, i) => param(e, randomValues(sizes[i], 50 + i), s));
    const opt = new AdamW(params, { lr: 1, betas: [0.9, 0.95], weightDecay: 0.05 });
    for (let k = 0; k < steps; k++) {
      opt.zeroGrad();
      params.forEach((p, i) => {
        if (!hasGrad(i, k)) return;
        if (i === 0 && k === nonContiguousAt) {
          // The gradient arrives as a transposed view: the optimizer must read it through a copy.
          const stored = e.tensor(transpose2(gradValues(0, k), 3, 5), [5, 3]);
          p.grad = permute(stored, [1, 0]);
          stored.dispose();
        } else p.grad = e.tensor(gradValues(i, k), p.shape);
      });
      opt.lr = hyper(k).lr;
      opt.step();
    }
    const values = await Promise.all(params.map((p) => p.dataF64()));
    return { values, opt, params };
  }

  it('several steps on the GPU match float64 torch AdamW (no-grad parameter, weight decay, bias correction, schedule)', async () => {
    const expected = simulate(5);
    for (const e of [await gpuEngine(), cpu]) {
      const { values, opt, params } = await run(e, 5, 3);
      values.forEach((v, i) => expectClose(v, expected[i], 1e-5, 1e-6, `${e.kind} parameter ${i}`));
      // Never-updated parameter is untouched (no weight decay either) and has no step.
      expectClose(values[1], randomValues(7, 51), 0, 0, 'parameter without grad');
      expect([0, 1, 2, 3].map((i) => opt.stepOf(i))).toEqual([5, 0, 3, 5]);
      opt.zeroGrad();
      opt.dispose();
      params.forEach((p) => p.dispose());
    }
  });

  it('state() / loadState() resume bit-for-bit', async () => {
    const gpu = await gpuEngine();
    const { opt, params } = await run(gpu, 3);
    const saved = await opt.state();
    expect(saved.params[1]).toBeNull();
    expect(saved.params[0]!.step).toBe(3);
    const clones = await Promise.all(params.map(async (p) => param(gpu, await p.data(), [...p.shape])));
    const resumed = new AdamW(clones, { lr: 0.5 });
    resumed.loadState(saved);
    expect(resumed.beta2).toBe(0.95);
    for (const [o, ps] of [
      [opt, params],
      [resumed, clones],
    ] as const) {
      o.zeroGrad();
      ps.forEach((p, i) => (p.grad = gpu.tensor(randomValues(sizes[i], 900 + i), p.shape)));
      o.step();
    }
    for (let i = 0; i < params.length; i++) expectClose(await clones[i].data(), await params[i].data(), 0, 0, `parameter ${i}`);
    expect(resumed.stepOf(1)).toBe(1);
    for (const o of [opt, resumed]) {
      o.zeroGrad();
      o.dispose();
    }
    [...params, ...clones].forEach((p) => p.dispose());
  });

  it('rejects parameters that do not require grad', async () => {
    const t = cpu.tensor([1, 2], [2]);
    expect(() => new AdamW([t], { lr: 1 })).toThrow(/require grad/);
  });
});

function transpose2(values: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c];
  return out;
}

describe('clipGradNorm', () => {
  const gradShapes = [[3000], [5, 7], [1], [4]];
  for (const maxNorm of [1, 1000]) {
    it(`matches the float64 reference (maxNorm ${maxNorm}${maxNorm > 100 ? ': no clipping' : ''})`, async () => {
      for (const e of [await gpuEngine(), cpu]) {
        const params = gradShapes.map((s) => param(e, new Float64Array(s.reduce((a, b) => a * b, 1)), s));
        const grads = gradShapes.map((s, i) => randomValues(s.reduce((a, b) => a * b, 1), 30 + i));
        params.forEach((p, i) => {
          if (i !== 3) p.grad = e.tensor(grads[i], p.shape);
        });
        const ref = clipGradNormRef(grads.slice(0, 3), maxNorm);
        const norm = clipGradNorm(params, maxNorm);
        expect(norm.shape).toEqual([]);
        expect(await norm.item()).toBeCloseTo(ref.norm, 3);
        for (let i = 0; i < 3; i++) expectClose(await params[i].grad!.data(), grads[i].map((g) => g * ref.factor), 1e-5, 1e-7, `${e.kind} grad ${i}`);
        expect(params[3].grad).toBeNull();
        norm.dispose();
        params.forEach((p) => p.dispose());
      }
    });
  }
  it('gradients sharing one buffer are each scaled once; strided gradients are handled', async () => {
    const gpu = await gpuEngine();
    const [a, b, c] = [param(gpu, [0, 0], [2]), param(gpu, [0, 0], [2]), param(gpu, [0, 0, 0, 0, 0, 0], [2, 3])];
    a.grad = gpu.tensor([3, 4], [2]);
    b.grad = a.grad.share();
    const stored = gpu.tensor([1, 2, 3, 4, 5, 6], [3, 2]);
    c.grad = permute(stored, [1, 0]);
    stored.dispose();
    const norm = clipGradNorm([a, b, c], 1);
    const expectedNorm = Math.sqrt(25 + 25 + 91);
    expect(await norm.item()).toBeCloseTo(expectedNorm, 4);
    const f = 1 / (expectedNorm + 1e-6);
    expectClose(await a.grad!.data(), [3 * f, 4 * f], 1e-5, 1e-7, 'a');
    expectClose(await b.grad!.data(), [3 * f, 4 * f], 1e-5, 1e-7, 'b');
    expectClose(await c.grad!.data(), [1, 3, 5, 2, 4, 6].map((x) => x * f), 1e-5, 1e-7, 'c');
    norm.dispose();
    [a, b, c].forEach((p) => p.dispose());
  });
});

describe('cosineLr', () => {
  it('closed form at known steps', () => {
    expect(cosineLr(0, 100, 1e-4, 1e-6)).toBe(1e-4);
    expect(cosineLr(50, 100, 1e-4, 1e-6)).toBeCloseTo((1e-4 + 1e-6) / 2, 15);
    expect(cosineLr(100, 100, 1e-4, 1e-6)).toBeCloseTo(1e-6, 15);
    expect(cosineLr(25, 100, 1, 0)).toBeCloseTo((1 + Math.SQRT1_2) / 2, 12);
  });
  it('matches torch CosineAnnealingLR stepped per iteration (recursive form), past T_max too', () => {
    const tMax = 10;
    const recursive = cosineAnnealingRecursiveRef(1e-4, tMax, 1e-6, 2 * tMax + 5);
    recursive.forEach((lr, step) => expect(cosineLr(step, tMax, 1e-4, 1e-6)).toBeCloseTo(lr, 14));
  });
});

describe('GradScaler', () => {
  it('an injected Inf / NaN skips the step and halves the scale; clean steps grow it after the interval', async () => {
    for (const e of [await gpuEngine(), cpu]) {
      const p = param(e, [1, 2, 3], [3]);
      const opt = new AdamW([p], { lr: 0.1, weightDecay: 0 });
      const scaler = new GradScaler({ initScale: 1024, growthInterval: 3 });
      // Overflow: Inf in the scaled gradient.
      for (const bad of [Infinity, NaN]) {
        p.grad = e.tensor([1, bad, 0.5], [3]);
        expect(await scaler.step(opt)).toBe(false);
        scaler.update();
        opt.zeroGrad();
        expectClose(await p.data(), [1, 2, 3], 0, 0, `${e.kind}: parameters after a skipped step`);
        expect(opt.stepOf(0)).toBe(0);
      }
      expect(scaler.getScale()).toBe(256);
      // Clean steps: the optimizer sees the unscaled gradient.
      const host = new Float64Array([1, 2, 3]);
      const m = new Float64Array(3);
      const v = new Float64Array(3);
      for (let k = 1; k <= 3; k++) {
        const g = [0.5, -1, 2].map((x) => x * k);
        p.grad = e.tensor(g.map((x) => x * scaler.getScale()), [3]);
        const flag = scaler.unscale(opt);
        expect((await flag.data())[0]).toBe(0);
        expect(await scaler.step(opt)).toBe(true);
        scaler.update();
        opt.zeroGrad();
        adamwStepRef(host, g, m, v, k, { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
      }
      expectClose(await p.data(), host, 1e-5, 1e-6, `${e.kind}: parameters after clean steps`);
      expect(scaler.getScale()).toBe(512);
      expect(scaler.state()).toEqual({ scale: 512, growthTracker: 0 });
      opt.dispose();
      p.dispose();
    }
  });
  it('scale() multiplies the loss by the current scale', async () => {
    const gpu = await gpuEngine();
    const scaler = new GradScaler({ initScale: 8 });
    const loss = gpu.tensor([1.5], []);
    const scaled = scaler.scale(loss);
    expect(await scaled.item()).toBe(12);
    loss.dispose();
    scaled.dispose();
  });
});

describe('a training step', () => {
  it('loss → scaled backward → unscale → clip → AdamW leaves no tensors behind', async () => {
    const gpu = await gpuEngine();
    const w = param(gpu, randomValues(12, 1), [3, 4]);
    const x = gpu.tensor(randomValues(8, 2), [2, 4]);
    const y = gpu.tensor(randomValues(6, 3), [2, 3]);
    const opt = new AdamW([w], { lr: 1e-2 });
    const scaler = new GradScaler({ initScale: 256 });
    const live: number[] = [];
    const losses: number[] = [];
    for (let k = 0; k < 4; k++) {
      const loss = tidy(() => mseLoss(matmul(x, transpose(w, 0, 1)), y));
      const scaled = scaler.scale(loss);
      backward(scaled);
      scaler.unscale(opt);
      clipGradNorm([w], 1).dispose();
      expect(await scaler.step(opt)).toBe(true);
      scaler.update();
      opt.zeroGrad();
      losses.push(await loss.item());
      loss.dispose();
      scaled.dispose();
      await gpu.sync();
      live.push(gpu.memory().liveBytes);
    }
    expect(live[3]).toBe(live[1]);
    expect(losses[3]).toBeLessThan(losses[0]);
    opt.dispose();
    for (const t of [w, x, y]) t.dispose();
  });
});
