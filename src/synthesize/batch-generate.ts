/**
 * Batched ECG → cine generation with a trained chain, for synthesis at scale.
 *
 * `FlowPipeline.generate` runs one recording at a time: one encoder pass, N DiT steps and one VAE decode
 * per clip, each with its own host round trip. Here B recordings share every pass: one encoder call,
 * N DiT calls on [B, …] (classifier-free guidance already puts the conditional and unconditional halves
 * into one [2B, …] call), one VAE decode, and one read-back for the whole batch.
 *
 * Determinism does not depend on B or on a clip's batch-mates: clip i starts from
 * ε_i ~ Generator(hashSeed(seed, index_i)) of shape [1, C, T, h, w], exactly the noise that
 * `FlowPipeline.generate(ecg, {seed, index})` draws, and every op is row-independent, so a clip synthesised
 * in a batch of 8 equals the one generated alone (up to float rounding of the batched kernels).
 */
import { hashSeed } from '../data/random';
import { fromArray } from '../engine/create';
import { tidy } from '../engine/scope';
import type { Tensor } from '../engine/tensor';
import { concat } from '../kernels/layout';
import { Generator, randn } from '../kernels/random';
import { decodeAndCheck, type FlowPipeline, type GeneratedClip } from '../train/pipeline';
import { SAMPLE_DEFAULTS, sampleLatents, type FlowSampleOptions } from '../train/sampler';
import { ecgModelInput } from '../train/stage-flow-data';
import { encodeEcgTokens } from '../train/stage-flow';

export interface BatchItem {
  /** 12 × 5000 at 500 Hz, as the data layer prepares it. */
  ecg: Float32Array;
  /** Noise index: clip noise is Generator(hashSeed(seed, index)). */
  index: number;
}

/** The per-clip noise seed that `generateBatch` and `FlowPipeline.generate` use for `index`. */
export function clipNoiseSeed(seed: number, index: number): number {
  return hashSeed(seed, index);
}

/** ε for each item, [B, C, T, h, w], each row drawn from its own generator. */
function batchNoise(pipeline: FlowPipeline, items: readonly BatchItem[], seed: number): Tensor {
  const c = pipeline.dit.config;
  const shape = [1, c.latentChannels, c.numFrames, c.latentSize[0], c.latentSize[1]];
  const backend = pipeline.template.backend;
  return tidy(() => {
    const rows = items.map((item) => randn(backend, shape, new Generator(clipNoiseSeed(seed, item.index))));
    return rows.length === 1 ? rows[0] : concat(rows, 0);
  });
}

/**
 * Generates one clip per item in a single batch. Throws a NonFiniteOutputError naming the item when a clip
 * holds NaN/Inf (a diverged checkpoint would otherwise decode to an all-black clip).
 */
export async function generateBatch(pipeline: FlowPipeline, items: readonly BatchItem[], options: FlowSampleOptions = {}): Promise<GeneratedClip[]> {
  if (items.length === 0) return [];
  const o = { ...SAMPLE_DEFAULTS, ...options };
  const length = pipeline.ecgLength;
  const input = new Float32Array(items.length * 12 * length);
  items.forEach((item, b) => input.set(ecgModelInput(item.ecg, length), b * 12 * length));
  const ecg = fromArray(pipeline.template.backend, input, [items.length, 12, length]);
  const tokens = await encodeEcgTokens(pipeline.encoder, ecg, pipeline.dit.config.numFrames, pipeline.config.cycle, { grad: false });
  ecg.dispose();
  const noise = batchNoise(pipeline, items, o.seed);
  const latents = sampleLatents(pipeline.dit, tokens, pipeline.template, { ...o, noise });
  noise.dispose();
  tokens.dispose();
  return decodeAndCheck(pipeline.vae, latents, (b) => ({ latent: `latent of input index ${items[b].index}`, clip: `clip of input index ${items[b].index}` }));
}
