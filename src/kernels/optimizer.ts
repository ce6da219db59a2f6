import type { CpuStorage } from '../engine/backend';
import { empty, fromArray } from '../engine/create';
import { ShapeError } from '../engine/errors';
import type { Tensor } from '../engine/tensor';
import { UniformWriter } from '../engine/uniforms';
import { adamwShader, clipScaleShader, gatedAdamwShader, sumSquaresShader } from '../../shaders/optimizer.wgsl';
import { adamwStepRef, clipGradNormRef } from './reference/optimizer';
import { full } from './elementwise';
import { gridGroups, launchFinishSum } from './loss';
import { buffer, contiguousF32Copy, exclusiveGrads, isPlainF32, persistent, WORKGROUP } from './optimizer-state';

/** Sum-of-squares shape on CPU adapters (barrier-free, one partial per invocation). */
const SUMSQ_WORKGROUP_CPU = 64;
const SUMSQ_GROUPS_CPU = 16;

// ---- learning-rate schedule -------------------------------------------------------------------------

/**
 * torch CosineAnnealingLR(T_max = totalSteps, eta_min = minLr) stepped once per iteration, in closed form:
 * lr(step) = minLr + (baseLr − minLr)·(1 + cos(π·step / totalSteps)) / 2 (periodic past totalSteps, as torch).
 */
export function cosineLr(step: number, totalSteps: number, baseLr: number, minLr: number): number {
  if (totalSteps <= 0) throw new RangeError(`cosineLr: totalSteps must be positive, got ${totalSteps}`);
  return minLr + ((baseLr - minLr) * (1 + Math.cos((Math.PI * step) / totalSteps))) / 2;
}

// ---- AdamW ------------------------------------------------------------------------------------------

export interface AdamWOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** Per-parameter state as host arrays (null: the parameter never had a gradient, as in torch). */
export interface AdamWParamState {
  step: number;
  expAvg: Float32Array;
  expAvgSq: Float32Array;
}

export interface AdamWState {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  params: (AdamWParamState | null)[];
}

/**
 * AdamW with decoupled weight decay (PyTorch's algorithm). Each parameter keeps its own step count, which
 * advances only when its `.grad` is non-null at step() (parameters without a gradient are skipped).
 * One fused dispatch per parameter updates p, exp_avg and exp_avg_sq in place; the dispatches of a step
 * are recorded into one command buffer. Parameters live in separate buffers, so one dispatch over all of
 * them would first need a copy into a concatenated buffer and back; and bench/optimizer.bench.ts measures
 * no gain to win: on lavapipe 100 per-tensor dispatches over 6.66M parameters ran no slower than one
 * dispatch over a single 6.66M-element tensor.
 * `lr` is public so a schedule can set it before each step.
 */
export class AdamW {
  readonly params: Tensor[];
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  private steps: number[];
  /** GPU: [2n] interleaved (m, v) pairs; CPU reference: [2n] as m then v. */
  private moments: (Tensor | null)[];
  /**
   * Gated steps (DeviceGradScaler) on the GPU: u32 [params], per parameter the recorded steps the device
   * skipped since the last syncStepCounts(); the effective step count is steps[i] − skips[i].
   */
  private skips: Tensor | null = null;

  constructor(params: readonly Tensor[], options: AdamWOptions) {
    this.params = [...params];
    for (const p of this.params) {
      p.assertAlive();
      if (!p.requiresGrad) throw new ShapeError(`AdamW: parameter ${p.name || `[${p.shape}]`} does not require grad`);
      if (p.dtype !== 'f32' || !p.isContiguous) throw new ShapeError(`AdamW: parameter ${p.name || `[${p.shape}]`} must be a contiguous f32 tensor`);
      if (p.backend !== this.params[0].backend) throw new ShapeError('AdamW: parameters live on different backends');
    }
    this.lr = options.lr;
    [this.beta1, this.beta2] = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 1e-2;
    this.steps = this.params.map(() => 0);
    this.moments = this.params.map(() => null);
  }

  /**
   * The step count of parameter i (0 until its first update). After gated steps on the GPU it counts the
   * recorded steps until syncStepCounts() (or state()) subtracts the ones the device skipped.
   */
  stepOf(i: number): number {
    return this.steps[i];
  }

  /**
   * Records the update of every parameter that has a gradient (no readback). With a `gate` (a u32 flag
   * buffer and a slot in it, as DeviceGradScaler passes) the update runs on the device only when
   * flags[slot] is 0 when it executes; a skipped update changes nothing but a per-parameter skip counter,
   * so, as in torch, skipped steps do not advance the step counts. Gated updates compute the bias
   * corrections on the device (f32) from the effective step count; ungated ones use float64 host values.
   */
  step(gate?: AdamWGate): void {
    if (gate && this.params[0]?.backend.kind === 'cpu') {
      // The reference backend knows the flag at once: a skipped step is simply not taken.
      if ((gate.flags.storage as CpuStorage).data[gate.flags.offset + gate.slot] !== 0) return;
      gate = undefined;
    }
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      p.assertAlive();
      this.steps[i]++;
      this.moments[i] ??= persistent(full(p.backend, [2 * p.size], 0));
      if (gate) this.gatedUpdate(p, p.grad, this.moments[i]!, i, gate);
      else this.update(p, p.grad, this.moments[i]!, this.steps[i]);
    });
  }

  private gatedUpdate(p: Tensor, grad: Tensor, moments: Tensor, index: number, gate: AdamWGate): void {
    const n = p.size;
    if (n === 0 || p.backend.kind !== 'webgpu') return;
    const backend = p.backend;
    this.skips ??= persistent(fromArray(backend, new Uint32Array(this.params.length), [this.params.length], 'u32'));
    const g = isPlainF32(grad) ? grad : contiguousF32Copy(grad);
    backend.ctx.dispatch(
      { key: `optimizer:adamw-gated`, source: () => gatedAdamwShader(WORKGROUP), inputs: 2, outputs: 3 },
      {
        inputs: [buffer(g), buffer(gate.flags)],
        outputs: [buffer(p), buffer(moments), buffer(this.skips)],
        uniforms: new UniformWriter()
          .u32(n, p.offset, g.offset, gate.flags.offset + gate.slot)
          .f32(1 - this.lr * this.weightDecay, this.beta1, this.beta2, this.eps)
          .f32(this.lr)
          .u32(this.steps[index], this.skips.offset + index, 0)
          .finish(),
        workgroups: [gridGroups(backend, n)],
      },
    );
    if (g !== grad) g.dispose();
  }

  /**
   * Folds the device's skip counters of gated steps into the host step counts (one small readback), so
   * stepOf() and state() report the steps actually taken. Arithmetic of later steps is unchanged.
   */
  async syncStepCounts(): Promise<void> {
    const skips = this.skips;
    if (!skips) return;
    this.skips = null;
    const host = await skips.data();
    skips.dispose();
    this.steps = this.steps.map((s, i) => s - host[i]);
  }

  private update(p: Tensor, grad: Tensor, moments: Tensor, step: number): void {
    const h = { lr: this.lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.weightDecay };
    const n = p.size;
    if (n === 0) return;
    if (p.backend.kind === 'cpu') {
      const data = (p.storage as CpuStorage).data.subarray(p.offset, p.offset + n);
      const state = (moments.storage as CpuStorage).data;
      adamwStepRef(data, grad.toFloat64Sync(), state.subarray(0, n), state.subarray(n, 2 * n), step, h);
      return;
    }
    const g = isPlainF32(grad) ? grad : contiguousF32Copy(grad);
    const bc1 = 1 - this.beta1 ** step;
    const bc2Sqrt = Math.sqrt(1 - this.beta2 ** step);
    const backend = p.backend;
    backend.ctx.dispatch(
      { key: `optimizer:adamw`, source: () => adamwShader(WORKGROUP), inputs: 1, outputs: 2 },
      {
        inputs: [buffer(g)],
        outputs: [buffer(p), buffer(moments)],
        uniforms: new UniformWriter()
          .u32(n, p.offset, g.offset, 0)
          .f32(1 - this.lr * this.weightDecay, this.beta1, this.beta2, this.eps)
          .f32(this.lr / bc1, bc2Sqrt, 0, 0)
          .finish(),
        workgroups: [gridGroups(backend, n)],
      },
    );
    if (g !== grad) g.dispose();
  }

  /** Drops every gradient (torch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Hyper-parameters, step counts and moments as host arrays (for checkpoints). */
  async state(): Promise<AdamWState> {
    await this.syncStepCounts();
    const params = await Promise.all(
      this.params.map(async (p, i): Promise<AdamWParamState | null> => {
        const m = this.moments[i];
        if (!m) return null;
        const raw = await m.data();
        const n = p.size;
        const expAvg = new Float32Array(n);
        const expAvgSq = new Float32Array(n);
        const interleaved = p.backend.kind === 'webgpu';
        for (let k = 0; k < n; k++) {
          expAvg[k] = interleaved ? raw[2 * k] : raw[k];
          expAvgSq[k] = interleaved ? raw[2 * k + 1] : raw[n + k];
        }
        return { step: this.steps[i], expAvg, expAvgSq };
      }),
    );
    return { lr: this.lr, betas: [this.beta1, this.beta2], eps: this.eps, weightDecay: this.weightDecay, params };
  }

  /** Restores what state() returned (same parameter list and shapes). */
  loadState(s: AdamWState): void {
    if (s.params.length !== this.params.length) throw new ShapeError(`AdamW.loadState: ${s.params.length} parameter states for ${this.params.length} parameters`);
    this.lr = s.lr;
    [this.beta1, this.beta2] = s.betas;
    this.eps = s.eps;
    this.weightDecay = s.weightDecay;
    this.skips?.dispose();
    this.skips = null;
    s.params.forEach((ps, i) => {
      const p = this.params[i];
      this.moments[i]?.dispose();
      this.moments[i] = null;
      this.steps[i] = ps?.step ?? 0;
      if (!ps) return;
      const n = p.size;
      if (ps.expAvg.length !== n || ps.expAvgSq.length !== n) throw new ShapeError(`AdamW.loadState: state of parameter ${i} has ${ps.expAvg.length} elements, expected ${n}`);
      const packed = new Float32Array(2 * n);
      const interleaved = p.backend.kind === 'webgpu';
      for (let k = 0; k < n; k++) {
        packed[interleaved ? 2 * k : k] = ps.expAvg[k];
        packed[interleaved ? 2 * k + 1 : n + k] = ps.expAvgSq[k];
      }
      this.moments[i] = persistent(fromArray(p.backend, packed, [2 * n]));
    });
  }

  /** Frees the moment buffers. */
  dispose(): void {
    for (const m of this.moments) m?.dispose();
    this.moments = this.params.map(() => null);
    this.skips?.dispose();
    this.skips = null;
  }
}

/** A device-side condition for AdamW.step(): skip the update when flags[slot] ≠ 0 (u32 flags). */
export interface AdamWGate {
  flags: Tensor;
  slot: number;
}

// ---- gradient clipping ------------------------------------------------------------------------------

/**
 * torch.nn.utils.clip_grad_norm_ (L2): the global norm of all gradients, then every gradient scaled by
 * min(1, maxNorm / (norm + 1e-6)). On the GPU everything stays on the device: one partial sum-of-squares
 * dispatch per gradient into a shared partials buffer, one dispatch finishing the norm, one scaling
 * dispatch per gradient that reads the norm from its buffer. Returns the (pre-clip) norm as a scalar
 * tensor; the caller disposes it. Parameters without a gradient are ignored.
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): Tensor {
  if (params.length === 0) throw new ShapeError('clipGradNorm: no parameters');
  const backend = params[0].backend;
  const withGrads = exclusiveGrads(params);
  if (backend.kind === 'cpu') {
    const { norm, factor } = clipGradNormRef(
      withGrads.map((p) => p.grad!.toFloat64Sync()),
      maxNorm,
    );
    for (const p of withGrads) {
      const g = p.grad!;
      const data = (g.storage as CpuStorage).data;
      for (let k = g.offset; k < g.offset + g.size; k++) data[k] *= factor;
    }
    return fromArray(backend, [norm], []);
  }
  if (withGrads.every((p) => p.grad!.size === 0)) return full(backend, [], 0);
  const norm = empty(backend, [], 'f32');
  // CPU adapters: small barrier-free groups, one partial per invocation; GPUs: one partial per workgroup.
  const tree = !backend.ctx.caps.software;
  const wg = tree ? WORKGROUP : SUMSQ_WORKGROUP_CPU;
  const groups = withGrads.map((p) => (tree ? gridGroups(backend, p.grad!.size) : Math.max(1, Math.min(SUMSQ_GROUPS_CPU, Math.ceil(p.grad!.size / (wg * 4))))));
  const slots = groups.map((g) => (tree ? g : g * wg));
  const total = slots.reduce((a, b) => a + b, 0);
  const partials = empty(backend, [total], 'f32');
  let slot = 0;
  withGrads.forEach((p, k) => {
    const g = p.grad!;
    backend.ctx.dispatch(
      { key: `optimizer:sumsq:${wg}:${tree ? 'tree' : 'flat'}`, source: () => sumSquaresShader(wg, tree), inputs: 1, outputs: 1 },
      { inputs: [buffer(g)], outputs: [buffer(partials)], uniforms: new UniformWriter().u32(g.size, g.offset, groups[k], slot).finish(), workgroups: [groups[k]] },
    );
    slot += slots[k];
  });
  // (An empty gradient still fills its slots: its loop runs zero times and writes 0.)
  launchFinishSum(backend, buffer(partials), 0, total, buffer(norm), 1, true);
  partials.dispose();
  for (const p of withGrads) {
    const g = p.grad!;
    if (g.size === 0) continue;
    backend.ctx.dispatch(
      { key: 'optimizer:clip', source: () => clipScaleShader(WORKGROUP), inputs: 1, outputs: 1 },
      { inputs: [buffer(norm)], outputs: [buffer(g)], uniforms: new UniformWriter().u32(g.size, g.offset, 0, 0).f32(maxNorm).finish(), workgroups: [gridGroups(backend, g.size)] },
    );
  }
  return norm;
}
