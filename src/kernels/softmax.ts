import { record } from '../engine/autograd';
import type { CpuStorage, GpuStorage } from '../engine/backend';
import { empty } from '../engine/create';
import { ShapeError } from '../engine/errors';
import { normalizeAxis } from '../engine/shape';
import type { Tensor } from '../engine/tensor';
import { UniformWriter } from '../engine/uniforms';
import { softmaxShader } from '../../shaders/softmax.wgsl';
import { softmaxBackwardRef, softmaxRef } from './reference/softmax';
import { cast } from './elementwise';
import { contiguous, transpose } from './views';

const WORKGROUP = 128;

/** Runs the row kernel over contiguous f32 rows (the last axis). */
function rowKernel(inputs: Tensor[], log: boolean, backward: boolean): Tensor {
  const x = inputs[0];
  const len = x.shape[x.rank - 1];
  const rows = x.size / Math.max(len, 1);
  const out = empty(x.backend, x.shape, 'f32');
  if (x.size === 0) return out;
  if (x.backend.kind === 'cpu') {
    const data = backward
      ? softmaxBackwardRef(inputs[0].toFloat64Sync(), inputs[1].toFloat64Sync(), rows, len, log)
      : softmaxRef(x.toFloat64Sync(), rows, len, log);
    (out.storage as CpuStorage).data.set(data);
    return out;
  }
  const perThread = len <= 64 || (x.backend.ctx.caps.software && rows >= 64);
  const program = {
    key: `softmax:${log ? 'log' : 'exp'}:${backward ? 'bwd' : 'fwd'}:${perThread ? 't' : 'g'}`,
    source: () => softmaxShader({ log, backward, perThread, workgroupSize: WORKGROUP }),
    inputs: inputs.length,
    outputs: 1,
  };
  const groups = perThread ? Math.ceil(rows / WORKGROUP) : rows;
  const maxX = x.backend.ctx.caps.limits.maxComputeWorkgroupsPerDimension;
  x.backend.ctx.dispatch(program, {
    inputs: inputs.map((t) => (t.storage as GpuStorage).buffer),
    outputs: [(out.storage as GpuStorage).buffer],
    uniforms: new UniformWriter().u32(rows, len, inputs[0].offset, inputs[1]?.offset ?? 0).finish(),
    workgroups: [Math.min(groups, maxX), Math.ceil(groups / maxX)],
  });
  return out;
}

/** Brings `axis` last as contiguous f32 rows (any element offset). */
function rowsOf(x: Tensor, axis: number): Tensor {
  const moved = axis === x.rank - 1 ? x : transpose(x, axis, -1);
  const f = moved.dtype === 'f32' ? moved : cast(moved, 'f32');
  const c = contiguous(f);
  if (f !== moved) f.dispose();
  if (moved !== x) moved.dispose();
  return c;
}

function softmaxImpl(x: Tensor, axisArg: number, log: boolean): Tensor {
  if (x.rank === 0) throw new ShapeError('softmax needs at least one dim');
  const axis = normalizeAxis(axisArg, x.rank);
  const rows = rowsOf(x, axis);
  const yRows = rowKernel([rows], log, false);
  rows.dispose();
  const y = axis === x.rank - 1 ? yRows : contiguous(transpose(yRows, axis, -1));
  if (y !== yRows) yRows.dispose();
  return record(log ? 'log_softmax' : 'softmax', [x], y, [y], (g, [sy]) => {
    const gr = rowsOf(g, axis);
    const yr = rowsOf(sy, axis);
    const dx = rowKernel([gr, yr], log, true);
    return [axis === x.rank - 1 ? dx : contiguous(transpose(dx, axis, -1))];
  });
}

export const softmax = (x: Tensor, axis = -1) => softmaxImpl(x, axis, false);
export const logSoftmax = (x: Tensor, axis = -1) => softmaxImpl(x, axis, true);
