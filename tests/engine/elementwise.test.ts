import { afterAll, describe, expect, it } from 'vitest';
import * as ops from '../../src/index';
import type { Tensor } from '../../src/index';
import { compareWithReference, gradCheck, releaseGpu } from '../helpers/oracle';
import { coalesceDims } from '../../src/engine/shape';

afterAll(releaseGpu);

const positive = (shape: number[], seed = 1) => ({ shape, values: Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => 0.2 + ((i * 7919 + seed * 104729) % 997) / 400) });

const unary: [string, (x: Tensor) => Tensor, boolean][] = [
  ['neg', ops.neg, false],
  ['exp', ops.exp, false],
  ['log', ops.log, true],
  ['sqrt', ops.sqrt, true],
  ['rsqrt', ops.rsqrt, true],
  ['abs', ops.abs, false],
  ['sin', ops.sin, false],
  ['cos', ops.cos, false],
  ['erf', ops.erf, false],
  ['relu', ops.relu, false],
  ['leakyRelu', (x) => ops.leakyRelu(x, 0.2), false],
  ['silu', ops.silu, false],
  ['gelu', ops.gelu, false],
  ['sigmoid', ops.sigmoid, false],
  ['tanh', ops.tanh, false],
  ['square', ops.square, false],
  ['pow 3', (x) => ops.pow(x, 3), false],
  ['pow 0.5', (x) => ops.pow(x, 0.5), true],
  ['reciprocal', ops.reciprocal, true],
  ['clamp', (x) => ops.clamp(x, -0.3, 0.4), false],
  ['addScalar', (x) => ops.add(x, 2.5), false],
  ['mulScalar', (x) => ops.mul(x, -1.5), false],
];

describe('unary elementwise', () => {
  for (const [name, fn, needsPositive] of unary) {
    it(`${name}: GPU matches float64 reference (odd shape)`, async () => {
      await compareWithReference(fn, [needsPositive ? positive([3, 5, 7]) : { shape: [3, 5, 7] }]);
    });
    it(`${name}: gradient check`, async () => {
      await gradCheck(fn, [needsPositive ? positive([2, 3]) : { shape: [2, 3] }]);
    });
  }
  it('non-contiguous input and size-1 dims', async () => {
    await compareWithReference(ops.gelu, [{ shape: [4, 1, 6], permuted: [2, 1, 0] }]);
    await compareWithReference(ops.exp, [{ shape: [1] }]);
  });
});

const binary: [string, (a: Tensor, b: Tensor) => Tensor][] = [
  ['add', ops.add],
  ['sub', ops.sub],
  ['mul', ops.mul],
  ['div', ops.div],
  ['minimum', ops.minimum],
  ['maximum', ops.maximum],
];

describe('binary elementwise with broadcasting', () => {
  for (const [name, fn] of binary) {
    it(`${name}: broadcast [3,1,5] with [4,1]`, async () => {
      await compareWithReference(fn, [{ shape: [3, 1, 5] }, { shape: [4, 1], values: name === 'div' ? [0.5, 1.5, -2, 3] : undefined }]);
    });
    it(`${name}: gradient check with broadcasting`, async () => {
      await gradCheck(fn, [{ shape: [2, 3] }, { shape: [3], values: name === 'div' ? [0.7, -1.3, 2] : undefined }]);
    });
  }
  it('pow with tensor exponent', async () => {
    await compareWithReference(ops.pow, [positive([2, 3]), { shape: [2, 3] }]);
    await gradCheck(ops.pow, [positive([2, 3]), { shape: [2, 3] }]);
  });
  it('where and comparisons', async () => {
    const whereFn = (c: Tensor, a: Tensor, b: Tensor) => ops.where(ops.gt(c, 0), a, b);
    await compareWithReference(whereFn, [{ shape: [3, 4] }, { shape: [3, 4] }, { shape: [4] }]);
    await gradCheck(whereFn, [{ shape: [3, 4], requiresGrad: false }, { shape: [3, 4] }, { shape: [1, 4] }]);
    for (const cmp of [ops.eq, ops.ne, ops.lt, ops.le, ops.gt, ops.ge]) {
      await compareWithReference((a, b) => cmp(a, b), [{ shape: [2, 3], values: [1, 2, 3, 4, 5, 6] }, { shape: [3], values: [2, 2, 6] }], { forwardOnly: true });
    }
  });
  it('non-contiguous operands', async () => {
    await compareWithReference(ops.mul, [{ shape: [5, 3, 2], permuted: [1, 2, 0] }, { shape: [5, 3, 2], permuted: [2, 0, 1] }]);
  });
});

describe('coalesceDims', () => {
  it('drops size-1 dims and merges dims every view steps over as one', () => {
    // Contiguous [2,3,4] and a [2,1,4] broadcast over dim 1: only the leading pair cannot merge for the broadcast.
    expect(coalesceDims([2, 3, 4], [[12, 4, 1], [4, 0, 1]])).toEqual({ shape: [2, 3, 4], strides: [[12, 4, 1], [4, 0, 1]] });
    expect(coalesceDims([2, 3, 4], [[12, 4, 1], [12, 4, 1]])).toEqual({ shape: [24], strides: [[1], [1]] });
    // A transposed view [B, T, L] → [B, L, T] against a contiguous output: B stays, L·T cannot merge.
    expect(coalesceDims([2, 5, 3], [[15, 3, 1], [15, 1, 5]])).toEqual({ shape: [2, 5, 3], strides: [[15, 3, 1], [15, 1, 5]] });
    // Size-1 dims with any stride vanish; a scalar broadcast keeps zeros and merges.
    expect(coalesceDims([1, 4, 1, 6], [[24, 6, 99, 1], [0, 0, 0, 0]])).toEqual({ shape: [24], strides: [[1], [0]] });
    expect(coalesceDims([1, 1], [[1, 1]])).toEqual({ shape: [1], strides: [[0]] });
  });
});
