import { KL_LOGVAR_MAX, KL_LOGVAR_MIN, type PointwiseLoss } from '../../../shaders/loss.wgsl';

/** Float64 twin of the per-element loss f(a, b) in shaders/loss.wgsl.ts. */
export function pointwiseLossValue(op: PointwiseLoss, a: number, b: number): number {
  switch (op) {
    case 'mse':
      return (a - b) * (a - b);
    case 'l1':
      return Math.abs(a - b);
    case 'hinge_real':
      return Math.max(0, 1 - a);
    case 'hinge_fake':
      return Math.max(0, 1 + a);
    case 'kl': {
      const lv = Math.min(Math.max(b, KL_LOGVAR_MIN), KL_LOGVAR_MAX);
      return 0.5 * (a * a + Math.exp(lv) - 1 - lv);
    }
  }
}

/** ∂f/∂a and ∂f/∂b of the per-element loss. */
export function pointwiseLossGrad(op: PointwiseLoss, a: number, b: number): [number, number] {
  switch (op) {
    case 'mse':
      return [2 * (a - b), -2 * (a - b)];
    case 'l1':
      return [Math.sign(a - b), -Math.sign(a - b)];
    case 'hinge_real':
      return [a < 1 ? -1 : 0, 0];
    case 'hinge_fake':
      return [a > -1 ? 1 : 0, 0];
    case 'kl': {
      const inside = b >= KL_LOGVAR_MIN && b <= KL_LOGVAR_MAX;
      const lv = Math.min(Math.max(b, KL_LOGVAR_MIN), KL_LOGVAR_MAX);
      return [a, inside ? 0.5 * (Math.exp(lv) - 1) : 0];
    }
  }
}

/** Per-element losses over already-broadcast inputs (b unused by one-input losses). */
export function pointwiseLossMapRef(op: PointwiseLoss, a: Float64Array, b: Float64Array | null): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = pointwiseLossValue(op, a[i], b ? b[i] : 0);
  return out;
}

/** scale · Σ f(a, b). */
export function pointwiseLossSumRef(op: PointwiseLoss, a: Float64Array, b: Float64Array | null, scale: number): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += pointwiseLossValue(op, a[i], b ? b[i] : 0);
  return s * scale;
}

/** Gradients g[i] · scale · ∂f/∂(a, b) over already-broadcast inputs and upstream gradient. */
export function pointwiseLossGradRef(op: PointwiseLoss, a: Float64Array, b: Float64Array | null, g: Float64Array, scale: number): [Float64Array, Float64Array] {
  const da = new Float64Array(a.length);
  const db = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const [ga, gb] = pointwiseLossGrad(op, a[i], b ? b[i] : 0);
    da[i] = g[i] * scale * ga;
    db[i] = g[i] * scale * gb;
  }
  return [da, db];
}

/** x_t = (1 − t)·x0 + t·x1 and x1 − x0 over already-broadcast inputs. */
export function flowInterpolateRef(x0: Float64Array, x1: Float64Array, t: Float64Array): [Float64Array, Float64Array] {
  const xt = new Float64Array(x0.length);
  const v = new Float64Array(x0.length);
  for (let i = 0; i < x0.length; i++) {
    xt[i] = (1 - t[i]) * x0[i] + t[i] * x1[i];
    v[i] = x1[i] - x0[i];
  }
  return [xt, v];
}
