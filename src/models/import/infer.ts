/**
 * Reference checkpoints → the reference constructor arguments their tensors imply → our configurations, with
 * every tensor checked against that architecture. Each function takes the unpickled checkpoint (readPth's
 * root) and its file name; every problem is a WeightsError that names the file, the keys and the shapes,
 * and says what to do.
 *
 *   PA-MAE  checkpoint-best.pth         model_state_dict: encoder.* (+ decoder.*)
 *   VAE     checkpoint-best.pth         model_state_dict: encoder_3d.*, decoder.*, quant_conv.*, post_quant_conv.*,
 *                                       loss.discriminator.* (kept), loss.logvar and loss.perceptual_loss.* (dropped)
 *   flow    checkpoint_flow_best.pth    model_state_dict: the DiT; encoder_state_dict: the fine-tuned encoder
 */
import { WeightsError } from '../io/errors';
import type { PyValue } from '../io/pickle';
import { extractStateDict, getEntry, isStateDict, stripPrefix, type StateDict } from '../io/state-dict';
import type { HostTensor } from '../io/tensor';
import type { DitConfig } from '../dit-config';
import type { PaMaeConfig } from '../pamae-config';
import type { PatchGan3dConfig } from '../discriminator3d';
import type { Vae3dConfig } from '../vae3d';
import { ditFromReference, paMaeFromReference, ReferenceConfigError, vaeFromReference, type Kwargs } from '../reference/config';
import { checkStateShapes, discriminatorStateShapes, ditStateShapes, ecgDecoderStateShapes, ecgEncoderStateShapes, vaeStateShapes } from '../reference/shapes';

/** How the reference's classes would be called to build what a checkpoint holds. */
export type ReferenceCall = { className: string; kwargs: Kwargs };

const call = (className: string, kwargs: Kwargs) => `${className}(${Object.entries(kwargs).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')})`;

/** The model's tensors: `model_state_dict` (or the top level / the usual keys), DataParallel's `module.` removed. */
function modelStateDict(root: PyValue, file: string): StateDict {
  try {
    const sd = getEntry(root, 'model_state_dict') !== undefined ? extractStateDict(root, { prefer: 'model_state_dict' }) : extractStateDict(root);
    return [...sd.keys()].every((k) => k.startsWith('module.')) ? stripPrefix(sd, 'module.') : sd;
  } catch (e) {
    if (e instanceof WeightsError && !e.message.startsWith(file)) throw new WeightsError(`${file}: ${e.message}`);
    throw e;
  }
}

/** What a state dict looks like, for "you passed the wrong file" hints. */
function guessKind(sd: StateDict): 'pamae' | 'vae' | 'flow' | 'encoder' | null {
  const keys = [...sd.keys()];
  if (keys.some((k) => k.startsWith('encoder_3d.'))) return 'vae';
  if (keys.some((k) => k.startsWith('x_embedder.') || k === 'pos_embed')) return 'flow';
  if (keys.some((k) => k.startsWith('encoder.stem.'))) return 'pamae';
  if (keys.some((k) => k.startsWith('stem.'))) return 'encoder';
  return null;
}

const KIND_HINT: Record<string, string> = {
  pamae: 'it looks like a PA-MAE checkpoint (encoder.*): pass it as --pamae',
  vae: 'it looks like a VAE checkpoint (encoder_3d.*): pass it as --vae',
  flow: 'it looks like a flow checkpoint (x_embedder.*, pos_embed): pass it as --flow',
  encoder: 'it looks like a bare ECG encoder state dict (stem.*, without the encoder. prefix of a PA-MAE checkpoint)',
};

function wrongFile(file: string, expected: string, sd: StateDict): WeightsError {
  const kind = guessKind(sd);
  const first = [...sd.keys()].slice(0, 4).join(', ');
  return new WeightsError(`${file}: not a ${expected}: ${kind ? KIND_HINT[kind] : `its keys start ${first || '(none)'}`}`);
}

/** A tensor the inference needs, with its rank checked. */
function need(sd: Map<string, HostTensor>, key: string, rank: number, file: string, what: string): number[] {
  const t = sd.get(key);
  if (!t) throw new WeightsError(`${file}: cannot tell ${what}: key '${key}' is missing (the checkpoint is partial or not in the reference layout)`);
  if (t.shape.length !== rank) throw new WeightsError(`${file}: '${key}' has shape [${t.shape.join(', ')}], expected ${rank} dimensions (${what})`);
  return t.shape;
}

/** Count of `prefix<i>suffix` indices (0..n−1 contiguous), e.g. blocks.<i>.adaLN_modulation.1.weight. */
function countIndexed(sd: Map<string, HostTensor>, pattern: RegExp): number {
  const seen = new Set<number>();
  for (const k of sd.keys()) {
    const m = pattern.exec(k);
    if (m) seen.add(Number(m[1]));
  }
  return seen.size ? Math.max(...seen) + 1 : 0;
}

function translate<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ReferenceConfigError) throw new WeightsError(`${file}: the tensors imply arguments this code cannot build: ${e.message}`);
    throw e;
  }
}

export interface PaMaeImport {
  config: PaMaeConfig;
  calls: ReferenceCall[];
  /** encoder.* and decoder.* (decoder absent when the checkpoint has none). */
  tensors: StateDict;
  hasDecoder: boolean;
}

/** The PA-MAE checkpoint: ECGEncoder(in_channels, base_filters, out_dim, target_len) (+ ECGDecoder). */
export function importPaMae(root: PyValue, file: string, options: { targetLen?: number; ecgLength?: number } = {}): PaMaeImport {
  const sd = modelStateDict(root, file);
  const encoder = stripPrefix(sd, 'encoder.');
  if (encoder.size === 0) throw wrongFile(file, "PA-MAE checkpoint (no 'encoder.'-prefixed keys in model_state_dict)", sd);
  const decoder = stripPrefix(sd, 'decoder.');
  const stem = need(encoder, 'stem.0.weight', 3, file, 'the ECG encoder width (base_filters, in_channels)');
  const proj = need(encoder, 'feature_proj.weight', 3, file, 'the ECG feature width (out_dim)');
  const encoderKwargs: Kwargs = { in_channels: stem[1], base_filters: stem[0], out_dim: proj[0], target_len: options.targetLen ?? 50 };
  let decoderKwargs: Kwargs | undefined;
  if (decoder.size) {
    const final = need(decoder, 'final_conv.weight', 3, file, 'the ECG decoder widths');
    const dproj = need(decoder, 'proj.weight', 3, file, 'the ECG decoder input width');
    decoderKwargs = { in_dim: dproj[1], out_channels: final[0], base_filters: final[1] };
  }
  const config = translate(file, () => paMaeFromReference(encoderKwargs, decoderKwargs, options.ecgLength));
  const fix = 'Is this the PA-MAE checkpoint of the reference code (train_ecg.py, checkpoint-best.pth), complete and unmodified?';
  checkStateShapes(ecgEncoderStateShapes(config.encoder), encoder, { file, what: 'the ECG encoder (model_state_dict encoder.*)', against: call('ECGEncoder', encoderKwargs), fix });
  if (decoderKwargs) checkStateShapes(ecgDecoderStateShapes(config.decoder), decoder, { file, what: 'the ECG decoder (model_state_dict decoder.*)', against: call('ECGDecoder', decoderKwargs), fix });
  const others = [...sd.keys()].filter((k) => !k.startsWith('encoder.') && !k.startsWith('decoder.'));
  if (others.length) throw new WeightsError(`${file}: model_state_dict holds keys that belong to neither the ECG encoder nor its decoder: ${others.slice(0, 6).join(', ')}${others.length > 6 ? ', …' : ''}. ${fix}`);
  const tensors: StateDict = new Map();
  for (const [k, t] of sd) tensors.set(k, t);
  const calls = [{ className: 'ECGEncoder', kwargs: encoderKwargs }, ...(decoderKwargs ? [{ className: 'ECGDecoder', kwargs: decoderKwargs }] : [])];
  return { config, calls, tensors, hasDecoder: decoder.size > 0 };
}

export interface VaeImport {
  config: Vae3dConfig;
  call: ReferenceCall;
  /** encoder_3d.*, decoder.*, quant_conv.*, post_quant_conv.* */
  vae: StateDict;
  /** The 3-D PatchGAN (loss.discriminator.* with the prefix removed); empty when the checkpoint has none. */
  discriminator: StateDict;
  /** Keys left out (LPIPS/VGG16, logvar): training-only. */
  dropped: string[];
  /** Where resolution and temp_res came from. */
  geometrySource: string;
}

export interface VaeImportOptions {
  /** VAE3d arguments from the reference YAML (vaeKwargsFromYaml); otherwise inferred from the shapes. */
  yamlKwargs?: Kwargs;
  yamlName?: string;
  /** Frame size and count of the clips (not in the weights): from the template and the DiT when no YAML. */
  resolution?: number;
  tempRes?: number;
}

/** The VAE checkpoint: VAE3d(lossconfig, ddconfig, embed_dim). */
export function importVae(root: PyValue, file: string, options: VaeImportOptions = {}): VaeImport {
  const sd = modelStateDict(root, file);
  if (![...sd.keys()].some((k) => k.startsWith('encoder_3d.'))) throw wrongFile(file, "VAE checkpoint (no 'encoder_3d.' keys in model_state_dict)", sd);
  const vae: StateDict = new Map();
  const discriminator: StateDict = new Map();
  const dropped: string[] = [];
  for (const [k, t] of sd) {
    if (k.startsWith('loss.discriminator.')) discriminator.set(k.slice('loss.discriminator.'.length), t);
    else if (k.startsWith('loss.')) dropped.push(k);
    else vae.set(k, t);
  }
  let kwargs: Kwargs;
  let geometrySource: string;
  if (options.yamlKwargs) {
    kwargs = options.yamlKwargs;
    geometrySource = `resolution and temp_res from ${options.yamlName ?? 'the YAML'}`;
  } else {
    const convIn = need(vae, 'encoder_3d.conv_in.weight', 5, file, 'the VAE base width (ch, in_channels)');
    const ch = convIn[0];
    const levels = countIndexed(vae, /^encoder_3d\.down\.(\d+)\./);
    if (levels === 0) throw new WeightsError(`${file}: cannot tell the VAE's levels: no encoder_3d.down.<i>.* keys`);
    const chMult = Array.from({ length: levels }, (_, i) => {
      const out = need(vae, `encoder_3d.down.${i}.block.0.conv1.weight`, 5, file, `the channel multiplier of level ${i}`)[0];
      if (out % ch !== 0) throw new WeightsError(`${file}: encoder_3d.down.${i}.block.0.conv1.weight has ${out} output channels, not a multiple of ch = ${ch}`);
      return out / ch;
    });
    const lossParams: Kwargs = {};
    if (discriminator.size) {
      const first = need(discriminator, 'main.0.weight', 5, file, 'the discriminator width (loss.discriminator.main.0.weight)');
      const convs = [...discriminator.entries()].filter(([k, t]) => /^main\.\d+\.weight$/.test(k) && t.shape.length === 5).length;
      Object.assign(lossParams, { disc_in_channels: first[1], disc_ch: first[0], disc_num_layers: Math.max(1, convs - 2) });
    }
    kwargs = {
      embed_dim: need(vae, 'quant_conv.weight', 5, file, 'embed_dim')[0] / 2,
      ddconfig: {
        ch, ch_mult: chMult, num_res_blocks: countIndexed(vae, /^encoder_3d\.down\.0\.block\.(\d+)\./),
        in_channels: convIn[1], out_ch: need(vae, 'decoder.conv_out.weight', 5, file, 'out_ch')[0],
        z_channels: need(vae, 'encoder_3d.conv_out.weight', 5, file, 'z_channels')[0] / 2,
        resolution: options.resolution ?? 96, temp_res: options.tempRes ?? 50, f_t: 0,
      },
      lossconfig: { params: lossParams },
    };
    geometrySource = options.resolution !== undefined ? 'resolution from the template/DiT latent size × 2^(levels−1), temp_res from the DiT frames' : "resolution 96 and temp_res 50 (the reference YAML's)";
  }
  const result = translate(file, () => vaeFromReference(kwargs));
  const against = call('VAE3d', { embed_dim: kwargs.embed_dim, ddconfig: kwargs.ddconfig });
  const fix = options.yamlKwargs
    ? `Does ${options.yamlName ?? 'the YAML'} belong to this checkpoint? Without --config-yaml the arguments are read from the checkpoint's shapes.`
    : 'Is this the VAE checkpoint of the reference code (train_disentangle_vae3d.py, checkpoint-best.pth), complete and unmodified?';
  checkStateShapes(vaeStateShapes(result.config), vae, { file, what: 'the VAE (model_state_dict without loss.*)', against, fix });
  if (discriminator.size) {
    checkStateShapes(discriminatorStateShapes(result.config.discriminator), discriminator, { file, what: 'the discriminator (loss.discriminator.*)', against: call('NLayerDiscriminator3D', discriminatorKwargs(result.config.discriminator)), fix });
  }
  return { config: result.config, call: { className: 'VAE3d', kwargs }, vae, discriminator, dropped, geometrySource };
}

const discriminatorKwargs = (d: PatchGan3dConfig): Kwargs => ({ input_nc: d.inChannels, ndf: d.ndf, n_layers: d.nLayers ?? 3 });

export interface FlowImport {
  config: DitConfig;
  call: ReferenceCall;
  dit: StateDict;
  /** The fine-tuned ECG encoder (encoder_state_dict), or null when the checkpoint has none. */
  encoder: StateDict | null;
}

/** The flow checkpoint: ECG_DiT(input_size, num_frames, in_channels, hidden_size, depth, num_heads, ecg_dim). */
export function importFlow(root: PyValue, file: string, options: { numHeads?: number } = {}): FlowImport {
  const sd = modelStateDict(root, file);
  if (!sd.has('x_embedder.weight') && !sd.has('pos_embed')) throw wrongFile(file, 'flow checkpoint (no DiT keys x_embedder.*, pos_embed in model_state_dict)', sd);
  const embed = need(sd, 'x_embedder.weight', 2, file, 'the DiT width and latent channels');
  const pos = need(sd, 'pos_embed', 4, file, 'the latent frames and size');
  const size = Math.round(Math.sqrt(pos[2]));
  if (size * size !== pos[2]) throw new WeightsError(`${file}: pos_embed [${pos.join(', ')}] has ${pos[2]} tokens per frame, not a square (ECG_DiT uses input_size × input_size)`);
  const ecgProj = sd.get('ecg_proj.weight');
  const kwargs: Kwargs = {
    input_size: size, num_frames: pos[1], in_channels: embed[1], hidden_size: embed[0],
    depth: countIndexed(sd, /^blocks\.(\d+)\./), num_heads: options.numHeads ?? 8, ecg_dim: ecgProj ? ecgProj.shape[1] : embed[0],
  };
  const result = translate(file, () => ditFromReference(kwargs));
  checkStateShapes(ditStateShapes(result.config), sd, {
    file, what: 'the DiT (model_state_dict)', against: call('ECG_DiT', kwargs),
    fix: 'Is this the flow checkpoint of the reference code (train_flow.py, checkpoint_flow_best.pth), complete and unmodified?',
  });
  const encoderValue = getEntry(root, 'encoder_state_dict');
  let encoder: StateDict | null = null;
  if (encoderValue !== undefined) {
    if (!isStateDict(encoderValue)) throw new WeightsError(`${file}: encoder_state_dict is not a dict of tensors`);
    encoder = extractStateDict(encoderValue);
    if ([...encoder.keys()].every((k) => k.startsWith('module.'))) encoder = stripPrefix(encoder, 'module.');
  }
  return { config: result.config, call: { className: 'ECG_DiT', kwargs }, dit: sd, encoder };
}
