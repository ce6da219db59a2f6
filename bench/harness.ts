import type { Engine } from '../src/engine/engine';
import { nodeGpuInstance } from '../src/engine/device';
import type { Tensor } from '../src/engine/tensor';

/** One measured row: our kernel, optionally beside the same op in tfjs on the same adapter. */
export interface BenchRow {
  suite: string;
  name: string;
  shape: string;
  ms: number;
  gflops?: number;
  gbps?: number;
  tfjsMs?: number;
  /** tfjs time / our time (> 1: we are faster). */
  speedup?: number;
}

export interface TimeOptions {
  warmup?: number;
  iters?: number;
  /** Stop repeating once this much time (ms) was spent measuring. */
  budgetMs?: number;
}

/**
 * Median wall time per call of `fn` on the GPU. Each sample records `batch` calls, then waits for the
 * queue, so submit and readback latency is amortized the way a training step amortizes it.
 */
export async function timeGpu(engine: Engine, fn: () => Tensor | Tensor[] | void, options: TimeOptions = {}): Promise<number> {
  const run = () => {
    const out = fn();
    for (const t of Array.isArray(out) ? out : out ? [out] : []) t.dispose();
  };
  for (let i = 0; i < (options.warmup ?? 2); i++) run();
  await engine.sync();
  const samples: number[] = [];
  const budget = options.budgetMs ?? 3000;
  const start = performance.now();
  const iters = options.iters ?? 10;
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    run();
    await engine.sync();
    samples.push(performance.now() - t0);
    if (performance.now() - start > budget && samples.length >= 3) break;
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

type Tf = typeof import('@tensorflow/tfjs');
let tfPromise: Promise<Tf | null> | null = null;

/**
 * @tensorflow/tfjs with its WebGPU backend on the same Dawn GPU object as our engine (call after
 * Engine.webgpu()). Returns null when it cannot start (then rows carry no tfjs column).
 */
export function loadTfjs(): Promise<Tf | null> {
  if (!tfPromise) {
    tfPromise = (async () => {
      const gpu = nodeGpuInstance();
      if (!gpu) return null;
      (globalThis as { navigator?: unknown }).navigator = { gpu, userAgent: 'node' };
      try {
        const tf = await import('@tensorflow/tfjs');
        await import('@tensorflow/tfjs-backend-webgpu');
        const ok = await tf.setBackend('webgpu');
        if (!ok) return null;
        await tf.ready();
        return tf;
      } catch (e) {
        console.warn(`tfjs unavailable: ${(e as Error).message}`);
        return null;
      }
    })();
  }
  return tfPromise;
}

/** Median time per call of a tfjs computation (results are read back to include the GPU work). */
export async function timeTfjs(tf: Tf, fn: () => import('@tensorflow/tfjs').Tensor | import('@tensorflow/tfjs').Tensor[], options: TimeOptions = {}): Promise<number> {
  const run = async () => {
    const out = tf.tidy(fn);
    const list = Array.isArray(out) ? out : [out];
    await Promise.all(list.map((t) => t.data()));
    list.forEach((t) => t.dispose());
  };
  for (let i = 0; i < (options.warmup ?? 2); i++) await run();
  const samples: number[] = [];
  const budget = options.budgetMs ?? 3000;
  const start = performance.now();
  for (let i = 0; i < (options.iters ?? 10); i++) {
    const t0 = performance.now();
    await run();
    samples.push(performance.now() - t0);
    if (performance.now() - start > budget && samples.length >= 3) break;
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

export function row(r: BenchRow): BenchRow {
  if (r.tfjsMs !== undefined) r.speedup = r.tfjsMs / r.ms;
  return r;
}
