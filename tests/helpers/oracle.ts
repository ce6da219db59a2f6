import { expect } from 'vitest';
import { Engine } from '../../src/engine/engine';
import { backward } from '../../src/engine/autograd';
import type { Tensor } from '../../src/engine/tensor';
import { mul, sum } from '../../src/index';
import { uniformValues } from './values';
import { assertClose, buildInputs, compareCase, storedToLogical, type InputSpec } from '../conformance/harness';

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

export type { InputSpec };

type OpFn = (...inputs: Tensor[]) => Tensor;

export interface CompareOptions {
  rtol?: number;
  atol?: number;
  seed?: number;
  /** Skip the backward comparison (forward-only ops). */
  forwardOnly?: boolean;
}

/** The conformance harness's comparison: throws naming the worst element beyond `atol + rtol·|expected|`. */
export { assertClose as expectClose };

/**
 * Runs `op` on the GPU and on the float64 reference with the same inputs; compares the output and, with a
 * random upstream gradient, the gradient of every input — one conformance-harness case.
 */
export async function compareWithReference(op: OpFn, specs: InputSpec[], options: CompareOptions = {}): Promise<void> {
  await compareCase({ gpu: await gpuEngine(), cpu }, { name: 'compareWithReference', op, inputs: specs, ...options });
}

/**
 * Finite-difference check of the backward rules, entirely in float64 on the reference backend:
 * central differences of L = Σ w ⊙ op(x) against the autograd gradient.
 */
export async function gradCheck(op: OpFn, specs: InputSpec[], options: { eps?: number; tol?: number; seed?: number } = {}): Promise<void> {
  const eps = options.eps ?? 1e-6;
  const tol = options.tol ?? 1e-6;
  const seed = options.seed ?? 3;
  const values = specs.map((s, k) => Float64Array.from(s.values ?? randomValues(s.shape.reduce((a, b) => a * b, 1), seed + 17 * k)));
  const lossAt = (vals: Float64Array[]): number => {
    const { leaves, args } = buildInputs(cpu, specs.map((s, k) => ({ ...s, values: vals[k] })), seed);
    const y = op(...args);
    const w = randomValues(y.size, seed + 99);
    const yv = y.toFloat64Sync();
    let l = 0;
    for (let i = 0; i < yv.length; i++) l += yv[i] * w[i];
    y.dispose();
    leaves.forEach((t) => t.dispose());
    return l;
  };
  const { leaves, args } = buildInputs(cpu, specs.map((s, k) => ({ ...s, values: values[k] })), seed);
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

/** Values of a spec after bumping stored element i (handles permuted layouts). */
function bumpLogical(spec: InputSpec, stored: Float64Array, i: number, delta: number): Float64Array {
  const bumped = Float64Array.from(stored);
  bumped[i] += delta;
  if (!spec.permuted) return bumped;
  // Convert the stored layout back to logical order.
  const logical = new Float64Array(bumped.length);
  storedToLogical(spec.shape, spec.permuted).forEach((li, j) => (logical[li] = bumped[j]));
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
