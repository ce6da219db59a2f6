/**
 * The reference's constructor arguments → our model configurations, so that a user holding the
 * reference's kwargs or YAML gets the identical architecture (same parameter names and shapes):
 *
 *   ECGEncoder(in_channels=12, base_filters=64, out_dim=768, target_len=50)
 *   ECGDecoder(in_dim=768, out_channels=12, base_filters=64)
 *   ECG_DiT(input_size=12, num_frames=50, in_channels=4, hidden_size=512, depth=8, num_heads=8, ecg_dim=768, train_num_points=4)
 *   VAE3d(lossconfig, ddconfig, embed_dim)
 *   NLayerDiscriminator3D(input_nc=1, ndf=64, n_layers=3, use_actnorm=False, use_groupnorm=False, act_tanh=False, use_blur_pool=False)
 *
 * Defaults are the reference's. What the reference fixes inside its classes is fixed here too: the phase
 * head's 256 channels, the DiT's MLP ratio 4 and 256-wide timestep embedding, the VAE's GroupNorm(32),
 * 8 attention heads, 512-wide (unused) temb projections, the decoder's num_res_blocks + 1 blocks and
 * attention on the last two resolution levels (attn_resolutions is ignored, as in the reference).
 */
import type { EcgDecoderConfig, EcgEncoderConfig, PaMaeConfig } from '../pamae-config';
import type { DitConfig } from '../dit-config';
import type { PatchGan3dConfig } from '../discriminator3d';
import type { Vae3dConfig } from '../vae3d';
import { KwargReader, ReferenceConfigError, type Kwargs } from './kwargs';

export { ReferenceConfigError, type Kwargs } from './kwargs';

/** Constants inside the reference classes. */
export const REFERENCE_FIXED = {
  phaseHidden: 256,
  ecgLength: 5000,
  ditMlpRatio: 4,
  ditFrequencyEmbedding: 256,
  vaeGroups: 32,
  vaeHeads: 8,
  vaeTembChannels: 512,
  bnEps: 1e-5,
  bnMomentum: 0.1,
} as const;

export type ReferenceClassName = 'ECGEncoder' | 'ECGDecoder' | 'ECG_DiT' | 'VAE3d' | 'NLayerDiscriminator3D';
export const REFERENCE_CLASSES: readonly ReferenceClassName[] = ['ECGEncoder', 'ECGDecoder', 'ECG_DiT', 'VAE3d', 'NLayerDiscriminator3D'];

export interface ReferenceConfigs {
  ECGEncoder: EcgEncoderConfig;
  ECGDecoder: EcgDecoderConfig;
  ECG_DiT: DitConfig;
  VAE3d: Vae3dConfig;
  NLayerDiscriminator3D: PatchGan3dConfig;
}

/** A translated configuration and the given arguments that do not change the architecture. */
export interface ReferenceConfigResult<K extends ReferenceClassName> {
  className: K;
  config: ReferenceConfigs[K];
  /** e.g. `ddconfig.attn_resolutions`, `lossconfig.params.kl_weight`, `train_num_points`. */
  ignored: string[];
}

const BN = { bnEps: REFERENCE_FIXED.bnEps, bnMomentum: REFERENCE_FIXED.bnMomentum };

export function ecgEncoderFromReference(kwargs: Kwargs = {}): ReferenceConfigResult<'ECGEncoder'> {
  const r = new KwargReader('ECGEncoder', kwargs, { accepted: ['in_channels', 'base_filters', 'out_dim', 'target_len'] });
  const b = r.int('base_filters', 64);
  const config: EcgEncoderConfig = {
    inChannels: r.int('in_channels', 12), stemChannels: b, stemKernel: 7,
    layerChannels: [b, 2 * b, 4 * b, 8 * b], layerStrides: [1, 2, 1, 1], blocksPerLayer: 2,
    featureDim: r.int('out_dim', 768), phaseHidden: REFERENCE_FIXED.phaseHidden, tokenSteps: r.int('target_len', 50), ...BN,
  };
  return { className: 'ECGEncoder', config, ignored: r.ignored };
}

export function ecgDecoderFromReference(kwargs: Kwargs = {}): ReferenceConfigResult<'ECGDecoder'> {
  const r = new KwargReader('ECGDecoder', kwargs, { accepted: ['in_dim', 'out_channels', 'base_filters'] });
  const b = r.int('base_filters', 64);
  const config: EcgDecoderConfig = {
    featureDim: r.int('in_dim', 768), projChannels: 8 * b, upChannels: [4 * b, 2 * b, b], upKernel: 3,
    outChannels: r.int('out_channels', 12), finalKernel: 7, ...BN,
  };
  return { className: 'ECGDecoder', config, ignored: r.ignored };
}

/**
 * The PA-MAE as train_ecg.py builds it: ECGEncoder(in_channels, base_filters, out_dim, target_len) and
 * ECGDecoder(in_dim=out_dim, out_channels=in_channels, base_filters), with the reference's loss settings.
 */
export function paMaeFromReference(encoder: Kwargs = {}, decoder?: Kwargs, ecgLength: number = REFERENCE_FIXED.ecgLength): PaMaeConfig {
  const e = ecgEncoderFromReference(encoder).config;
  const d = ecgDecoderFromReference(decoder ?? { in_dim: e.featureDim, out_channels: e.inChannels, base_filters: e.stemChannels }).config;
  return { encoder: e, decoder: d, ecgLength, maskRatio: 0.5, reconWeight: 100, phaseWeight: 10 };
}

export function ditFromReference(kwargs: Kwargs = {}): ReferenceConfigResult<'ECG_DiT'> {
  const r = new KwargReader('ECG_DiT', kwargs, { accepted: ['input_size', 'num_frames', 'in_channels', 'hidden_size', 'depth', 'num_heads', 'ecg_dim', 'train_num_points'] });
  const size = r.int('input_size', 12);
  const hiddenSize = r.int('hidden_size', 512);
  const numHeads = r.int('num_heads', 8);
  if (hiddenSize % numHeads !== 0) throw new ReferenceConfigError(`ECG_DiT: hidden_size ${hiddenSize} is not divisible by num_heads ${numHeads} (nn.MultiheadAttention refuses it too)`);
  if (r.has('train_num_points')) {
    r.int('train_num_points', 4);
    r.ignored.push('train_num_points');
  }
  const config: DitConfig = {
    hiddenSize, depth: r.int('depth', 8), numHeads, mlpRatio: REFERENCE_FIXED.ditMlpRatio,
    latentChannels: r.int('in_channels', 4), latentSize: [size, size], numFrames: r.int('num_frames', 50),
    ecgDim: r.int('ecg_dim', 768), frequencyEmbeddingSize: REFERENCE_FIXED.ditFrequencyEmbedding,
  };
  return { className: 'ECG_DiT', config, ignored: r.ignored };
}

const DISCRIMINATOR_FLAGS = ['use_actnorm', 'use_groupnorm', 'act_tanh', 'use_blur_pool'] as const;

export function discriminatorFromReference(kwargs: Kwargs = {}): ReferenceConfigResult<'NLayerDiscriminator3D'> {
  const r = new KwargReader('NLayerDiscriminator3D', kwargs, { accepted: ['input_nc', 'ndf', 'n_layers', ...DISCRIMINATOR_FLAGS] });
  for (const flag of DISCRIMINATOR_FLAGS) r.only(flag, () => r.bool(flag, false), false, 'the released model uses BatchNorm3d, LeakyReLU and strided convolutions');
  const config: PatchGan3dConfig = { inChannels: r.int('input_nc', 1), ndf: r.int('ndf', 64), nLayers: r.int('n_layers', 3) };
  return { className: 'NLayerDiscriminator3D', config, ignored: r.ignored };
}

/** LPIPSWithDiscriminator arguments that shape its 3-D discriminator; the rest are training knobs. */
const LOSS_ARCHITECTURE = ['disc_in_channels', 'disc_ch', 'disc_num_layers', 'use_actnorm', 'use_groupnorm', 'act_tanh', 'use_blur_pool', 'enable_2d', 'enable_3d'];

function lossDiscriminator(lossconfig: Kwargs, ignored: string[]): PatchGan3dConfig {
  // The YAML nests the arguments under `params` next to `target`; a bare params object works too.
  const params = (lossconfig.params ?? (lossconfig.target === undefined ? lossconfig : {})) as Kwargs;
  if (params === null || typeof params !== 'object' || Array.isArray(params)) throw new ReferenceConfigError(`VAE3d: lossconfig.params must be an object, got ${JSON.stringify(params)}`);
  const r = new KwargReader('VAE3d lossconfig.params', params, { accepted: LOSS_ARCHITECTURE, swallowsOthers: true });
  ignored.push(...r.ignored.map((k) => `lossconfig.params.${k}`));
  r.only('enable_3d', () => r.bool('enable_3d', true), true, 'the VAE stage trains a 3-D discriminator');
  r.only('enable_2d', () => r.bool('enable_2d', false), false, 'no 2-D discriminator is implemented');
  const disc: Kwargs = { input_nc: r.int('disc_in_channels', 1), ndf: r.int('disc_ch', 64), n_layers: r.int('disc_num_layers', 3) };
  for (const flag of DISCRIMINATOR_FLAGS) if (r.has(flag)) disc[flag] = params[flag];
  return discriminatorFromReference(disc).config;
}

const DDCONFIG = ['ch', 'ch_mult', 'num_res_blocks', 'attn_resolutions', 'dropout', 'in_channels', 'out_ch', 'resolution', 'z_channels', 'temp_res', 'f_t', 'f_s', 'mode', 'use_3d_conv', 'use_checkpoint', 'out_z'];

/**
 * VAE3d(lossconfig, ddconfig, embed_dim). ch, num_res_blocks and z_channels are required (as in the
 * reference); ch_mult defaults to the reference Encoder's (1, 2, 4, 8); in_channels, out_ch, resolution
 * and temp_res, required or fixed by the reference's YAML, default to that YAML's 1, 1, 96 and 50 (they do
 * not change the parameters); lossconfig may be omitted (the discriminator then has the reference's
 * defaults: 1 input channel, ndf 64, 3 layers).
 */
export function vaeFromReference(kwargs: Kwargs): ReferenceConfigResult<'VAE3d'> {
  const top = new KwargReader('VAE3d', kwargs, { accepted: ['lossconfig', 'ddconfig', 'embed_dim', 'ckpt_path', 'ignore_keys'], swallowsOthers: true });
  const ignored = [...top.ignored];
  const dd = new KwargReader('VAE3d ddconfig', top.object('ddconfig'), { accepted: DDCONFIG, swallowsOthers: true });
  ignored.push(...dd.ignored.map((k) => `ddconfig.${k}`));
  for (const k of ['attn_resolutions', 'use_3d_conv', 'use_checkpoint', 'f_s']) if (dd.has(k)) ignored.push(`ddconfig.${k}`);
  dd.only('f_t', () => dd.int('f_t', 0, 0), 0, 'temporal downsampling is not implemented; the released model keeps the time axis');
  dd.only('mode', () => dd.string('mode', '3d'), '3d', 'the VAE is built from 3-D convolutions');
  dd.only('out_z', () => dd.bool('out_z', true), true, 'the encoder outputs mean and log-variance');
  const chMult = dd.intList('ch_mult', [1, 2, 4, 8]);
  const levels = chMult.length;
  const ch = dd.int('ch');
  const channels = chMult.map((m) => ch * m);
  const bad = channels.filter((c) => c % REFERENCE_FIXED.vaeGroups !== 0);
  if (bad.length) throw new ReferenceConfigError(`VAE3d ddconfig: ch × ch_mult gives ${channels.join(', ')} channels; the reference's GroupNorm(32) needs multiples of 32 (${bad.join(', ')} are not)`);
  const numResBlocks = dd.int('num_res_blocks');
  const config: Vae3dConfig = {
    inChannels: dd.int('in_channels', 1), outChannels: dd.int('out_ch', 1), ch, chMult,
    encoderResBlocks: numResBlocks, decoderResBlocks: numResBlocks + 1,
    zChannels: dd.int('z_channels'), embedDim: top.int('embed_dim'),
    resolution: dd.int('resolution', 96), tempRes: dd.int('temp_res', 50),
    attentionLevels: chMult.map((_, i) => i).filter((i) => i >= levels - 2),
    heads: REFERENCE_FIXED.vaeHeads, groups: REFERENCE_FIXED.vaeGroups, tembChannels: REFERENCE_FIXED.vaeTembChannels,
    dropout: dd.number('dropout', 0),
    discriminator: lossDiscriminator(top.has('lossconfig') ? top.object('lossconfig') : {}, ignored),
  };
  const factor = 2 ** (levels - 1);
  if (config.resolution % factor !== 0) throw new ReferenceConfigError(`VAE3d ddconfig: resolution ${config.resolution} is not divisible by the spatial factor ${factor} of ${levels} levels`);
  return { className: 'VAE3d', config, ignored };
}

/** One entry point for every reference class. */
export function referenceConfig<K extends ReferenceClassName>(className: K, kwargs: Kwargs = {}): ReferenceConfigResult<K> {
  const translate: { [C in ReferenceClassName]: (k: Kwargs) => ReferenceConfigResult<C> } = {
    ECGEncoder: ecgEncoderFromReference,
    ECGDecoder: ecgDecoderFromReference,
    ECG_DiT: ditFromReference,
    VAE3d: vaeFromReference,
    NLayerDiscriminator3D: discriminatorFromReference,
  };
  const fn = translate[className] as ((k: Kwargs) => ReferenceConfigResult<K>) | undefined;
  if (!fn) throw new ReferenceConfigError(`unknown reference class '${String(className)}' (known: ${REFERENCE_CLASSES.join(', ')})`);
  return fn(kwargs);
}
