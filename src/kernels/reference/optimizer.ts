/**
 * Float64 references of the optimizer algorithms, written from PyTorch's documented algorithms
 * (torch.optim.AdamW single-tensor path, clip_grad_norm_, CosineAnnealingLR's recursive form).
 */

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** One AdamW step in place on (param, expAvg, expAvgSq); `step` is the parameter's step after increment. */
export function adamwStepRef(param: Float64Array, grad: ArrayLike<number>, expAvg: Float64Array, expAvgSq: Float64Array, step: number, h: AdamWHyper): void {
  const bc1 = 1 - h.beta1 ** step;
  const bc2Sqrt = Math.sqrt(1 - h.beta2 ** step);
  const stepSize = h.lr / bc1;
  for (let i = 0; i < param.length; i++) {
    const g = grad[i];
    param[i] *= 1 - h.lr * h.weightDecay;
    expAvg[i] += (g - expAvg[i]) * (1 - h.beta1);
    expAvgSq[i] = expAvgSq[i] * h.beta2 + (1 - h.beta2) * g * g;
    const denom = Math.sqrt(expAvgSq[i]) / bc2Sqrt + h.eps;
    param[i] -= (stepSize * expAvg[i]) / denom;
  }
}

/** Global L2 norm of all gradients and the clip factor min(1, maxNorm / (norm + 1e-6)). */
export function clipGradNormRef(grads: readonly ArrayLike<number>[], maxNorm: number): { norm: number; factor: number } {
  let ss = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) ss += g[i] * g[i];
  const norm = Math.sqrt(ss);
  return { norm, factor: Math.min(1, maxNorm / (norm + 1e-6)) };
}

/**
 * torch.optim.lr_scheduler.CosineAnnealingLR stepped `steps` times, in its recursive (chainable) form;
 * returns the lr after each of 0..steps scheduler steps.
 */
export function cosineAnnealingRecursiveRef(baseLr: number, tMax: number, etaMin: number, steps: number): number[] {
  const out = [baseLr];
  let lr = baseLr;
  for (let e = 1; e <= steps; e++) {
    if ((e - 1 - tMax) % (2 * tMax) === 0) lr = lr + ((baseLr - etaMin) * (1 - Math.cos(Math.PI / tMax))) / 2;
    else lr = ((1 + Math.cos((Math.PI * e) / tMax)) / (1 + Math.cos((Math.PI * (e - 1)) / tMax))) * (lr - etaMin) + etaMin;
    out.push(lr);
  }
  return out;
}
