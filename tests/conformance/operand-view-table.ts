/**
 * The operand-view table: one entry per op (and per kernel variant that a global switch selects), each
 * operand described once. operand-views.ts runs every entry with each operand in turn as an offset slice,
 * a stepped + permuted view and (where the op broadcasts) a stride-0 view, forward and backward, against the
 * float64 reference. Edge shapes and the other kernel variants are in kernel-table.ts; an op appears in both
 * only where the shapes or variants differ. No test-runner or Node APIs here (Deno runs it too).
 */
import * as ops from '../../src/index';
import type { Tensor } from '../../src/engine/tensor';
import { setSubgroupMatmul, setSubgroupMatmulEmulation } from '../../src/kernels/matmul-subgroup';
import { seededValues, type ConformanceCase } from './harness';
import { halfValues, indexValues, operandViewCase, type OperandSpec, type OperandViewEntry } from './operand-views';

const positive = (n: number, seed: number) => seededValues(n, seed, 0.5, 2);
/** An f16 operand (exact values; no gradient: f16 backward paths are covered in conv-f16 and autocast tests). */
const half = (shape: number[], extra: Partial<OperandSpec> = {}): OperandSpec => ({ shape, dtype: 'f16', values: halfValues, grad: false, ...extra });
const CONTIGUOUS_PARAM = 'AdamW requires contiguous f32 parameters (checked in its constructor); an offset slice is allowed';

/** A fresh trainable parameter holding `grad` as its gradient (optimizer cases). */
function paramWithGrad(grad: Tensor, seed: number): Tensor {
  const p = ops.fromArray(grad.backend, seededValues(grad.size, seed), [...grad.shape]);
  p.requiresGrad = true;
  p.grad = grad.share();
  return p;
}

const entries: OperandViewEntry[] = [
  // ---- elementwise ---------------------------------------------------------------------------------
  { family: 'elementwise', name: 'add (broadcast b)', operands: [{ shape: [3, 4, 5] }, { shape: [3, 4, 5], broadcast: [0, 2] }], run: ([a, b]) => ops.add(a, b) },
  { family: 'elementwise', name: 'mul (broadcast a)', operands: [{ shape: [4, 6], broadcast: [1] }, { shape: [4, 6] }], run: ([a, b]) => ops.mul(a, b) },
  { family: 'elementwise', name: 'div', operands: [{ shape: [5, 7] }, { shape: [5, 7], values: positive, broadcast: [0] }], run: ([a, b]) => ops.div(a, b) },
  { family: 'elementwise', name: 'where', operands: [{ shape: [4, 5], grad: false, values: (n, s) => seededValues(n, s).map((v) => (v > 0 ? 1 : 0)) }, { shape: [4, 5] }, { shape: [4, 5], broadcast: [0] }], run: ([c, x, y]) => ops.where(c, x, y) },
  { family: 'elementwise', name: 'gelu', operands: [{ shape: [3, 4, 5] }], run: ([x]) => ops.gelu(x) },
  { family: 'elementwise', name: 'exp', operands: [{ shape: [6, 5] }], run: ([x]) => ops.exp(x) },
  { family: 'elementwise', name: 'pow (tensor exponent)', operands: [{ shape: [4, 5], values: positive }, { shape: [4, 5] }], run: ([x, y]) => ops.pow(x, y) },
  { family: 'elementwise', name: 'maximum', operands: [{ shape: [4, 5] }, { shape: [4, 5], broadcast: [1] }], run: ([x, y]) => ops.maximum(x, y) },
  { family: 'elementwise', name: 'sub, long rows (row-walk kernel on CPU adapters)', operands: [{ shape: [3, 40] }, { shape: [3, 40], broadcast: [0] }], run: ([a, b]) => ops.sub(a, b) },
  { family: 'elementwise', name: 'sigmoid, tanh, silu chain', operands: [{ shape: [5, 6] }], run: ([x]) => ops.silu(ops.tanh(ops.sigmoid(x))) },
  { family: 'elementwise', name: 'log of positive values, then clamp', operands: [{ shape: [4, 6], values: positive }], run: ([x]) => ops.clamp(ops.log(x), -0.3, 0.5) },
  { family: 'elementwise', name: 'addScalar, mulScalar, sqrt', operands: [{ shape: [4, 6], values: positive, broadcast: [0] }], run: ([x]) => ops.sqrt(ops.mulScalar(ops.addScalar(x, 0.25), 3)) },
  { family: 'elementwise', name: 'sin, short rows (per-element strided kernel)', operands: [{ shape: [7, 3] }], run: ([x]) => ops.sin(x) },
  { family: 'elementwise', name: 'mul, inner dim 2 with a broadcast', operands: [{ shape: [3, 5, 2] }, { shape: [3, 5, 2], broadcast: [1] }], run: ([a, b]) => ops.mul(a, b) },
  // ---- reduce --------------------------------------------------------------------------------------
  { family: 'reduce', name: 'sum over dim 1', operands: [{ shape: [3, 5, 4] }], run: ([x]) => ops.sum(x, 1) },
  { family: 'reduce', name: 'mean over dims [0, 2] keepdim', operands: [{ shape: [3, 5, 4] }], run: ([x]) => ops.mean(x, [0, 2], { keepdim: true }) },
  { family: 'reduce', name: 'max over the last dim', operands: [{ shape: [4, 6] }], run: ([x]) => ops.max(x, -1) },
  { family: 'reduce', name: 'variance (unbiased) over the last dim', operands: [{ shape: [4, 7] }], run: ([x]) => ops.variance(x, -1, { unbiased: true }) },
  { family: 'reduce', name: 'sum of everything', operands: [{ shape: [3, 4, 5], broadcast: [1] }], run: ([x]) => ops.sum(x) },
  { family: 'reduce', name: 'sum over long rows (workgroup-per-row kernel)', operands: [{ shape: [3, 200] }], run: ([x]) => ops.sum(x, -1) },
  { family: 'reduce', name: 'min and std over dim 0', operands: [{ shape: [6, 4, 3] }], run: ([x]) => [ops.min(x, 0), ops.std(x, 0)] },
  // ---- softmax -------------------------------------------------------------------------------------
  { family: 'softmax', name: 'softmax over the last dim', operands: [{ shape: [3, 4, 6] }], run: ([x]) => ops.softmax(x, -1) },
  { family: 'softmax', name: 'logSoftmax over dim 1', operands: [{ shape: [3, 5, 4] }], run: ([x]) => ops.logSoftmax(x, 1) },
  { family: 'softmax', name: 'softmax over long rows (workgroup-per-row kernel)', operands: [{ shape: [3, 100] }], run: ([x]) => ops.softmax(x, -1) },
  { family: 'softmax', name: 'logSoftmax, many short rows', operands: [{ shape: [80, 5] }], run: ([x]) => ops.logSoftmax(x, -1) },
  // ---- matmul --------------------------------------------------------------------------------------
  { family: 'matmul', name: 'matmul batched, broadcast batch', operands: [{ shape: [2, 5, 6] }, { shape: [2, 6, 7], broadcast: [0] }], run: ([a, b]) => ops.matmul(a, b) },
  {
    family: 'matmul',
    name: 'linear with bias (the DiT in_proj split)',
    operands: [{ shape: [2, 3, 8] }, { shape: [12, 8] }, { shape: [12], values: (n, s) => seededValues(n, s, 0.5, 3), broadcast: [0] }],
    run: ([x, w, b]) => ops.linear(x, w, b),
  },
  {
    family: 'matmul',
    name: 'linear with bias, shared-memory tiled kernel',
    operands: [{ shape: [5, 8] }, { shape: [9, 8] }, { shape: [9], values: (n, s) => seededValues(n, s, 0.5, 3) }],
    run: ([x, w, b]) => ops.linear(x, w, b),
    variant: () => {
      ops.setMatmulTiling({ bm: 16, bn: 16, bk: 8, tm: 2, tn: 2 });
      return () => ops.setMatmulTiling(null);
    },
  },
  {
    family: 'matmul',
    name: 'matmulScaled (no autograd)',
    operands: [{ shape: [4, 6] }, { shape: [6, 5] }],
    forwardOnly: true,
    run: ([a, b]) => ops.matmulScaled(a, b, 0.375),
  },
  {
    family: 'matmul',
    name: 'linear f16, subgroup-matrix kernel (emulated builtins)',
    operands: [{ shape: [9, 16] }, { shape: [12, 16] }, { shape: [12], values: (n, s) => seededValues(n, s, 0.5, 3) }],
    forwardOnly: true,
    rtol: 2e-2,
    atol: 2e-2,
    run: ([x, w, b]) => {
      const [xh, wh, bh] = [x, w, b].map((t) => ops.cast(t, 'f16'));
      const y = ops.linear(xh, wh, bh);
      [xh, wh, bh].forEach((t) => t.dispose());
      return y;
    },
    requires: 'f16',
    variant: () => {
      setSubgroupMatmulEmulation({ config: { componentType: 'f16', resultComponentType: 'f32', M: 8, N: 8, K: 8 }, subgroupSize: 32 });
      const previous = setSubgroupMatmul('force');
      return () => {
        setSubgroupMatmul(previous);
        setSubgroupMatmulEmulation(null);
      };
    },
  },
  { family: 'matmul', name: 'matmul matrix × vector', operands: [{ shape: [5, 6] }, { shape: [6] }], run: ([a, b]) => ops.matmul(a, b) },
  { family: 'matmul', name: 'matmul broadcast a, 4-D batch', operands: [{ shape: [2, 3, 4, 5], broadcast: [1] }, { shape: [3, 5, 2] }], run: ([a, b]) => ops.matmul(a, b) },
  {
    family: 'matmul',
    name: 'linear under autocast (f16 operands, f32 bias view)',
    operands: [{ shape: [6, 8] }, { shape: [10, 8] }, { shape: [10], values: (n, s) => seededValues(n, s, 0.5, 3) }],
    rtol: 1e-2,
    atol: 1e-2,
    run: ([x, w, b]) => ops.autocast(() => ops.linear(x, w, b)),
  },
  // ---- norm ----------------------------------------------------------------------------------------
  {
    family: 'norm',
    name: 'layerNorm with affine',
    operands: [{ shape: [3, 4, 6] }, { shape: [6], values: positive, broadcast: [0] }, { shape: [6], broadcast: [0] }],
    run: ([x, w, b]) => ops.layerNorm(x, [6], w, b, 1e-5),
  },
  {
    family: 'norm',
    name: 'groupNorm with affine',
    operands: [{ shape: [2, 6, 5] }, { shape: [6], values: positive }, { shape: [6] }],
    run: ([x, w, b]) => ops.groupNorm(x, 3, w, b, 1e-5),
  },
  {
    family: 'norm',
    name: 'batchNorm eval (running stats as operands)',
    operands: [{ shape: [3, 4, 5] }, { shape: [4], grad: false }, { shape: [4], grad: false, values: positive }, { shape: [4], values: positive }, { shape: [4] }],
    run: ([x, rm, rv, w, b]) => ops.batchNorm(x, rm, rv, w, b, { training: false, eps: 1e-5 }),
  },
  {
    family: 'norm',
    name: 'batchNorm training (running stats updated in place)',
    operands: [{ shape: [3, 4, 5] }, { shape: [4], mutated: true }, { shape: [4], mutated: true, values: positive }, { shape: [4], values: positive }, { shape: [4] }],
    run: ([x, rm, rv, w, b]) => ops.batchNorm(x, rm, rv, w, b, { training: true, momentum: 0.3, eps: 1e-5 }),
  },
  { family: 'norm', name: 'l2NormalizeChannels', operands: [{ shape: [2, 4, 3, 2] }], run: ([x]) => ops.l2NormalizeChannels(x) },
  {
    family: 'norm',
    name: 'layerNorm, many short rows (invocation-per-row reduction)',
    operands: [{ shape: [600, 4] }, { shape: [4], values: positive }, { shape: [4] }],
    run: ([x, w, b]) => ops.layerNorm(x, [4], w, b, 1e-5),
  },
  {
    family: 'norm',
    name: 'groupNorm 3-D input with affine',
    operands: [{ shape: [2, 4, 2, 3, 3] }, { shape: [4], values: positive }, { shape: [4] }],
    run: ([x, w, b]) => ops.groupNorm(x, 2, w, b, 1e-5),
  },
  // ---- conv ----------------------------------------------------------------------------------------
  {
    family: 'conv',
    name: 'conv1d stride 2, padding 1, bias',
    operands: [{ shape: [2, 3, 9] }, { shape: [4, 3, 3] }, { shape: [4], broadcast: [0] }],
    run: ([x, w, b]) => ops.conv1d(x, w, b, { stride: 2, padding: 1 }),
  },
  {
    family: 'conv',
    name: 'conv2d dilation 2, padding 2, bias',
    operands: [{ shape: [1, 2, 6, 5] }, { shape: [3, 2, 3, 3] }, { shape: [3] }],
    run: ([x, w, b]) => ops.conv2d(x, w, b, { padding: 2, dilation: 2 }),
  },
  {
    family: 'conv',
    name: 'conv3d padding 1, bias',
    operands: [{ shape: [1, 2, 3, 4, 4] }, { shape: [3, 2, 3, 3, 3] }, { shape: [3] }],
    run: ([x, w, b]) => ops.conv3d(x, w, b, { padding: 1 }),
  },
  {
    family: 'conv',
    name: 'conv2d with bias, shared-memory tiled kernel',
    operands: [{ shape: [1, 3, 5, 5] }, { shape: [4, 3, 3, 3] }, { shape: [4] }],
    run: ([x, w, b]) => ops.conv2d(x, w, b, { padding: 1 }),
    variant: () => {
      ops.setConvTiling({ bm: 16, bn: 16, bk: 8, tm: 2, tn: 2 });
      return () => ops.setConvTiling(null);
    },
  },
  {
    family: 'conv',
    name: 'transposed conv1d (convBackwardData, stride 2)',
    operands: [{ shape: [2, 4, 5] }, { shape: [4, 3, 3] }],
    forwardOnly: true,
    run: ([gy, w]) => ops.convBackwardData(gy, w, [2, 3, 9], { stride: 2, padding: 1 }),
  },
  {
    family: 'conv',
    name: 'convBackwardWeight 2d',
    operands: [{ shape: [2, 2, 5, 5] }, { shape: [2, 3, 3, 3] }],
    forwardOnly: true,
    run: ([x, gy]) => ops.convBackwardWeight(x, gy, [3, 2, 3, 3]),
  },
  {
    family: 'conv',
    name: 'conv3d under autocast (f16 operands, f32 bias view)',
    operands: [{ shape: [1, 2, 3, 3, 4] }, { shape: [3, 2, 2, 2, 2] }, { shape: [3] }],
    rtol: 1e-2,
    atol: 1e-2,
    run: ([x, w, b]) => ops.autocast(() => ops.conv3d(x, w, b, { padding: 1 })),
  },
  {
    family: 'conv',
    name: 'transposed conv2d (convBackwardData, stride 2, dilation 2)',
    operands: [{ shape: [1, 3, 3, 2] }, { shape: [3, 2, 2, 3] }],
    forwardOnly: true,
    run: ([gy, w]) => ops.convBackwardData(gy, w, [1, 2, 7, 8], { stride: 2, dilation: 2 }),
  },
  // ---- pool ----------------------------------------------------------------------------------------
  { family: 'pool', name: 'maxPool2d kernel 2', operands: [{ shape: [2, 3, 4, 6] }], run: ([x]) => ops.maxPool2d(x, { kernel: 2 }) },
  { family: 'pool', name: 'avgPool1d kernel 3 stride 2 padding 1', operands: [{ shape: [2, 3, 9] }], run: ([x]) => ops.avgPool1d(x, { kernel: 3, stride: 2, padding: 1 }) },
  { family: 'pool', name: 'maxPool3d kernel 2', operands: [{ shape: [1, 2, 4, 4, 4] }], run: ([x]) => ops.maxPool3d(x, { kernel: 2 }) },
  { family: 'pool', name: 'avgPool2d kernel 3 stride 2 padding 1', operands: [{ shape: [1, 2, 5, 6] }], run: ([x]) => ops.avgPool2d(x, { kernel: 3, stride: 2, padding: 1 }) },
  { family: 'pool', name: 'avgPool3d kernel [1, 2, 2]', operands: [{ shape: [1, 2, 2, 4, 4] }], run: ([x]) => ops.avgPool3d(x, { kernel: [1, 2, 2] }) },
  // ---- resample ------------------------------------------------------------------------------------
  { family: 'resample', name: 'upsampleNearest ×2 (2-D)', operands: [{ shape: [1, 3, 3, 4] }], run: ([x]) => ops.upsampleNearest(x, 2) },
  { family: 'resample', name: 'interpolateLinear1d to 11', operands: [{ shape: [2, 3, 7] }], run: ([x]) => ops.interpolateLinear1d(x, { size: 11 }) },
  { family: 'resample', name: 'resizeBilinear2d to 7×5', operands: [{ shape: [1, 2, 4, 3] }], run: ([x]) => ops.resizeBilinear2d(x, [7, 5]) },
  { family: 'resample', name: 'upsampleNearest [1, 2, 2] (3-D)', operands: [{ shape: [1, 2, 2, 3, 2] }], run: ([x]) => ops.upsampleNearest(x, [1, 2, 2]) },
  { family: 'resample', name: 'interpolateLinear1d scale 0.5', operands: [{ shape: [1, 2, 9] }], run: ([x]) => ops.interpolateLinear1d(x, { scaleFactor: 0.5 }) },
  // ---- attention -----------------------------------------------------------------------------------
  {
    family: 'attention',
    name: 'attention, cross (Nq ≠ Nk)',
    operands: [{ shape: [2, 2, 5, 4] }, { shape: [2, 2, 7, 4] }, { shape: [2, 2, 7, 4], broadcast: [1] }],
    run: ([q, k, v]) => ops.attention(q, k, v, { scale: 0.7 }),
  },
  {
    family: 'attention',
    name: 'attention, 20 queries × 40 keys, head dim 6 (64-row groups, several key tiles)',
    operands: [{ shape: [1, 2, 20, 6] }, { shape: [1, 2, 40, 6] }, { shape: [1, 2, 40, 6] }],
    run: ([q, k, v]) => ops.attention(q, k, v),
  },
  {
    family: 'attention',
    name: 'attention under autocast (f16)',
    operands: [{ shape: [1, 2, 6, 4] }, { shape: [1, 2, 5, 4] }, { shape: [1, 2, 5, 4] }],
    rtol: 1e-2,
    atol: 1e-2,
    run: ([q, k, v]) => ops.autocast(() => ops.attention(q, k, v)),
  },
  // ---- loss ----------------------------------------------------------------------------------------
  { family: 'loss', name: 'mseLoss', operands: [{ shape: [3, 5] }, { shape: [3, 5], broadcast: [0] }], run: ([a, b]) => ops.mseLoss(a, b) },
  { family: 'loss', name: 'l1Loss sum', operands: [{ shape: [3, 5] }, { shape: [3, 5] }], run: ([a, b]) => ops.l1Loss(a, b, 'sum') },
  { family: 'loss', name: 'hingeDiscriminatorLoss', operands: [{ shape: [4, 3] }, { shape: [4, 3] }], run: ([r, f]) => ops.hingeDiscriminatorLoss(r, f) },
  { family: 'loss', name: 'gaussianKl none', operands: [{ shape: [2, 3, 4] }, { shape: [2, 3, 4] }], run: ([mu, lv]) => ops.gaussianKl(mu, lv, 'none') },
  { family: 'loss', name: 'pixelOutlierPenalty', operands: [{ shape: [2, 4, 5], values: (n, s) => seededValues(n, s).map((v, i) => (i % 7 === 0 ? 4 * v : v)) }], run: ([x]) => ops.pixelOutlierPenalty(x, 1) },
  {
    family: 'loss',
    name: 'flowInterpolate (per-sample t)',
    operands: [{ shape: [2, 3, 4] }, { shape: [2, 3, 4] }, { shape: [2], values: (n, s) => seededValues(n, s, 0, 1) }],
    run: ([x0, x1, t]) => {
      const { xt, target } = ops.flowInterpolate(x0, x1, t);
      return [xt, target];
    },
  },
  { family: 'loss', name: 'mseLoss none', operands: [{ shape: [3, 5] }, { shape: [3, 5] }], run: ([a, b]) => ops.mseLoss(a, b, 'none') },
  { family: 'loss', name: 'hingeGeneratorLoss', operands: [{ shape: [4, 3] }], run: ([f]) => ops.hingeGeneratorLoss(f) },
  {
    family: 'loss',
    name: 'flowInterpolate (elementwise t)',
    operands: [{ shape: [2, 3, 4] }, { shape: [2, 3, 4], broadcast: [0] }, { shape: [2, 3, 4], values: (n, s) => seededValues(n, s, 0, 1) }],
    run: ([x0, x1, t]) => {
      const { xt, target } = ops.flowInterpolate(x0, x1, t);
      return [xt, target];
    },
  },
  {
    family: 'loss',
    name: 'rectifiedFlowLoss (predict = 2·xt)',
    operands: [{ shape: [2, 3, 4] }, { shape: [2, 3, 4] }, { shape: [2], values: (n, s) => seededValues(n, s, 0, 1) }],
    run: ([x0, x1, t]) => {
      const { loss, xt } = ops.rectifiedFlowLoss((z) => ops.mulScalar(z, 2), x0, x1, t);
      return [loss, xt];
    },
  },
  // ---- dropout and random --------------------------------------------------------------------------
  { family: 'dropout', name: 'dropout p 0.4', operands: [{ shape: [4, 6] }], run: ([x]) => ops.dropout(x, 0.4, new ops.Generator(11)) },
  // ---- layout --------------------------------------------------------------------------------------
  { family: 'layout', name: 'contiguous copy', operands: [{ shape: [3, 4, 5] }], run: ([x]) => ops.contiguous(x) },
  { family: 'layout', name: 'concat dim 1', operands: [{ shape: [2, 3, 4] }, { shape: [2, 2, 4], broadcast: [0] }], run: ([a, b]) => ops.concat([a, b], 1) },
  { family: 'layout', name: 'pad (and crop)', operands: [{ shape: [2, 3, 4] }], run: ([x]) => ops.pad(x, [1, 2, -1, 1]) },
  {
    family: 'layout',
    name: 'gather dim 1',
    operands: [{ shape: [3, 5, 2] }, { shape: [3, 4, 2], dtype: 'i32', values: indexValues(5) }],
    run: ([x, i]) => ops.gather(x, 1, i),
  },
  {
    family: 'layout',
    name: 'indexSelect dim 0',
    operands: [{ shape: [5, 3] }, { shape: [7], dtype: 'i32', values: indexValues(5) }],
    run: ([x, i]) => ops.indexSelect(x, 0, i),
  },
  { family: 'layout', name: 'cast to f16 and back', operands: [{ shape: [3, 5] }], forwardOnly: true, rtol: 1e-3, atol: 1e-3, run: ([x]) => { const h = ops.cast(x, 'f16'); const y = ops.cast(h, 'f32'); h.dispose(); return y; } },
  { family: 'layout', name: 'stack dim 2', operands: [{ shape: [2, 3] }, { shape: [2, 3] }, { shape: [2, 3], broadcast: [1] }], run: (xs) => ops.stack(xs, 2) },
  { family: 'layout', name: 'pad with a value (3-D)', operands: [{ shape: [1, 2, 3, 2] }], run: ([x]) => ops.pad(x, [1, 0, 0, 2, 1, 1], 0.5) },
  {
    family: 'layout',
    name: 'indexSelect dim 1 (index as a view)',
    operands: [{ shape: [2, 4, 3] }, { shape: [5], dtype: 'i32', values: indexValues(4) }],
    run: ([x, i]) => ops.indexSelect(x, 1, i),
  },
  // ---- f16 operands (odd element offsets included: the 'offset' layout starts at element 3) ----------
  { family: 'f16', name: 'add f16 + f16 (broadcast)', operands: [half([3, 8]), half([3, 8], { broadcast: [0] })], forwardOnly: true, rtol: 2e-3, atol: 2e-3, run: ([a, b]) => ops.add(a, b) },
  { family: 'f16', name: 'cast f16 → f32', operands: [half([4, 6])], forwardOnly: true, rtol: 0, atol: 0, run: ([x]) => ops.cast(x, 'f32') },
  { family: 'f16', name: 'sum of f16 over the last dim', operands: [half([4, 16])], forwardOnly: true, rtol: 2e-3, atol: 2e-3, run: ([x]) => ops.sum(x, -1) },
  { family: 'f16', name: 'matmul f16 × f16 (register kernel, f16 output)', operands: [half([2, 5, 12]), half([12, 7], {})], forwardOnly: true, rtol: 2e-3, atol: 2e-3, run: ([a, b]) => ops.matmul(a, b) },
  {
    family: 'f16',
    name: 'linear f16 x and weight, f32 bias view (f16 output)',
    operands: [half([5, 8]), half([6, 8]), { shape: [6], grad: false }],
    forwardOnly: true,
    rtol: 2e-3,
    atol: 2e-3,
    run: ([x, w, b]) => ops.linear(x, w, b),
  },
  {
    family: 'f16',
    name: 'conv2d f16 input and weight, f32 bias',
    operands: [half([1, 2, 5, 5]), half([3, 2, 3, 3]), { shape: [3], grad: false }],
    forwardOnly: true,
    rtol: 2e-3,
    atol: 2e-3,
    run: ([x, w, b]) => ops.conv2d(x, w, b, { padding: 1 }),
  },
  { family: 'f16', name: 'attention f16 q, k, v', operands: [half([1, 2, 5, 4]), half([1, 2, 6, 4]), half([1, 2, 6, 4])], forwardOnly: true, rtol: 4e-3, atol: 4e-3, run: ([q, k, v]) => ops.attention(q, k, v) },
  // ---- optimizer (in place) ------------------------------------------------------------------------
  {
    family: 'optimizer',
    name: 'AdamW two steps: parameter an offset slice, gradient any view',
    operands: [{ shape: [4, 5], mutated: true, excluded: { strided: CONTIGUOUS_PARAM, broadcast: CONTIGUOUS_PARAM } }, { shape: [4, 5], grad: false, broadcast: [0] }],
    forwardOnly: true,
    run: ([p, g]) => {
      p.requiresGrad = true;
      p.grad = g.share();
      const opt = new ops.AdamW([p], { lr: 0.05, weightDecay: 0.1 });
      opt.step();
      opt.step();
      p.grad.dispose();
      p.grad = null;
    },
  },
  {
    family: 'optimizer',
    name: 'clipGradNorm: gradients as views, scaled in place',
    operands: [{ shape: [3, 4], mutated: true }, { shape: [5], mutated: true }],
    forwardOnly: true,
    run: ([g1, g2]) => {
      const params = [paramWithGrad(g1, 5), paramWithGrad(g2, 6)];
      const norm = ops.clipGradNorm(params, 0.5);
      const out = [norm, ...params.map((p) => ops.contiguous(p.grad!))];
      params.forEach((p) => p.dispose());
      return out;
    },
  },
  {
    family: 'optimizer',
    name: 'DeviceGradScaler unscale + gated AdamW step, gradients as views',
    operands: [{ shape: [4, 3], mutated: true }, { shape: [6], mutated: true, excluded: { strided: CONTIGUOUS_PARAM, broadcast: CONTIGUOUS_PARAM } }],
    forwardOnly: true,
    atol: 1e-7,
    run: ([g, p]) => {
      p.requiresGrad = true;
      const gp = paramWithGrad(g, 7);
      // The second operand is a parameter (updated in place); its gradient is a fresh tensor.
      p.grad = ops.fromArray(p.backend, seededValues(p.size, 8), [...p.shape]);
      const opt = new ops.AdamW([gp, p], { lr: 0.05, weightDecay: 0.1 });
      const scaler = new ops.DeviceGradScaler(p.backend, { initScale: 4 });
      scaler.unscale(opt);
      const unscaled = ops.contiguous(gp.grad!);
      scaler.step(opt);
      const out = [unscaled, ops.contiguous(gp)];
      gp.dispose();
      p.grad.dispose();
      p.grad = null;
      return out;
    },
  },
  {
    family: 'optimizer',
    name: 'GradScaler (host) unscale: gradients as views',
    operands: [{ shape: [3, 5], mutated: true }, { shape: [4], mutated: true }],
    forwardOnly: true,
    atol: 1e-7,
    run: ([g1, g2]) => {
      const params = [paramWithGrad(g1, 9), paramWithGrad(g2, 10)];
      const opt = new ops.AdamW(params, { lr: 0.05 });
      const scaler = new ops.GradScaler({ initScale: 4 });
      scaler.unscale(opt).dispose();
      const out = params.map((p) => ops.contiguous(p.grad!));
      params.forEach((p) => p.dispose());
      return out;
    },
  },
];

/** f16 storage (the f16 family, casts, autocast) needs shader-f16: without it those entries are skipped, not failed. */
const needsF16 = (e: OperandViewEntry) => e.family === 'f16' || /f16|autocast/.test(e.name);

export const conformanceCases: ConformanceCase[] = entries.map((e) => operandViewCase(needsF16(e) ? { ...e, requires: 'f16' } : e));
