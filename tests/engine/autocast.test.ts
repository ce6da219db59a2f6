import { afterAll, describe, expect, it } from 'vitest';
import { autocast, autocastDtype, isAutocastEnabled } from '../../src/engine/autocast';
import { backward } from '../../src/engine/autograd';
import type { Engine } from '../../src/engine/engine';
import { tidy } from '../../src/engine/scope';
import { f16ToF32, f32ToF16, type Tensor } from '../../src/engine/tensor';
import { attention } from '../../src/kernels/attention';
import { conv2d } from '../../src/kernels/conv';
import { cast, mul, mulScalar, square } from '../../src/kernels/elementwise';
import { linear, matmul } from '../../src/kernels/matmul';
import { DeviceGradScaler } from '../../src/kernels/grad-scaler';
import { AdamW } from '../../src/kernels/optimizer';
import { adamwStepRef } from '../../src/kernels/reference/optimizer';
import { mean, sum } from '../../src/kernels/reduce';
import { permute, reshape } from '../../src/kernels/views';
import { cpu, expectClose, gpuEngine, randomValues, releaseGpu } from '../helpers/oracle';

afterAll(releaseGpu);

/** Values as the nearest f16 (what autocast's conversion gives), so the reference sees the same operands. */
const roundF16 = (v: ArrayLike<number>) => Float64Array.from(f16ToF32(f32ToF16(v)));

interface Leaf {
  shape: number[];
  values: Float64Array;
  /** Autocast converts it to f16 (operands do; a bias stays f32). */
  half: boolean;
}
const leaf = (shape: number[], seed: number, half = true): Leaf => ({ shape, values: randomValues(shape.reduce((a, b) => a * b, 1), seed), half });

/**
 * Runs op on the GPU inside autocast with f32 leaves, and on the float64 reference with the leaves rounded
 * to f16; returns both outputs and leaf gradients (for L = Σ y ⊙ r, r a fixed random tensor).
 */
async function autocastVsReference(op: (...t: Tensor[]) => Tensor, leaves: Leaf[]) {
  const out: { y: Float64Array; dtype: string; grads: { dtype: string; values: Float64Array }[] }[] = [];
  for (const [e, half] of [[await gpuEngine(), true], [cpu, false]] as [Engine, boolean][]) {
    const ts = leaves.map((l) => {
      const t = e.tensor(!half && l.half ? roundF16(l.values) : l.values, l.shape);
      t.requiresGrad = true;
      return t;
    });
    const y = half ? autocast(() => op(...ts)) : op(...ts);
    const r = e.tensor(randomValues(y.size, 99), y.shape);
    backward(tidy(() => sum(mul(y, r))));
    const grads = [];
    for (const t of ts) grads.push({ dtype: t.grad!.dtype, values: await t.grad!.dataF64() });
    out.push({ y: await y.dataF64(), dtype: y.dtype, grads });
    [y, r, ...ts].forEach((t) => t.dispose());
  }
  return { gpu: out[0], ref: out[1] };
}

describe('autocast scope', () => {
  it('is off by default, nests, can be disabled inside, and restores after a throw', async () => {
    const gpu = await gpuEngine();
    expect(gpu.caps!.f16, 'lavapipe exposes shader-f16').toBe(true);
    expect(isAutocastEnabled()).toBe(false);
    expect(autocastDtype(gpu.backend)).toBeNull();
    autocast(() => {
      expect(autocastDtype(gpu.backend)).toBe('f16');
      expect(autocastDtype(cpu.backend)).toBeNull();
      autocast(() => expect(isAutocastEnabled()).toBe(false), false);
      expect(isAutocastEnabled()).toBe(true);
    });
    expect(() => autocast(() => { throw new Error('x'); })).toThrow('x');
    expect(isAutocastEnabled()).toBe(false);
    expect(() => autocast(async () => 1)).toThrow(/synchronous/);
    expect(isAutocastEnabled()).toBe(false);
  });
});

describe('autocast ops: f16 operands, f32 accumulation and output, f32 gradients for f32 leaves', () => {
  // Tight tolerances: products of f16 values are exact in f32, so only f32 summation error remains; an
  // f16 accumulation or an f16-rounded output would miss by ~1e-3.
  const tight = { rtol: 1e-5, atol: 1e-5 };
  it('matmul (batched, broadcast, odd sizes)', async () => {
    const { gpu, ref } = await autocastVsReference((a, b) => matmul(a, b), [leaf([2, 5, 37], 1), leaf([37, 3], 2)]);
    expect(gpu.dtype).toBe('f32');
    expectClose(gpu.y, ref.y, tight.rtol, tight.atol, 'matmul forward');
    gpu.grads.forEach((g, i) => {
      expect(g.dtype).toBe('f32');
      expectClose(g.values, ref.grads[i].values, tight.rtol, tight.atol, `matmul grad ${i}`);
    });
  });
  it('linear with bias (rank-3 input, size-1 dims)', async () => {
    const { gpu, ref } = await autocastVsReference((x, w, b) => linear(x, w, b), [leaf([3, 1, 19], 3), leaf([7, 19], 4), leaf([7], 5, false)]);
    expect(gpu.dtype).toBe('f32');
    expectClose(gpu.y, ref.y, tight.rtol, tight.atol, 'linear forward');
    gpu.grads.forEach((g, i) => {
      expect(g.dtype).toBe('f32');
      expectClose(g.values, ref.grads[i].values, tight.rtol, tight.atol, `linear grad ${i}`);
    });
  });
  it('conv2d (stride, padding)', async () => {
    const { gpu, ref } = await autocastVsReference((x, w, b) => conv2d(x, w, b, { stride: 2, padding: 1 }), [leaf([2, 3, 7, 6], 6), leaf([4, 3, 3, 3], 7), leaf([4], 8, false)]);
    expect(gpu.dtype).toBe('f32');
    expectClose(gpu.y, ref.y, tight.rtol, tight.atol, 'conv forward');
    gpu.grads.forEach((g, i) => {
      expect(g.dtype).toBe('f32');
      expectClose(g.values, ref.grads[i].values, tight.rtol, tight.atol, `conv grad ${i}`);
    });
  });
  it('attention (strided q/k/v views): f32 output rounded once to f16, f16 dQ/dK/dV returned as f32', async () => {
    // q, k, v as [B, N, H·D] viewed to [B, H, N, D].
    const heads = (t: Tensor) => permute(reshape(t, [1, 6, 2, 5]), [0, 2, 1, 3]);
    const { gpu, ref } = await autocastVsReference((q, k, v) => attention(heads(q), heads(k), heads(v)), [leaf([1, 6, 10], 9), leaf([1, 6, 10], 10), leaf([1, 6, 10], 11)]);
    expect(gpu.dtype).toBe('f32');
    expectClose(gpu.y, ref.y, 1e-3, 2e-4, 'attention forward');
    gpu.grads.forEach((g, i) => {
      expect(g.dtype).toBe('f32');
      expectClose(g.values, ref.grads[i].values, 4e-3, 4e-4, `attention grad ${i}`);
    });
  });
  it('a no-op on the float64 reference backend', () => {
    const x = cpu.tensor(randomValues(12, 12), [3, 4]);
    const w = cpu.tensor(randomValues(8, 13), [2, 4]);
    const inside = autocast(() => linear(x, w));
    const outside = linear(x, w);
    expect(inside.dtype).toBe('f32');
    expect(Array.from(inside.toFloat64Sync())).toEqual(Array.from(outside.toFloat64Sync()));
    [x, w, inside, outside].forEach((t) => t.dispose());
  });
  it('f16 inputs keep f16 gradients; the graph saves f16 copies and nothing leaks', async () => {
    const gpu = await gpuEngine();
    const x = gpu.tensor(randomValues(64 * 32, 14), [64, 32]);
    const w = gpu.tensor(randomValues(32 * 32, 15), [32, 32]);
    w.requiresGrad = true;
    const h = gpu.tensor(randomValues(32, 16), [32], 'f16');
    h.requiresGrad = true;
    const step = () => {
      const loss = tidy(() => mean(square(autocast(() => linear(mul(x, cast(h, 'f32')), w)))));
      backward(loss);
      loss.dispose();
      expect(w.grad!.dtype).toBe('f32');
      expect(h.grad!.dtype).toBe('f16');
      w.grad!.dispose();
      w.grad = null;
      h.grad!.dispose();
      h.grad = null;
    };
    step();
    await gpu.sync();
    const before = gpu.memory().liveBytes;
    for (let i = 0; i < 3; i++) step();
    await gpu.sync();
    expect(gpu.memory().liveBytes).toBe(before);
    // What a graph holds: the f32 input (8 KiB) stays alive anyway; the node keeps 4 + 2 KiB of f16 copies.
    const held = (half: boolean) => {
      const start = gpu.memory().liveBytes;
      const y = half ? autocast(() => linear(x, w)) : linear(x, w);
      const bytes = gpu.memory().liveBytes - start - y.size * 4;
      y.dispose();
      return bytes;
    };
    expect(held(false)).toBe(0);
    expect(held(true)).toBe(64 * 32 * 2 + 32 * 32 * 2);
    [x, w, h].forEach((t) => t.dispose());
  });
});

describe('DeviceGradScaler', () => {
  const hyper = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
  it('overflow skips the step and halves the scale; clean steps grow it after the interval; no readback per step', async () => {
    for (const e of [await gpuEngine(), cpu]) {
      const p = e.tensor([1, 2, 3], [3]);
      p.requiresGrad = true;
      const opt = new AdamW([p], { lr: hyper.lr, weightDecay: hyper.weightDecay });
      const scaler = new DeviceGradScaler(e.backend, { initScale: 1024, growthInterval: 3 });
      const host = new Float64Array([1, 2, 3]);
      const m = new Float64Array(3);
      const v = new Float64Array(3);
      const reads = e.counters?.readbacks ?? 0;
      const logged: Tensor[][] = [];
      const grads = [[0.5, -1, 2], [1, Infinity, 0], [0.25, 0.5, -0.5], [1, NaN, 1], [-1, 1, 3], [2, 2, 2], [0.5, 0.5, 0.5], [1, 1, -1]];
      let taken = 0;
      for (const g of grads) {
        // The scaled gradient of a loss whose true gradient is g.
        p.grad = e.tensor(g.map((x) => x * 1024), [3]);
        // (the scale at this point is 1024 · 2^k; only its value at unscale time matters, so scale on the device)
        p.grad = tidy(() => mul(mulScalar(p.grad!, 1 / 1024), scaler.scaleTensor()));
        scaler.step(opt);
        scaler.update();
        const s = scaler.stepScalars();
        logged.push([s.scale, s.skipped, s.skippedSteps]);
        opt.zeroGrad();
        if (g.every(Number.isFinite)) adamwStepRef(host, g, m, v, ++taken, hyper);
      }
      expect(e.counters?.readbacks ?? 0, 'no readback while stepping').toBe(reads);
      const rows = await Promise.all(logged.map(async (ts) => Promise.all(ts.map((t) => t.item()))));
      logged.flat().forEach((t) => t.dispose());
      // scale used, skipped, skipped total: 1024 ok, overflow → 512, ok, overflow → 256, ok, ok, ok (3 clean → 512), ok.
      expect(rows).toEqual([[1024, 0, 0], [1024, 1, 1], [512, 0, 1], [512, 1, 2], [256, 0, 2], [256, 0, 2], [256, 0, 2], [512, 0, 2]]);
      expectClose(await p.data(), host, 2e-5, 1e-6, `${e.kind}: parameters (skipped steps change nothing)`);
      expect(await scaler.sync()).toEqual({ scale: 512, growthTracker: 1, skippedSteps: 2 });
      const state = await opt.state();
      expect(state.params[0]!.step, 'skipped steps do not count').toBe(6);
      expect(opt.stepOf(0)).toBe(6);
      opt.dispose();
      scaler.dispose();
      p.dispose();
    }
  });
  it('scaled backward + unscale gives the f32 gradients of the unscaled loss; resumed state continues identically', async () => {
    const gpu = await gpuEngine();
    const w = gpu.tensor(randomValues(24, 20), [6, 4]);
    w.requiresGrad = true;
    const x = gpu.tensor(randomValues(20, 21), [5, 4]);
    const lossOf = () => tidy(() => mean(square(linear(x, w))));
    backward(lossOf());
    const plain = await w.grad!.data();
    w.grad!.dispose();
    w.grad = null;
    const opt = new AdamW([w], { lr: 1e-3 });
    const scaler = new DeviceGradScaler(gpu.backend);
    const loss = lossOf();
    backward(tidy(() => scaler.scale(loss)));
    expect(await w.grad!.data()).not.toEqual(plain);
    scaler.unscale(opt);
    // Power-of-two scale: scaling and unscaling are exact.
    expect(await w.grad!.data()).toEqual(plain);
    scaler.update();
    loss.dispose();
    opt.zeroGrad();
    // Save / restore through host state, as a checkpoint does.
    scaler.loadState({ scale: 8, growthTracker: 1999, skippedSteps: 5 });
    scaler.update();
    expect(await scaler.sync()).toEqual({ scale: 16, growthTracker: 0, skippedSteps: 5 });
    opt.dispose();
    scaler.dispose();
    [w, x].forEach((t) => t.dispose());
  });
});
