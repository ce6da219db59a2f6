/**
 * PA-MAE configurations (REFERENCE_SPEC §3) and a shape-only listing of the parameters, so the
 * paper-size counts can be checked without allocating the model.
 */

export interface EcgEncoderConfig {
  /** ECG leads (input channels). */
  inChannels: number;
  /** Stem conv output channels (conv k7 s2 p3 → BN → ReLU → max-pool k3 s2 p1). */
  stemChannels: number;
  stemKernel: number;
  /** Output channels of layer1..layerN; each layer is `blocksPerLayer` BasicBlocks. */
  layerChannels: readonly number[];
  /** Stride of the first block of each layer. */
  layerStrides: readonly number[];
  blocksPerLayer: number;
  /** Semantic feature width (feature_proj output). */
  featureDim: number;
  /** Hidden width of the phase head (conv k1 → ReLU → conv k1 → [sin, cos]). */
  phaseHidden: number;
  /** Steps of the aligned token sequence (one per CMR frame). */
  tokenSteps: number;
  bnEps: number;
  bnMomentum: number;
}

export interface EcgDecoderConfig {
  featureDim: number;
  /** Output channels of the k1 projection. */
  projChannels: number;
  /** Output channels of up1..upN (each: ×2 linear upsample → conv k3 p1 → BN → ReLU). */
  upChannels: readonly number[];
  upKernel: number;
  /** Reconstructed leads. */
  outChannels: number;
  finalKernel: number;
  bnEps: number;
  bnMomentum: number;
}

export interface PaMaeConfig {
  encoder: EcgEncoderConfig;
  decoder: EcgDecoderConfig;
  /** Samples per lead the model is built for (the encoder downsamples it by `encoderDownsampling`). */
  ecgLength: number;
  /** Fraction of feature positions zeroed (ρ). */
  maskRatio: number;
  reconWeight: number;
  phaseWeight: number;
}

const BN = { bnEps: 1e-5, bnMomentum: 0.1 } as const;

const paper: PaMaeConfig = {
  encoder: {
    inChannels: 12, stemChannels: 64, stemKernel: 7,
    layerChannels: [64, 128, 256, 512], layerStrides: [1, 2, 1, 1], blocksPerLayer: 2,
    featureDim: 768, phaseHidden: 256, tokenSteps: 50, ...BN,
  },
  decoder: { featureDim: 768, projChannels: 512, upChannels: [256, 128, 64], upKernel: 3, outChannels: 12, finalKernel: 7, ...BN },
  ecgLength: 5000,
  maskRatio: 0.5,
  reconWeight: 100,
  phaseWeight: 10,
};

/** Half the widths of the paper model (about a quarter of the parameters), full-length ECGs. */
const small: PaMaeConfig = {
  encoder: { ...paper.encoder, stemChannels: 32, layerChannels: [32, 64, 128, 256], featureDim: 384, phaseHidden: 128 },
  decoder: { ...paper.decoder, featureDim: 384, projChannels: 256, upChannels: [128, 64, 32] },
  ecgLength: 5000,
  maskRatio: 0.5,
  reconWeight: 100,
  phaseWeight: 10,
};

/** For tests on lavapipe: narrow layers and 12 × 400 ECGs (→ 50 feature steps, the same 8× downsampling). */
const tiny: PaMaeConfig = {
  encoder: { ...paper.encoder, stemChannels: 8, layerChannels: [8, 16, 16, 24], featureDim: 32, phaseHidden: 16 },
  decoder: { ...paper.decoder, featureDim: 32, projChannels: 24, upChannels: [16, 8, 8] },
  ecgLength: 400,
  maskRatio: 0.5,
  reconWeight: 100,
  phaseWeight: 10,
};

export const PAMAE_CONFIGS: { readonly paper: PaMaeConfig; readonly small: PaMaeConfig; readonly tiny: PaMaeConfig } = { paper, small, tiny };

/** Temporal downsampling of the encoder: stem conv (×2), max-pool (×2), then the layer strides. */
export function encoderDownsampling(config: EcgEncoderConfig): number {
  return 4 * config.layerStrides.reduce((a, b) => a * b, 1);
}

/** Feature steps for an ECG of `length` samples (PyTorch's conv/pool output-length rules). */
export function encoderSteps(config: EcgEncoderConfig, length: number): number {
  const out = (l: number, k: number, s: number, p: number) => Math.floor((l + 2 * p - k) / s) + 1;
  let l = out(length, config.stemKernel, 2, Math.floor(config.stemKernel / 2));
  l = out(l, 3, 2, 1);
  for (const s of config.layerStrides) l = out(l, 3, s, 1);
  return l;
}

/** Checks the pieces fit together (decoder upsampling undoes the encoder's downsampling, widths agree). */
export function validatePaMaeConfig(config: PaMaeConfig): void {
  const { encoder: e, decoder: d } = config;
  const problems: string[] = [];
  if (e.layerChannels.length !== e.layerStrides.length) problems.push(`layerChannels (${e.layerChannels.length}) and layerStrides (${e.layerStrides.length}) differ in length`);
  if (e.featureDim !== d.featureDim) problems.push(`encoder featureDim ${e.featureDim} ≠ decoder featureDim ${d.featureDim}`);
  if (2 ** d.upChannels.length !== encoderDownsampling(e)) problems.push(`decoder upsamples ×${2 ** d.upChannels.length} but the encoder downsamples ×${encoderDownsampling(e)}`);
  if (config.ecgLength % encoderDownsampling(e) !== 0) problems.push(`ecgLength ${config.ecgLength} is not a multiple of ${encoderDownsampling(e)}`);
  if (!(config.maskRatio >= 0 && config.maskRatio < 1)) problems.push(`maskRatio ${config.maskRatio} must be in [0, 1)`);
  if (problems.length) throw new Error(`PA-MAE config: ${problems.join('; ')}`);
}

/** A BasicBlock needs a 1×1 conv + BN shortcut when it changes the stride or the width. */
export function needsDownsample(inChannels: number, outChannels: number, stride: number): boolean {
  return stride !== 1 || inChannels !== outChannels;
}

type ShapeList = [string, number[]][];

function bnShapes(prefix: string, c: number): ShapeList {
  return [[`${prefix}.weight`, [c]], [`${prefix}.bias`, [c]]];
}

/** Parameter names and shapes of the ECGEncoder in state-dict order (no buffers). */
export function encoderParameterShapes(e: EcgEncoderConfig): ShapeList {
  const out: ShapeList = [['stem.0.weight', [e.stemChannels, e.inChannels, e.stemKernel]], ...bnShapes('stem.1', e.stemChannels)];
  let cin = e.stemChannels;
  e.layerChannels.forEach((cout, li) => {
    for (let b = 0; b < e.blocksPerLayer; b++) {
      const p = `layer${li + 1}.${b}`;
      const stride = b === 0 ? e.layerStrides[li] : 1;
      out.push([`${p}.conv1.weight`, [cout, cin, 3]], ...bnShapes(`${p}.bn1`, cout), [`${p}.conv2.weight`, [cout, cout, 3]], ...bnShapes(`${p}.bn2`, cout));
      if (needsDownsample(cin, cout, stride)) out.push([`${p}.downsample.0.weight`, [cout, cin, 1]], ...bnShapes(`${p}.downsample.1`, cout));
      cin = cout;
    }
  });
  out.push(
    ['feature_proj.weight', [e.featureDim, cin, 1]], ['feature_proj.bias', [e.featureDim]],
    ['phase_head.0.weight', [e.phaseHidden, cin, 1]], ['phase_head.0.bias', [e.phaseHidden]],
    ['phase_head.2.weight', [2, e.phaseHidden, 1]], ['phase_head.2.bias', [2]],
  );
  return out;
}

/** Parameter names and shapes of the ECGDecoder in state-dict order (no buffers). */
export function decoderParameterShapes(d: EcgDecoderConfig): ShapeList {
  const out: ShapeList = [['proj.weight', [d.projChannels, d.featureDim, 1]], ['proj.bias', [d.projChannels]]];
  let cin = d.projChannels;
  d.upChannels.forEach((cout, i) => {
    out.push([`up${i + 1}.1.weight`, [cout, cin, d.upKernel]], [`up${i + 1}.1.bias`, [cout]], ...bnShapes(`up${i + 1}.2`, cout));
    cin = cout;
  });
  out.push(['final_conv.weight', [d.outChannels, cin, d.finalKernel]], ['final_conv.bias', [d.outChannels]]);
  return out;
}

export const countParameters = (shapes: ShapeList): number => shapes.reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0);
