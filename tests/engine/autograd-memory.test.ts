import { afterAll, describe, expect, it } from 'vitest';
import * as ops from '../../src/index';
import { backward, grad, noGrad, tidy, keep, DisposedTensorError, EngineError, GpuValidationError } from '../../src/index';
import { gpuEngine, randomValues, releaseGpu } from '../helpers/oracle';

afterAll(releaseGpu);

describe('autograd', () => {
  it('accumulates into .grad across backward calls', async () => {
    const e = await gpuEngine();
    const w = e.tensor([1, 2, 3]);
    w.requiresGrad = true;
    for (let i = 0; i < 2; i++) backward(tidy(() => ops.sum(ops.mul(w, w))));
    expect(Array.from(await w.grad!.data())).toEqual([4, 8, 12]);
    w.dispose();
  });

  it('grad() gives gradients of two losses wrt one weight, keeping the graph', async () => {
    const e = await gpuEngine();
    const w = e.tensor([0.5, -1, 2]);
    w.requiresGrad = true;
    const x = e.tensor([1, 2, 3]);
    const h = ops.mul(w, x); // shared subgraph
    const l1 = ops.sum(ops.mul(h, h));
    const l2 = ops.mean(ops.exp(h));
    const [g1] = grad(l1, [w], { retainGraph: true });
    const [g2] = grad(l2, [w], { retainGraph: true });
    const [g1again] = grad(l1, [w]);
    const xv = [1, 2, 3];
    const wv = [0.5, -1, 2];
    expect(Array.from(await g1!.data())).toEqual(wv.map((v, i) => 2 * v * xv[i] * xv[i]));
    const g2v = await g2!.data();
    wv.forEach((v, i) => {
      const expected = (Math.exp(v * xv[i]) * xv[i]) / 3;
      expect(Math.abs(g2v[i] - expected)).toBeLessThan(1e-6 * Math.abs(expected) + 1e-6);
    });
    expect(Array.from(await g1again!.data())).toEqual(Array.from(await g1!.data()));
    expect(w.grad).toBeNull();
    // After a call without retainGraph, the graph of l1 was freed.
    expect(() => grad(l1, [w])).toThrow(EngineError);
    for (const t of [w, x, h, l1, l2, g1!, g2!, g1again!]) t.dispose();
  });

  it('grad() wrt an intermediate tensor', async () => {
    const e = await gpuEngine();
    const w = e.tensor([1, 2]);
    w.requiresGrad = true;
    const h = ops.mul(w, 3);
    const y = ops.sum(ops.mul(h, h));
    const [gh] = grad(y, [h]);
    expect(Array.from(await gh!.data())).toEqual([6, 12]);
    for (const t of [w, h, y, gh!]) t.dispose();
  });

  it('noGrad and detach record nothing', async () => {
    const e = await gpuEngine();
    const w = e.tensor([1, 2]);
    w.requiresGrad = true;
    const y = noGrad(() => ops.mul(w, w));
    expect(y.gradNode).toBeNull();
    const d = ops.detach(ops.mul(w, w));
    expect(d.gradNode).toBeNull();
    expect(() => backward(ops.sum(d))).toThrow(/does not require grad/);
    for (const t of [w, y, d]) t.dispose();
  });

  it('a leaf used twice and a diamond graph', async () => {
    const e = await gpuEngine();
    const w = e.tensor([3]);
    w.requiresGrad = true;
    const a = ops.mul(w, w);
    const b = ops.add(a, w);
    const y = ops.mul(a, b); // y = w^2 (w^2 + w) = w^4 + w^3 → dy/dw = 4w^3 + 3w^2 = 135
    backward(y);
    expect((await w.grad!.data())[0]).toBe(135);
    for (const t of [w, a, b, y]) t.dispose();
  });

  it('backward needs a scalar or an explicit gradient', async () => {
    const e = await gpuEngine();
    const w = e.tensor([1, 2]);
    w.requiresGrad = true;
    const y = ops.mul(w, 2);
    expect(() => backward(y)).toThrow(/scalar/);
    backward(y, e.tensor([1, 10]));
    expect(Array.from(await w.grad!.data())).toEqual([2, 20]);
    w.dispose();
    y.dispose();
  });
});

describe('memory', () => {
  it('tidy frees intermediates and keeps the result', async () => {
    const e = await gpuEngine();
    await e.sync();
    const before = e.memory().liveBytes;
    const x = e.tensor(randomValues(1024), [32, 32]);
    const y = tidy(() => ops.sum(ops.exp(ops.matmul(x, x)), 1));
    expect(y.disposed).toBe(false);
    expect(e.memory().liveBytes - before).toBe(1024 * 4 + 256); // x and the 32-element result (one 256-byte bucket)
    x.dispose();
    y.dispose();
    expect(e.memory().liveBytes).toBe(before);
  });

  it('saved tensors are freed when the graph is dropped or after backward', async () => {
    const e = await gpuEngine();
    const base = e.memory().liveBytes;
    const w = e.tensor(randomValues(4096), [64, 64]);
    w.requiresGrad = true;
    const baseline = e.memory().liveBytes;
    // Graph dropped without backward: disposing the loss frees every saved intermediate.
    const loss = tidy(() => ops.mean(ops.tanh(ops.matmul(w, w))));
    expect(e.memory().liveBytes).toBeGreaterThan(baseline + 4);
    loss.dispose();
    expect(e.memory().liveBytes).toBe(baseline);
    // With backward: only the gradient stays.
    const loss2 = tidy(() => ops.mean(ops.tanh(ops.matmul(w, w))));
    backward(loss2);
    loss2.dispose();
    expect(e.memory().liveBytes).toBe(baseline + 4096 * 4);
    w.dispose();
    expect(e.memory().liveBytes).toBe(base);
  });

  it('200 training-like iterations keep pool memory flat', async () => {
    const e = await gpuEngine();
    const gen = new ops.Generator(1);
    const w1 = keep(ops.mul(ops.randn(e.backend, [16, 32], gen), 0.1));
    const w2 = keep(ops.mul(ops.randn(e.backend, [8, 16], gen), 0.1));
    for (const w of [w1, w2]) w.requiresGrad = true;
    const x = ops.randn(e.backend, [4, 32], gen);
    const target = ops.randn(e.backend, [4, 8], gen);
    const step = () =>
      tidy(() => {
        const h = ops.gelu(ops.linear(x, w1));
        const y = ops.linear(h, w2);
        const loss = ops.mean(ops.square(ops.sub(y, target)));
        backward(loss);
        for (const w of [w1, w2]) {
          const updated = noGrad(() => ops.sub(w, ops.mul(w.grad!, 0.1)));
          // In-place update: copy the new values into the parameter's storage.
          ops.copyInto(e.backend, updated, w);
          w.grad!.dispose();
          w.grad = null;
        }
        return loss;
      });
    // A training loop submits once per step; released buffers become reusable at that submit.
    const stepAndFlush = () => {
      const loss = step();
      e.flush();
      return loss;
    };
    const first = stepAndFlush();
    const firstLoss = await first.item();
    first.dispose();
    await e.sync();
    const after10: number[] = [];
    let lastLoss = 0;
    for (let i = 1; i < 200; i++) {
      const loss = stepAndFlush();
      if (i === 199) lastLoss = await loss.item();
      loss.dispose();
      if (i === 10) {
        await e.sync();
        const m = e.memory();
        after10.push(m.liveBytes, m.liveBytes + m.pooledBytes + m.pendingBytes, m.buffersCreated);
      }
    }
    await e.sync();
    const m = e.memory();
    expect(m.liveBytes).toBe(after10[0]);
    expect(m.liveBytes + m.pooledBytes + m.pendingBytes).toBe(after10[1]);
    expect(m.buffersCreated).toBe(after10[2]);
    expect(lastLoss).toBeLessThan(firstLoss);
    for (const t of [w1, w2, x, target]) t.dispose();
  });

  it('records many ops per submit', async () => {
    const e = await gpuEngine();
    await e.sync();
    const c0 = e.counters!;
    const x = e.tensor(randomValues(64), [8, 8]);
    const y = tidy(() => {
      let t = x;
      for (let i = 0; i < 50; i++) t = ops.add(ops.mul(t, 0.5), 1);
      return t;
    });
    await y.data();
    const c1 = e.counters!;
    expect(c1.dispatches - c0.dispatches).toBe(100);
    expect(c1.submits - c0.submits).toBe(1);
    x.dispose();
    y.dispose();
  });
});

describe('errors', () => {
  it('using a disposed tensor throws', async () => {
    const e = await gpuEngine();
    const x = e.tensor([1, 2]);
    x.dispose();
    expect(() => ops.exp(x)).toThrow(DisposedTensorError);
  });
  it('a device validation error surfaces as an exception on readback', async () => {
    const e = await gpuEngine();
    const ctx = (e.backend as { ctx: import('../../src/engine/gpu-context').GpuContext }).ctx;
    const out = ops.empty(e.backend, [4]);
    ctx.dispatch(
      { key: 'test:broken', source: () => 'this is not WGSL', inputs: 0, outputs: 1 },
      { inputs: [], outputs: [(out.storage as unknown as { buffer: GPUBuffer }).buffer], uniforms: new Uint32Array(4), workgroups: [1] },
    );
    await expect(out.data()).rejects.toThrow(GpuValidationError);
    out.dispose();
    // The engine keeps working afterwards.
    const y = e.tensor([1, 2]);
    expect(Array.from(await ops.mul(y, 2).data())).toEqual([2, 4]);
  });
  it('a tensor over the binding limit is rejected with the limit named', async () => {
    const e = await gpuEngine();
    const limit = e.caps!.limits.maxStorageBufferBindingSize;
    expect(() => ops.empty(e.backend, [limit / 4 + 1])).toThrow(/maxStorageBufferBindingSize/);
  });
});

describe('f16 storage', () => {
  it('round-trips, computes in f32 and casts back', async () => {
    const e = await gpuEngine();
    if (!e.caps!.f16) return;
    const values = [0.1, -2.5, 65504, 1e-5, 3.14159];
    const h = e.tensor(values, [5], 'f16');
    const back = await h.data();
    // Half precision keeps 11 significant bits (relative error ≤ 2^-11); subnormals are spaced 2^-24.
    values.forEach((v, i) => expect(Math.abs(back[i] - v)).toBeLessThanOrEqual(Math.max(Math.abs(v) * 2 ** -11, 2 ** -24)));
    const y = ops.cast(ops.mul(h, 2), 'f32');
    expect((await y.data())[1]).toBe(-5);
    const a = e.tensor(randomValues(12), [3, 4], 'f16');
    const b = e.tensor(randomValues(8, 2), [4, 2], 'f16');
    const c = ops.matmul(a, b);
    expect(c.dtype).toBe('f16');
    const ref = ops.matmul(ops.cast(a, 'f32'), ops.cast(b, 'f32'));
    const cv = await c.data();
    const rv = await ref.data();
    cv.forEach((v, i) => expect(Math.abs(v - rv[i])).toBeLessThan(5e-3));
    for (const t of [h, y, a, b, c, ref]) t.dispose();
  });
});

describe('leaf gradients own their memory', () => {
  it('two leaves of one add get separate, contiguous gradient buffers', async () => {
    const e = await gpuEngine();
    const a = e.tensor([1, 2, 3]);
    const b = e.tensor([4, 5, 6]);
    const c = e.tensor([7], [1]);
    for (const t of [a, b, c]) t.requiresGrad = true;
    backward(tidy(() => ops.sum(ops.add(ops.add(a, b), c))));
    expect(a.grad!.storage).not.toBe(b.grad!.storage);
    expect(c.grad!.isContiguous && c.grad!.offset === 0).toBe(true);
    expect(Array.from(await c.grad!.data())).toEqual([3]);
    expect(Array.from(await a.grad!.data())).toEqual([1, 1, 1]);
    for (const t of [a, b, c]) t.dispose();
  });
});
