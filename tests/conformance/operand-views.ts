/**
 * Operand-view cases: one op run on the GPU and on the float64 reference with one operand at a time given as
 * a view — an element-offset slice of a larger buffer, a stepped and permuted view, or a stride-0 broadcast,
 * with padding around it — and once with the upstream gradient handed to the backward rule as an offset or
 * strided view. Compared: the outputs, the gradient of every differentiable leaf over its whole base buffer
 * (a gradient written beside the view shows) and, for in-place ops, the whole storage of every mutated
 * operand. `operandViewCase` turns a table entry (operand-view-table.ts) into a harness case whose every
 * comparison goes through the harness's `assertClose` / `toleranceOf`.
 * No vitest or Node APIs: Deno runs these too.
 */
import { backward, record } from '../../src/engine/autograd';
import { fromArray } from '../../src/engine/create';
import type { Engine } from '../../src/engine/engine';
import { tidy } from '../../src/engine/scope';
import type { Tensor } from '../../src/engine/tensor';
import { expand, permute, reshape, slice } from '../../src/kernels/views';
import { add, copyInto, mul } from '../../src/kernels/elementwise';
import { sum } from '../../src/kernels/reduce';
import {
  assertClose,
  assertGradientsClose,
  ConformanceFailure,
  seededValues,
  toleranceOf,
  type ConformanceContext,
  type CustomCase,
  type Requirement,
  type Tolerance,
  type Variant,
} from './harness';

/**
 * How an operand is handed to the op:
 * - contiguous: a plain tensor (the baseline);
 * - offset: a contiguous slice of a larger flat buffer (non-zero element offset, padding on both sides);
 * - strided: an offset view whose every dim is stepped by 2 and whose dim order is reversed in storage
 *   (non-contiguous in every dim; rank-1 operands are stepped);
 * - broadcast: an offset view of a buffer with size 1 along the operand's `broadcast` dims, expanded
 *   (stride 0); only for operands that declare such dims.
 */
export type Layout = 'contiguous' | 'offset' | 'strided' | 'broadcast';

export interface OperandSpec {
  shape: number[];
  /** f16 operands need f16-representable values (see `halfValues`): the reference backend does not round. */
  dtype?: 'f32' | 'f16' | 'i32';
  /** Gradient compared after backward (default: true for f32 operands of a non-in-place case). */
  grad?: boolean;
  /** Values of n elements (default uniform in [-1, 1)); also fills the padding around views. */
  values?: (n: number, seed: number) => ArrayLike<number>;
  /** Dims that may be given as a stride-0 broadcast (the 'broadcast' layout). */
  broadcast?: number[];
  /** Layouts this operand cannot take (the op's contract requires otherwise), with the reason. */
  excluded?: Partial<Record<Layout, string>>;
  /** The op writes this operand in place: its whole base storage is compared after the run. */
  mutated?: boolean;
}

/** One op of the operand-view table, each operand described once. */
export interface OperandViewEntry extends Tolerance {
  name: string;
  /** The op family (src/kernels/<family>.ts). */
  family: string;
  operands: OperandSpec[];
  /** Runs the op on views `xs` (same order as `operands`); returns the outputs to compare. */
  run: (xs: Tensor[]) => Tensor | Tensor[] | void;
  /** No autograd comparison (ops without a backward rule, in-place updates). */
  forwardOnly?: boolean;
  variant?: Variant;
  requires?: Requirement;
}

/** Values in [-1, 1) on a 2^-10 grid: exact in f16, so both backends start from the same numbers. */
export const halfValues = (n: number, seed: number) => seededValues(n, seed).map((v) => Math.round(v * 1024) / 1024);

/** Integer values in [0, count) (indices). */
export const indexValues = (count: number) => (n: number, seed: number) => Array.from(seededValues(n, seed, 0, count), (v) => Math.min(count - 1, Math.floor(v)));

/** The layouts an operand is tested with (besides the all-contiguous baseline). */
export function layoutsOf(spec: OperandSpec): Layout[] {
  const all: Layout[] = ['offset', 'strided', ...(spec.broadcast?.length ? (['broadcast'] as Layout[]) : [])];
  return all.filter((l) => !spec.excluded?.[l]);
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

interface Operand {
  /** The tensor the op gets. */
  view: Tensor;
  /** The storage-owning leaf (gradients accumulate here; compared in full). */
  base: Tensor;
}

/** Builds operand `spec` in `layout` on `engine`; identical values on every engine for the same seed. */
function makeOperand(engine: Engine, spec: OperandSpec, layout: Layout, seed: number, trainable: boolean): Operand {
  const dtype = spec.dtype ?? 'f32';
  const gen = spec.values ?? ((n: number, s: number) => seededValues(n, s));
  const shape = spec.shape;
  const leaf = (values: ArrayLike<number>, baseShape: number[]) => {
    const t = engine.tensor(values, baseShape, dtype);
    t.requiresGrad = trainable;
    return t;
  };
  if (layout === 'contiguous') {
    const base = leaf(gen(numel(shape), seed), shape);
    return { view: base, base };
  }
  if (layout === 'offset' || layout === 'broadcast') {
    const viewShape = layout === 'broadcast' ? shape.map((d, i) => (spec.broadcast!.includes(i) ? 1 : d)) : shape;
    const n = numel(viewShape);
    const before = 3;
    const base = leaf(gen(n + before + 2, seed), [n + before + 2]);
    const flat = slice(base, 0, before, before + n);
    let view = reshape(flat, viewShape);
    flat.dispose();
    if (layout === 'broadcast') {
      const e = expand(view, shape);
      view.dispose();
      view = e;
    }
    return { view, base };
  }
  const base = leaf(gen(numel(stridedStorage(shape)), seed), stridedStorage(shape));
  return { view: stridedView(base, shape), base };
}

/** Storage of the 'strided' layout: dims reversed, each logical dim d occupying 2·shape[d] + 1 slots. */
const stridedStorage = (shape: readonly number[]) => [...shape].reverse().map((n) => 2 * n + 1);

/** The 'strided' view of `shape` in such a storage: logical dim d is stored dim rank−1−d, elements at 1, 3, 5, … */
function stridedView(base: Tensor, shape: readonly number[]): Tensor {
  const rank = shape.length;
  let view = permute(base, Array.from({ length: rank }, (_, j) => rank - 1 - j));
  for (let d = 0; d < rank; d++) {
    const s = slice(view, d, 1, 1 + 2 * shape[d], 2);
    view.dispose();
    view = s;
  }
  return view;
}

/** How the backward rule receives its upstream gradient: fresh, an offset slice, or an offset strided view. */
export type Upstream = 'contiguous' | 'offset' | 'strided';

/**
 * Identity whose backward hands the upstream gradient on in layout `upstream` ('offset': a contiguous
 * slice of a larger buffer; 'strided': offset, every dim stepped, dims reversed in storage), so the op's
 * backward kernels read a gradient operand that is a view.
 */
function viewedUpstream(y: Tensor, upstream: Upstream, seed: number): Tensor {
  return record(`${upstream}_upstream`, [y], y.share(), [], (g) => {
    let view: Tensor;
    if (upstream === 'strided') {
      const storage = fromArray(g.backend, seededValues(numel(stridedStorage(g.shape)), seed), stridedStorage(g.shape));
      view = stridedView(storage, g.shape);
      storage.dispose();
    } else {
      const storage = fromArray(g.backend, seededValues(g.size + 5, seed), [g.size + 5]);
      const flat = slice(storage, 0, 3, 3 + g.size);
      view = reshape(flat, g.shape);
      flat.dispose();
      storage.dispose();
    }
    copyInto(g.backend, g, view);
    return [view];
  });
}

/** Every float output of the op as a list. */
function outputsOf(r: Tensor | Tensor[] | void): Tensor[] {
  if (!r) return [];
  return Array.isArray(r) ? r : [r];
}

interface RunResult {
  outputs: Float64Array[];
  grads: (Float64Array | null)[];
  mutated: (Float64Array | null)[];
}

async function runOn(engine: Engine, c: OperandViewEntry, operand: number, layout: Layout, upstream: Upstream): Promise<RunResult> {
  const built = c.operands.map((spec, i) => {
    const trainable = !c.forwardOnly && (spec.grad ?? (spec.dtype ?? 'f32') === 'f32') && !spec.mutated;
    return makeOperand(engine, spec, i === operand ? layout : 'contiguous', 1000 + 37 * i, trainable);
  });
  const outs = outputsOf(c.run(built.map((b) => b.view)));
  const outputs = await Promise.all(outs.map((t) => t.dataF64()));
  const floatOuts = outs.filter((t) => t.dtype === 'f32' || t.dtype === 'f16');
  if (!c.forwardOnly && floatOuts.some((t) => t.requiresGrad || t.gradNode)) {
    const weights = floatOuts.map((t, k) => engine.tensor(seededValues(t.size, 77 + k), t.shape));
    const loss = tidy(() =>
      floatOuts
        .map((t, k) => sum(mul(upstream === 'contiguous' ? t : viewedUpstream(t, upstream, 91 + k), weights[k])))
        .reduce((a, b) => add(a, b)),
    );
    backward(loss);
    loss.dispose();
    weights.forEach((w) => w.dispose());
  }
  const grads: (Float64Array | null)[] = [];
  // A trainable leaf the backward pass never reached reads as an empty gradient (a length mismatch if the other side has one).
  for (const b of built) grads.push(b.base.requiresGrad ? (b.base.grad ? await b.base.grad.dataF64() : new Float64Array(0)) : null);
  const mutated = await Promise.all(built.map((b, i) => (c.operands[i].mutated ? b.base.dataF64() : Promise.resolve(null))));
  for (const t of outs) t.dispose();
  for (const b of built) {
    if (b.view !== b.base) b.view.dispose();
    b.base.dispose();
  }
  return { outputs, grads, mutated };
}

/** The suite-wide default of this table: its sums run over padded views, and it was validated at this tolerance. */
const VIEW_TOLERANCE: Tolerance = { rtol: 2e-4, atol: 2e-5 };

/**
 * Runs entry `c` with operand `operand` in `layout` (all others contiguous; operand −1 = all contiguous) on
 * `ctx.gpu` and on `ctx.cpu`, and throws ConformanceFailure on the first mismatch. `upstream` 'offset' /
 * 'strided' hands the backward rule its upstream gradient as such a view instead of a fresh tensor.
 */
export async function checkOperandLayout(ctx: ConformanceContext, c: OperandViewEntry, operand: number, layout: Layout, upstream: Upstream = 'contiguous'): Promise<void> {
  const tol = toleranceOf(c, VIEW_TOLERANCE);
  const where = `[${operand < 0 ? 'all contiguous' : `operand ${operand} ${layout}`}${upstream === 'contiguous' ? '' : `, ${upstream} upstream gradient`}]`;
  const g = await runOn(ctx.gpu, c, operand, layout, upstream);
  const r = await runOn(ctx.cpu, c, operand, layout, upstream);
  if (g.outputs.length !== r.outputs.length) throw new ConformanceFailure(`${where}: ${g.outputs.length} outputs, expected ${r.outputs.length}`);
  g.outputs.forEach((v, k) => assertClose(v, r.outputs[k], tol.rtol, tol.atol, `${where} output ${k}`));
  assertGradientsClose(g.grads, r.grads, tol, (k) => `${where} gradient of operand ${k} (whole base buffer)`);
  r.mutated.forEach((rm, k) => {
    if (rm) assertClose(g.mutated[k]!, rm, tol.rtol, tol.atol, `${where} operand ${k} after the in-place update (whole base buffer)`);
  });
}

/** Every layout entry `c` is checked in: all contiguous, the upstream-gradient views, then each operand's views. */
export function layoutChecks(c: OperandViewEntry): { operand: number; layout: Layout; upstream: Upstream }[] {
  const checks: { operand: number; layout: Layout; upstream: Upstream }[] = [{ operand: -1, layout: 'contiguous', upstream: 'contiguous' }];
  if (!c.forwardOnly) for (const upstream of ['offset', 'strided'] as const) checks.push({ operand: -1, layout: 'contiguous', upstream });
  c.operands.forEach((spec, operand) => {
    for (const layout of layoutsOf(spec)) checks.push({ operand, layout, upstream: 'contiguous' });
  });
  return checks;
}

/** The harness case of one table entry: every layout check runs (a failure does not stop the others), and all failures are reported together. */
export function operandViewCase(c: OperandViewEntry): CustomCase {
  return {
    name: `operand views, ${c.family}: ${c.name}`,
    variant: c.variant,
    requires: c.requires,
    run: async (ctx) => {
      const failures: string[] = [];
      for (const { operand, layout, upstream } of layoutChecks(c)) {
        try {
          await checkOperandLayout(ctx, c, operand, layout, upstream);
        } catch (e) {
          failures.push(e instanceof Error ? e.message : String(e));
        }
      }
      if (failures.length) throw new ConformanceFailure(`${failures.length} failing layout(s):\n${failures.join('\n')}`);
    },
  };
}
