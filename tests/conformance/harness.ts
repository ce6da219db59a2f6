/**
 * The conformance harness: tables of cases, each comparing the WebGPU backend with the float64 CPU
 * reference, and a runner that reports `N passed, N failed`. The same tables run under vitest on Node
 * (Dawn, tests/conformance/*.test.ts) and under Deno (wgpu/Naga, scripts/conformance.ts), so both WebGPU
 * implementations are held to one standard. Every comparison goes through `assertClose` and `toleranceOf`;
 * operand-view cases (operand-views.ts) are custom cases built on them.
 * Nothing here imports vitest or Node APIs (Deno runs it): failures are plain thrown errors.
 */
import { Engine } from '../../src/engine/engine';
import { backward } from '../../src/engine/autograd';
import { tidy } from '../../src/engine/scope';
import type { Tensor } from '../../src/engine/tensor';
import { mul } from '../../src/kernels/elementwise';
import { sum } from '../../src/kernels/reduce';
import { permute } from '../../src/kernels/views';
import { uniformValues } from '../helpers/values';

export class ConformanceFailure extends Error {
  override name = 'ConformanceFailure';
}

/** One input of an op: its logical shape, values (seeded random in [-1, 1) when omitted) and layout. */
export interface InputSpec {
  shape: number[];
  values?: ArrayLike<number>;
  requiresGrad?: boolean;
  dtype?: 'f32' | 'i32' | 'f16';
  /** Stored with these dims permuted, then viewed back: same logical values, non-contiguous strides. */
  permuted?: number[];
}

export interface Tolerance {
  rtol?: number;
  atol?: number;
  /** Gradients accumulate more rounding than outputs; default 10× the forward tolerance. */
  gradScale?: number;
}

export interface ResolvedTolerance {
  rtol: number;
  atol: number;
  gradRtol: number;
  gradAtol: number;
}

/** The tolerance of a case: its own values over `defaults` over 1e-4 / 1e-5, gradients `gradScale`× looser. */
export function toleranceOf(t: Tolerance, defaults: Tolerance = {}): ResolvedTolerance {
  const rtol = t.rtol ?? defaults.rtol ?? 1e-4;
  const atol = t.atol ?? defaults.atol ?? 1e-5;
  const gradScale = t.gradScale ?? defaults.gradScale ?? 10;
  return { rtol, atol, gradRtol: rtol * gradScale, gradAtol: atol * gradScale };
}

/** A capability a case needs; on an adapter without it the case is skipped and counted. */
export type Requirement = 'f16';

export type OpFn = (...inputs: Tensor[]) => Tensor;

/** The usual case: `op` on the GPU and on the float64 reference, outputs and every input gradient. */
export interface CompareCase extends Tolerance {
  name: string;
  op: OpFn;
  inputs: InputSpec[];
  /** Skip the backward comparison (ops without gradients). */
  forwardOnly?: boolean;
  seed?: number;
  variant?: Variant;
  requires?: Requirement;
}

/** Switches a kernel variant on (e.g. a forced tiling) for one whole case and returns what switches it off. */
export type Variant = () => () => void;

/**
 * A case that is not one op call (optimizer steps, device features, operand views): it does its own
 * comparison, with `assertClose`.
 */
export interface CustomCase {
  name: string;
  run: (ctx: ConformanceContext) => Promise<void>;
  variant?: Variant;
  requires?: Requirement;
}

export type ConformanceCase = CompareCase | CustomCase;

export interface ConformanceContext {
  gpu: Engine;
  cpu: Engine;
}

/** Deterministic test data (xorshift), in [lo, hi), each value exact in f32. */
export const seededValues = (n: number, seed = 1, lo = -1, hi = 1): Float64Array => uniformValues(n, seed, lo, hi);

/** Throws a `ConformanceFailure` naming the worst element when `actual` is not within tolerance of `expected`. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  if (actual.length !== expected.length) throw new ConformanceFailure(`${what}: length ${actual.length}, expected ${expected.length}`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const excess = Math.abs(actual[i] - expected[i]) - (atol + rtol * Math.abs(expected[i]));
    // NaN never passes: `!(NaN <= worst)` is true.
    if (!(excess <= worst)) {
      worst = Number.isNaN(excess) ? Infinity : excess;
      at = i;
    }
  }
  if (at >= 0) throw new ConformanceFailure(`${what}: element ${at} is ${actual[at]}, expected ${expected[at]} (rtol ${rtol}, atol ${atol})`);
}

/** For a tensor of logical `shape` stored with dims in order `order`: stored index → logical index. */
export function storedToLogical(shape: readonly number[], order: readonly number[]): Int32Array {
  const storedShape = order.map((d) => shape[d]);
  const n = shape.reduce((a, b) => a * b, 1);
  const logicalStrides = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
  const out = new Int32Array(n);
  for (let j = 0; j < n; j++) {
    let rest = j;
    let logical = 0;
    for (let d = storedShape.length - 1; d >= 0; d--) {
      logical += (rest % storedShape[d]) * logicalStrides[order[d]];
      rest = Math.floor(rest / storedShape[d]);
    }
    out[j] = logical;
  }
  return out;
}

/** The op's inputs on one engine: the leaves that receive gradients and the (possibly viewed) arguments. */
export function buildInputs(engine: Engine, specs: readonly InputSpec[], seed: number): { leaves: Tensor[]; args: Tensor[] } {
  const leaves: Tensor[] = [];
  const args = specs.map((spec, k) => {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const values = spec.values ?? seededValues(n, seed + 17 * k);
    const dtype = spec.dtype ?? 'f32';
    const wantsGrad = spec.requiresGrad ?? dtype !== 'i32';
    if (!spec.permuted) {
      const t = engine.tensor(values, spec.shape, dtype);
      t.requiresGrad = wantsGrad;
      leaves.push(t);
      return t;
    }
    const order = spec.permuted;
    const stored = Float64Array.from(storedToLogical(spec.shape, order), (i) => values[i]);
    const base = engine.tensor(stored, order.map((d) => spec.shape[d]), dtype);
    base.requiresGrad = wantsGrad;
    leaves.push(base);
    const inverse = new Array<number>(order.length);
    order.forEach((src, i) => (inverse[src] = i));
    return permute(base, inverse);
  });
  return { leaves, args };
}

interface OpRun {
  y: Float64Array;
  shape: readonly number[];
  grads: (Float64Array | null)[];
}

async function runOp(engine: Engine, c: CompareCase, seed: number): Promise<OpRun> {
  const { leaves, args } = buildInputs(engine, c.inputs, seed);
  const y = c.op(...args);
  const run: OpRun = { y: await y.dataF64(), shape: [...y.shape], grads: [] };
  if (!c.forwardOnly) {
    const upstream = engine.tensor(seededValues(y.size, seed + 99), y.shape);
    const loss = tidy(() => sum(mul(y, upstream)));
    backward(loss);
    for (const leaf of leaves) run.grads.push(leaf.grad ? await leaf.grad.dataF64() : null);
    loss.dispose();
    upstream.dispose();
  }
  y.dispose();
  for (const t of new Set([...args, ...leaves])) t.dispose();
  return run;
}

/** Compares the gradients of one run per leaf: both absent, or both present and within tolerance. */
export function assertGradientsClose(actual: readonly (ArrayLike<number> | null)[], expected: readonly (ArrayLike<number> | null)[], tol: ResolvedTolerance, what: (i: number) => string): void {
  expected.forEach((e, i) => {
    const a = actual[i] ?? null;
    if (!e) {
      if (a) throw new ConformanceFailure(`${what(i)}: present on the GPU, absent in the reference`);
      return;
    }
    if (!a) throw new ConformanceFailure(`${what(i)}: absent on the GPU`);
    assertClose(a, e, tol.gradRtol, tol.gradAtol, what(i));
  });
}

/** Runs one op case on both backends and throws on the first difference beyond tolerance. */
export async function compareCase(ctx: ConformanceContext, c: CompareCase): Promise<void> {
  const tol = toleranceOf(c);
  const seed = c.seed ?? 7;
  const gpu = await runOp(ctx.gpu, c, seed);
  const ref = await runOp(ctx.cpu, c, seed);
  if (gpu.shape.join(',') !== ref.shape.join(',')) throw new ConformanceFailure(`output shape [${gpu.shape}], reference [${ref.shape}]`);
  assertClose(gpu.y, ref.y, tol.rtol, tol.atol, 'forward');
  assertGradientsClose(gpu.grads, ref.grads, tol, (i) => `gradient of input ${i}`);
}

export interface CaseResult {
  name: string;
  status: 'passed' | 'failed' | 'skipped';
  ms: number;
  message?: string;
}

export interface ConformanceReport {
  passed: number;
  failed: number;
  skipped: number;
  results: CaseResult[];
}

const isCustom = (c: ConformanceCase): c is CustomCase => 'run' in c;

/** Runs one case, its kernel variant switched on around all of it; whether it applies to this device is checked first. */
export async function runCase(ctx: ConformanceContext, c: ConformanceCase): Promise<CaseResult> {
  const started = performance.now();
  if (c.requires === 'f16' && !supportsF16(ctx.gpu)) return { name: c.name, status: 'skipped', ms: 0, message: 'no shader-f16' };
  try {
    const restore = c.variant?.();
    try {
      if (isCustom(c)) await c.run(ctx);
      else await compareCase(ctx, c);
    } finally {
      restore?.();
    }
    return { name: c.name, status: 'passed', ms: performance.now() - started };
  } catch (err) {
    const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    return { name: c.name, status: 'failed', ms: performance.now() - started, message };
  }
}

function supportsF16(engine: Engine): boolean {
  return engine.caps?.f16 ?? false;
}

/**
 * Runs every case in order (one device, one case at a time) and reports each line through `log`.
 * A failure never stops the run: the report counts them all.
 */
export async function runConformance(
  cases: readonly ConformanceCase[],
  ctx: ConformanceContext,
  log: (line: string) => void = () => {},
): Promise<ConformanceReport> {
  const report: ConformanceReport = { passed: 0, failed: 0, skipped: 0, results: [] };
  for (const c of cases) {
    const result = await runCase(ctx, c);
    report.results.push(result);
    report[result.status]++;
    const ms = `${result.ms.toFixed(0)} ms`;
    if (result.status === 'failed') log(`FAIL ${c.name} (${ms})\n     ${result.message}`);
    else if (result.status === 'skipped') log(`skip ${c.name}${result.message ? ` (${result.message})` : ''}`);
    else log(`ok   ${c.name} (${ms})`);
  }
  return report;
}

/** The cases a table module exports: `conformanceCases`, or its default export. */
export function casesOf(module: Record<string, unknown>, from: string): ConformanceCase[] {
  const cases = module.conformanceCases ?? module.default;
  if (!Array.isArray(cases)) throw new Error(`${from}: exports no conformanceCases array`);
  return cases as ConformanceCase[];
}
