import { record } from '../engine/autograd';
import type { CpuStorage, GpuStorage } from '../engine/backend';
import { empty } from '../engine/create';
import { ShapeError } from '../engine/errors';
import { contiguousStrides, formatShape, normalizeAxis, numel } from '../engine/shape';
import type { StridedView, Tensor } from '../engine/tensor';
import { UniformWriter } from '../engine/uniforms';
import { gatherShader, indexSelectShader } from '../../shaders/layout.wgsl';
import { copyInto, full } from './elementwise';
import { contiguous, slice, unsqueeze as unsqueezeView } from './views';

const WORKGROUP = 256;

/** The view of `out` covering [start, start+len) along dim (for writing parts into a new tensor). */
function region(out: Tensor, dim: number, start: number, len: number, shape: readonly number[]): StridedView {
  const strides = contiguousStrides(out.shape);
  return { storage: out.storage, shape, strides, offset: out.offset + start * strides[dim], dtype: out.dtype };
}

/** Joins tensors along dim. */
export function concat(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new ShapeError('concat of no tensors');
  const first = tensors[0];
  const d = normalizeAxis(dim, first.rank);
  for (const t of tensors) {
    if (t.rank !== first.rank || t.shape.some((s, i) => i !== d && s !== first.shape[i])) {
      throw new ShapeError(`concat along ${d}: ${formatShape(t.shape)} does not match ${formatShape(first.shape)}`);
    }
  }
  const shape = [...first.shape];
  shape[d] = tensors.reduce((a, t) => a + t.shape[d], 0);
  const out = empty(first.backend, shape, first.dtype);
  let start = 0;
  const starts: number[] = [];
  for (const t of tensors) {
    starts.push(start);
    copyInto(first.backend, t, region(out, d, start, t.shape[d], t.shape));
    start += t.shape[d];
  }
  return record('concat', tensors, out, [], (g) => tensors.map((t, i) => contiguous(slice(g, d, starts[i], starts[i] + t.shape[d]))));
}

export const stack = (tensors: readonly Tensor[], dim = 0): Tensor => {
  const d = normalizeAxis(dim, tensors[0].rank + 1);
  return concat(tensors.map((t) => unsqueezeView(t, d)), d);
};

/**
 * Constant padding. `pads` lists (before, after) pairs starting from the LAST dim, as torch.nn.functional.pad.
 * Negative pads crop.
 */
export function pad(x: Tensor, pads: readonly number[], value = 0): Tensor {
  if (pads.length % 2 !== 0 || pads.length / 2 > x.rank) throw new ShapeError(`pad: ${pads.length} values for rank ${x.rank}`);
  const before = new Array<number>(x.rank).fill(0);
  const after = new Array<number>(x.rank).fill(0);
  for (let i = 0; i < pads.length / 2; i++) {
    before[x.rank - 1 - i] = pads[2 * i];
    after[x.rank - 1 - i] = pads[2 * i + 1];
  }
  // Negative pads are crops of the input.
  let src = x;
  for (let d = 0; d < x.rank; d++) {
    if (before[d] < 0 || after[d] < 0) {
      const cropped = slice(src, d, Math.max(0, -before[d]), src.shape[d] - Math.max(0, -after[d]));
      if (src !== x) src.dispose();
      src = cropped;
    }
  }
  const shape = x.shape.map((s, d) => s + before[d] + after[d]);
  if (shape.some((s) => s < 0)) throw new ShapeError(`pad ${pads} gives a negative size for ${formatShape(x.shape)}`);
  const out = full(x.backend, shape, value, x.dtype);
  const strides = contiguousStrides(shape);
  const offset = before.reduce((a, b, d) => a + Math.max(b, 0) * strides[d], 0);
  copyInto(x.backend, src, { storage: out.storage, shape: src.shape, strides, offset, dtype: out.dtype });
  if (src !== x) src.dispose();
  return record('pad', [x], out, [], (g) => {
    let r = g.share();
    for (let d = 0; d < x.rank; d++) {
      if (before[d] !== 0 || after[d] !== 0) {
        const start = Math.max(before[d], 0);
        const s = slice(r, d, start, start + x.shape[d] - Math.max(0, -before[d]) - Math.max(0, -after[d]));
        r.dispose();
        r = s;
      }
    }
    // Cropped elements get zero gradient: pad the kept region back by the crop amounts.
    const crops = pads.map((p) => Math.max(0, -p));
    return [crops.some((c) => c > 0) ? pad(r, crops) : contiguous(r)];
  });
}

type IndexMode = 'index_select' | 'gather';

/**
 * The shared launcher of index_select and gather (forward and backward): src and out viewed as
 * [outer, ·, inner] around dim `d`; `n` = size of the indexed dim of x, `count` = size along d of the
 * index (index_select: 1-D index of length count; gather: index shaped like the output).
 */
function indexedCopy(mode: IndexMode, src: Tensor, d: number, index: Tensor, n: number, count: number, backward: boolean, outShape: number[]): Tensor {
  const outer = numel(src.shape.slice(0, d));
  const inner = numel(src.shape.slice(d + 1));
  const out = empty(src.backend, outShape, src.dtype);
  const srcC = contiguous(src);
  const idxC = contiguous(index);
  if (src.backend.kind === 'cpu') {
    const s = srcC.toFloat64Sync();
    const ix = idxC.toFloat64Sync();
    const o = (out.storage as CpuStorage).data;
    o.fill(0);
    for (let a = 0; a < outer; a++)
      for (let i = 0; i < count; i++)
        for (let k = 0; k < inner; k++) {
          const at = (a * count + i) * inner + k;
          const j = mode === 'gather' ? ix[at] : ix[i];
          // Out of range: NaN forward, nothing backward (as on the device; see the shader).
          if (j < 0 || j >= n) {
            if (!backward) o[at] = NaN;
          } else if (backward) o[(a * n + j) * inner + k] += s[at];
          else o[at] = s[(a * n + j) * inner + k];
        }
  } else if (out.size > 0) {
    const total = out.size;
    const groups = Math.ceil(total / WORKGROUP);
    const maxX = src.backend.ctx.caps.limits.maxComputeWorkgroupsPerDimension;
    const options = { dtype: src.dtype, backward, workgroupSize: WORKGROUP };
    src.backend.ctx.dispatch(
      { key: `${mode}:${src.dtype}:${backward}`, source: () => (mode === 'gather' ? gatherShader(options) : indexSelectShader(options)), inputs: 2, outputs: 1 },
      {
        inputs: [(srcC.storage as GpuStorage).buffer, (idxC.storage as GpuStorage).buffer],
        outputs: [(out.storage as GpuStorage).buffer],
        // Both operands may be offset views (a slice of a larger index buffer): each offset goes in.
        uniforms: new UniformWriter().u32(outer, n, inner, count, total, srcC.offset, idxC.offset, 0x7fc00000).finish(),
        workgroups: [Math.min(groups, maxX), Math.ceil(groups / maxX)],
      },
    );
  }
  srcC.dispose();
  idxC.dispose();
  return out;
}

function checkIndex(index: Tensor, what: string): void {
  if (index.dtype !== 'i32') throw new ShapeError(`${what} needs an i32 index, got ${index.dtype}`);
}

/** torch.gather: y[..., i, ...] = x[..., index[..., i, ...], ...] along dim; index has x's rank. */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  const d = normalizeAxis(dim, x.rank);
  checkIndex(index, 'gather');
  if (index.rank !== x.rank || index.shape.some((s, i) => i !== d && s !== x.shape[i])) {
    throw new ShapeError(`gather along ${d}: index ${formatShape(index.shape)} must match ${formatShape(x.shape)} except along the dim`);
  }
  const n = x.shape[d];
  const count = index.shape[d];
  const y = indexedCopy('gather', x, d, index, n, count, false, [...index.shape]);
  return record('gather', [x], y, [index], (g, [idx]) => [indexedCopy('gather', g, d, idx, n, count, true, [...x.shape])]);
}

/** Rows of x along dim picked by an integer index tensor (1-D, values in [0, size)). */
export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  const d = normalizeAxis(dim, x.rank);
  if (index.rank !== 1) throw new ShapeError(`indexSelect needs a 1-D index, got ${formatShape(index.shape)}`);
  checkIndex(index, 'indexSelect');
  const n = x.shape[d];
  const outShape = [...x.shape];
  outShape[d] = index.size;
  const y = indexedCopy('index_select', x, d, index, n, index.size, false, outShape);
  return record('index_select', [x], y, [index], (g, [idx]) => [indexedCopy('index_select', g, d, idx, n, index.size, true, [...x.shape])]);
}
