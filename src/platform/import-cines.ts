/**
 * The anatomy template from cines, for `npm run import -- --cines FILE...` when neither the reference's
 * anatomy_template.pt nor its all_latents.pt is at hand: what the reference computes after VAE training
 * (REFERENCE_SPEC §4.7) — the posterior modes of the clips, averaged over subjects and frames — with the
 * imported VAE. Each clip goes through the VAE run's input preprocessing (prepareCine, then resizeCine to
 * the VAE's frames × size × size), as in training. Browser-safe: any DataFileSystem, any engine.
 */
import type { DataFileSystem } from '../data/fs';
import { prepareCine } from '../data/preprocess/cmr';
import { readCmrFile } from '../data/readers/index';
import { noGrad } from '../engine/autograd';
import type { Engine } from '../engine/engine';
import { Generator } from '../kernels/random';
import { WeightsError } from '../models/io/errors';
import { HostTensor } from '../models/io/tensor';
import { VAE3d, type Vae3dConfig } from '../models/vae3d';
import { resizeCine } from '../train/cine-data';

export async function templateFromCines(
  engine: Engine,
  fs: DataFileSystem,
  paths: readonly string[],
  vae: { config: Vae3dConfig; weights: Map<string, HostTensor> },
  onWarning: (message: string) => void = () => undefined,
): Promise<HostTensor> {
  if (!paths.length) throw new WeightsError('no cine files to compute the template from');
  const model = new VAE3d({ backend: engine.backend, gen: new Generator(0) }, vae.config);
  try {
    model.loadCheckpoint(vae.weights);
    model.eval();
    const geometry = { frames: vae.config.tempRes, size: vae.config.resolution };
    let sum: Float64Array | null = null;
    let shape: readonly number[] = [];
    for (const path of paths) {
      const volume = await readCmrFile(fs, path);
      const prepared = prepareCine(volume, { source: path });
      for (const w of [...volume.warnings, ...prepared.warnings]) onWarning(w);
      const x = engine.tensor(resizeCine(prepared.data, geometry), [1, 1, geometry.frames, geometry.size, geometry.size]);
      const mode = noGrad(() => {
        const posterior = model.encode(x);
        const mu = posterior.mode();
        posterior.dispose();
        return mu;
      });
      x.dispose();
      shape = mode.shape;
      const host = await mode.data();
      mode.dispose();
      const [, c, t, h, w] = shape;
      sum ??= new Float64Array(c * h * w);
      for (let ch = 0; ch < c; ch++) for (let f = 0; f < t; f++) for (let i = 0; i < h * w; i++) sum[ch * h * w + i] += host[(ch * t + f) * h * w + i];
    }
    const [, c, t, h, w] = shape;
    return new HostTensor('f32', [1, c, 1, h, w], Float32Array.from(sum!, (v) => v / (paths.length * t)));
  } finally {
    model.dispose();
  }
}
