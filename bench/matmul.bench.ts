/**
 * Matmul in f32 and with f16 operands (f32 accumulation): what --amp's autocast runs for linear layers.
 * Rows: f32 × f32 → f32 (the default), f16 × f16 → f32 via autocast on f16 inputs (no conversion cost), and
 * autocast on f32 inputs (including the two conversions), plus the transposed-weight shape of linear().
 *
 * The `matmul` suite of bench/run.ts: `npm run bench -- --suite matmul [--quick]`.
 */
import { autocast } from '../src/engine/autocast';
import { Engine } from '../src/engine/engine';
import { cast } from '../src/kernels/elementwise';
import { linear, matmul } from '../src/kernels/matmul';
import { Generator, randn } from '../src/kernels/random';
import { timeAlternating } from './conv.bench';
import { row, type BenchRow } from './harness';

export async function run(engine: Engine, options: { quick: boolean }): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  if (!engine.caps?.f16) return rows;
  const gen = new Generator(0);
  const budgetMs = options.quick ? 1000 : 2500;
  const software = engine.caps.software;
  const sizes = options.quick ? [256, 512] : software ? [256, 512, 1024] : [1024, 2048, 4096];
  for (const n of sizes) {
    const a = randn(engine.backend, [n, n], gen);
    const b = randn(engine.backend, [n, n], gen);
    const a16 = cast(a, 'f16');
    const b16 = cast(b, 'f16');
    const flop = 2 * n ** 3;
    const cases: [string, () => import('../src/engine/tensor').Tensor][] = [
      ['matmul f32', () => matmul(a, b)],
      ['matmul f16 operands → f32', () => autocast(() => matmul(a16, b16))],
      ['matmul autocast (+casts)', () => autocast(() => matmul(a, b))],
      ['linear x·Wᵀ f32', () => linear(a, b)],
      ['linear x·Wᵀ f16 operands → f32', () => autocast(() => linear(a16, b16))],
    ];
    // Alternating rounds (best median of each): fair on a machine shared with other work.
    const best = await timeAlternating(engine, cases.map(([, fn]) => fn), { budgetMs, iters: 10 }, options.quick ? 2 : 3);
    cases.forEach(([name], i) => rows.push(row({ suite: 'matmul', name, shape: `${n}³`, ms: best[i], gflops: flop / best[i] / 1e6 })));
    [a, b, a16, b16].forEach((t) => t.dispose());
  }
  return rows;
}
