import { afterAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../src/engine/tensor';
import { ShapeError } from '../../src/engine/errors';
import { conv1d, conv2d, conv3d, convNd, setConvTiling, type ConvOptions } from '../../src/kernels/conv';
import { convForwardRef } from '../../src/kernels/reference/conv';
import { slice } from '../../src/kernels/views';
import { compareWithReference, cpu, gradCheck, releaseGpu } from '../helpers/oracle';

afterAll(releaseGpu);

const tol = { rtol: 1e-4, atol: 1e-4 };

interface Case {
  name: string;
  x: number[];
  w: number[];
  bias: boolean;
  opts: ConvOptions;
}

const conv = (bias: boolean, opts: ConvOptions) => (bias ? (x: Tensor, w: Tensor, b: Tensor) => convNd(x, w, b, opts) : (x: Tensor, w: Tensor) => convNd(x, w, null, opts));
const specs = (c: Case) => [{ shape: c.x }, { shape: c.w }, ...(c.bias ? [{ shape: [c.w[0]] }] : [])];

// Every variant of REFERENCE_SPEC §10.2 at tiny sizes (odd spatial sizes, batch 1 and 2).
const variants: Case[] = [
  { name: 'conv1d k7 s2 p3', x: [2, 3, 17], w: [4, 3, 7], bias: false, opts: { stride: 2, padding: 3 } },
  { name: 'conv1d k3 s1 p1', x: [2, 3, 9], w: [5, 3, 3], bias: false, opts: { padding: 1 } },
  { name: 'conv1d k3 s2 p1', x: [1, 4, 10], w: [3, 4, 3], bias: false, opts: { stride: 2, padding: 1 } },
  { name: 'conv1d k1 s1', x: [2, 5, 7], w: [3, 5, 1], bias: false, opts: {} },
  { name: 'conv1d k1 s2', x: [2, 5, 8], w: [3, 5, 1], bias: false, opts: { stride: 2 } },
  { name: 'conv1d k1 bias', x: [2, 3, 5], w: [4, 3, 1], bias: true, opts: {} },
  { name: 'conv1d k3 bias', x: [2, 3, 11], w: [4, 3, 3], bias: true, opts: { padding: 1 } },
  { name: 'conv1d k7 bias', x: [1, 2, 13], w: [6, 2, 7], bias: true, opts: { padding: 3 } },
  { name: 'conv3d k3 s1 p1', x: [1, 3, 4, 5, 6], w: [4, 3, 3, 3, 3], bias: true, opts: { padding: 1 } },
  { name: 'conv3d k(1,3,3) s(1,2,2) p(0,1,1)', x: [2, 3, 3, 7, 6], w: [5, 3, 1, 3, 3], bias: true, opts: { stride: [1, 2, 2], padding: [0, 1, 1] } },
  { name: 'conv3d k1', x: [2, 5, 3, 4, 5], w: [3, 5, 1, 1, 1], bias: true, opts: {} },
  { name: 'conv3d k4 s2 p1', x: [1, 2, 6, 7, 8], w: [3, 2, 4, 4, 4], bias: true, opts: { stride: 2, padding: 1 } },
  { name: 'conv3d k(3,4,4) s2 p1', x: [1, 2, 5, 8, 7], w: [3, 2, 3, 4, 4], bias: true, opts: { stride: 2, padding: 1 } },
  { name: 'conv3d k(1,4,4) s1 p(0,1,1)', x: [1, 3, 3, 6, 5], w: [2, 3, 1, 4, 4], bias: true, opts: { padding: [0, 1, 1] } },
  { name: 'conv2d VGG k3 p1', x: [2, 3, 9, 8], w: [6, 3, 3, 3], bias: true, opts: { padding: 1 } },
];

describe('conv: every REFERENCE_SPEC variant, GPU vs float64 (forward, dx, dw, db)', () => {
  for (const c of variants) {
    it(c.name, async () => {
      await compareWithReference(conv(c.bias, c.opts), specs(c), tol);
    });
  }
});

describe('conv: tiling edges', () => {
  it('several row and column tiles, long depth (VGG-like channels)', async () => {
    await compareWithReference(conv(true, { padding: 1 }), [{ shape: [1, 20, 7, 9] }, { shape: [70, 20, 3, 3] }, { shape: [70] }], tol);
  });
  it('rows beyond one tile and a split-K weight gradient', async () => {
    await compareWithReference(conv(false, { padding: 1 }), [{ shape: [2, 3, 16, 16] }, { shape: [4, 3, 3, 3] }], tol);
  });
  it('more than 64 kernel taps (tap table of 128)', async () => {
    await compareWithReference(conv(false, { padding: [1, 2, 2] }), [{ shape: [1, 1, 3, 6, 6] }, { shape: [2, 1, 3, 5, 5] }], tol);
  });
  it('size-1 batch and channels', async () => {
    await compareWithReference(conv(true, { padding: 1 }), [{ shape: [1, 1, 5, 5] }, { shape: [1, 1, 3, 3] }, { shape: [1] }], tol);
  });
  it('1×1 spatial input with padding', async () => {
    await compareWithReference(conv(false, { padding: 1 }), [{ shape: [2, 2, 1, 1, 1] }, { shape: [3, 2, 3, 3, 3] }], tol);
  });
  it('stride larger than the kernel (input positions no tap reaches get zero gradient)', async () => {
    await compareWithReference(conv(true, { stride: 3 }), [{ shape: [2, 3, 10] }, { shape: [2, 3, 1] }, { shape: [2] }], tol);
  });
});

describe('conv: both kernel variants (shared-memory tiles and barrier-free direct)', () => {
  const tilings = [
    { bm: 64, bn: 16, bk: 16, tm: 8, tn: 4 },
    { bm: 64, bn: 64, bk: 16, tm: 8, tn: 4 },
    { direct: true, workgroup: 64, bm: 0, bn: 0, bk: 0, tm: 4, tn: 8 },
    { direct: true, workgroup: 64, bm: 0, bn: 0, bk: 0, tm: 4, tn: 4 },
  ];
  for (const t of tilings) {
    it(JSON.stringify(t), async () => {
      setConvTiling(t);
      try {
        await compareWithReference(conv(true, { stride: [1, 2, 2], padding: 1 }), [{ shape: [2, 3, 3, 7, 6] }, { shape: [10, 3, 3, 3, 3] }, { shape: [10] }], tol);
        await compareWithReference(conv(false, { stride: 2, padding: 3 }), [{ shape: [1, 3, 17] }, { shape: [5, 3, 7] }], tol);
      } finally {
        setConvTiling(null);
      }
    });
  }
});

describe('conv: dilation and strided views', () => {
  it('conv2d dilation 2, padding 2', async () => {
    await compareWithReference(conv(false, { padding: 2, dilation: 2 }), [{ shape: [1, 2, 7, 9] }, { shape: [3, 2, 3, 3] }], tol);
  });
  it('conv1d dilation 3 with stride 2', async () => {
    await compareWithReference(conv(true, { stride: 2, padding: 2, dilation: 3 }), [{ shape: [2, 2, 15] }, { shape: [3, 2, 3] }, { shape: [3] }], tol);
  });
  it('conv3d per-dim dilation (1,2,1) and stride (2,1,2)', async () => {
    await compareWithReference(conv(false, { stride: [2, 1, 2], padding: 1, dilation: [1, 2, 1] }), [{ shape: [1, 2, 5, 7, 6] }, { shape: [2, 2, 3, 3, 3] }], tol);
  });
  it('non-contiguous (channels-last) input and permuted weight', async () => {
    await compareWithReference(conv(true, { stride: 2, padding: 1 }), [
      { shape: [2, 3, 7, 6], permuted: [0, 2, 3, 1] },
      { shape: [4, 3, 3, 3], permuted: [2, 3, 1, 0] },
      { shape: [4] },
    ], tol);
  });
  it('input view with an element offset (a slice)', async () => {
    const op = (x: Tensor, w: Tensor) => conv3d(slice(x, 3, 1, 6), w, null, { stride: [1, 2, 2], padding: [0, 1, 1] });
    await compareWithReference(op, [{ shape: [1, 2, 3, 7, 6] }, { shape: [3, 2, 1, 3, 3] }], tol);
  });
});

describe('conv: backward rules against finite differences (float64)', () => {
  it('conv1d k3 s2 p1 with bias', async () => {
    await gradCheck((x, w, b) => conv1d(x, w, b, { stride: 2, padding: 1 }), [{ shape: [1, 2, 6] }, { shape: [2, 2, 3] }, { shape: [2] }]);
  });
  it('conv2d k3 dilation 2 stride 2', async () => {
    await gradCheck((x, w) => conv2d(x, w, null, { stride: 2, padding: 2, dilation: 2 }), [{ shape: [1, 1, 5, 5] }, { shape: [2, 1, 3, 3] }]);
  });
  it('conv3d k(1,3,3) s(1,2,2) p(0,1,1)', async () => {
    await gradCheck((x, w) => conv3d(x, w, null, { stride: [1, 2, 2], padding: [0, 1, 1] }), [{ shape: [1, 1, 2, 4, 4] }, { shape: [2, 1, 1, 3, 3] }]);
  });
  it('conv3d k4 s2 p1 (non-contiguous input)', async () => {
    await gradCheck((x, w) => conv3d(x, w, null, { stride: 2, padding: 1 }), [{ shape: [1, 1, 4, 4, 4], permuted: [0, 1, 4, 3, 2] }, { shape: [1, 1, 4, 4, 4] }]);
  });
});

describe('conv: reference and arguments', () => {
  it('float64 reference matches a hand-computed 1-D case', () => {
    // x = [1, 2, 3], w = [1, 10], padding 1: windows [0,1] [1,2] [2,3] [3,0].
    const y = convForwardRef(Float64Array.from([1, 2, 3]), Float64Array.from([1, 10]), Float64Array.from([0.5]), {
      batch: 1, cin: 1, cout: 1, inSize: [1, 1, 3], kernel: [1, 1, 2], stride: [1, 1, 1], padding: [0, 0, 1], dilation: [1, 1, 1], outSize: [1, 1, 4],
    });
    expect(Array.from(y)).toEqual([10.5, 21.5, 32.5, 3.5]);
  });
  it('output shapes follow PyTorch', () => {
    const x = cpu.tensor(new Float64Array(2 * 3 * 50 * 12 * 12), [2, 3, 50, 12, 12]);
    const w = cpu.tensor(new Float64Array(4 * 3 * 3 * 4 * 4), [4, 3, 3, 4, 4]);
    const y = conv3d(x, w, null, { stride: 2, padding: 1 });
    expect(y.shape).toEqual([2, 4, 25, 6, 6]);
    [x, w, y].forEach((t) => t.dispose());
  });
  it('rejects mismatched channels, ranks and kernels larger than the padded input', () => {
    const x = cpu.tensor(new Float64Array(2 * 3 * 5), [2, 3, 5]);
    const w = cpu.tensor(new Float64Array(4 * 2 * 3), [4, 2, 3]);
    const wBig = cpu.tensor(new Float64Array(4 * 3 * 9), [4, 3, 9]);
    expect(() => conv1d(x, w)).toThrow(ShapeError);
    expect(() => conv2d(x, wBig)).toThrow(ShapeError);
    expect(() => conv1d(x, wBig)).toThrow(ShapeError);
    expect(() => conv1d(x, wBig, null, { stride: [1, 1] })).toThrow(ShapeError);
    [x, w, wBig].forEach((t) => t.dispose());
  });
});
