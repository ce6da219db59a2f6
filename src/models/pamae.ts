/**
 * Stage 1, the Phase-Aware Masked Autoencoder (REFERENCE_SPEC §3): the ECG encoder (pamae-encoder.ts),
 * a 1-D convolutional decoder that reconstructs the ECG from masked encoder features, and the
 * stage-1 wrapper with masking and the weighted loss. State-dict keys match the reference checkpoint's
 * `model_state_dict` (`encoder.*`, `decoder.*`).
 */
import type { Tensor } from '../engine/tensor';
import { tidy } from '../engine/scope';
import { add, gt, mul, mulScalar, relu } from '../kernels/elementwise';
import { interpolateLinear1d } from '../kernels/resample';
import { mseLoss } from '../kernels/loss';
import { rand, type Generator } from '../kernels/random';
import { Module } from './module';
import { BatchNorm, Sequential, conv1d, type InitContext } from './layers';
import { EcgEncoder } from './pamae-encoder';
import { validatePaMaeConfig, type EcgDecoderConfig, type PaMaeConfig } from './pamae-config';

export * from './pamae-config';
export * from './pamae-encoder';

/** proj (k1) → up1..upN (×2 linear upsample, conv k3 p1, BN, ReLU) → final_conv (k7 p3, no activation). */
export class EcgDecoder extends Module {
  readonly proj;
  readonly ups: Sequential[] = [];
  readonly finalConv;
  constructor(ctx: InitContext, readonly config: EcgDecoderConfig) {
    super(ctx.backend);
    const c = config;
    const bn = { eps: c.bnEps, momentum: c.bnMomentum };
    this.proj = this.registerModule('proj', conv1d(ctx, c.featureDim, c.projChannels, 1));
    let cin = c.projChannels;
    c.upChannels.forEach((cout, i) => {
      this.ups.push(
        this.registerModule(
          `up${i + 1}`,
          new Sequential(
            ctx.backend,
            (x: Tensor) => interpolateLinear1d(x, { scaleFactor: 2 }),
            conv1d(ctx, cin, cout, c.upKernel, { padding: Math.floor(c.upKernel / 2) }),
            new BatchNorm(ctx, cout, bn),
            relu,
          ),
        ),
      );
      cin = cout;
    });
    this.finalConv = this.registerModule('final_conv', conv1d(ctx, cin, c.outChannels, c.finalKernel, { padding: Math.floor(c.finalKernel / 2) }));
  }

  /** (masked) features [B, featureDim, T] → ECG [B, outChannels, T · 2^N]. */
  forward(features: Tensor): Tensor {
    return tidy(() => {
      let h = this.proj.forward(features);
      for (const up of this.ups) h = up.forward(h);
      return this.finalConv.forward(h);
    });
  }
}

export interface PaMaeLossOptions {
  /** An explicit keep-mask [B, 1, T] (1 keeps, 0 zeroes); otherwise one is drawn from `gen`. */
  mask?: Tensor;
  gen?: Generator;
  /** Defaults to the config's maskRatio (0.5). */
  maskRatio?: number;
}

export interface PaMaeLossResult {
  /** reconWeight · recon + phaseWeight · phase (a scalar). */
  loss: Tensor;
  /** MSE(decoder(F ⊙ m), ecg), unweighted. */
  recon: Tensor;
  /** MSE(phase head, target), unweighted. */
  phase: Tensor;
  reconstruction: Tensor;
  predictedPhase: Tensor;
  /** The unmasked encoder features [B, featureDim, T] (e.g. to also align tokens from the same forward). */
  features: Tensor;
}

/** The stage-1 model: keys `encoder.*` and `decoder.*`, as in the reference checkpoint. */
export class PaMae extends Module {
  readonly encoder: EcgEncoder;
  readonly decoder: EcgDecoder;
  constructor(ctx: InitContext, readonly config: PaMaeConfig) {
    super(ctx.backend);
    validatePaMaeConfig(config);
    this.encoder = this.registerModule('encoder', new EcgEncoder(ctx, config.encoder));
    this.decoder = this.registerModule('decoder', new EcgDecoder(ctx, config.decoder));
  }

  /** A keep-mask m = 1[U(0,1) > ratio] of shape [B, 1, T]: one draw per (sample, position), shared by all channels. */
  drawMask(features: Tensor, ratio: number, gen: Generator): Tensor {
    if (features.rank !== 3) throw new Error(`drawMask expects features [B, C, T], got [${features.shape}]`);
    return tidy(() => gt(rand(features.backend, [features.shape[0], 1, features.shape[2]], gen), ratio));
  }

  /** F ⊙ m with a freshly drawn mask (spec §3.4); masked positions become 0 (no mask token). */
  mask(features: Tensor, ratio: number, gen: Generator): Tensor {
    return tidy(() => mul(features, this.drawMask(features, ratio, gen)));
  }

  /**
   * L = reconWeight · MSE(Dec(F ⊙ m), ecg) + phaseWeight · MSE(phase, target), plain means over every
   * element (the reconstruction loss covers masked and unmasked positions alike).
   * phaseTarget: [B, 2, T] = [sin φ, cos φ] on the feature grid.
   */
  loss(ecg: Tensor, phaseTarget: Tensor, options: PaMaeLossOptions = {}): PaMaeLossResult {
    if (!options.mask && !options.gen) throw new Error('PaMae.loss: pass a mask or a generator to draw one');
    return tidy(() => {
      const { features, phase } = this.encoder.forwardRaw(ecg);
      const keep = options.mask ?? this.drawMask(features, options.maskRatio ?? this.config.maskRatio, options.gen!);
      const reconstruction = this.decoder.forward(mul(features, keep));
      const recon = mseLoss(reconstruction, ecg);
      const phaseLoss = mseLoss(phase, phaseTarget);
      const loss = add(mulScalar(recon, this.config.reconWeight), mulScalar(phaseLoss, this.config.phaseWeight));
      return { loss, recon, phase: phaseLoss, reconstruction, predictedPhase: phase, features };
    });
  }
}
