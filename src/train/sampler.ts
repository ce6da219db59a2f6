/**
 * Sampling the AMDF flow (REFERENCE_SPEC §5.6): integrate dx/dt = v_θ(x, t, c) from t = 0 to 1, starting
 * at x₀ = template + α·ε, then decode with the VAE, clamp to [-1, 1] and map to [0, 1].
 *
 * Integrators over N steps of Δt = 1/N:
 *  - `euler`: x ← x + Δt·v(x, t_k), one evaluation per step (two with guidance), at the time grid
 *    `mid` (default, `infer_flow.py`): t_k = (k + 0.5)/N at the current state (not RK2), or `start`
 *    (the reference's unused `ECG_DiT.sample()`): left endpoints t_k = k/N.
 *  - `heun` (second order, ours): v₁ = v(x, k/N), x̃ = x + Δt·v₁, v₂ = v(x̃, (k+1)/N),
 *    x ← x + Δt·(v₁ + v₂)/2: two evaluations per step, exact for fields affine in t (and far more
 *    accurate than Euler for fields that depend on x). The time grid does not apply: Heun uses both ends.
 *
 * Guidance (§5.3): v = v_u + s·(v_c − v_u) with v_u from zeroed ECG tokens, only when s > 1 (as the
 * reference); s ≤ 1 uses the conditional velocity alone. α defaults to 0.6, the reference's inference
 * value, although training used 0.8 (spec §9.2 item 3; [S1] reports α = 1.0 best): it is an option.
 */
import { noGrad } from '../engine/autograd';
import { tidy } from '../engine/scope';
import type { Tensor } from '../engine/tensor';
import { add, addScalar, clamp, full, mulScalar, zerosLike } from '../kernels/elementwise';
import { Generator, randn } from '../kernels/random';
import type { EcgDiT } from '../models/dit';
import type { VAE3d } from '../models/vae3d';

export type SamplerMethod = 'euler' | 'heun';
export const SAMPLER_METHODS: readonly SamplerMethod[] = ['euler', 'heun'];
/** Where Euler evaluates inside step k of N: `mid` = (k + 0.5)/N (infer_flow.py), `start` = k/N (ECG_DiT.sample). */
export type TimeGrid = 'start' | 'mid';
export const TIME_GRIDS: readonly TimeGrid[] = ['start', 'mid'];

/** v(x, t) with t of shape [B]. */
export type VelocityField = (x: Tensor, t: Tensor) => Tensor;

export interface IntegrateOptions {
  steps: number;
  method: SamplerMethod;
  /** Euler's evaluation time inside each step (default `mid`). */
  timeGrid?: TimeGrid;
}

/**
 * The times at which `method` evaluates the field, in order (one list entry per evaluation), in float64:
 * k/N and (k + 0.5)/N are computed as one division each, so t_k = k/N is the correctly rounded quotient.
 */
export function evaluationTimes(method: SamplerMethod, steps: number, timeGrid: TimeGrid = 'mid'): number[] {
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`sampler steps must be a positive integer, got ${steps}`);
  if (!TIME_GRIDS.includes(timeGrid)) throw new RangeError(`sampler time grid must be one of ${TIME_GRIDS.join(', ')}, got ${String(timeGrid)}`);
  const times: number[] = [];
  for (let k = 0; k < steps; k++) {
    if (method === 'euler') times.push(timeGrid === 'mid' ? (k + 0.5) / steps : k / steps);
    else times.push(k / steps, (k + 1) / steps);
  }
  return times;
}

/**
 * dx/dt = field(x, t) from 0 to 1, one step per `advance()`, so a caller can drain the device between steps
 * (the page's progress) and still run exactly integrateFlow's ops. `x0` is not consumed; `take()` hands over
 * the current state; `dispose()` frees what the integration owns (also after a partial run).
 */
export class FlowIntegration {
  readonly steps: number;
  private readonly times: number[];
  private x: Tensor | null;
  private k = 0;

  constructor(
    x0: Tensor,
    private readonly field: VelocityField,
    private readonly options: IntegrateOptions,
    /** Freed with the integration (e.g. the condition the field closes over). */
    private readonly owned: Tensor[] = [],
  ) {
    this.steps = options.steps;
    this.times = evaluationTimes(options.method, options.steps, options.timeGrid ?? 'mid');
    this.x = noGrad(() => tidy(() => addScalar(x0, 0)));
  }

  get done(): boolean {
    return this.k >= this.steps;
  }

  /** Step k → k + 1 (no gradient). */
  advance(): void {
    const x = this.x;
    if (!x) throw new Error('FlowIntegration: the state was taken or disposed');
    if (this.done) throw new Error(`FlowIntegration: all ${this.steps} steps are done`);
    const { method } = this.options;
    const { field, times, k } = this;
    const dt = 1 / this.steps;
    const at = (t: number) => full(x.backend, [x.shape[0]], t);
    const next = noGrad(() =>
      tidy(() => {
        if (method === 'euler') return add(x, mulScalar(field(x, at(times[k])), dt));
        const v1 = field(x, at(times[2 * k]));
        const predicted = add(x, mulScalar(v1, dt));
        const v2 = field(predicted, at(times[2 * k + 1]));
        return add(x, mulScalar(add(v1, v2), dt / 2));
      }),
    );
    x.dispose();
    this.x = next;
    this.k++;
  }

  /** Runs the remaining steps and hands over the result (integrateFlow and sampleLatents in one go). */
  finish(): Tensor {
    while (!this.done) this.advance();
    return this.take();
  }

  /** The current state, now the caller's; the integration's own tensors are freed. */
  take(): Tensor {
    const x = this.x;
    if (!x) throw new Error('FlowIntegration: the state was taken or disposed');
    this.x = null;
    this.dispose();
    return x;
  }

  dispose(): void {
    this.x?.dispose();
    this.x = null;
    for (const t of this.owned.splice(0)) t.dispose();
  }
}

/** Integrates dx/dt = field(x, t) from 0 to 1; x0 is not consumed. Returns a new tensor. */
export function integrateFlow(x0: Tensor, field: VelocityField, options: IntegrateOptions): Tensor {
  return new FlowIntegration(x0, field, options).finish();
}

export interface FlowSampleOptions {
  /** Integration steps (default 10, the reference). */
  steps?: number;
  /** CFG scale s (default 2.0); guidance only when s > 1. */
  guidance?: number;
  /** Source noise scale (default 0.6, the reference's inference default; training used 0.8). */
  alpha?: number;
  method?: SamplerMethod;
  /** Euler's time grid: `mid` (default, infer_flow.py) or `start` (ECG_DiT.sample). */
  timeGrid?: TimeGrid;
  /** Seed of ε (default 42). */
  seed?: number;
  /**
   * Ignore the ECG: zero tokens, the null condition the DiT learns from its 10 % condition drop. A baseline
   * that shows what the ECG adds (guidance is off: both of its passes would be the same).
   */
  unconditional?: boolean;
}

export const SAMPLE_DEFAULTS = {
  steps: 10,
  guidance: 2,
  alpha: 0.6,
  method: 'euler' as SamplerMethod,
  timeGrid: 'mid' as TimeGrid,
  seed: 42,
  unconditional: false,
};

/** The velocity field of the DiT for fixed ECG tokens, with guidance when scale > 1. */
export function ditField(dit: EcgDiT, tokens: Tensor, guidance: number): VelocityField {
  return guidance > 1 ? (x, t) => dit.forwardWithGuidance(x, t, tokens, guidance) : (x, t) => dit.forward(x, t, tokens);
}

/**
 * Latents [B, C, T, h, w] from ECG tokens [B, Te, D] and the template [1, C, 1, h, w]: x₀ = template + α·ε
 * with ε from Generator(seed), or the caller's `noise` (batched synthesis draws each row from its own
 * generator), then the chosen integrator. No gradient; `noise` is not consumed.
 */
export function sampleLatents(dit: EcgDiT, tokens: Tensor, template: Tensor, options: FlowSampleOptions & { noise?: Tensor } = {}): Tensor {
  return startLatentSampling(dit, tokens, template, options).finish();
}

/** sampleLatents one step at a time (see FlowIntegration): the same x₀, condition and ops. `tokens` is not consumed. */
export function startLatentSampling(dit: EcgDiT, tokens: Tensor, template: Tensor, options: FlowSampleOptions & { noise?: Tensor } = {}): FlowIntegration {
  const o = { ...SAMPLE_DEFAULTS, ...options };
  const c = dit.config;
  const shape = [tokens.shape[0], c.latentChannels, c.numFrames, c.latentSize[0], c.latentSize[1]];
  return noGrad(() => {
    const x0 = tidy(() => add(template, mulScalar(options.noise ?? randn(tokens.backend, shape, new Generator(o.seed)), o.alpha)));
    const condition = o.unconditional ? zerosLike(tokens) : tokens;
    try {
      return new FlowIntegration(x0, ditField(dit, condition, o.unconditional ? 1 : o.guidance), { steps: o.steps, method: o.method, timeGrid: o.timeGrid }, condition !== tokens ? [condition] : []);
    } catch (e) {
      if (condition !== tokens) condition.dispose();
      throw e;
    } finally {
      x0.dispose();
    }
  });
}

/** VAE decode → clamp to [-1, 1] → (x + 1)/2: clips [B, 1, T, H, W] in [0, 1]. */
export function decodeToUnitRange(vae: VAE3d, latents: Tensor): Tensor {
  return noGrad(() => tidy(() => mulScalar(addScalar(clamp(vae.decode(latents), -1, 1), 1), 0.5)));
}
