/**
 * The kernel conformance table: every op family, forward and backward, on the GPU against the float64
 * reference, over the edge shapes (size-1 dims, odd sizes, non-contiguous views, broadcasting, more than
 * one workgroup/tile, forced kernel variants). Framework-free: run by tests/conformance/conformance.test.ts
 * under vitest (Dawn) and by scripts/conformance.ts under Deno (wgpu). Each operand as an offset, strided or
 * broadcast view is in operand-view-table.ts; a case here that the operand-view table already covers was removed.
 * Shapes stay tiny: lavapipe runs a few GFLOP/s and compiles each pipeline in ~0.5-1 s.
 */
import type { Tensor } from '../../src/engine/tensor';
import { autocast } from '../../src/engine/autocast';
import * as ops from '../../src/kernels/elementwise';
import { max, mean, min, std, sum, variance } from '../../src/kernels/reduce';
import { softmax, logSoftmax } from '../../src/kernels/softmax';
import { linear, matmul, setMatmulTiling } from '../../src/kernels/matmul';
import type { MatmulTiling } from '../../shaders/matmul.wgsl';
import { setSubgroupMatmul, setSubgroupMatmulEmulation, subgroupMatmulDispatches } from '../../src/kernels/matmul-subgroup';
import { concat } from '../../src/kernels/layout';
import { contiguous, expand, permute, reshape, slice, split, transpose } from '../../src/kernels/views';
import { conv1d, conv2d, conv3d, setConvTiling, type ConvTiling } from '../../src/kernels/conv';
import { avgPool1d, avgPool2d, avgPool3d, maxPool1d, maxPool3d } from '../../src/kernels/pool';
import { interpolateLinear1d, resizeBilinear2d, upsampleNearest } from '../../src/kernels/resample';
import { batchNorm, groupNorm, layerNorm } from '../../src/kernels/norm';
import { attention, attentionWithLogSumExp } from '../../src/kernels/attention';
import { gaussianKl, l1Loss, mseLoss, pixelOutlierPenalty } from '../../src/kernels/loss';
import { dropout } from '../../src/kernels/dropout';
import { Generator, rand, randn } from '../../src/kernels/random';
import { ConformanceFailure, seededValues, type CompareCase, type ConformanceCase } from './harness';
import { optimizerCases } from './optimizer-table';

const unary: [string, (x: Tensor) => Tensor, number, number][] = [
  // name, op, lo, hi: the input range keeps each op inside its domain.
  ['neg', ops.neg, -2, 2],
  ['exp', ops.exp, -3, 3],
  ['log', ops.log, 0.1, 4],
  ['sqrt', ops.sqrt, 0.1, 4],
  ['rsqrt', ops.rsqrt, 0.2, 4],
  ['abs', ops.abs, -2, 2],
  ['sin', ops.sin, -4, 4],
  ['cos', ops.cos, -4, 4],
  ['erf', ops.erf, -3, 3],
  ['square', ops.square, -2, 2],
  ['relu', ops.relu, -2, 2],
  ['leakyRelu', (x) => ops.leakyRelu(x, 0.2), -2, 2],
  ['silu', ops.silu, -5, 5],
  ['gelu', ops.gelu, -5, 5],
  ['sigmoid', ops.sigmoid, -8, 8],
  ['tanh', ops.tanh, -4, 4],
  ['clamp', (x) => ops.clamp(x, -0.5, 0.7), -2, 2],
  ['reciprocal', ops.reciprocal, 0.3, 3],
  ['addScalar', (x) => ops.addScalar(x, 1.5), -2, 2],
  ['mulScalar', (x) => ops.mulScalar(x, -0.75), -2, 2],
];

const elementwise: CompareCase[] = [
  ...unary.map(([name, op, lo, hi]): CompareCase => ({
    name: `elementwise ${name} [3, 1, 37] non-contiguous`,
    op,
    inputs: [{ shape: [3, 1, 37], values: seededValues(111, 5, lo, hi), permuted: [2, 0, 1] }],
  })),
  { name: 'elementwise sign (no gradient) [2, 9]', op: ops.sign, inputs: [{ shape: [2, 9] }], forwardOnly: true },
  { name: 'elementwise atan2 (no gradient) [4, 5]', op: ops.atan2, inputs: [{ shape: [4, 5] }, { shape: [4, 5] }], forwardOnly: true },
  { name: 'binary add broadcast [2, 1, 7] + [5, 1]', op: ops.add, inputs: [{ shape: [2, 1, 7] }, { shape: [5, 1] }] },
  { name: 'binary sub broadcast scalar-shaped [] - [3, 4]', op: ops.sub, inputs: [{ shape: [] }, { shape: [3, 4] }] },
  { name: 'binary mul broadcast, both strided', op: ops.mul, inputs: [{ shape: [4, 3, 5], permuted: [2, 1, 0] }, { shape: [3, 1], permuted: [1, 0] }] },
  { name: 'binary div [6, 7] / [7]', op: ops.div, inputs: [{ shape: [6, 7] }, { shape: [7], values: seededValues(7, 3, 0.5, 2) }] },
  { name: 'binary pow [5, 4] ^ 3', op: (x) => ops.pow(x, 3), inputs: [{ shape: [5, 4] }] },
  { name: 'binary pow positive base ^ tensor', op: ops.pow, inputs: [{ shape: [3, 4], values: seededValues(12, 9, 0.5, 2) }, { shape: [3, 4] }] },
  { name: 'binary minimum / maximum [3, 8] with [8]', op: (a, b) => ops.add(ops.minimum(a, b), ops.maximum(a, b)), inputs: [{ shape: [3, 8] }, { shape: [8] }] },
  {
    name: 'comparisons eq/ne/lt/le/gt/ge (no gradient)',
    op: (a, b) => ops.add(ops.add(ops.lt(a, b), ops.ge(a, b)), ops.add(ops.mul(ops.eq(a, a), 2), ops.ne(a, b))),
    inputs: [{ shape: [4, 6] }, { shape: [6] }],
    forwardOnly: true,
  },
  {
    name: 'where with broadcast condition',
    op: (c, x, y) => ops.where(ops.gt(c, 0), x, y),
    inputs: [{ shape: [1, 6], requiresGrad: false }, { shape: [3, 6] }, { shape: [3, 1] }],
  },
  { name: 'cast f32 → i32 → f32 (no gradient)', op: (x) => ops.cast(ops.cast(ops.mulScalar(x, 10), 'i32'), 'f32'), inputs: [{ shape: [17] }], forwardOnly: true },
];

const reductions: CompareCase[] = [
  { name: 'sum axis 1 keepdim, non-contiguous', op: (x) => sum(x, 1, { keepdim: true }), inputs: [{ shape: [4, 9, 3], permuted: [2, 0, 1] }] },
  { name: 'sum axes [0, 2] over 1000 rows', op: (x) => sum(x, [0, 2]), inputs: [{ shape: [4, 1000, 3] }], rtol: 1e-4, atol: 1e-4 },
  { name: 'mean all and mean of size-1 axis', op: (x) => ops.add(mean(x), mean(x, 1)), inputs: [{ shape: [6, 1] }] },
  { name: 'max axis -1 (long rows: 3000)', op: (x) => max(x, -1), inputs: [{ shape: [2, 3000] }] },
  { name: 'min all', op: (x) => min(x), inputs: [{ shape: [7, 5] }] },
  { name: 'variance and std along 0', op: (x) => ops.add(variance(x, 0), std(x, 0)), inputs: [{ shape: [9, 4] }], rtol: 1e-3, atol: 1e-4 },
  { name: 'softmax last axis [3, 1, 33]', op: (x) => softmax(x), inputs: [{ shape: [3, 1, 33] }] },
  { name: 'softmax axis 0, non-contiguous', op: (x) => softmax(x, 0), inputs: [{ shape: [5, 4, 3], permuted: [1, 2, 0] }] },
  { name: 'softmax 600 rows of 7 (per-row kernel)', op: (x) => softmax(x), inputs: [{ shape: [600, 7] }] },
  { name: 'logSoftmax long row 2050', op: (x) => logSoftmax(x), inputs: [{ shape: [2, 2050] }], atol: 1e-4 },
];

const matmulTilings: MatmulTiling[] = [
  { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 },
  { bm: 16, bn: 64, bk: 16, tm: 1, tn: 4 },
  { direct: true, workgroup: 64, bm: 0, bn: 0, bk: 0, tm: 4, tn: 8 },
];
const withMatmulTiling = (t: MatmulTiling) => () => {
  setMatmulTiling(t);
  return () => setMatmulTiling(null);
};
const mm = { rtol: 1e-4, atol: 1e-4 };

/**
 * linear(x, W[d:3d], b[d:3d]) — the DiT cross-attention splits in_proj exactly like this — or, `stepped`,
 * with the bias b[1:4d+1:2]. The matmul epilogue once read `bias[col]`, ignoring the bias view's offset and
 * stride; both operands are views of larger leaves, whose whole gradients are compared.
 */
const slicedLinearInputs = (d: number) => [{ shape: [5, d] }, { shape: [3 * d, d] }, { shape: [6 * d], values: seededValues(6 * d, 3, 0.5, 4) }];
const slicedLinear = (d: number, stepped: boolean) => (x: Tensor, w: Tensor, b: Tensor) =>
  linear(x, slice(w, 0, d, 3 * d), stepped ? slice(b, 0, 1, 4 * d + 1, 2) : slice(b, 0, d, 3 * d));

/** The subgroup-matrix kernel with its matrix builtins emulated in plain WGSL: compiles on any adapter. */
const emulatedSubgroupMatmul = () => {
  setSubgroupMatmulEmulation({ config: { componentType: 'f16', resultComponentType: 'f32', M: 8, N: 8, K: 8 }, subgroupSize: 32 });
  const previous = setSubgroupMatmul('force');
  return () => {
    setSubgroupMatmulEmulation(null);
    setSubgroupMatmul(previous);
  };
};

const matmuls: CompareCase[] = [
  { name: 'matmul batched broadcast [2, 1, 7, 9] × [3, 9, 4]', op: matmul, inputs: [{ shape: [2, 1, 7, 9] }, { shape: [3, 9, 4] }], ...mm },
  { name: 'matmul vector × matrix and matrix × vector', op: (v, m) => ops.add(matmul(v, m), sum(matmul(transpose(m), v))), inputs: [{ shape: [9] }, { shape: [9, 5] }], ...mm },
  { name: 'matmul size 1', op: matmul, inputs: [{ shape: [1, 1] }, { shape: [1, 1] }], ...mm },
  { name: 'matmul transposed operands (strided)', op: (a, b) => matmul(transpose(a), transpose(b)), inputs: [{ shape: [9, 7] }, { shape: [11, 9] }], ...mm },
  { name: 'matmul tall-skinny [130, 3] × [3, 70]', op: matmul, inputs: [{ shape: [130, 3] }, { shape: [3, 70] }], ...mm },
  { name: 'matmul larger than one tile [2, 70, 150] × [150, 90]', op: matmul, inputs: [{ shape: [2, 70, 150] }, { shape: [150, 90] }], ...mm },
  { name: 'linear without bias', op: (x, w) => linear(x, w), inputs: [{ shape: [4, 7] }, { shape: [6, 7] }], ...mm },
  ...matmulTilings.flatMap((t): CompareCase[] => [
    { name: `matmul variant ${JSON.stringify(t)} [2, 67, 33] × [33, 71]`, op: matmul, inputs: [{ shape: [2, 67, 33] }, { shape: [33, 71] }], variant: withMatmulTiling(t), ...mm },
    { name: `linear variant ${JSON.stringify(t)}`, op: (x, w, b) => linear(x, w, b), inputs: [{ shape: [5, 9] }, { shape: [7, 9] }, { shape: [7] }], variant: withMatmulTiling(t), ...mm },
  ]),
  ...[false, true].flatMap((stepped): CompareCase[] => {
    const bias = stepped ? 'stepped bias b[1:4d+1:2]' : 'sliced bias b[d:3d]';
    return [
      { name: `linear on a sliced weight W[d:3d] and a ${bias}`, op: slicedLinear(8, stepped), inputs: slicedLinearInputs(8), ...mm },
      ...matmulTilings.map((t): CompareCase => ({ name: `linear variant ${JSON.stringify(t)}, sliced weight and ${bias}`, op: slicedLinear(8, stepped), inputs: slicedLinearInputs(8), variant: withMatmulTiling(t), ...mm })),
      {
        name: `subgroup-matrix linear, emulated 8×8×8 matrices, f16 sliced weight and f16 ${bias} (no gradient)`,
        op: (x, w, b) => {
          const [xh, wh, bh] = [x, w, b].map((t) => ops.cast(t, 'f16'));
          const y = ops.cast(slicedLinear(8, stepped)(xh, wh, bh), 'f32');
          for (const t of [xh, wh, bh]) t.dispose();
          return y;
        },
        inputs: slicedLinearInputs(8),
        variant: emulatedSubgroupMatmul,
        forwardOnly: true,
        rtol: 2e-2,
        atol: 2e-2,
        requires: 'f16',
      },
    ];
  }),
  {
    name: 'subgroup-matrix matmul, emulated 8×8×8 matrices, f16 [67, 45] × [45, 33] (no gradient)',
    op: (a, b) => {
      const before = subgroupMatmulDispatches();
      const y = ops.cast(matmul(ops.cast(a, 'f16'), ops.cast(b, 'f16')), 'f32');
      if (a.backend.kind === 'webgpu' && subgroupMatmulDispatches() !== before + 1) throw new ConformanceFailure('the subgroup-matrix kernel did not run');
      return y;
    },
    inputs: [{ shape: [67, 45] }, { shape: [45, 33] }],
    variant: emulatedSubgroupMatmul,
    forwardOnly: true,
    rtol: 1e-2,
    atol: 1e-2,
    requires: 'f16',
  },
  {
    name: 'autocast matmul (f16 operands, f32 out)',
    op: (a, b) => autocast(() => matmul(a, b)),
    inputs: [{ shape: [6, 20] }, { shape: [20, 5] }],
    rtol: 1e-2,
    atol: 1e-2,
    requires: 'f16',
  },
];

const layout: CompareCase[] = [
  { name: 'split and concat back', op: (x) => concat(split(x, [1, 3, 2], 1).reverse(), 1), inputs: [{ shape: [2, 6, 3] }] },
  { name: 'contiguous of permute + slice with step', op: (x) => contiguous(slice(permute(x, [2, 0, 1]), 2, 1, 5, 2)), inputs: [{ shape: [3, 6, 4] }] },
  { name: 'expand then reshape', op: (x) => reshape(ops.mul(expand(x, [4, 3, 5]), 1), [12, 5]), inputs: [{ shape: [1, 3, 1] }] },
];

const convTilings: ConvTiling[] = [
  { bm: 64, bn: 16, bk: 16, tm: 8, tn: 4 },
  { bm: 64, bn: 64, bk: 16, tm: 8, tn: 4 },
  { direct: true, workgroup: 64, bm: 0, bn: 0, bk: 0, tm: 4, tn: 8 },
  { direct: true, workgroup: 64, bm: 0, bn: 0, bk: 0, tm: 4, tn: 4 },
];
const cv = { rtol: 1e-4, atol: 1e-4 };

const convolutions: CompareCase[] = [
  { name: 'conv1d stride 2 padding 2 dilation 3 + bias', op: (x, w, b) => conv1d(x, w, b, { stride: 2, padding: 2, dilation: 3 }), inputs: [{ shape: [2, 2, 15] }, { shape: [3, 2, 3] }, { shape: [3] }], ...cv },
  { name: 'conv1d stride larger than kernel', op: (x, w, b) => conv1d(x, w, b, { stride: 3 }), inputs: [{ shape: [2, 3, 10] }, { shape: [2, 3, 1] }, { shape: [2] }], ...cv },
  { name: 'conv2d size-1 batch and channels, padding 1', op: (x, w, b) => conv2d(x, w, b, { padding: 1 }), inputs: [{ shape: [1, 1, 5, 5] }, { shape: [1, 1, 3, 3] }, { shape: [1] }], ...cv },
  { name: 'conv2d dilation 2 on a non-contiguous input', op: (x, w) => conv2d(x, w, null, { padding: 2, dilation: 2 }), inputs: [{ shape: [1, 2, 7, 9], permuted: [0, 2, 3, 1] }, { shape: [3, 2, 3, 3] }], ...cv },
  { name: 'conv3d 1×1×1 spatial input, padding 1', op: (x, w) => conv3d(x, w, null, { padding: 1 }), inputs: [{ shape: [2, 2, 1, 1, 1] }, { shape: [3, 2, 3, 3, 3] }], ...cv },
  { name: 'conv3d per-dim stride and dilation', op: (x, w) => conv3d(x, w, null, { stride: [2, 1, 2], padding: 1, dilation: [1, 2, 1] }), inputs: [{ shape: [1, 2, 5, 7, 6] }, { shape: [2, 2, 3, 3, 3] }], ...cv },
  ...convTilings.map(
    (t): CompareCase => ({
      name: `conv3d variant ${JSON.stringify(t)}`,
      op: (x, w, b) => conv3d(x, w, b, { stride: [1, 2, 2], padding: 1 }),
      inputs: [{ shape: [2, 3, 3, 7, 6] }, { shape: [10, 3, 3, 3, 3] }, { shape: [10] }],
      variant: () => {
        setConvTiling(t);
        return () => setConvTiling(null);
      },
      ...cv,
    }),
  ),
  {
    name: 'autocast conv2d (f16 operands)',
    op: (x, w, b) => autocast(() => conv2d(x, w, b, { padding: 1 })),
    inputs: [{ shape: [2, 4, 8, 8] }, { shape: [6, 4, 3, 3] }, { shape: [6] }],
    rtol: 2e-2,
    atol: 2e-2,
    requires: 'f16',
  },
];

const pooling: CompareCase[] = [
  { name: 'maxPool1d k3 s2 p1', op: (x) => maxPool1d(x, { kernel: 3, stride: 2, padding: 1 }), inputs: [{ shape: [2, 3, 11] }] },
  { name: 'maxPool3d k[1,2,2]', op: (x) => maxPool3d(x, { kernel: [1, 2, 2] }), inputs: [{ shape: [1, 2, 3, 4, 5] }] },
  { name: 'avgPool1d k4', op: (x) => avgPool1d(x, { kernel: 4 }), inputs: [{ shape: [2, 2, 13] }] },
  { name: 'avgPool2d k3 s1 p1', op: (x) => avgPool2d(x, { kernel: 3, stride: 1, padding: 1 }), inputs: [{ shape: [1, 3, 5, 5] }] },
  { name: 'avgPool3d k2', op: (x) => avgPool3d(x, { kernel: 2 }), inputs: [{ shape: [1, 1, 4, 4, 5] }] },
];

const resampling: CompareCase[] = [
  { name: 'upsampleNearest per-dim [1, 2, 3] (3-D)', op: (x) => upsampleNearest(x, [1, 2, 3]), inputs: [{ shape: [1, 1, 2, 3, 2] }] },
  { name: 'interpolateLinear1d to size 1 and scale 0.5', op: (x) => ops.add(interpolateLinear1d(x, { size: 1 }), sum(interpolateLinear1d(x, { scaleFactor: 0.5 }))), inputs: [{ shape: [1, 2, 8] }] },
  { name: 'resizeBilinear2d up and down', op: (x) => ops.add(sum(resizeBilinear2d(x, [9, 4])), resizeBilinear2d(x, [3, 11])), inputs: [{ shape: [1, 2, 5, 6] }] },
];

const norm = { rtol: 1e-3, atol: 1e-4 };
const normalization: CompareCase[] = [
  { name: 'layerNorm [3, 5] no affine, strided', op: (x) => layerNorm(x, [3, 5]), inputs: [{ shape: [2, 3, 5], permuted: [2, 1, 0] }], ...norm },
  { name: 'layerNorm long row 5000', op: (x) => layerNorm(x, [5000]), inputs: [{ shape: [2, 5000] }], ...norm },
  { name: 'groupNorm 1 group, 3-D spatial', op: (x) => groupNorm(x, 1), inputs: [{ shape: [1, 3, 2, 3, 2] }], ...norm },
  { name: 'groupNorm 512 groups', op: (x, w) => groupNorm(x, 256, w, null), inputs: [{ shape: [2, 512, 3] }, { shape: [512] }], ...norm },
  {
    name: 'batchNorm training (batch statistics) with affine',
    op: (x, w, b) => batchNorm(x, ops.zeros(x.backend, [3]), ops.ones(x.backend, [3]), w, b, { training: true }),
    inputs: [{ shape: [4, 3, 5] }, { shape: [3] }, { shape: [3] }],
    ...norm,
  },
  {
    name: 'batchNorm eval (running statistics)',
    op: (x, m, v) => batchNorm(x, m, v, null, null, { training: false }),
    inputs: [{ shape: [2, 3, 4] }, { shape: [3], requiresGrad: false }, { shape: [3], values: [0.5, 1, 2], requiresGrad: false }],
    ...norm,
  },
];

const qkv = (b: number, h: number, nq: number, nk: number, d: number, permuted?: number[]) => [
  { shape: [b, h, nq, d], permuted },
  { shape: [b, h, nk, d], permuted },
  { shape: [b, h, nk, d], permuted },
];
const attn = (q: Tensor, k: Tensor, v: Tensor) => attention(q, k, v);
const attentions: CompareCase[] = [
  { name: 'attention self, odd length 37, D 32, B 2, H 3', op: attn, inputs: qkv(2, 3, 37, 37, 32) },
  { name: 'attention cross Nq 70 × Nk 50, several key tiles', op: attn, inputs: qkv(1, 1, 70, 50, 32) },
  { name: 'attention size-1 sequences', op: attn, inputs: qkv(3, 1, 1, 1, 64) },
  { name: 'attention non-contiguous [B, N, H, D] views', op: attn, inputs: qkv(2, 2, 19, 23, 32, [0, 2, 1, 3]) },
  { name: 'attention head dim 20 (padded vec4s), scale 0.5', op: (q, k, v) => attention(q, k, v, { scale: 0.5 }), inputs: qkv(1, 2, 13, 17, 20) },
  { name: 'attentionWithLogSumExp output and log-sum-exp (no gradient)', op: (q, k, v) => { const { out, lse } = attentionWithLogSumExp(q, k, v); return ops.add(out, reshape(lse, [1, 1, 9, 1])); }, inputs: qkv(1, 1, 9, 12, 32), forwardOnly: true },
  {
    name: 'attention f16 storage',
    op: (q, k, v) => ops.cast(attention(ops.cast(q, 'f16'), ops.cast(k, 'f16'), ops.cast(v, 'f16')), 'f32'),
    inputs: qkv(1, 2, 11, 13, 32),
    rtol: 2e-2,
    atol: 2e-2,
    requires: 'f16',
  },
];

const losses: CompareCase[] = [
  ...(['mean', 'sum', 'none'] as const).flatMap((r): CompareCase[] => [
    { name: `mseLoss ${r}`, op: (a, b) => mseLoss(a, b, r), inputs: [{ shape: [3, 1, 7] }, { shape: [3, 1, 7], permuted: [2, 1, 0] }] },
    // l1Loss 'sum' and gaussianKl 'none' are in the operand-view table.
    ...(r === 'sum' ? [] : [{ name: `l1Loss ${r}`, op: (a: Tensor, b: Tensor) => l1Loss(a, b, r), inputs: [{ shape: [5, 4] }, { shape: [5, 4] }] }]),
    ...(r === 'none' ? [] : [{ name: `gaussianKl ${r}`, op: (m: Tensor, v: Tensor) => gaussianKl(m, v, r), inputs: [{ shape: [2, 9] }, { shape: [2, 9] }] }]),
  ]),
  { name: 'mseLoss over 20000 elements (grid reduction)', op: (a, b) => mseLoss(a, b), inputs: [{ shape: [4, 5000] }, { shape: [4, 5000] }] },
  { name: 'pixelOutlierPenalty', op: (x) => pixelOutlierPenalty(x), inputs: [{ shape: [2, 40], values: seededValues(80, 4, -6, 6) }] },
];

const randomness: CompareCase[] = [
  { name: 'dropout size 1', op: (x) => dropout(x, 0.2, new Generator(9)), inputs: [{ shape: [1] }] },
  {
    name: 'rand and randn streams equal the reference generator',
    op: (x) => ops.add(ops.mul(x, rand(x.backend, [5, 7], new Generator(3), -1, 2)), randn(x.backend, [5, 7], new Generator(4))),
    inputs: [{ shape: [5, 7] }],
    rtol: 1e-4,
    atol: 1e-4,
  },
];

export const conformanceCases: ConformanceCase[] = [
  ...elementwise,
  ...reductions,
  ...matmuls,
  ...layout,
  ...convolutions,
  ...pooling,
  ...resampling,
  ...normalization,
  ...attentions,
  ...losses,
  ...randomness,
  ...optimizerCases,
];
