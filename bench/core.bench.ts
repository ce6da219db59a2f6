import type { Engine } from '../src/engine/engine';
import * as ops from '../src/index';
import { loadTfjs, row, timeGpu, timeTfjs, type BenchRow } from './harness';

/** Matmul, elementwise, reductions and softmax, each beside tfjs-webgpu on the same adapter. */
export async function run(engine: Engine, options: { quick: boolean }): Promise<BenchRow[]> {
  const tf = await loadTfjs();
  const gen = new ops.Generator(0);
  const rows: BenchRow[] = [];
  const budget = options.quick ? 1500 : 4000;
  const big = engine.caps?.adapter.architecture !== 'software';

  const matmulSizes = options.quick ? [256, 512] : big ? [512, 1024, 2048, 4096] : [256, 512, 1024];
  for (const n of matmulSizes) {
    const a = ops.randn(engine.backend, [n, n], gen);
    const b = ops.randn(engine.backend, [n, n], gen);
    const ms = await timeGpu(engine, () => ops.matmul(a, b), { budgetMs: budget });
    let tfjsMs: number | undefined;
    if (tf) {
      const ta = tf.randomNormal([n, n]);
      const tb = tf.randomNormal([n, n]);
      tfjsMs = await timeTfjs(tf, () => tf.matMul(ta, tb), { budgetMs: budget });
      ta.dispose();
      tb.dispose();
    }
    rows.push(row({ suite: 'core', name: 'matmul f32', shape: `${n}³`, ms, gflops: (2 * n ** 3) / ms / 1e6, tfjsMs }));
    a.dispose();
    b.dispose();
  }

  const n = options.quick ? 1 << 20 : 1 << 22;
  const x = ops.randn(engine.backend, [n], gen);
  const y = ops.randn(engine.backend, [n], gen);
  const tx = tf?.randomNormal([n]);
  const ty = tf?.randomNormal([n]);
  const elementwise: [string, () => ops.Tensor, (() => import('@tensorflow/tfjs').Tensor) | null, number][] = [
    ['add', () => ops.add(x, y), tf ? () => tf.add(tx!, ty!) : null, 12],
    ['gelu', () => ops.gelu(x), null, 8],
    ['sigmoid', () => ops.sigmoid(x), tf ? () => tf.sigmoid(tx!) : null, 8],
  ];
  for (const [name, fn, tfFn, bytesPerElement] of elementwise) {
    const ms = await timeGpu(engine, fn, { budgetMs: budget });
    const tfjsMs = tf && tfFn ? await timeTfjs(tf, tfFn, { budgetMs: budget }) : undefined;
    rows.push(row({ suite: 'core', name: `elementwise ${name}`, shape: `${n}`, ms, gbps: (n * bytesPerElement) / ms / 1e6, tfjsMs }));
  }

  // Strided walks as the DiT makes them: a [B, T, L, D] → [B, L, T, D] copy and an adaLN-style broadcast product.
  const [b, t, l, d] = [8, 12, 64, 64];
  const tokens = ops.randn(engine.backend, [b, t, l, d], gen);
  const rowScale = ops.randn(engine.backend, [b, 1, d], gen);
  const flat = ops.reshape(tokens, [b, t * l, d]);
  const tTokens = tf?.randomNormal([b, t, l, d]);
  const tScale = tf?.randomNormal([b, 1, d]);
  const tFlat = tTokens ? tf!.reshape(tTokens, [b, t * l, d]) : undefined;
  const strided: [string, string, () => ops.Tensor, (() => import('@tensorflow/tfjs').Tensor) | null][] = [
    ['permute copy (0,2,1,3)', `[${b},${t},${l},${d}]`, () => ops.contiguous(ops.permute(tokens, [0, 2, 1, 3])), tf ? () => tf.transpose(tTokens!, [0, 2, 1, 3]) : null],
    ['broadcast mul', `[${b},${t * l},${d}]×[${b},1,${d}]`, () => ops.mul(flat, rowScale), tf ? () => tf.mul(tFlat!, tScale!) : null],
  ];
  for (const [name, shape, fn, tfFn] of strided) {
    const ms = await timeGpu(engine, fn, { budgetMs: budget });
    const tfjsMs = tf && tfFn ? await timeTfjs(tf, tfFn, { budgetMs: budget }) : undefined;
    rows.push(row({ suite: 'core', name: `elementwise ${name}`, shape, ms, gbps: (b * t * l * d * 8) / ms / 1e6, tfjsMs }));
  }
  for (const x of [tokens, rowScale, flat]) x.dispose();
  for (const x of [tTokens, tScale, tFlat]) x?.dispose();

  const side = options.quick ? 1024 : 2048;
  const m = ops.randn(engine.backend, [side, side], gen);
  const tm = tf?.randomNormal([side, side]);
  const reductions: [string, () => ops.Tensor, (() => import('@tensorflow/tfjs').Tensor) | null][] = [
    ['sum rows', () => ops.sum(m, 1), tf ? () => tf.sum(tm!, 1) : null],
    ['sum cols', () => ops.sum(m, 0), tf ? () => tf.sum(tm!, 0) : null],
    ['sum all', () => ops.sum(m), tf ? () => tf.sum(tm!) : null],
    ['max rows', () => ops.max(m, 1), tf ? () => tf.max(tm!, 1) : null],
    ['softmax rows', () => ops.softmax(m, -1), tf ? () => tf.softmax(tm!) : null],
  ];
  for (const [name, fn, tfFn] of reductions) {
    const ms = await timeGpu(engine, fn, { budgetMs: budget });
    const tfjsMs = tf && tfFn ? await timeTfjs(tf, tfFn, { budgetMs: budget }) : undefined;
    const bytes = side * side * 4 * (name.startsWith('softmax') ? 2 : 1);
    rows.push(row({ suite: 'core', name, shape: `${side}×${side}`, ms, gbps: bytes / ms / 1e6, tfjsMs }));
  }
  for (const t of [x, y, m]) t.dispose();
  for (const t of [tx, ty, tm]) t?.dispose();
  return rows;
}
