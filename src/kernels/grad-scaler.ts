/**
 * Dynamic loss scaling for mixed-precision training: `GradScaler` (host-side decisions, one readback per
 * step) and `DeviceGradScaler` (scale, growth tracker, overflow flags and skip counts on the device; AdamW
 * steps gated on the flags, so a training step never waits for the host). Kernels: shaders/optimizer.wgsl.ts.
 */
import type { Backend, CpuStorage } from '../engine/backend';
import { fromArray } from '../engine/create';
import { ShapeError } from '../engine/errors';
import type { Tensor } from '../engine/tensor';
import { UniformWriter } from '../engine/uniforms';
import { noGrad } from '../engine/autograd';
import { tidy } from '../engine/scope';
import { deviceUnscaleShader, scalerUpdateShader, unscaleCheckShader, S_FOUND, S_SCALE, S_SKIPPED, S_TRACKER, S_USED } from '../../shaders/optimizer.wgsl';
import { mapOp, mul, mulScalar } from './elementwise';
import { gridGroups } from './loss';
import { reshape, slice } from './views';
import { AdamW } from './optimizer';
import { buffer, exclusiveGrads, persistent, WORKGROUP } from './optimizer-state';

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
