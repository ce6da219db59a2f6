import { autocast } from '../src/engine/autocast';
import type { Engine } from '../src/engine/engine';
import type { Tensor } from '../src/engine/tensor';
import { convBackwardData, convBackwardWeight, convNd, type ConvOptions } from '../src/kernels/conv';
import { cast } from '../src/kernels/elementwise';
import { loadTfjs, row, timeGpu, timeTfjs, type BenchRow, type TimeOptions } from './harness';

interface ConvCase {
  name: string;
  x: number[];
  w: number[];
  opts: ConvOptions;
  /** Which directions to time. */
  dirs: ('fwd' | 'dgrad' | 'wgrad')[];
}

const CASES: ConvCase[] = [
  { name: 'conv2d k3 p1 (VGG-like)', x: [1, 32, 64, 64], w: [32, 32, 3, 3], opts: { padding: 1 }, dirs: ['fwd', 'dgrad'] },
  { name: 'conv3d k3 p1', x: [1, 8, 16, 32, 32], w: [16, 8, 3, 3, 3], opts: { padding: 1 }, dirs: ['fwd', 'dgrad', 'wgrad'] },
  { name: 'conv3d k3 p1 (VAE-like)', x: [1, 32, 8, 24, 24], w: [32, 32, 3, 3, 3], opts: { padding: 1 }, dirs: ['fwd', 'dgrad', 'wgrad'] },
  { name: 'conv3d k(1,4,4) s(1,2,2) p(0,1,1)', x: [1, 16, 8, 32, 32], w: [32, 16, 1, 4, 4], opts: { stride: [1, 2, 2], padding: [0, 1, 1] }, dirs: ['fwd', 'dgrad', 'wgrad'] },
  { name: 'conv1d k7 s2 p3 (ECG stem)', x: [4, 12, 2500], w: [64, 12, 7], opts: { stride: 2, padding: 3 }, dirs: ['fwd', 'dgrad', 'wgrad'] },
];

const prod = (v: readonly number[]) => v.reduce((a, b) => a * b, 1);

/** Best (lowest) median over `rounds` alternating measurements of each function: fair under shared load. */
export async function timeAlternating(engine: Engine, fns: (() => Tensor)[], timing: TimeOptions, rounds: number): Promise<number[]> {
  const best = fns.map(() => Infinity);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < fns.length; i++) best[i] = Math.min(best[i], await timeGpu(engine, fns[i], timing));
  }
  return best;
}
const fill = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed));

/** tfjs takes channels-last inputs and [k..., Cin, Cout] filters; 'same' padding equals our p = k/2 cases. */
function tfjsPad(c: ConvCase): 'same' | 'valid' | number {
  const p = c.opts.padding ?? 0;
  const pads = typeof p === 'number' ? [p] : p;
  const ks = c.w.slice(2);
  const strides = c.opts.stride ?? 1;
  const sameLike = ks.every((k, i) => k % 2 === 1 && (pads[i] ?? pads[0]) === (k - 1) / 2) && (typeof strides === 'number' ? strides === 1 : strides.every((s) => s === 1));
  return sameLike ? 'same' : -1;
}

export async function run(engine: Engine, options: { quick: boolean }): Promise<BenchRow[]> {
  const timing: TimeOptions = options.quick ? { warmup: 1, iters: 3, budgetMs: 1500 } : { warmup: 2, iters: 10, budgetMs: 6000 };
  const tf = await loadTfjs();
  const rows: BenchRow[] = [];
  for (const c of options.quick ? CASES.slice(0, 3) : CASES) {
    const x = engine.tensor(fill(prod(c.x), 1), c.x);
    const w = engine.tensor(fill(prod(c.w), 2), c.w);
    const y0 = convNd(x, w, null, c.opts);
    const gy = engine.tensor(fill(y0.size, 3), y0.shape);
    const flop = 2 * prod(y0.shape) * prod(c.w.slice(1));
    y0.dispose();
    const dims = c.x.length - 2;
    const pad = tfjsPad(c);
    // tfjs comparisons only where its padding can express ours ('same' with stride 1).
    const tfOk = tf && pad === 'same';
    const tfx = tfOk ? tf.tensor(fill(prod(c.x), 1), [c.x[0], ...c.x.slice(2), c.x[1]]) : null;
    const tfw = tfOk ? tf.tensor(fill(prod(c.w), 2), [...c.w.slice(2), c.w[1], c.w[0]]) : null;
    const tfgy = tfOk ? tf.tensor(fill(prod(gy.shape), 3), [gy.shape[0], ...gy.shape.slice(2), gy.shape[1]]) : null;
    const shape = `x[${c.x}] w[${c.w}]`;
    for (const dir of c.dirs) {
      const ours: () => Tensor =
        dir === 'fwd' ? () => convNd(x, w, null, c.opts) : dir === 'dgrad' ? () => convBackwardData(gy, w, c.x, c.opts) : () => convBackwardWeight(x, gy, c.w, c.opts);
      const ms = await timeGpu(engine, ours, timing);
      let tfjsMs: number | undefined;
      if (tf && tfx && tfw && tfgy) {
        const fn = (): import('@tensorflow/tfjs').Tensor => {
          const eng = tf.engine();
          if (dims === 2) {
            if (dir === 'fwd') return tf.conv2d(tfx as import('@tensorflow/tfjs').Tensor4D, tfw as import('@tensorflow/tfjs').Tensor4D, 1, 'same');
            if (dir === 'dgrad') return eng.runKernel('Conv2DBackpropInput', { dy: tfgy, filter: tfw }, { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: tfx.shape }) as import('@tensorflow/tfjs').Tensor;
            return eng.runKernel('Conv2DBackpropFilter', { x: tfx, dy: tfgy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: tfw.shape }) as import('@tensorflow/tfjs').Tensor;
          }
          if (dir === 'fwd') return tf.conv3d(tfx as import('@tensorflow/tfjs').Tensor5D, tfw as import('@tensorflow/tfjs').Tensor5D, 1, 'same');
          if (dir === 'dgrad') return eng.runKernel('Conv3DBackpropInputV2', { dy: tfgy, filter: tfw }, { strides: 1, pad: 'same', inputShape: tfx.shape }) as import('@tensorflow/tfjs').Tensor;
          return eng.runKernel('Conv3DBackpropFilterV2', { x: tfx, dy: tfgy }, { strides: 1, pad: 'same', filterShape: tfw.shape }) as import('@tensorflow/tfjs').Tensor;
        };
        tfjsMs = dims === 1 ? undefined : await timeTfjs(tf, fn, timing);
      }
      rows.push(row({ suite: 'conv', name: `${c.name} ${dir}`, shape, ms, gflops: flop / ms / 1e6, tfjsMs }));
    }
    // Mixed precision (--amp): the same kernels with f16 operands (f32 accumulation and output), i.e. what
    // autocast runs once its operands are converted. Timed in alternation with the f32 kernel (best of a few
    // rounds each), so both see the same load on a shared machine; the forward also with the conversions.
    if (engine.caps?.f16) {
      const x16 = cast(x, 'f16');
      const w16 = cast(w, 'f16');
      for (const dir of c.dirs) {
        const f32: () => Tensor =
          dir === 'fwd' ? () => convNd(x, w, null, c.opts) : dir === 'dgrad' ? () => convBackwardData(gy, w, c.x, c.opts) : () => convBackwardWeight(x, gy, c.w, c.opts);
        const f16: () => Tensor =
          dir === 'fwd' ? () => convNd(x16, w16, null, c.opts) : dir === 'dgrad' ? () => convBackwardData(gy, w16, c.x, c.opts) : () => convBackwardWeight(x16, gy, c.w, c.opts);
        const pair: [string, () => Tensor][] = [['f32 (paired)', f32], ['f16 operands', f16]];
        if (dir === 'fwd') pair.push(['autocast (+casts)', () => autocast(() => convNd(x, w, null, c.opts))]);
        const best = await timeAlternating(engine, pair.map(([, fn]) => fn), timing, options.quick ? 2 : 3);
        pair.forEach(([label], i) => rows.push(row({ suite: 'conv', name: `${c.name} ${dir} ${label}`, shape, ms: best[i], gflops: flop / best[i] / 1e6 })));
      }
      [x16, w16].forEach((t) => t.dispose());
    }
    [x, w, gy].forEach((t) => t.dispose());
    [tfx, tfw, tfgy].forEach((t) => t?.dispose());
  }
  return rows;
}
