/**
 * ECG → cine with a loaded FlowPipeline, one integration step at a time so a page can show progress.
 * `FlowPipeline.generate` records the whole sampler before anything runs; here the device is drained
 * after each step (engine.sync) and a callback fires. The pieces are the pipeline's own (encodeEcgTokens'
 * encoder + cycle window + ROI align, sampleLatents' x₀ and integrator as a FlowIntegration stepped one
 * step at a time, decodeAndCheck), so on one device the clip is bitwise the pipeline's: tests/browser
 * checks that in Node and compares the page's clip with it.
 */
import { hashSeed } from '../data/random';
import type { CycleWindow } from '../data/ecg-phase';
import type { Engine } from '../engine/engine';
import { decodeAndCheck, SINGLE_CLIP_NAMES, type FlowPipeline, type GeneratedClip } from '../train/pipeline';
import { SAMPLE_DEFAULTS, startLatentSampling, type FlowSampleOptions } from '../train/sampler';
import { ecgModelInput } from '../train/stage-flow-data';
import { encodeEcgTokensWithWindows } from '../train/stage-flow';

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
  onProgress({ phase: 'encode', step: 0, steps: o.steps, seconds: 0 });

  const length = pipeline.ecgLength;
  const ecg = engine.tensor(ecgModelInput(raw, length), [1, 12, length]);
  const { tokens, windows, featureSteps } = await encodeEcgTokensWithWindows(pipeline.encoder, ecg, pipeline.dit.config.numFrames, pipeline.config.cycle, { grad: false })
    .finally(() => ecg.dispose());
  const window = windows[0];
  const encodeSeconds = now();

  const integration = startLatentSampling(pipeline.dit, tokens, pipeline.template, { ...o, seed: hashSeed(o.seed, options.index ?? 0) });
  try {
    onProgress({ phase: 'sample', step: 0, steps: o.steps, seconds: now() });
    for (let k = 0; k < o.steps; k++) {
      integration.advance();
      await engine.sync();
      onProgress({ phase: 'sample', step: k + 1, steps: o.steps, seconds: now() });
      await yieldToPage();
    }
  } catch (e) {
    integration.dispose();
    throw e;
  } finally {
    tokens.dispose();
  }
  const sampleSeconds = now() - encodeSeconds;

  onProgress({ phase: 'decode', step: o.steps, steps: o.steps, seconds: now() });
  const [clip] = await decodeAndCheck(pipeline.vae, integration.take(), () => SINGLE_CLIP_NAMES);
  const total = now();
  onProgress({ phase: 'done', step: o.steps, steps: o.steps, seconds: total });
  const perStep = 5000 / featureSteps;
  return {
    ...clip,
    window, featureSteps, windowSamples: [Math.round(window.start * perStep), Math.round(window.end * perStep)],
    seconds: { encode: encodeSeconds, sample: sampleSeconds, decode: total - encodeSeconds - sampleSeconds },
  };
}
