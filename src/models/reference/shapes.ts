/**
 * The full state-dict layout (parameters and buffers, names and shapes) each configuration has in the
 * reference's checkpoints, computed without allocating a model, and the comparison that turns any
 * difference from a checkpoint into a WeightsError naming the keys and shapes.
 */
import { WeightsError } from '../io/errors';
import type { HostTensor } from '../io/tensor';
import { ditParameterShapes, type DitConfig } from '../dit-config';
import type { PatchGan3dConfig } from '../discriminator3d';
import { decoderParameterShapes, encoderParameterShapes, type EcgDecoderConfig, type EcgEncoderConfig } from '../pamae-config';
import type { Vae3dConfig } from '../vae3d';

export type ShapeList = [string, number[]][];

/** BatchNorm buffers follow each BN's weight and bias in the state dict. */
function withBatchNormBuffers(params: ShapeList, isBatchNorm: (module: string) => boolean): ShapeList {
  const out: ShapeList = [];
  for (const [name, shape] of params) {
    out.push([name, shape]);
    const module = name.slice(0, name.lastIndexOf('.'));
    if (name.endsWith('.bias') && isBatchNorm(module)) {
      out.push([`${module}.running_mean`, shape], [`${module}.running_var`, shape], [`${module}.num_batches_tracked`, []]);
    }
  }
  return out;
}

export function ecgEncoderStateShapes(e: EcgEncoderConfig): ShapeList {
  return withBatchNormBuffers(encoderParameterShapes(e), (m) => m === 'stem.1' || /\.(bn1|bn2|downsample\.1)$/.test(m));
}

export function ecgDecoderStateShapes(d: EcgDecoderConfig): ShapeList {
  return withBatchNormBuffers(decoderParameterShapes(d), (m) => /^up\d+\.2$/.test(m));
}

export function ditStateShapes(c: DitConfig): ShapeList {
  return ditParameterShapes(c);
}

export function discriminatorStateShapes(p: PatchGan3dConfig): ShapeList {
  const nLayers = p.nLayers ?? 3;
  const width = (n: number) => p.ndf * Math.min(2 ** n, 8);
  const out: ShapeList = [['main.0.weight', [p.ndf, p.inChannels, 4, 4, 4]], ['main.0.bias', [p.ndf]]];
  let index = 2; // main.1 is the LeakyReLU
  const bn = (c: number) => {
    out.push([`main.${index}.weight`, [c]], [`main.${index}.bias`, [c]], [`main.${index}.running_mean`, [c]], [`main.${index}.running_var`, [c]], [`main.${index}.num_batches_tracked`, []]);
    index += 2; // BN, then the parameter-free LeakyReLU
  };
  for (let n = 1; n < nLayers; n++) {
    out.push([`main.${index++}.weight`, [width(n), width(n - 1), ...(n === nLayers - 1 ? [3, 4, 4] : [4, 4, 4])]]);
    bn(width(n));
  }
  out.push([`main.${index++}.weight`, [width(nLayers), width(nLayers - 1), 1, 4, 4]]);
  bn(width(nLayers));
  out.push([`main.${index}.weight`, [1, width(nLayers), 1, 4, 4]], [`main.${index}.bias`, [1]]);
  return out;
}

function conv3(prefix: string, cin: number, cout: number, k: readonly number[]): ShapeList {
  return [[`${prefix}.weight`, [cout, cin, ...k]], [`${prefix}.bias`, [cout]]];
}
const K3 = [3, 3, 3];
const K1 = [1, 1, 1];

/** The VAE (encoder_3d, decoder, quant_conv, post_quant_conv), without the training wrapper's loss.* keys. */
export function vaeStateShapes(c: Vae3dConfig): ShapeList {
  const norm = (p: string, ch: number): ShapeList => [[`${p}.weight`, [ch]], [`${p}.bias`, [ch]]];
  const resnet = (p: string, cin: number, cout: number): ShapeList => [
    ...norm(`${p}.norm1`, cin), ...conv3(`${p}.conv1`, cin, cout, K3),
    [`${p}.temb_proj.weight`, [cout, c.tembChannels]], [`${p}.temb_proj.bias`, [cout]],
    ...norm(`${p}.norm2`, cout), ...conv3(`${p}.conv2`, cout, cout, K3),
    ...(cin !== cout ? conv3(`${p}.nin_shortcut`, cin, cout, K1) : []),
  ];
  const attn = (p: string, ch: number): ShapeList => [
    ...norm(`${p}.norm`, ch), ...conv3(`${p}.q`, ch, ch, K1), ...conv3(`${p}.k`, ch, ch, K1), ...conv3(`${p}.v`, ch, ch, K1), ...conv3(`${p}.proj_out`, ch, ch, K1),
  ];
  const mid = (p: string, ch: number): ShapeList => [...resnet(`${p}.block_1`, ch, ch), ...attn(`${p}.attn_1`, ch), ...resnet(`${p}.block_2`, ch, ch)];
  const levels = c.chMult.length;
  const out: ShapeList = [...conv3('encoder_3d.conv_in', c.inChannels, c.ch, K3)];
  let ch = c.ch;
  for (let i = 0; i < levels; i++) {
    const blocks: ShapeList = [];
    const attns: ShapeList = [];
    for (let j = 0; j < c.encoderResBlocks; j++) {
      blocks.push(...resnet(`encoder_3d.down.${i}.block.${j}`, ch, c.ch * c.chMult[i]));
      ch = c.ch * c.chMult[i];
      if (c.attentionLevels.includes(i)) attns.push(...attn(`encoder_3d.down.${i}.attn.${j}`, ch));
    }
    out.push(...blocks, ...attns);
    if (i !== levels - 1) out.push(...conv3(`encoder_3d.down.${i}.downsample.conv`, ch, ch, [1, 3, 3]));
  }
  out.push(...mid('encoder_3d.mid', ch), ...norm('encoder_3d.norm_out', ch), ...conv3('encoder_3d.conv_out', ch, 2 * c.zChannels, K3));

  ch = c.ch * c.chMult[levels - 1];
  out.push(...conv3('decoder.conv_in', c.zChannels, ch, K3), ...mid('decoder.mid', ch));
  const ups: ShapeList[] = [];
  for (let i = levels - 1; i >= 0; i--) {
    const level: ShapeList = [];
    const attns: ShapeList = [];
    for (let j = 0; j < c.decoderResBlocks; j++) {
      level.push(...resnet(`decoder.up.${i}.block.${j}`, ch, c.ch * c.chMult[i]));
      ch = c.ch * c.chMult[i];
      if (c.attentionLevels.includes(i)) attns.push(...attn(`decoder.up.${i}.attn.${j}`, ch));
    }
    level.push(...attns);
    if (i !== 0) level.push(...conv3(`decoder.up.${i}.upsample.conv`, ch, ch, K3));
    ups[i] = level;
  }
  for (const level of ups) out.push(...level);
  out.push(...norm('decoder.norm_out', ch), ...conv3('decoder.conv_out', ch, c.outChannels, K3));
  out.push(...conv3('quant_conv', 2 * c.zChannels, 2 * c.embedDim, K1), ...conv3('post_quant_conv', c.embedDim, c.zChannels, K1));
  return out;
}

const formatShape = (s: readonly number[]) => `[${s.join(', ')}]`;

function listSome(items: string[], limit = 8): string {
  return items.slice(0, limit).join(', ') + (items.length > limit ? `, … (${items.length - limit} more)` : '');
}

export interface ShapeCheckContext {
  /** The checkpoint file, for the message. */
  file: string;
  /** What the tensors should be, e.g. 'the DiT (model_state_dict)'. */
  what: string;
  /** The configuration they were compared with, e.g. 'ECG_DiT(hidden_size=24, ...)'. */
  against: string;
  /** How to fix it, appended to the message. */
  fix: string;
}

/**
 * Throws a WeightsError listing missing keys, unexpected keys and shape differences (file shape vs
 * expected shape) between `actual` and the layout `expected`; returns quietly when they agree.
 */
export function checkStateShapes(expected: ShapeList, actual: Map<string, HostTensor>, ctx: ShapeCheckContext): void {
  const want = new Map(expected);
  const missing = expected.map(([k]) => k).filter((k) => !actual.has(k));
  const unexpected = [...actual.keys()].filter((k) => !want.has(k));
  const wrong: string[] = [];
  for (const [k, t] of actual) {
    const shape = want.get(k);
    if (shape && (shape.length !== t.shape.length || shape.some((d, i) => d !== t.shape[i]))) wrong.push(`${k}: ${formatShape(t.shape)} in the file, ${formatShape(shape)} expected`);
  }
  if (!missing.length && !unexpected.length && !wrong.length) return;
  const parts: string[] = [];
  if (missing.length) parts.push(`${missing.length} missing key(s): ${listSome(missing)}`);
  if (unexpected.length) parts.push(`${unexpected.length} unexpected key(s): ${listSome(unexpected)}`);
  if (wrong.length) parts.push(`${wrong.length} shape mismatch(es): ${listSome(wrong, 6)}`);
  throw new WeightsError(`${ctx.file}: ${ctx.what} does not match ${ctx.against}: ${parts.join('; ')}. ${ctx.fix}`);
}
