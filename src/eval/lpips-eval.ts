/**
 * Per-frame LPIPS of clip pairs on the engine (GPU or the CPU reference backend). Weights come from a
 * user file (safetensors or a torch checkpoint, read by src/models/io); the backbone is detected from
 * the keys: VGG16 (src/models/lpips.ts, net.slice5.28.*) or AlexNet (./lpips-alex, net.slice5.10.*).
 * Frames in [0, 1] are mapped to [-1, 1] and fed as 1-channel images; the scaling layer broadcasts grey
 * to RGB, identical to replicating the frame to 3 channels as the reference does.
 */
import type { Engine } from '../engine/engine';
import { Generator } from '../kernels/random';
import type { HostTensor } from '../models/module';
import { LPIPS_CONFIGS, Lpips } from '../models/lpips';
import { AlexLpips, ALEX_LPIPS_CONFIGS } from './lpips-alex';

export type LpipsBackbone = 'vgg16' | 'alex';

export interface LpipsScorer {
  backbone: LpipsBackbone;
  /** Distances of `count` frame pairs (count, H, W) in [0, 1]. */
  score(pred: Float32Array, target: Float32Array, count: number, height: number, width: number): Promise<Float64Array>;
  dispose(): void;
}

/** Which network a lpips-layout state dict holds (null when it is neither). */
export function detectLpipsBackbone(weights: Map<string, HostTensor>): LpipsBackbone | null {
  if (weights.has('net.slice5.28.weight')) return 'vgg16';
  if (weights.has('net.slice5.10.weight')) return 'alex';
  return null;
}

/** Strips a common prefix such as the VAE checkpoint's `loss.perceptual_loss.` when the keys carry one. */
export function lpipsKeys(weights: Map<string, HostTensor>): Map<string, HostTensor> {
  for (const prefix of ['', 'loss.perceptual_loss.', 'perceptual_loss.', 'module.']) {
    const picked = new Map<string, HostTensor>();
    for (const [k, t] of weights) if (k.startsWith(prefix)) picked.set(k.slice(prefix.length), t);
    if (detectLpipsBackbone(picked)) {
      // Keep only the LPIPS keys: a whole VAE checkpoint holds much more.
      return new Map([...picked].filter(([k]) => /^(scaling_layer|net\.slice\d|lin\d)\./.test(k)));
    }
  }
  return weights;
}

export function createLpipsScorer(engine: Engine, weights: Map<string, HostTensor>, options: { batchFrames?: number } = {}): LpipsScorer {
  const keyed = lpipsKeys(weights);
  const backbone = detectLpipsBackbone(keyed);
  if (!backbone) throw new Error('LPIPS weights: neither VGG16 (net.slice5.28.weight) nor AlexNet (net.slice5.10.weight) keys found');
  const ctx = { backend: engine.backend, gen: new Generator(0) };
  const model = backbone === 'vgg16' ? new Lpips(ctx, LPIPS_CONFIGS.vgg16) : new AlexLpips(ctx, ALEX_LPIPS_CONFIGS.alex);
  model.loadWeights(keyed);
  model.train(false);
  const batch = Math.max(1, options.batchFrames ?? 25);
  return {
    backbone,
    async score(pred, target, count, height, width) {
      const plane = height * width;
      const out = new Float64Array(count);
      for (let start = 0; start < count; start += batch) {
        const n = Math.min(batch, count - start);
        const toSigned = (src: Float32Array) => {
          const v = new Float32Array(n * plane);
          for (let i = 0; i < v.length; i++) v[i] = 2 * src[start * plane + i] - 1;
          return v;
        };
        const a = engine.tensor(toSigned(pred), [n, 1, height, width]);
        const b = engine.tensor(toSigned(target), [n, 1, height, width]);
        const d = model.forward(a, b);
        const values = await d.dataF64();
        out.set(values, start);
        for (const t of [a, b, d]) t.dispose();
      }
      return out;
    },
    dispose() {
      model.dispose();
    },
  };
}
