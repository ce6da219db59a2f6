import type { Engine } from '../src/engine/engine';
import { backward } from '../src/engine/autograd';
import type { Tensor } from '../src/engine/tensor';
import { mseLoss } from '../src/kernels/loss';
import { AdamW, clipGradNorm } from '../src/kernels/optimizer';
import { Generator, randn } from '../src/kernels/random';
import { loadTfjs, row, timeGpu, timeTfjs, type BenchRow } from './harness';

const SUITE = 'optimizer';

/** Parameter shapes of a DiT-like stack: per block qkv, proj, two MLP layers and adaLN, each with a bias. */
function ditShapes(hidden: number, blocks: number): number[][] {
  const perBlock = [
    [hidden, 3 * hidden], [3 * hidden],
    [hidden, hidden], [hidden],
    [hidden, 4 * hidden], [4 * hidden],
    [4 * hidden, hidden], [hidden],
    [hidden, 6 * hidden], [6 * hidden],
  ];
  return Array.from({ length: blocks }, () => perBlock).flat();
}

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

export async function run(engine: Engine, options: { quick: boolean }): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const backend = engine.backend;
  const gen = new Generator(0);
  const tf = await loadTfjs();

  // ---- AdamW step and gradient clipping over ~100 tensors ----
  const shapes = ditShapes(options.quick ? 192 : 384, 10);
  const total = shapes.reduce((a, s) => a + numel(s), 0);
  const params = shapes.map((s) => {
    const p = randn(backend, s, gen, 0, 0.02);
    p.requiresGrad = true;
    p.grad = randn(backend, s, gen, 0, 1e-3);
    return p;
  });
  const opt = new AdamW(params, { lr: 1e-4, betas: [0.9, 0.999], weightDecay: 1e-4 });
  const label = `${shapes.length} tensors, ${(total / 1e6).toFixed(2)}M params`;
  const adamMs = await timeGpu(engine, () => opt.step());
  let tfAdamMs: number | undefined;
  if (tf) {
    const vars = shapes.map((s) => tf.variable(tf.randomNormal(s, 0, 0.02)));
    const grads = shapes.map((s) => tf.randomNormal(s, 0, 1e-3));
    const tfOpt = tf.train.adam(1e-4, 0.9, 0.999, 1e-8);
    const named = vars.map((v, i) => ({ name: v.name, tensor: grads[i] }));
    // Reading one reduced value of the last variable waits for the whole update (the queue is in order).
    tfAdamMs = await timeTfjs(tf, () => {
      tfOpt.applyGradients(named);
      return tf.sum(vars[vars.length - 1]);
    });
    vars.forEach((v) => v.dispose());
    grads.forEach((g) => g.dispose());
    tfOpt.dispose();
  }
  // Per element: read g, p, (m, v); write p, (m, v).
  rows.push(row({ suite: SUITE, name: 'AdamW step (tfjs: Adam, no decay)', shape: label, ms: adamMs, gbps: (total * 28) / adamMs / 1e6, tfjsMs: tfAdamMs }));

  // The same element count as one tensor: what a concatenated multi-tensor update could at best save.
  const flat = randn(backend, [total], gen, 0, 0.02);
  flat.requiresGrad = true;
  flat.grad = randn(backend, [total], gen, 0, 1e-3);
  const flatOpt = new AdamW([flat], { lr: 1e-4, weightDecay: 1e-4 });
  const flatMs = await timeGpu(engine, () => flatOpt.step());
  rows.push(row({ suite: SUITE, name: 'AdamW step, one concatenated tensor', shape: `1 tensor, ${(total / 1e6).toFixed(2)}M params`, ms: flatMs, gbps: (total * 28) / flatMs / 1e6 }));
  flatOpt.zeroGrad();
  flatOpt.dispose();
  flat.dispose();

  // maxNorm large: the gradients keep their values across repetitions.
  const clipMs = await timeGpu(engine, () => clipGradNorm(params, 1e9));
  let tfClipMs: number | undefined;
  if (tf) {
    const grads = shapes.map((s) => tf.randomNormal(s, 0, 1e-3));
    tfClipMs = await timeTfjs(tf, () => {
      // Chained adds: addN over 100 tensors exceeds the binding limit of tfjs-webgpu's AddN program.
      const norm = tf.sqrt(grads.map((g) => tf.sum(tf.square(g))).reduce((acc, s) => tf.add(acc, s)));
      const factor = tf.minimum(1, tf.div(1e9, tf.add(norm, 1e-6)));
      const clipped = grads.map((g) => tf.mul(g, factor));
      return [norm, ...clipped.slice(-1)];
    });
    grads.forEach((g) => g.dispose());
  }
  // Read every gradient twice (norm, scale), write it once.
  rows.push(row({ suite: SUITE, name: 'clipGradNorm', shape: label, ms: clipMs, gbps: (total * 12) / clipMs / 1e6, tfjsMs: tfClipMs }));
  opt.zeroGrad();
  opt.dispose();
  params.forEach((p) => p.dispose());

  // ---- MSE forward + backward on a flow-latent batch ----
  const latent = [4, 4, 50, 12, 12];
  const n = numel(latent);
  const a = randn(backend, latent, gen);
  a.requiresGrad = true;
  const b = randn(backend, latent, gen);
  const mseMs = await timeGpu(engine, (): Tensor[] => {
    const loss = mseLoss(a, b);
    backward(loss);
    const g = a.grad!;
    a.grad = null;
    return [loss, g];
  });
  let tfMseMs: number | undefined;
  if (tf) {
    const ta = tf.randomNormal(latent);
    const tb = tf.randomNormal(latent);
    const gradFn = tf.valueAndGrad((x: import('@tensorflow/tfjs').Tensor) => tf.losses.meanSquaredError(tb, x) as import('@tensorflow/tfjs').Scalar);
    tfMseMs = await timeTfjs(tf, () => {
      const { value, grad } = gradFn(ta);
      return [value, grad];
    });
    ta.dispose();
    tb.dispose();
  }
  // Forward reads a, b; backward reads a, b and writes the gradient.
  rows.push(row({ suite: SUITE, name: 'mseLoss fwd+bwd', shape: latent.join('×'), ms: mseMs, gbps: (n * 20) / mseMs / 1e6, tfjsMs: tfMseMs }));
  a.dispose();
  b.dispose();
  return rows;
}
