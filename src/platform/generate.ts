/**
 * ECG → cine with a loaded FlowPipeline, one integration step at a time so a page can show progress.
 * `FlowPipeline.generate` records the whole sampler before anything runs; here the device is drained
 * after each step (engine.sync) and a callback fires. The arithmetic is the pipeline's, op for op
 * (encoder forward, cycle selection, ROI align, x₀ = template + α·ε from Generator(hashSeed(seed, index)),
 * the sampler's update rule, VAE decode to [0, 1]), so on one device the clip is bitwise the pipeline's:
 * tests/browser checks that in Node and compares the page's clip with it.
 */
import { hashSeed } from '../data/random';
import type { CycleWindow } from '../data/ecg-phase';
import { noGrad } from '../engine/autograd';
import type { Engine } from '../engine/engine';
import { tidy } from '../engine/scope';
import type { Tensor } from '../engine/tensor';
import { add, full, mulScalar } from '../kernels/elementwise';
import { Generator, randn } from '../kernels/random';
import { alignTokens, cycleWindowsFromHost } from '../models/pamae';
import { assertFiniteOutput, type FlowPipeline, type GeneratedClip } from '../train/pipeline';
import { decodeToUnitRange, ditField, evaluationTimes, SAMPLE_DEFAULTS, type FlowSampleOptions } from '../train/sampler';
import { ecgModelInput } from '../train/stage-flow-data';

export type GenerationPhase = 'encode' | 'sample' | 'decode' | 'done';

export interface GenerationProgress {
  phase: GenerationPhase;
  /** Integration steps completed (sample phase), of `steps`. */
  step: number;
  steps: number;
  /** Seconds since the call began. */
  seconds: number;
}

export interface SteppedClip extends GeneratedClip {
  /** The cardiac cycle the encoder chose, in encoder feature steps [start, end) of `featureSteps`. */
  window: CycleWindow;
  featureSteps: number;
  /** The same window in samples of the 12 × 5000 recording. */
  windowSamples: [number, number];
  seconds: { encode: number; sample: number; decode: number };
}

/** Browsers may not hand back control while the queue works; a macrotask lets the page repaint. */
const yieldToPage = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

export async function generateStepwise(
  engine: Engine,
  pipeline: FlowPipeline,
  raw: Float32Array,
  options: FlowSampleOptions & { index?: number } = {},
  onProgress: (p: GenerationProgress) => void = () => undefined,
): Promise<SteppedClip> {
  const o = { ...SAMPLE_DEFAULTS, ...options };
  const started = performance.now();
  const now = () => (performance.now() - started) / 1000;
  const dit = pipeline.dit;
  const c = dit.config;
  onProgress({ phase: 'encode', step: 0, steps: o.steps, seconds: 0 });

  const length = pipeline.ecgLength;
  const ecg = engine.tensor(ecgModelInput(raw, length), [1, 12, length]);
  const { features, phase } = noGrad(() => pipeline.encoder.forwardRaw(ecg));
  ecg.dispose();
  let tokens: Tensor;
  let window: CycleWindow;
  const featureSteps = phase.shape[2];
  try {
    const windows = cycleWindowsFromHost(await phase.data(), phase.shape, pipeline.config.cycle);
    window = windows[0];
    tokens = noGrad(() => alignTokens(features, windows, c.numFrames));
  } finally {
    features.dispose();
    phase.dispose();
  }
  const encodeSeconds = now();

  const times = evaluationTimes(o.method, o.steps, o.timeGrid);
  const dt = 1 / o.steps;
  const field = ditField(dit, tokens, o.guidance);
  const shape = [1, c.latentChannels, c.numFrames, c.latentSize[0], c.latentSize[1]];
  const gen = new Generator(hashSeed(o.seed, options.index ?? 0));
  let x = noGrad(() => tidy(() => add(pipeline.template, mulScalar(randn(engine.backend, shape, gen), o.alpha))));
  const at = (t: number) => full(engine.backend, [1], t);
  onProgress({ phase: 'sample', step: 0, steps: o.steps, seconds: now() });
  for (let k = 0; k < o.steps; k++) {
    // The update rules of integrateFlow (src/train/sampler.ts), in the same op order.
    const next = noGrad(() =>
      tidy(() => {
        if (o.method === 'euler') return add(x, mulScalar(field(x, at(times[k])), dt));
        const v1 = field(x, at(times[2 * k]));
        const predicted = add(x, mulScalar(v1, dt));
        const v2 = field(predicted, at(times[2 * k + 1]));
        return add(x, mulScalar(add(v1, v2), dt / 2));
      }),
    );
    x.dispose();
    x = next;
    await engine.sync();
    onProgress({ phase: 'sample', step: k + 1, steps: o.steps, seconds: now() });
    await yieldToPage();
  }
  tokens.dispose();
  const sampleSeconds = now() - encodeSeconds;

  onProgress({ phase: 'decode', step: o.steps, steps: o.steps, seconds: now() });
  const clip = decodeToUnitRange(pipeline.vae, x);
  const [, , frames, height, width] = clip.shape;
  const [clipHost, latentHost] = await Promise.all([clip.data(), x.data()]);
  clip.dispose();
  x.dispose();
  assertFiniteOutput('sampled latent', latentHost);
  assertFiniteOutput('decoded clip', clipHost, [0, 1]);
  const total = now();
  onProgress({ phase: 'done', step: o.steps, steps: o.steps, seconds: total });
  const perStep = 5000 / featureSteps;
  return {
    clip: Float32Array.from(clipHost), latent: Float32Array.from(latentHost), frames, height, width,
    window, featureSteps, windowSamples: [Math.round(window.start * perStep), Math.round(window.end * perStep)],
    seconds: { encode: encodeSeconds, sample: sampleSeconds, decode: total - encodeSeconds - sampleSeconds },
  };
}
