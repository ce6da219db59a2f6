import { expect } from 'vitest';
import { Engine } from '../../src/engine/engine';
import { backward } from '../../src/engine/autograd';
import { tidy } from '../../src/engine/scope';
import type { Tensor } from '../../src/engine/tensor';
import { mul, sum } from '../../src/index';
import { uniformValues } from './values';

/** One GPU engine per test file (vitest runs files in separate processes). */
let gpu: Engine | null = null;
export async function gpuEngine(): Promise<Engine> {
  if (!gpu) gpu = await Engine.webgpu();
  return gpu;
}
export function releaseGpu(): void {
  gpu?.destroy();
  gpu = null;
}
export const cpu = Engine.cpu();

/** Deterministic test data (xorshift), in [lo, hi). */
export function randomValues(n: number, seed = 1, lo = -1, hi = 1): Float64Array {
  return uniformValues(n, seed, lo, hi);
}

export interface InputSpec {
  shape: number[];
  /** Values; random in [-1, 1) when omitted. */
  values?: ArrayLike<number>;
  requiresGrad?: boolean;
  dtype?: 'f32' | 'i32';
  /** Build a non-contiguous view: the tensor is created with these dims permuted, then permuted back. */
  permuted?: number[];
}

type OpFn = (...inputs: Tensor[]) => Tensor;

function build(engine: Engine, specs: InputSpec[], seed: number, permuteBack: (t: Tensor, p: number[]) => Tensor): { leaves: Tensor[]; args: Tensor[] } {
  const leaves: Tensor[] = [];
  const args = specs.map((s, k) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const values = s.values ?? randomValues(n, seed + 17 * k);
    if (!s.permuted) {
      const t = engine.tensor(values, s.shape, s.dtype ?? 'f32');
      t.requiresGrad = s.requiresGrad ?? s.dtype !== 'i32';
      leaves.push(t);
      return t;
    }
    // Store in permuted order, then view back: same logical values, non-contiguous strides.
    const p = s.permuted;
    const pshape = p.map((i) => s.shape[i]);
    const toLogical = storedToLogicalIndex(s.shape, p);
    const stored = Float64Array.from(toLogical, (li) => values[li]);
    const base = engine.tensor(stored, pshape, s.dtype ?? 'f32');
    base.requiresGrad = s.requiresGrad ?? s.dtype !== 'i32';
    leaves.push(base);
    const inverse = new Array<number>(p.length);
    p.forEach((src, i) => (inverse[src] = i));
    return permuteBack(base, inverse);
  });
  return { leaves, args };
}

export interface CompareOptions {
  rtol?: number;
  atol?: number;
  seed?: number;
  /** Skip the backward comparison (forward-only ops). */
  forwardOnly?: boolean;
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]) - (atol + rtol * Math.abs(expected[i]));
    if (!(err <= worst)) {
      worst = Number.isNaN(err) ? Infinity : err;
      at = i;
    }
  }
  if (at >= 0) expect.fail(`${what}: element ${at} is ${actual[at]}, expected ${expected[at]} (rtol ${rtol}, atol ${atol})`);
}

/**
 * Runs `op` on the GPU and on the float64 reference with the same inputs; compares the output and, with a
 * random upstream gradient, the gradient of every input.
 */
export async function compareWithReference(op: OpFn, specs: InputSpec[], options: CompareOptions = {}): Promise<void> {
  const { permute } = await import('../../src/kernels/views');
  const rtol = options.rtol ?? 1e-4;
  const atol = options.atol ?? 1e-5;
  const seed = options.seed ?? 7;
  const engine = await gpuEngine();
  const results: { y: Float64Array; grads: (Float64Array | null)[] }[] = [];
  for (const e of [engine, cpu]) {
    const { leaves, args } = build(e, specs, seed, permute);
    const y = op(...args);
    const yv = await y.dataF64();
    const grads: (Float64Array | null)[] = [];
    if (!options.forwardOnly) {
      const w = e.tensor(randomValues(y.size, seed + 99), y.shape);
      const loss = tidy(() => sum(mul(y, w)));
      backward(loss);
      for (const l of leaves) grads.push(l.grad ? await l.grad.dataF64() : null);
      loss.dispose();
      w.dispose();
    }
    results.push({ y: yv, grads });
    y.dispose();
    for (const l of leaves) l.dispose();
    for (const a of args) a.dispose();
  }
  const [g, r] = results;
  expectClose(g.y, r.y, rtol, atol, 'forward');
  r.grads.forEach((rg, i) => {
    if (!rg) return expect(g.grads[i], `gradient of input ${i} should be absent`).toBeNull();
    expect(g.grads[i], `gradient of input ${i}`).not.toBeNull();
    expectClose(g.grads[i]!, rg, rtol * 10, atol * 10, `gradient of input ${i}`);
  });
}

/**
 * Finite-difference check of the backward rules, entirely in float64 on the reference backend:
 * central differences of L = Σ w ⊙ op(x) against the autograd gradient.
 */
export async function gradCheck(op: OpFn, specs: InputSpec[], options: { eps?: number; tol?: number; seed?: number } = {}): Promise<void> {
  const { permute } = await import('../../src/kernels/views');
  const eps = options.eps ?? 1e-6;
  const tol = options.tol ?? 1e-6;
  const seed = options.seed ?? 3;
  const values = specs.map((s, k) => Float64Array.from(s.values ?? randomValues(s.shape.reduce((a, b) => a * b, 1), seed + 17 * k)));
  const lossAt = (vals: Float64Array[]): number => {
    const { leaves, args } = build(cpu, specs.map((s, k) => ({ ...s, values: vals[k] })), seed, permute);
    const y = op(...args);
    const w = randomValues(y.size, seed + 99);
    const yv = y.toFloat64Sync();
    let l = 0;
    for (let i = 0; i < yv.length; i++) l += yv[i] * w[i];
    y.dispose();
    leaves.forEach((t) => t.dispose());
    return l;
  };
  const { leaves, args } = build(cpu, specs.map((s, k) => ({ ...s, values: values[k] })), seed, permute);
  const y = op(...args);
  const w = cpu.tensor(randomValues(y.size, seed + 99), y.shape);
  backward(sum(mul(y, w)));
  for (let k = 0; k < specs.length; k++) {
    if (specs[k].dtype === 'i32' || specs[k].requiresGrad === false) continue;
    const analytic = leaves[k].grad?.toFloat64Sync();
    expect(analytic, `input ${k} has a gradient`).toBeDefined();
    const stored = specs[k].permuted ? leaves[k].shape : specs[k].shape;
    // Central differences on the stored (leaf) layout.
    const storedVals = leaves[k].toFloat64Sync();
    for (let i = 0; i < storedVals.length; i++) {
      const plus = specs.map((s, j) => (j === k ? bumpLogical(s, storedVals, i, eps) : values[j]));
      const minus = specs.map((s, j) => (j === k ? bumpLogical(s, storedVals, i, -eps) : values[j]));
      const numeric = (lossAt(plus) - lossAt(minus)) / (2 * eps);
      const err = Math.abs(numeric - analytic![i]);
      if (err > tol * Math.max(1, Math.abs(numeric))) {
        expect.fail(`input ${k} [${stored}] element ${i}: numeric ${numeric}, autograd ${analytic![i]}`);
      }
    }
  }
}

/** For a tensor of logical `shape` stored with its dims in order `permuted`: stored index → logical index. */
function storedToLogicalIndex(shape: readonly number[], permuted: readonly number[]): Int32Array {
  const pshape = permuted.map((d) => shape[d]);
  const n = shape.reduce((a, b) => a * b, 1);
  const lstr = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
  const pstr = pshape.map((_, d) => pshape.slice(d + 1).reduce((a, b) => a * b, 1));
  const out = new Int32Array(n);
  for (let j = 0; j < n; j++) {
    let rest = j;
    let li = 0;
    for (let d = 0; d < pshape.length; d++) {
      const c = Math.floor(rest / pstr[d]);
      rest %= pstr[d];
      li += c * lstr[permuted[d]];
    }
    out[j] = li;
  }
  return out;
}

/** Values of a spec after bumping stored element i (handles permuted layouts). */
function bumpLogical(spec: InputSpec, stored: Float64Array, i: number, delta: number): Float64Array {
  const bumped = Float64Array.from(stored);
  bumped[i] += delta;
  if (!spec.permuted) return bumped;
  // Convert the stored layout back to logical order.
  const logical = new Float64Array(bumped.length);
  storedToLogicalIndex(spec.shape, spec.permuted).forEach((li, j) => (logical[li] = bumped[j]));
  return logical;
}

/**
 * Runs `step` twice on the GPU engine and checks the second run leaves live memory exactly where it
 * found it (the first run may fill caches: pipelines, the pool).
 */
export async function expectNoLeak(step: () => void): Promise<void> {
  const gpu = await gpuEngine();
  step();
  await gpu.sync();
  const before = gpu.memory().liveBytes;
  step();
  await gpu.sync();
  expect(gpu.memory().liveBytes).toBe(before);
}
