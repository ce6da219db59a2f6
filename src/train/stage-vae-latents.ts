/**
 * The latent dump after stage 2 (REFERENCE_SPEC §4.7): the VAE's best weights encode the TRAINING set in
 * fixed order (row 0, 1, …; no shuffling), the posterior mode μ of every clip is kept, and
 *   <run>/latents.safetensors   `latents`  (N, embedDim, T, h, w) f32
 *   <run>/template.safetensors  `template` (1, embedDim, 1, h, w) f32 = mean over subjects AND frames
 * are written (atomically). Both files carry `__metadata__`: `ids` and `rows` (JSON arrays, latent row i =
 * training subject ids[i]), `source` (phantom seed/offset or dataset dir/split), `weights` (which file
 * encoded them), `step`, `config` (the VAE config, JSON). The template is computed in float64 from the
 * same f32 latents, so it is their exact mean up to the final f32 rounding. The flow stage reads both.
 */
import { joinPath } from '../data/fs';
import { noGrad } from '../engine/autograd';
import type { Engine } from '../engine/engine';
import { tidy } from '../engine/scope';
import { Generator } from '../kernels/random';
import { writeSafetensors } from '../models/io/safetensors';
import { HostTensor } from '../models/io/tensor';
import { VAE3d } from '../models/vae3d';
import { loadCheckpoint, readWeights, withoutPrefix } from './checkpoint';
import { CineBatches } from './cine-data';
import { writeFileAtomic, type TrainFileSystem } from './files';
import type { StageContext } from './stage';
import type { VaeStageConfig } from './stage-vae';

export const LATENTS_FILE = 'latents.safetensors';
export const TEMPLATE_FILE = 'template.safetensors';

/** Encodes every clip of `batches` (fixed order) to its posterior mode; returns (N, E, T, h, w) host values. */
export async function encodeLatents(engine: Engine, vae: VAE3d, batches: CineBatches): Promise<{ latents: Float32Array; shape: number[]; rows: number[]; ids: string[] }> {
  const n = batches.subjects.length;
  const { batchSize } = batches.options;
  const wasTraining = vae.training;
  vae.eval();
  let latents: Float32Array | null = null;
  let shape: number[] = [];
  const rows: number[] = [];
  const ids: string[] = [];
  try {
    for (let start = 0; start < n; start += batchSize) {
      const batch = await batches.loadRows(Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => start + i));
      const mu = noGrad(() =>
        tidy(() => {
          const x = engine.tensor(batch.cine, [batch.size, 1, batch.frames, batch.height, batch.width]);
          const posterior = vae.encode(x);
          return posterior.mode();
        }),
      );
      const values = (await mu.data()) as Float32Array;
      if (!latents) {
        shape = [n, ...mu.shape.slice(1)];
        latents = new Float32Array(n * (values.length / batch.size));
      }
      latents.set(values, start * (values.length / batch.size));
      mu.dispose();
      rows.push(...batch.rows);
      ids.push(...batch.ids);
    }
  } finally {
    vae.train(wasTraining);
  }
  if (!latents) throw new Error('latent extraction: the training set is empty');
  return { latents, shape, rows, ids };
}

/** Mean over subjects and frames: (N, E, T, h, w) → (1, E, 1, h, w), accumulated in float64. */
export function anatomyTemplate(latents: Float32Array, shape: readonly number[]): Float32Array {
  const [n, channels, frames, h, w] = shape;
  const plane = h * w;
  const acc = new Float64Array(channels * plane);
  for (let s = 0; s < n; s++)
    for (let c = 0; c < channels; c++)
      for (let t = 0; t < frames; t++) {
        const base = ((s * channels + c) * frames + t) * plane;
        for (let k = 0; k < plane; k++) acc[c * plane + k] += latents[base + k];
      }
  return Float32Array.from(acc, (v) => v / (n * frames));
}

/** The best weights of a VAE run: best-weights.safetensors, else the `last` checkpoint's model.* tensors. */
async function runWeights(fs: TrainFileSystem, runDir: string): Promise<{ tensors: Map<string, HostTensor>; source: string; step: string }> {
  const best = joinPath(runDir, 'best-weights.safetensors');
  if (await fs.exists(best)) {
    const file = await readWeights(fs, best);
    return { tensors: file.tensors, source: 'best-weights.safetensors', step: file.metadata.step ?? '' };
  }
  const { meta, tensors } = await loadCheckpoint(fs, runDir, 'last');
  return { tensors: withoutPrefix(tensors, 'model.'), source: 'checkpoints/last.safetensors', step: String(meta.step) };
}

/**
 * For a finished (or stopped) VAE run directory: encodes the training set with the run's best weights and
 * writes latents.safetensors and template.safetensors there. Returns the written paths.
 */
export async function writeVaeLatents(context: StageContext & { runDir: string }): Promise<Record<string, string>> {
  const { engine, fs, runDir } = context;
  const config = JSON.parse(new TextDecoder().decode(await fs.readFile(joinPath(runDir, 'config.json')))) as VaeStageConfig;
  if (config.stage !== 'vae') throw new Error(`${runDir} holds a '${config.stage}' run, not 'vae'`);
  // Imported lazily: stage-vae imports this module for its factory.
  const { cachePhantom, vaeSeeds, vaeSubjects } = await import('./stage-vae');
  const weights = await runWeights(fs, runDir);
  // Init values are overwritten by the loaded weights; the generator only has to exist.
  const vae = new VAE3d({ backend: engine.backend, gen: new Generator(vaeSeeds(config.seed).init) }, config.model);
  try {
    vae.loadCheckpoint(weights.tensors);
    const { train } = await vaeSubjects(config, fs);
    const batches = new CineBatches(train, { ...config.input, batchSize: config.valBatchSize, shuffle: false, seed: 0, cache: cachePhantom(config) });
    const { latents, shape, rows, ids } = await encodeLatents(engine, vae, batches);
    const template = anatomyTemplate(latents, shape);
    const metadata = {
      ids: JSON.stringify(ids),
      rows: JSON.stringify(rows),
      source: JSON.stringify(train.describe()),
      weights: weights.source,
      step: weights.step,
      config: JSON.stringify(config.model),
    };
    const latentsPath = joinPath(runDir, LATENTS_FILE);
    const templatePath = joinPath(runDir, TEMPLATE_FILE);
    await writeFileAtomic(fs, latentsPath, writeSafetensors(new Map([['latents', new HostTensor('f32', shape, latents)]]), metadata));
    const templateShape = [1, shape[1], 1, shape[3], shape[4]];
    await writeFileAtomic(fs, templatePath, writeSafetensors(new Map([['template', new HostTensor('f32', templateShape, template)]]), metadata));
    return { latents: latentsPath, template: templatePath };
  } finally {
    vae.dispose();
  }
}
