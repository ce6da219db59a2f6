import type { Backend, CpuStorage, GpuStorage } from '../engine/backend';
import { empty, fromArray } from '../engine/create';
import { ShapeError } from '../engine/errors';
import { untrackTensor } from '../engine/scope';
import type { Tensor } from '../engine/tensor';
import { UniformWriter } from '../engine/uniforms';
import {
  adamwShader, clipScaleShader, deviceUnscaleShader, gatedAdamwShader, scalerUpdateShader, sumSquaresShader, unscaleCheckShader,
  S_FOUND, S_SCALE, S_SKIPPED, S_TRACKER, S_USED,
} from '../../shaders/optimizer.wgsl';
import { noGrad } from '../engine/autograd';
import { tidy } from '../engine/scope';
import { adamwStepRef, clipGradNormRef } from './reference/optimizer';
import { copyInto, full, mapOp, mul, mulScalar } from './elementwise';
import { gridGroups, launchFinishSum } from './loss';
import { reshape, slice } from './views';

const WORKGROUP = 256;
/** Sum-of-squares shape on CPU adapters (barrier-free, one partial per invocation). */
const SUMSQ_WORKGROUP_CPU = 64;
const SUMSQ_GROUPS_CPU = 16;

type GpuBackend = Backend & { kind: 'webgpu' };

function buffer(t: Tensor): GPUBuffer {
  return (t.storage as GpuStorage).buffer;
}

/** A tensor that outlives every tidy() scope (optimizer state, replaced gradients). */
function persistent<T extends Tensor>(t: T): T {
  untrackTensor(t);
  return t;
}

/** A contiguous f32 copy of `t` (any strides, offset or float dtype). */
function contiguousF32Copy(t: Tensor): Tensor {
  const out = empty(t.backend, t.shape, 'f32');
  copyInto(t.backend, t, out);
  return out;
}

const isPlainF32 = (t: Tensor) => t.dtype === 'f32' && t.isContiguous;

/**
 * The parameters that have gradients, each gradient made safe to modify in place: contiguous f32 and not
 * sharing storage with another gradient of the set (autograd may hand the same buffer to two leaves,
 * e.g. both inputs of an add). Replaced gradients are copies; the old handles are disposed.
 * Assumes, like the rest of the engine, that a leaf's `.grad` is not also held elsewhere by the caller.
 */
function exclusiveGrads(params: readonly Tensor[]): Tensor[] {
  const seen = new Set<unknown>();
  const out: Tensor[] = [];
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    if (!isPlainF32(g) || seen.has(g.storage)) {
      const copy = persistent(contiguousF32Copy(g));
      g.dispose();
      p.grad = copy;
    }
    seen.add(p.grad!.storage);
    out.push(p);
  }
  return out;
}

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

// ---- dynamic loss scaling ---------------------------------------------------------------------------

export interface GradScalerOptions {
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  growthInterval?: number;
  enabled?: boolean;
}

export interface GradScalerState {
  scale: number;
  growthTracker: number;
}

/**
 * Dynamic loss scaling like torch.cuda.amp.GradScaler. unscale() divides every gradient by the scale and
 * checks it for Inf/NaN in the same GPU pass, OR-ing into a per-optimizer flag buffer. step() reads that
 * one flag back (a single 4-byte readback per optimizer step) and skips optimizer.step() when it is set,
 * so skipped steps advance no step count, exactly as torch. update() then backs the scale off (×0.5)
 * after an overflow, or grows it (×2) after `growthInterval` clean steps. One scaler may serve several
 * optimizers (update() considers every step() since the previous update()).
 */
export class GradScaler {
  private scaleValue: number;
  private growthTracker = 0;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  readonly enabled: boolean;
  private flags = new Map<AdamW, Tensor>();
  private foundInfSinceUpdate = false;

  constructor(options: GradScalerOptions = {}) {
    this.scaleValue = options.initScale ?? 65536;
    this.growthFactor = options.growthFactor ?? 2;
    this.backoffFactor = options.backoffFactor ?? 0.5;
    this.growthInterval = options.growthInterval ?? 2000;
    this.enabled = options.enabled ?? true;
  }

  getScale(): number {
    return this.enabled ? this.scaleValue : 1;
  }

  /** loss × scale (differentiable). */
  scale(loss: Tensor): Tensor {
    return mulScalar(loss, this.enabled ? this.scaleValue : 1);
  }

  /**
   * Divides the gradients of `optimizer` by the scale in place and records the Inf/NaN check on the GPU.
   * Returns the flag tensor (u32 [1], nonzero = overflow), owned by the scaler. Once per step.
   */
  unscale(optimizer: AdamW): Tensor {
    const existing = this.flags.get(optimizer);
    if (existing) return existing;
    const backend = optimizer.params[0].backend;
    const flag = persistent(fromArray(backend, [0], [1], 'u32'));
    this.flags.set(optimizer, flag);
    if (!this.enabled) return flag;
    const inv = 1 / this.scaleValue;
    for (const p of exclusiveGrads(optimizer.params)) {
      const g = p.grad!;
      if (g.size === 0) continue;
      if (backend.kind === 'cpu') {
        const data = (g.storage as CpuStorage).data;
        let bad = false;
        for (let k = g.offset; k < g.offset + g.size; k++) {
          if (!Number.isFinite(data[k])) bad = true;
          data[k] *= inv;
        }
        if (bad) (flag.storage as CpuStorage).data[0] = 1;
        continue;
      }
      backend.ctx.dispatch(
        { key: 'optimizer:unscale', source: () => unscaleCheckShader(WORKGROUP), inputs: 0, outputs: 2 },
        { inputs: [], outputs: [buffer(g), buffer(flag)], uniforms: new UniformWriter().u32(g.size, g.offset, 0, 0).f32(inv).finish(), workgroups: [gridGroups(backend, g.size)] },
      );
    }
    return flag;
  }

  /** Unscales if not yet done, reads the overflow flag and runs optimizer.step() unless it is set. */
  async step(optimizer: AdamW): Promise<boolean> {
    const flag = this.unscale(optimizer);
    const found = this.enabled && (await flag.data())[0] !== 0;
    flag.dispose();
    this.flags.delete(optimizer);
    if (found) {
      this.foundInfSinceUpdate = true;
      return false;
    }
    optimizer.step();
    return true;
  }

  /** Adjusts the scale after the step(s) of this iteration. */
  update(): void {
    if (!this.enabled) return;
    if (this.foundInfSinceUpdate) {
      this.scaleValue *= this.backoffFactor;
      this.growthTracker = 0;
    } else if (++this.growthTracker === this.growthInterval) {
      this.scaleValue *= this.growthFactor;
      this.growthTracker = 0;
    }
    this.foundInfSinceUpdate = false;
  }

  state(): GradScalerState {
    return { scale: this.scaleValue, growthTracker: this.growthTracker };
  }

  loadState(s: GradScalerState): void {
    this.scaleValue = s.scale;
    this.growthTracker = s.growthTracker;
  }
}

// ---- dynamic loss scaling on the device (mixed precision training) ---------------------------------

/** Optimizers one DeviceGradScaler can serve (one found-inf slot each). */
const SCALER_SLOTS = 8;
/** Layout of the scaler's f32 state tensor: S_* indices (shaders/optimizer.wgsl.ts) in a vector of this size. */
const SCALER_STATE_SIZE = 8;

export interface DeviceGradScalerState extends GradScalerState {
  /** Optimizer iterations skipped for Inf/NaN gradients so far. */
  skippedSteps: number;
}

/**
 * Dynamic loss scaling as torch.cuda.amp.GradScaler, with its whole state on the device, so a training
 * step never waits for the host: scale(loss) multiplies by the scale tensor; unscale(opt) divides the
 * gradients by it in place and ORs an Inf/NaN test into the optimizer's flag slot; step(opt) records
 * opt.step() gated on that flag (a skipped update leaves weights, moments and step counts as they were);
 * update() then, in one tiny dispatch, halves the scale after an overflow or doubles it after
 * `growthInterval` clean iterations, counts skipped iterations and clears the flags. Defaults are torch's:
 * init 65536, ×2 growth, ×0.5 backoff, interval 2000.
 *
 * Per iteration: scaled = scale(loss); backward(scaled); unscale(opt) (before clipping, so clipGradNorm sees
 * true gradients); step(opt); update(); stepScalars() gives the scale used, whether the iteration was
 * skipped and the skipped total as scalar tensors to log (read back one step late like any scalar).
 * The host copy of the state (state()) is refreshed only by `await sync()`: call it before writing a
 * checkpoint. One scaler may serve up to 8 optimizers (update() considers all of them). On the float64
 * reference backend the same arithmetic runs on the host, synchronously.
 */
export class DeviceGradScaler {
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  readonly enabled: boolean;
  /** f32 [8]: scale, growth tracker, skipped total, found-inf of the last update, scale used by the last update. */
  private stateTensor: Tensor;
  /** u32 [8]: found-inf flag per optimizer slot, for the current iteration. */
  private flags: Tensor;
  private readonly slots = new Map<AdamW, number>();
  private readonly unscaled = new Set<AdamW>();
  private host: DeviceGradScalerState;

  constructor(readonly backend: Backend, options: GradScalerOptions = {}) {
    this.growthFactor = options.growthFactor ?? 2;
    this.backoffFactor = options.backoffFactor ?? 0.5;
    this.growthInterval = options.growthInterval ?? 2000;
    this.enabled = options.enabled ?? true;
    this.host = { scale: options.initScale ?? 65536, growthTracker: 0, skippedSteps: 0 };
    this.stateTensor = this.uploadState(this.host);
    this.flags = persistent(fromArray(backend, new Uint32Array(SCALER_SLOTS), [SCALER_SLOTS], 'u32'));
  }

  private uploadState(s: DeviceGradScalerState): Tensor {
    const values = new Float32Array(SCALER_STATE_SIZE);
    values[S_SCALE] = s.scale;
    values[S_TRACKER] = s.growthTracker;
    values[S_SKIPPED] = s.skippedSteps;
    values[S_USED] = s.scale;
    return persistent(fromArray(this.backend, values, [SCALER_STATE_SIZE]));
  }

  /** A scalar view of entry k of `t` (a new handle). */
  private entry(t: Tensor, k: number): Tensor {
    return noGrad(() => tidy(() => reshape(slice(t, 0, k, k + 1), [])));
  }

  private slotOf(optimizer: AdamW): number {
    let slot = this.slots.get(optimizer);
    if (slot === undefined) {
      slot = this.slots.size;
      if (slot >= SCALER_SLOTS) throw new ShapeError(`DeviceGradScaler serves at most ${SCALER_SLOTS} optimizers`);
      if (optimizer.params[0] && optimizer.params[0].backend !== this.backend) throw new ShapeError('DeviceGradScaler: the optimizer lives on another backend');
      this.slots.set(optimizer, slot);
    }
    return slot;
  }

  /** loss × scale, differentiable (the scale is read on the device). Disabled: a new handle on loss. */
  scale(loss: Tensor): Tensor {
    if (!this.enabled) return loss.share();
    return tidy(() => {
      const s = this.entry(this.stateTensor, S_SCALE);
      return mul(loss, loss.dtype === 'f32' ? s : mapOp('identity', [s], [], loss.dtype));
    });
  }

  /**
   * Divides the optimizer's gradients by the scale in place and records their Inf/NaN test into its flag.
   * At most once per optimizer and iteration (step() calls it when it was not called).
   */
  unscale(optimizer: AdamW): void {
    if (!this.enabled || this.unscaled.has(optimizer)) return;
    const slot = this.slotOf(optimizer);
    this.unscaled.add(optimizer);
    const backend = this.backend;
    for (const p of exclusiveGrads(optimizer.params)) {
      const g = p.grad!;
      if (g.size === 0) continue;
      if (backend.kind === 'cpu') {
        const data = (g.storage as CpuStorage).data;
        const inv = 1 / (this.stateTensor.storage as CpuStorage).data[S_SCALE];
        let bad = false;
        for (let k = g.offset; k < g.offset + g.size; k++) {
          if (!Number.isFinite(data[k])) bad = true;
          data[k] *= inv;
        }
        if (bad) (this.flags.storage as CpuStorage).data[slot] = 1;
        continue;
      }
      backend.ctx.dispatch(
        { key: 'optimizer:unscale-device', source: () => deviceUnscaleShader(WORKGROUP), inputs: 1, outputs: 2 },
        {
          inputs: [buffer(this.stateTensor)],
          outputs: [buffer(g), buffer(this.flags)],
          uniforms: new UniformWriter().u32(g.size, g.offset, slot, 0).finish(),
          workgroups: [gridGroups(backend, g.size)],
        },
      );
    }
  }

  /** Unscales if not done yet and records optimizer.step() gated on this iteration's Inf/NaN flag. */
  step(optimizer: AdamW): void {
    if (!this.enabled) return optimizer.step();
    this.unscale(optimizer);
    optimizer.step({ flags: this.flags, slot: this.slotOf(optimizer) });
  }

  /** Adjusts the scale once per iteration, after the step(s), on the device; clears the flags. */
  update(): void {
    this.unscaled.clear();
    if (!this.enabled) return;
    const backend = this.backend;
    if (backend.kind === 'cpu') {
      const st = (this.stateTensor.storage as CpuStorage).data;
      const flags = (this.flags.storage as CpuStorage).data;
      const found = flags.some((f) => f !== 0);
      flags.fill(0);
      st[S_USED] = st[S_SCALE];
      st[S_FOUND] = found ? 1 : 0;
      if (found) {
        st[S_SCALE] = Math.fround(st[S_SCALE] * this.backoffFactor);
        st[S_TRACKER] = 0;
        st[S_SKIPPED] += 1;
      } else if (st[S_TRACKER] + 1 >= this.growthInterval) {
        st[S_SCALE] = Math.fround(st[S_SCALE] * this.growthFactor);
        st[S_TRACKER] = 0;
      } else st[S_TRACKER] += 1;
      return;
    }
    backend.ctx.dispatch(
      { key: 'optimizer:scaler-update', source: scalerUpdateShader, inputs: 0, outputs: 2 },
      {
        inputs: [],
        outputs: [buffer(this.stateTensor), buffer(this.flags)],
        uniforms: new UniformWriter().u32(SCALER_SLOTS, 0, 0, 0).f32(this.growthFactor, this.backoffFactor, this.growthInterval, 0).finish(),
        workgroups: [1],
      },
    );
  }

  /**
   * Scalars of the last update(), as fresh tensors for the step's log (the caller disposes them):
   * `scale` (the scale this iteration used), `skipped` (1 when its step was skipped) and `skippedSteps`
   * (the total so far).
   */
  stepScalars(): { scale: Tensor; skipped: Tensor; skippedSteps: Tensor } {
    const copy = noGrad(() => mapOp('identity', [this.stateTensor]));
    const out = { scale: this.entry(copy, S_USED), skipped: this.entry(copy, S_FOUND), skippedSteps: this.entry(copy, S_SKIPPED) };
    copy.dispose();
    return out;
  }

  /** The current scale as a scalar tensor (a view of the device state; the caller disposes it). */
  scaleTensor(): Tensor {
    return this.entry(this.stateTensor, S_SCALE);
  }

  /** Reads the device state back (flushes recorded work) and returns it; state() returns it afterwards. */
  async sync(): Promise<DeviceGradScalerState> {
    const v = await this.stateTensor.data();
    this.host = { scale: v[S_SCALE], growthTracker: v[S_TRACKER], skippedSteps: v[S_SKIPPED] };
    return this.state();
  }

  /** The state as of the last sync() or loadState() (host values, for checkpoint metadata). */
  state(): DeviceGradScalerState {
    return { ...this.host };
  }

  /** Restores a state (scale, growth tracker, skipped total); per-iteration flags are cleared. */
  loadState(s: DeviceGradScalerState | GradScalerState): void {
    const full = { skippedSteps: 0, ...s };
    this.stateTensor.dispose();
    this.stateTensor = this.uploadState(full);
    this.host = { scale: full.scale, growthTracker: full.growthTracker, skippedSteps: full.skippedSteps };
    this.flags.dispose();
    this.flags = persistent(fromArray(this.backend, new Uint32Array(SCALER_SLOTS), [SCALER_SLOTS], 'u32'));
    this.unscaled.clear();
  }

  dispose(): void {
    this.stateTensor.dispose();
    this.flags.dispose();
  }
}
