/**
 * The anatomy template (REFERENCE_SPEC §4.7) from the reference's files: `anatomy_template.pt` (a bare
 * (1, C, 1, h, w) tensor), or computed as the mean over subjects and frames of `all_latents.pt`
 * (N, C, T, h, w); safetensors and .npy files holding the same arrays work too.
 */
import { readNpy, toFloat32 } from '../../data/npy';
import { WeightsError } from '../io/errors';
import { isTuple, type PyValue } from '../io/pickle';
import { readPth } from '../io/pth';
import { readSafetensors } from '../io/safetensors';
import { HostTensor } from '../io/tensor';

const TENSOR_KEYS = ['template', 'anatomy_template', 'latents', 'all_latents'];

function single(entries: [string, HostTensor][], file: string): HostTensor {
  for (const key of TENSOR_KEYS) {
    const hit = entries.find(([k]) => k === key);
    if (hit) return hit[1];
  }
  if (entries.length === 1) return entries[0][1];
  throw new WeightsError(`${file}: holds ${entries.length} tensors (${entries.map(([k]) => k).slice(0, 6).join(', ')}); expected one, or one named ${TENSOR_KEYS.join('/')}`);
}

/** One tensor from a .pt/.pth (bare tensor or a dict of tensors), .safetensors or .npy file, as float32. */
export function readSingleTensor(bytes: Uint8Array, file: string): HostTensor {
  let t: HostTensor;
  if (/\.safetensors$/i.test(file)) t = single([...readSafetensors(bytes, { name: file }).tensors], file);
  else if (/\.npy$/i.test(file)) {
    let array;
    try {
      array = readNpy(bytes, file);
    } catch (e) {
      const message = (e as Error).message;
      throw new WeightsError(message.startsWith(`${file}: `) ? message : `${file}: ${message}`);
    }
    t = new HostTensor('f32', array.shape, toFloat32(array.data));
  } else {
    const root: PyValue = readPth(bytes, { name: file }).root;
    if (root instanceof HostTensor) t = root;
    else if (root instanceof Map) t = single([...root].filter((e): e is [string, HostTensor] => typeof e[0] === 'string' && e[1] instanceof HostTensor), file);
    else throw new WeightsError(`${file}: holds a ${Array.isArray(root) ? (isTuple(root) ? 'tuple' : 'list') : typeof root}, not a tensor`);
  }
  return t.dtype === 'f32' ? t : new HostTensor('f32', t.shape, t.toFloat32());
}

export interface LatentGeometry {
  channels: number;
  size: [number, number];
}

const fmt = (s: readonly number[]) => `(${s.join(', ')})`;

/**
 * A template as (1, C, 1, h, w). The reference also accepts (C, 1, h, w) and (C, h, w) (train_flow.py
 * unsqueezes a 3-D one); C, h, w must match the VAE latent and the DiT.
 */
export function templateFromTensor(t: HostTensor, file: string, expect: LatentGeometry): HostTensor {
  const [c, h, w] = [expect.channels, ...expect.size];
  let shape: number[] | null = null;
  if (t.shape.length === 5 && t.shape[0] === 1 && t.shape[2] === 1) shape = t.shape;
  else if (t.shape.length === 4 && t.shape[1] === 1) shape = [1, ...t.shape];
  else if (t.shape.length === 3) shape = [1, t.shape[0], 1, t.shape[1], t.shape[2]];
  if (!shape) throw new WeightsError(`${file}: template shape ${fmt(t.shape)} is not (1, C, 1, h, w) (or (C, 1, h, w), (C, h, w))`);
  if (shape[1] !== c || shape[3] !== h || shape[4] !== w) {
    throw new WeightsError(`${file}: template ${fmt(t.shape)} does not fit the models: the VAE latent and the DiT need (1, ${c}, 1, ${h}, ${w}). Is it the anatomy_template.pt of this VAE?`);
  }
  return finite(new HostTensor('f32', shape, Float32Array.from(t.data as Float32Array)), file);
}

/** A NaN or infinite template would turn every generated clip into NaNs. */
function finite(t: HostTensor, file: string): HostTensor {
  const data = t.data as Float32Array;
  const bad = data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new WeightsError(`${file}: the template holds a non-finite value (${data[bad]} at element ${bad})`);
  return t;
}

/** The reference's template: mean of the latents over subjects (dim 0) and frames (dim 2), keepdim. */
export function templateFromLatents(t: HostTensor, file: string, expect: LatentGeometry): HostTensor {
  if (t.shape.length !== 5) throw new WeightsError(`${file}: latents ${fmt(t.shape)} are not (N, C, T, h, w)`);
  const [n, c, frames, h, w] = t.shape;
  if (n === 0 || frames === 0) throw new WeightsError(`${file}: latents ${fmt(t.shape)} are empty`);
  if (c !== expect.channels || h !== expect.size[0] || w !== expect.size[1]) {
    throw new WeightsError(`${file}: latents ${fmt(t.shape)} do not fit the models: the VAE latent and the DiT need (N, ${expect.channels}, T, ${expect.size[0]}, ${expect.size[1]})`);
  }
  const data = t.data as Float32Array;
  const sums = new Float64Array(c * h * w);
  for (let s = 0; s < n; s++) {
    for (let ch = 0; ch < c; ch++) {
      for (let f = 0; f < frames; f++) {
        const base = ((s * c + ch) * frames + f) * h * w;
        for (let i = 0; i < h * w; i++) sums[ch * h * w + i] += data[base + i];
      }
    }
  }
  const count = n * frames;
  return finite(new HostTensor('f32', [1, c, 1, h, w], Float32Array.from(sums, (v) => v / count)), file);
}
