/**
 * The objectives of stage 2 (REFERENCE_SPEC §4.8, the reference's LPIPSWithDiscriminator with the yaml's
 * settings), on the engine's ops so they run on the GPU and on the float64 reference backend alike.
 *
 * Generator:  L_G = nll + λ_KL·KL + λ_pen·penalty + 𝟙[step ≥ discStart]·w_adv·g, with
 *   nll     = mean|x − x̂| + λ_p·mean_{b,t} LPIPS(x_{b,t}, x̂_{b,t})   (LPIPS only when weights were given)
 *   KL      = (1/B) Σ_b ½ Σ (μ² + σ² − 1 − log σ²)
 *   penalty = mean relu(x̂ − μ_HW(x̂) − 3·σ_HW(x̂))
 *   g       = −mean D(x̂)
 *   w_adv   = disc_weight · clamp(‖∇_W nll‖ / (‖∇_W g‖ + 1e-4), 0, 1e4), detached, W = decoder.conv_out.weight
 * Discriminator: L_D = ½ (mean relu(1 − D(x)) + mean relu(1 + D(x̂.detach()))).
 */
import { grad, noGrad } from '../engine/autograd';
import { tidy } from '../engine/scope';
import type { Tensor } from '../engine/tensor';
import { add, addScalar, clamp, div, full, mul, mulScalar, sqrt, square } from '../kernels/elementwise';
import { gaussianKl, hingeDiscriminatorLoss, hingeGeneratorLoss, l1Loss, pixelOutlierPenalty } from '../kernels/loss';
import { mean, sum } from '../kernels/reduce';
import type { PatchGan3d } from '../models/discriminator3d';
import type { Lpips } from '../models/lpips';
import type { DiagonalGaussian } from '../models/vae3d';

export interface VaeLossWeights {
  /** λ_p, the LPIPS weight (1.0, the class default the yaml keeps). */
  perceptual: number;
  /** λ_KL (1e-6). */
  kl: number;
  /** λ_pen and the outlier radius in standard deviations (1.0 and 3.0). */
  penalty: number;
  penaltyRadius: number;
  /** disc_weight, the factor of the adaptive weight (0.5). */
  disc: number;
}

export const REFERENCE_LOSS_WEIGHTS: VaeLossWeights = { perceptual: 1, kl: 1e-6, penalty: 1, penaltyRadius: 3, disc: 0.5 };

/** Scalar tensors of one generator objective (the caller disposes them). */
export interface GeneratorLoss {
  loss: Tensor;
  l1: Tensor;
  /** Mean per-frame LPIPS, or null without LPIPS weights. */
  lpips: Tensor | null;
  nll: Tensor;
  /** Unweighted batch-mean KL. */
  kl: Tensor;
  penalty: Tensor;
  /** −mean D(x̂), 0 before the discriminator starts. */
  gAdv: Tensor;
  /** The adaptive weight (detached), 0 before the discriminator starts. */
  wAdv: Tensor;
}

export interface GeneratorLossInputs {
  x: Tensor;
  reconstruction: Tensor;
  posterior: DiagonalGaussian;
  /** LPIPS network (frozen; its mode decides whether dropout is active), or null when off. */
  lpips: Lpips | null;
  /** The discriminator when the adversarial term is on (step ≥ discStart), else null (the term is exactly 0). */
  discriminator: PatchGan3d | null;
  /** W of the adaptive weight: the decoder's last conv weight. */
  lastLayer: Tensor;
  weights: VaeLossWeights;
}

/** ‖t‖₂ as a scalar tensor (no autograd). */
const l2Norm = (t: Tensor) => noGrad(() => tidy(() => sqrt(sum(square(t)))));

/**
 * w = disc · clamp(‖∇_W nll‖ / (‖∇_W g‖ + 1e-4), 0, 1e4), detached. Both gradients come from the engine's
 * functional grad() with the graph retained, so the full backward of the total loss can follow.
 */
export function adaptiveWeight(nll: Tensor, gAdv: Tensor, lastLayer: Tensor, discWeight: number): Tensor {
  const [nllGrad] = grad(nll, [lastLayer], { retainGraph: true });
  const [gGrad] = grad(gAdv, [lastLayer], { retainGraph: true });
  if (!nllGrad || !gGrad) throw new Error('adaptive GAN weight: the loss does not depend on the decoder\'s last layer');
  const weight = noGrad(() => tidy(() => mulScalar(clamp(div(l2Norm(nllGrad), addScalar(l2Norm(gGrad), 1e-4)), 0, 1e4), discWeight)));
  nllGrad.dispose();
  gGrad.dispose();
  return weight;
}

/** The generator objective (graph kept for backward; call inside tidy and return what you keep). */
export function generatorLoss(inputs: GeneratorLossInputs): GeneratorLoss {
  const { x, reconstruction, posterior, lpips, discriminator, lastLayer, weights } = inputs;
  const l1 = l1Loss(reconstruction, x);
  // LPIPS per frame broadcasts over the pixels of its frame, so mean(L1 map + LPIPS) = mean L1 + mean LPIPS.
  const perceptual = lpips ? mean(lpips.video(x, reconstruction)) : null;
  const nll = perceptual ? add(l1, mulScalar(perceptual, weights.perceptual)) : l1;
  const kl = gaussianKl(posterior.mean, posterior.logvar, 'mean');
  const penalty = pixelOutlierPenalty(reconstruction, weights.penaltyRadius);
  let loss = add(add(nll, mulScalar(kl, weights.kl)), mulScalar(penalty, weights.penalty));
  let gAdv: Tensor;
  let wAdv: Tensor;
  if (discriminator) {
    gAdv = hingeGeneratorLoss(discriminator.forward(reconstruction));
    wAdv = adaptiveWeight(nll, gAdv, lastLayer, weights.disc);
    loss = add(loss, mul(wAdv, gAdv));
  } else {
    gAdv = full(x.backend, [], 0);
    wAdv = full(x.backend, [], 0);
  }
  return { loss, l1, lpips: perceptual, nll, kl, penalty, gAdv, wAdv };
}

/** L_D on real clips and detached reconstructions, and the mean logits of both (BatchNorm as the module's mode). */
export function discriminatorLoss(discriminator: PatchGan3d, x: Tensor, reconstructionDetached: Tensor): { loss: Tensor; logitsReal: Tensor; logitsFake: Tensor } {
  const real = discriminator.forward(x);
  const fake = discriminator.forward(reconstructionDetached);
  return { loss: hingeDiscriminatorLoss(real, fake), logitsReal: noGrad(() => mean(real)), logitsFake: noGrad(() => mean(fake)) };
}
