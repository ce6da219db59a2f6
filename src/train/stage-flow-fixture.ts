/**
 * A tiny, untrained stage-1/stage-2 chain on disk, in the layout the trained runs have, so stage `flow`
 * and `npm run generate` can be exercised in seconds (tests, smoke runs) without training the PA-MAE and
 * the VAE first:
 *   <ecgRun>/config.json, best-weights.safetensors          (PA-MAE tiny, `encoder.*` / `decoder.*`)
 *   <vaeRun>/config.json, best-weights.safetensors,
 *            latents.safetensors, template.safetensors        (VAE tiny: clips 4 × 16 × 16 → latents 4 × 4 × 8 × 8)
 * Weights are the seeded initialisation; latents are the VAE's posterior modes of phantom cines, with
 * their phantom ids in the metadata, as stage `vae` writes them.
 */
import { joinPath } from '../data/fs';
import { phantomId } from '../data/phantom/subject';
import type { Engine } from '../engine/engine';
import { noGrad } from '../engine/autograd';
import { Generator } from '../kernels/random';
import { writeSafetensors } from '../models/io/safetensors';
import { HostTensor } from '../models/io/tensor';
import type { Module } from '../models/module';
import { PAMAE_CONFIGS, PaMae } from '../models/pamae';
import { VAE_CONFIGS, VAE3d } from '../models/vae3d';
import { resizeCine, type CineGeometry } from './cine-data';
import { writeFileAtomic, type TrainFileSystem } from './files';
import { SubjectReader } from './stage-flow-data';

export interface TinyChainOptions {
  /** Phantom seed of the subjects and of the weight initialisation. */
  seed?: number;
  /** Training subjects (latents written); validation subjects follow them. */
  trainSubjects?: number;
}

async function weightsOf(model: Module): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  for (const [name, t] of model.stateDict()) out.set(name, new HostTensor('f32', [...t.shape], Float32Array.from(await t.data())));
  return out;
}

const json = (value: unknown) => JSON.stringify(value, null, 1) + '\n';

/** Writes the two run directories under `dir` and returns their paths. */
export async function writeTinyChain(engine: Engine, fs: TrainFileSystem, dir: string, options: TinyChainOptions = {}): Promise<{ ecgRun: string; vaeRun: string }> {
  const seed = options.seed ?? 5;
  const count = options.trainSubjects ?? 8;
  const ecgRun = joinPath(dir, 'ecg-run');
  const vaeRun = joinPath(dir, 'vae-run');
  for (const d of [dir, ecgRun, vaeRun]) await fs.mkdir(d);
  const ctx = { backend: engine.backend, gen: new Generator(seed) };

  const paMae = new PaMae(ctx, PAMAE_CONFIGS.tiny);
  await writeFileAtomic(fs, joinPath(ecgRun, 'config.json'), json({ stage: 'ecg', preset: 'tiny', seed, data: null, model: PAMAE_CONFIGS.tiny }));
  await writeFileAtomic(fs, joinPath(ecgRun, 'best-weights.safetensors'), writeSafetensors(await weightsOf(paMae), { stage: 'ecg' }));
  paMae.dispose();

  const model = VAE_CONFIGS.tiny;
  const input: CineGeometry = { frames: model.tempRes, size: model.resolution };
  const vae = new VAE3d(ctx, model);
  vae.eval();
  await writeFileAtomic(fs, joinPath(vaeRun, 'config.json'), json({ stage: 'vae', preset: 'tiny', seed, data: null, model, input }));
  await writeFileAtomic(fs, joinPath(vaeRun, 'best-weights.safetensors'), writeSafetensors(await weightsOf(vae), { stage: 'vae' }));
  const reader = new SubjectReader(fs);
  const ids = Array.from({ length: count }, (_, i) => phantomId(seed, i));
  const clips = await Promise.all(ids.map((_, i) => reader.cine({ kind: 'phantom', seed, index: i })));
  const batch = new Float32Array(count * input.frames * input.size * input.size);
  clips.forEach((clip, i) => batch.set(resizeCine(clip, input), i * input.frames * input.size * input.size));
  const mu = noGrad(() => {
    const x = engine.tensor(batch, [count, 1, input.frames, input.size, input.size]);
    const posterior = vae.encode(x);
    const mode = posterior.mode();
    posterior.dispose();
    x.dispose();
    return mode;
  });
  const latents = Float32Array.from(await mu.data());
  const shape = [...mu.shape];
  mu.dispose();
  vae.dispose();
  // Template: mean over subjects and frames, (1, C, 1, h, w).
  const [, c, frames, h, w] = shape;
  const template = new Float32Array(c * h * w);
  for (let n = 0; n < count; n++) for (let ch = 0; ch < c; ch++) for (let f = 0; f < frames; f++) for (let p = 0; p < h * w; p++) {
    template[ch * h * w + p] += latents[(((n * c + ch) * frames + f) * h * w) + p] / (count * frames);
  }
  const metadata = { ids: JSON.stringify(ids), rows: JSON.stringify(ids.map((_, i) => i)) };
  await writeFileAtomic(fs, joinPath(vaeRun, 'latents.safetensors'), writeSafetensors(new Map([['latents', new HostTensor('f32', shape, latents)]]), metadata));
  await writeFileAtomic(fs, joinPath(vaeRun, 'template.safetensors'), writeSafetensors(new Map([['template', new HostTensor('f32', [1, c, 1, h, w], template)]]), metadata));
  return { ecgRun, vaeRun };
}
