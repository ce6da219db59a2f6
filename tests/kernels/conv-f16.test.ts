import { afterAll, describe, expect, it } from 'vitest';
import { autocast } from '../../src/engine/autocast';
import { backward } from '../../src/engine/autograd';
import type { Engine } from '../../src/engine/engine';
import { tidy } from '../../src/engine/scope';
import { f16ToF32, f32ToF16, type Tensor } from '../../src/engine/tensor';
import { convBackwardData, convBackwardWeight, convNd, setConvTiling, type ConvOptions, type ConvTiling } from '../../src/kernels/conv';
import { mul } from '../../src/kernels/elementwise';
import { sum } from '../../src/kernels/reduce';
import { cpu, expectClose, gpuEngine, randomValues, releaseGpu } from '../helpers/oracle';

afterAll(releaseGpu);

/**
 * Convolution with f16 operands (f32 accumulation, f32 output): the inputs are rounded to f16 first and the
 * float64 reference runs on those rounded values, so the comparison is tight. Products of two f16 values
 * are exact in f32; what remains is f32 summation error (~1e-6 here), far below the ~5e-4 that an f16
 * accumulator or an f16-rounded output would leave.
 */
const TIGHT = { rtol: 2e-5, atol: 2e-5 };

const roundF16 = (v: ArrayLike<number>) => Float64Array.from(f16ToF32(f32ToF16(v)));
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

interface Case {
  name: string;
  x: number[];
  w: number[];
  bias: boolean;
  opts: ConvOptions;
}

/** Forward + all gradients inside autocast (f32 leaves) vs the float64 reference on the f16-rounded x and w. */
async function checkAutocast(c: Case): Promise<void> {
  const xv = randomValues(numel(c.x), 31);
  const wv = randomValues(numel(c.w), 32);
  const bv = randomValues(c.w[0], 33);
  const results: { y: Float64Array; grads: Float64Array[]; dtypes: string[] }[] = [];
  for (const [e, half] of [[await gpuEngine(), true], [cpu, false]] as [Engine, boolean][]) {
    const x = e.tensor(half ? xv : roundF16(xv), c.x);
    const w = e.tensor(half ? wv : roundF16(wv), c.w);
    const b = c.bias ? e.tensor(bv, [c.w[0]]) : null;
    const leaves = [x, w, ...(b ? [b] : [])];
    leaves.forEach((t) => (t.requiresGrad = true));
    const y = half ? autocast(() => convNd(x, w, b, c.opts)) : convNd(x, w, b, c.opts);
    const r = e.tensor(randomValues(y.size, 34), y.shape);
    backward(tidy(() => sum(mul(y, r))));
    results.push({ y: await y.dataF64(), grads: await Promise.all(leaves.map((t) => t.grad!.dataF64())), dtypes: [y.dtype, ...leaves.map((t) => t.grad!.dtype)] });
    [y, r, ...leaves].forEach((t) => t.dispose());
  }
  const [gpu, ref] = results;
  expect(gpu.dtypes, 'output and gradients are f32').toEqual(gpu.dtypes.map(() => 'f32'));
  expectClose(gpu.y, ref.y, TIGHT.rtol, TIGHT.atol, `${c.name}: forward`);
  ['dx', 'dw', 'db'].slice(0, gpu.grads.length).forEach((name, i) => expectClose(gpu.grads[i], ref.grads[i], TIGHT.rtol, TIGHT.atol, `${c.name}: ${name}`));
}

// Edge shapes: size-1 batch/channels/spatial dims, odd sizes, stride, padding, dilation, every rank.
// Few distinct channel counts, so few kernel variants get compiled.
const cases: Case[] = [
  { name: 'conv1d k7 s2 p3 (odd length)', x: [2, 3, 17], w: [4, 3, 7], bias: false, opts: { stride: 2, padding: 3 } },
  { name: 'conv1d k3 dilation 3 stride 2 + bias', x: [2, 2, 15], w: [4, 2, 3], bias: true, opts: { stride: 2, padding: 2, dilation: 3 } },
  { name: 'conv1d size-1 everything', x: [1, 1, 1], w: [1, 1, 1], bias: true, opts: {} },
  { name: 'conv2d k3 p1, 9×8, batch 2 + bias', x: [2, 3, 9, 8], w: [6, 3, 3, 3], bias: true, opts: { padding: 1 } },
  { name: 'conv2d dilation 2 padding 2, stride (2, 1)', x: [1, 2, 7, 9], w: [4, 2, 3, 3], bias: false, opts: { stride: [2, 1], padding: 2, dilation: 2 } },
  { name: 'conv3d k3 p1 + bias', x: [1, 3, 4, 5, 6], w: [4, 3, 3, 3, 3], bias: true, opts: { padding: 1 } },
  { name: 'conv3d k(1,3,3) s(1,2,2) p(0,1,1)', x: [2, 3, 3, 7, 6], w: [6, 3, 1, 3, 3], bias: false, opts: { stride: [1, 2, 2], padding: [0, 1, 1] } },
  { name: 'conv3d 1×1×1 input, k3 p1', x: [2, 2, 1, 1, 1], w: [4, 2, 3, 3, 3], bias: false, opts: { padding: 1 } },
];

describe('conv f16 operands under autocast, GPU vs float64 on the f16-rounded inputs (direct kernels: lavapipe default)', () => {
  for (const c of cases) it(c.name, () => checkAutocast(c));
  it('a long reduction (split weight gradient, 216 taps × channels)', () =>
    checkAutocast({ name: 'conv2d 2×4×16×16 k3', x: [2, 4, 16, 16], w: [6, 4, 3, 3], bias: true, opts: { padding: 1 } }));
});

describe('conv f16 operands: shared-memory tiled kernels', () => {
  const tilings: ConvTiling[] = [{ bm: 64, bn: 16, bk: 16, tm: 8, tn: 4 }];
  for (const t of tilings) {
    it(JSON.stringify(t), async () => {
      setConvTiling(t);
      try {
        // One case: each tiled kernel (forward with bias, backward data, weight gradient) costs ~15 s of
        // first-run compilation on lavapipe.
        await checkAutocast(cases[3]);
      } finally {
        setConvTiling(null);
      }
    });
  }
});

describe('conv with f16 tensors (no autocast)', () => {
  it('f16 x and w: f32 output; gradients in f16 (their inputs\' dtype); raw backward ops take f16 operands', async () => {
    const gpu = await gpuEngine();
    const c = cases[3];
    const xv = roundF16(randomValues(numel(c.x), 41));
    const wv = roundF16(randomValues(numel(c.w), 42));
    const x = gpu.tensor(xv, c.x, 'f16');
    const w = gpu.tensor(wv, c.w, 'f16');
    x.requiresGrad = true;
    w.requiresGrad = true;
    const y = convNd(x, w, null, c.opts);
    expect(y.dtype).toBe('f32');
    const xr = cpu.tensor(xv, c.x);
    const wr = cpu.tensor(wv, c.w);
    const yr = convNd(xr, wr, null, c.opts);
    expectClose(await y.dataF64(), yr.toFloat64Sync(), TIGHT.rtol, TIGHT.atol, 'forward');
    const gyv = randomValues(y.size, 43);
    const gy = gpu.tensor(gyv, y.shape);
    const gyr = cpu.tensor(gyv, y.shape);
    backward(tidy(() => sum(mul(y, gy))));
    expect(x.grad!.dtype).toBe('f16');
    expect(w.grad!.dtype).toBe('f16');
    const dxr = convBackwardData(gyr, wr, c.x, c.opts);
    const dwr = convBackwardWeight(xr, gyr, c.w, c.opts);
    // Autograd's gradients are stored in f16: rounding of the f32 result only.
    expectClose(await x.grad!.dataF64(), dxr.toFloat64Sync(), 1e-3, 1e-3, 'dx (f16)');
    expectClose(await w.grad!.dataF64(), dwr.toFloat64Sync(), 1e-3, 1e-3, 'dw (f16)');
    // The raw ops return f32 computed from the f16 operands: tight.
    const dx = convBackwardData(gy, w, c.x, c.opts);
    const dw = convBackwardWeight(x, gy, c.w, c.opts);
    expect([dx.dtype, dw.dtype]).toEqual(['f32', 'f32']);
    expectClose(await dx.dataF64(), dxr.toFloat64Sync(), TIGHT.rtol, TIGHT.atol, 'convBackwardData');
    expectClose(await dw.dataF64(), dwr.toFloat64Sync(), TIGHT.rtol, TIGHT.atol, 'convBackwardWeight');
    [x, w, y, gy, xr, wr, yr, gyr, dxr, dwr, dx, dw].forEach((t: Tensor) => t.dispose());
  });
  it('autocast is a no-op on the float64 reference backend', () => {
    const x = cpu.tensor(randomValues(2 * 3 * 9, 51), [2, 3, 9]);
    const w = cpu.tensor(randomValues(4 * 3 * 3, 52), [4, 3, 3]);
    const inside = autocast(() => convNd(x, w, null, { padding: 1 }));
    const outside = convNd(x, w, null, { padding: 1 });
    expect(Array.from(inside.toFloat64Sync())).toEqual(Array.from(outside.toFloat64Sync()));
    [x, w, inside, outside].forEach((t) => t.dispose());
  });
});
