import type { Engine } from '../src/engine/engine';
import { backward } from '../src/engine/autograd';
import { tidy } from '../src/engine/scope';
import type { Tensor } from '../src/engine/tensor';
import { attention } from '../src/kernels/attention';
import { matmulScaled } from '../src/kernels/matmul';
import { sum } from '../src/kernels/reduce';
import { softmax } from '../src/kernels/softmax';
import { transpose } from '../src/kernels/views';
import { row, timeGpu, type BenchRow } from './harness';

interface Case {
  n: number;
  headDim: number;
}

/** softmax(scale·q·kᵀ)·v with the N×N scores materialized: the baseline flash attention replaces. */
function naiveAttention(q: Tensor, k: Tensor, v: Tensor): Tensor {
  return tidy(() => {
    const scores = matmulScaled(q, transpose(k), 1 / Math.sqrt(q.shape[3]));
    return matmulScaled(softmax(scores), v, 1);
  });
}

function randomTensor(engine: Engine, shape: number[], seed: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    values[i] = (s / 2 ** 32) * 2 - 1;
  }
  return engine.tensor(values, shape);
}

/** Peak pool bytes over one call of fn (after the queue drained), in MiB. */
async function peakMiB(engine: Engine, fn: () => void): Promise<number> {
  await engine.sync();
  engine.resetPeakMemory();
  const before = engine.memory().liveBytes;
  fn();
  await engine.sync();
  return (engine.memory().peakBytes - before) / 2 ** 20;
}

/** One forward + backward of sum(attention(q, k, v)), gradients released (q, k, v must require grad). */
export function attentionTrainStep(q: Tensor, k: Tensor, v: Tensor): void {
  const loss = tidy(() => sum(attention(q, k, v)));
  backward(loss);
  loss.dispose();
  for (const t of [q, k, v]) {
    t.grad?.dispose();
    t.grad = null;
  }
}

/**
 * Flash attention forward and forward+backward, 8 heads, D 64 at N 50/144 (DiT) and D 32 at 1,024+
 * (VAE space-time attention), against the materialized softmax(QKᵀ)V built from our matmul/softmax where
 * its N×N scores fit a binding. Rows carry GFLOP/s (4·N²·D per head forward, 3.5× that for forward+backward, recomputation not counted)
 * and the peak extra pool memory in the name.
 */
export async function run(engine: Engine, options: { quick: boolean }): Promise<BenchRow[]> {
  const heads = 8;
  const cases: Case[] = [
    { n: 50, headDim: 64 },
    { n: 144, headDim: 64 },
    { n: 1024, headDim: 32 },
    ...(options.quick ? [] : [{ n: 7200, headDim: 32 }, { n: 28_800, headDim: 32 }]),
  ];
  const rows: BenchRow[] = [];
  const limit = engine.caps?.limits.maxStorageBufferBindingSize ?? 0;
  for (const { n, headDim } of cases) {
    const shape = [1, heads, n, headDim];
    const [q, k, v] = [1, 2, 3].map((s) => randomTensor(engine, shape, s));
    const fwdFlops = 4 * heads * n * n * headDim;
    const timing = { iters: n >= 7200 ? 1 : 5, warmup: 1, budgetMs: options.quick ? 2000 : 5000 };
    const label = `B1 H${heads} N${n} D${headDim}`;
    const flashPeak = await peakMiB(engine, () => attention(q, k, v).dispose());
    const fwdMs = await timeGpu(engine, () => attention(q, k, v), timing);
    rows.push(row({ suite: 'attention', name: `flash forward (peak +${flashPeak.toFixed(1)} MiB)`, shape: label, ms: fwdMs, gflops: fwdFlops / fwdMs / 1e6 }));

    for (const t of [q, k, v]) t.requiresGrad = true;
    const trainStep = () => attentionTrainStep(q, k, v);
    const trainPeak = await peakMiB(engine, trainStep);
    const trainMs = await timeGpu(engine, trainStep, timing);
    rows.push(row({ suite: 'attention', name: `flash fwd+bwd (peak +${trainPeak.toFixed(1)} MiB)`, shape: label, ms: trainMs, gflops: (3.5 * fwdFlops) / trainMs / 1e6 }));
    for (const t of [q, k, v]) t.requiresGrad = false;

    // The naive path stores heads·N² f32 scores (twice: scores and probabilities).
    const scoreBytes = heads * n * n * 4;
    if (scoreBytes <= limit && n <= (options.quick ? 1024 : 7200)) {
      const naivePeak = await peakMiB(engine, () => naiveAttention(q, k, v).dispose());
      const naiveMs = await timeGpu(engine, () => naiveAttention(q, k, v), timing);
      rows.push(row({ suite: 'attention', name: `naive softmax(QKᵀ)V (peak +${naivePeak.toFixed(1)} MiB)`, shape: label, ms: naiveMs, gflops: fwdFlops / naiveMs / 1e6 }));
    }
    for (const t of [q, k, v]) t.dispose();
  }
  return rows;
}
