import { noGrad, record } from '../engine/autograd';
import { autocastDtype } from '../engine/autocast';
import type { CpuStorage, GpuStorage, WebGPUBackend } from '../engine/backend';
import { empty } from '../engine/create';
import type { DType } from '../engine/dtype';
import { ShapeError } from '../engine/errors';
import { formatShape } from '../engine/shape';
import type { Tensor } from '../engine/tensor';
import { UniformWriter } from '../engine/uniforms';
import {
  attentionDeltaShader,
  attentionForwardShader,
  attentionGradKeyValueShader,
  attentionGradQueryShader,
  type AttentionShaderOptions,
} from '../../shaders/attention.wgsl';
import { attentionBackwardRef, attentionForwardRef, type AttentionDims } from './reference/attention';
import { cast } from './elementwise';

export interface AttentionOptions {
  /** Multiplies q·kᵀ before the softmax; default 1/√D. */
  scale?: number;
}

/** Rows owned by one workgroup and rows staged per loop step (tuning knobs; see setAttentionTiling). */
export interface AttentionTiling {
  rowsPerGroup: number;
  tileRows: number;
}

let tilingOverride: AttentionTiling | null = null;
/** Forces the tiling of all attention kernels (benchmarks and tuning); null restores the default. */
export function setAttentionTiling(t: AttentionTiling | null): void {
  tilingOverride = t;
}

const DELTA_WORKGROUP = 64;
const MAX_HEAD_DIM = 128;

/**
 * Workgroup memory holds two staged tiles of vec4 rows (plus two f32 per row for dK/dV): shrink the tile
 * until it fits the device limit (32 KiB on lavapipe, 16 KiB by default elsewhere).
 */
function tilingFor(backend: WebGPUBackend, headDim: number, rows: number): AttentionTiling {
  // Short sequences (≤ 16 rows: small configs, tests) with many batch×heads would leave most of a 64-row
  // workgroup idle; two sizes only, as every variant costs a shader compile (slow on CPU adapters).
  const rowsPerGroup = rows <= 16 ? 16 : 64;
  const base = tilingOverride ?? { rowsPerGroup, tileRows: 32 };
  const limit = backend.ctx.caps.limits.maxComputeWorkgroupStorageSize;
  const bytesPerRow = 2 * Math.ceil(headDim / 4) * 16 + 8;
  let tileRows = base.tileRows;
  while (tileRows > 1 && tileRows * bytesPerRow > limit) tileRows >>= 1;
  return { rowsPerGroup: base.rowsPerGroup, tileRows };
}

interface Geometry {
  batch: number;
  heads: number;
  nq: number;
  nk: number;
  headDim: number;
}

function geometryOf(q: Tensor, k: Tensor, v: Tensor): Geometry {
  const shapes = `q ${formatShape(q.shape)}, k ${formatShape(k.shape)}, v ${formatShape(v.shape)}`;
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) throw new ShapeError(`attention expects [B, H, N, D] operands, got ${shapes}`);
  const [batch, heads, nq, headDim] = q.shape;
  const nk = k.shape[2];
  for (const t of [k, v]) {
    if (t.shape[0] !== batch || t.shape[1] !== heads || t.shape[3] !== headDim) throw new ShapeError(`attention: batch, heads and head dim must agree: ${shapes}`);
  }
  if (v.shape[2] !== nk) throw new ShapeError(`attention: k and v need the same number of tokens: ${shapes}`);
  if (nk === 0) throw new ShapeError(`attention needs at least one key: ${shapes}`);
  if (headDim < 1 || headDim > MAX_HEAD_DIM) throw new ShapeError(`attention supports head dims 1..${MAX_HEAD_DIM}, got ${headDim}`);
  if (q.backend !== k.backend || q.backend !== v.backend) throw new ShapeError('attention: q, k and v live on different backends');
  return { batch, heads, nq, nk, headDim };
}

const dimsOf = (g: Geometry, scale: number): AttentionDims => ({ batchHeads: g.batch * g.heads, nq: g.nq, nk: g.nk, headDim: g.headDim, scale });

/** Strides over [B, H, N, D] of a rank-4 view, as four u32 uniform words. */
const strides4 = (t: Tensor) => [t.strides[0], t.strides[1], t.strides[2], t.strides[3]];

function uniformsFor(g: Geometry, scale: number, q: Tensor, k: Tensor, v: Tensor, dOut: Tensor | null): Uint32Array {
  return new UniformWriter()
    .u32(g.nq, g.nk, g.heads, g.batch * g.heads)
    .f32(scale * Math.LOG2E, scale)
    .u32(0, 0)
    .u32(...strides4(q))
    .u32(...strides4(k))
    .u32(...strides4(v))
    .u32(...(dOut ? strides4(dOut) : [0, 0, 0, 0]))
    .u32(q.offset, k.offset, v.offset, dOut?.offset ?? 0)
    .finish();
}

const bufferOf = (t: Tensor) => (t.storage as GpuStorage).buffer;

function checkBatchHeads(backend: WebGPUBackend, g: Geometry): void {
  const maxDim = backend.ctx.caps.limits.maxComputeWorkgroupsPerDimension;
  if (g.batch * g.heads > maxDim) throw new ShapeError(`attention: batch × heads = ${g.batch * g.heads} exceeds ${maxDim}; split the batch`);
}

/** Forward without autograd: the output [B,H,Nq,D] (dtype of q) and the f32 log-sum-exp [B,H,Nq]. */
function forwardRaw(q: Tensor, k: Tensor, v: Tensor, g: Geometry, scale: number): { out: Tensor; lse: Tensor } {
  const backend = q.backend;
  const out = empty(backend, [g.batch, g.heads, g.nq, g.headDim], q.dtype);
  const lse = empty(backend, [g.batch, g.heads, g.nq], 'f32');
  if (g.nq === 0 || g.batch * g.heads === 0) return { out, lse };
  if (backend.kind === 'cpu') {
    const r = attentionForwardRef(q.toFloat64Sync(), k.toFloat64Sync(), v.toFloat64Sync(), dimsOf(g, scale));
    (out.storage as CpuStorage).data.set(r.out);
    (lse.storage as CpuStorage).data.set(r.lse);
    return { out, lse };
  }
  checkBatchHeads(backend, g);
  const tiling = tilingFor(backend, g.headDim, g.nq);
  const options: AttentionShaderOptions = { headDim: g.headDim, ...tiling, io: q.dtype, grad: q.dtype };
  backend.ctx.dispatch(
    {
      key: `attention:fwd:${q.dtype}:d${g.headDim}:${tiling.rowsPerGroup}x${tiling.tileRows}`,
      source: () => attentionForwardShader(options),
      inputs: 3,
      outputs: 2,
    },
    {
      inputs: [q, k, v].map(bufferOf),
      outputs: [bufferOf(out), bufferOf(lse)],
      uniforms: uniformsFor(g, scale, q, k, v, null),
      workgroups: [Math.ceil(g.nq / tiling.rowsPerGroup), g.batch * g.heads],
    },
  );
  return { out, lse };
}

/** Backward without autograd: Δ = rowsum(dO⊙O), then dQ (per query block) and dK, dV (per key block). */
function backwardRaw(q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dOut: Tensor, g: Geometry, scale: number): Tensor[] {
  const backend = q.backend;
  const dq = empty(backend, q.shape, q.dtype);
  const dk = empty(backend, k.shape, k.dtype);
  const dv = empty(backend, v.shape, v.dtype);
  if (backend.kind === 'cpu') {
    const r = attentionBackwardRef(q.toFloat64Sync(), k.toFloat64Sync(), v.toFloat64Sync(), dOut.toFloat64Sync(), dimsOf(g, scale));
    (dq.storage as CpuStorage).data.set(r.dq);
    (dk.storage as CpuStorage).data.set(r.dk);
    (dv.storage as CpuStorage).data.set(r.dv);
    return [dq, dk, dv];
  }
  const bh = g.batch * g.heads;
  if (bh === 0) return [dq, dk, dv];
  checkBatchHeads(backend, g);
  const tiling = tilingFor(backend, g.headDim, Math.max(g.nq, g.nk));
  const options: AttentionShaderOptions = { headDim: g.headDim, ...tiling, io: q.dtype, grad: dOut.dtype };
  const keyBase = `${q.dtype}>${dOut.dtype}:d${g.headDim}:${tiling.rowsPerGroup}x${tiling.tileRows}`;
  const uniforms = uniformsFor(g, scale, q, k, v, dOut);
  const ctx = backend.ctx;
  const delta = empty(backend, [g.batch, g.heads, g.nq], 'f32');
  try {
    const rows = bh * g.nq;
    if (rows > 0) {
      const groups = Math.ceil(rows / DELTA_WORKGROUP);
      const maxX = ctx.caps.limits.maxComputeWorkgroupsPerDimension;
      ctx.dispatch(
        {
          key: `attention:delta:${keyBase}`,
          source: () => attentionDeltaShader({ ...options, workgroupSize: DELTA_WORKGROUP }),
          inputs: 2,
          outputs: 1,
        },
        { inputs: [bufferOf(out), bufferOf(dOut)], outputs: [bufferOf(delta)], uniforms, workgroups: [Math.min(groups, maxX), Math.ceil(groups / maxX)] },
      );
      ctx.dispatch(
        { key: `attention:dq:${keyBase}`, source: () => attentionGradQueryShader(options), inputs: 6, outputs: 1 },
        {
          inputs: [q, k, v, dOut, lse, delta].map(bufferOf),
          outputs: [bufferOf(dq)],
          uniforms,
          workgroups: [Math.ceil(g.nq / tiling.rowsPerGroup), bh],
        },
      );
    }
    ctx.dispatch(
      { key: `attention:dkv:${keyBase}`, source: () => attentionGradKeyValueShader(options), inputs: 6, outputs: 2 },
      {
        inputs: [q, k, v, dOut, lse, delta].map(bufferOf),
        outputs: [bufferOf(dk), bufferOf(dv)],
        uniforms,
        workgroups: [Math.ceil(g.nk / tiling.rowsPerGroup), bh],
      },
    );
  } finally {
    delta.dispose();
  }
  return [dq, dk, dv];
}

/** The common storage dtype: f16 when all three are f16, otherwise f32 (others are converted). */
function ioDtype(q: Tensor, k: Tensor, v: Tensor): DType {
  return q.dtype === 'f16' && k.dtype === 'f16' && v.dtype === 'f16' ? 'f16' : 'f32';
}

/**
 * Multi-head scaled dot-product attention, softmax(scale·q·kᵀ)·v, without materializing the Nq×Nk
 * scores (flash attention; memory linear in N). q: [B, H, Nq, D], k and v: [B, H, Nk, D], any strided
 * views (e.g. reshape+permute of [B, N, H·D]); Nq may differ from Nk (cross-attention). Returns a
 * contiguous [B, H, Nq, D] in q's dtype (f16 storage with f32 arithmetic when all inputs are f16).
 * Differentiable with respect to q, k and v; the backward recomputes probabilities from the saved
 * per-row log-sum-exp.
 *
 * Inside `autocast()` (a device with shader-f16) q, k and v are converted to f16 (the node saves those
 * copies and the f16 output) and the result is returned as f32; the upstream gradient is read as f32 and
 * dQ/dK/dV are stored in f16, then returned in each input's dtype.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  const geometry = geometryOf(q, k, v);
  const scale = options.scale ?? 1 / Math.sqrt(geometry.headDim);
  const half = autocastDtype(q.backend);
  const io = half ?? ioDtype(q, k, v);
  const [qi, ki, vi] = noGrad(() => [q, k, v].map((t) => (t.dtype === io ? t.share() : cast(t, io))));
  const { out, lse } = forwardRaw(qi, ki, vi, geometry, scale);
  // Autocast returns f32 (exact widening of the f16 result); the node keeps the f16 output it needs.
  const result = half ? noGrad(() => cast(out, 'f32')) : out;
  const y = record('attention', [q, k, v], result, [qi, ki, vi, out, lse], (dOut, [sq, sk, sv, so, sl]) => {
    const gradIn = dOut.dtype === 'f32' || dOut.dtype === 'f16' ? dOut.share() : cast(dOut, 'f32');
    const grads = backwardRaw(sq, sk, sv, so, sl, gradIn, geometry, scale);
    // Inputs converted to the common dtype get their gradient back in their own dtype.
    return grads.map((gr, i) => ([q, k, v][i].dtype === gr.dtype ? gr : cast(gr, [q, k, v][i].dtype)));
  });
  // The saved handles (taken by record) keep what backward needs; ours can go.
  qi.dispose();
  ki.dispose();
  vi.dispose();
  lse.dispose();
  if (result !== out) out.dispose();
  return y;
}

/** Forward only, also returning the per-row log-sum-exp [B, H, Nq] (tests, diagnostics). No autograd. */
export function attentionWithLogSumExp(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): { out: Tensor; lse: Tensor } {
  const geometry = geometryOf(q, k, v);
  const scale = options.scale ?? 1 / Math.sqrt(geometry.headDim);
  const io = ioDtype(q, k, v);
  return noGrad(() => {
    const [qi, ki, vi] = [q, k, v].map((t) => (t.dtype === io ? t.share() : cast(t, io)));
    const r = forwardRaw(qi, ki, vi, geometry, scale);
    qi.dispose();
    ki.dispose();
    vi.dispose();
    return r;
  });
}
