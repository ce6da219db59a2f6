/**
 * `fromReferenceConfig(ctx, 'VAE3d', { embed_dim: 4, ddconfig: {...}, lossconfig: {...} })`: the model the
 * reference builds from the same constructor arguments, in one call (config translation in ./config.ts).
 * VAE3d gives the autoencoder; its 3-D discriminator (the reference's `loss.discriminator`) is built with
 * `NLayerDiscriminator3D` from `result.config.discriminator`.
 */
import type { InitContext } from '../layers';
import { PatchGan3d } from '../discriminator3d';
import { EcgDiT } from '../dit';
import { EcgDecoder, EcgEncoder } from '../pamae';
import { VAE3d } from '../vae3d';
import { referenceConfig, type Kwargs, type ReferenceClassName, type ReferenceConfigResult } from './config';

export interface ReferenceModels {
  ECGEncoder: EcgEncoder;
  ECGDecoder: EcgDecoder;
  ECG_DiT: EcgDiT;
  VAE3d: VAE3d;
  NLayerDiscriminator3D: PatchGan3d;
}

export interface ReferenceModel<K extends ReferenceClassName> extends ReferenceConfigResult<K> {
  model: ReferenceModels[K];
}

export function fromReferenceConfig<K extends ReferenceClassName>(ctx: InitContext, className: K, kwargs: Kwargs = {}): ReferenceModel<K> {
  const result = referenceConfig(className, kwargs);
  const c = result.config as never;
  const builders: { [C in ReferenceClassName]: () => ReferenceModels[C] } = {
    ECGEncoder: () => new EcgEncoder(ctx, c),
    ECGDecoder: () => new EcgDecoder(ctx, c),
    ECG_DiT: () => new EcgDiT(ctx, c),
    VAE3d: () => new VAE3d(ctx, c),
    NLayerDiscriminator3D: () => new PatchGan3d(ctx, c),
  };
  return { ...result, model: builders[className]() as ReferenceModels[K] };
}
