/**
 * The FID and FVD feature extractors of the reference evaluation (REFERENCE_SPEC §7.1), as
 * `FeatureExtractor`s for the report. Weights come from user files (never downloaded):
 *   FID: torchvision Inception-v3, IMAGENET1K_V1 state dict (src/models/inception-v3.ts). Every frame in
 *        [0, 1] is replicated to 3 channels, resized bilinearly to 299×299 (align_corners=False; an
 *        upscale from 96, so antialiasing plays no part), normalised with the ImageNet mean/std, then the
 *        model's transform_input maps it on (see the model file) → 2048-d pooled features per frame.
 *   FVD: the I3D of VideoGPT's FVD code, `i3d_pretrained_400.pt` (src/models/i3d.ts). Each whole clip is
 *        resized per frame to 224×224 (bilinear, align_corners=False), mapped to [−1, 1] (2x − 1) and
 *        replicated to 3 channels → the 1024-d output of the final 2×7×7 average pool, averaged over its
 *        remaining time positions, per clip. Clips need at least 9 frames for that pool.
 * Both run without gradients in batches sized so that no single activation exceeds the device's storage
 * binding limit (128 MiB on lavapipe), each batch inside a scope so nothing is left allocated.
 * `inputSize` other than 299 / 224 is for smoke tests only: the values are then not FID / FVD.
 */
import type { Engine } from '../engine/engine';
import type { Backend } from '../engine/backend';
import { fromArray } from '../engine/create';
import { tidy } from '../engine/scope';
import type { Tensor } from '../engine/tensor';
import { addScalar, div, mulScalar, sub } from '../kernels/elementwise';
import { Generator } from '../kernels/random';
import { resizeBilinear2d } from '../kernels/resample';
import { contiguous, expand, reshape } from '../kernels/views';
import { extractStateDict, readPth, readSafetensors } from '../models/io';
import type { HostTensor } from '../models/module';
import { IMAGENET_MEAN, IMAGENET_STD, INCEPTION_FEATURES, INCEPTION_MIN_SIZE, InceptionV3, inceptionPeakActivationBytes, type InceptionV3Options } from '../models/inception-v3';
import { I3D_FEATURES, I3D_HEAD_POOL, I3d, i3dMixed5cFrames, i3dPeakActivationBytes, type I3dOptions } from '../models/i3d';
import type { FeatureExtractor } from './frechet';

/** The reference's network input sizes. */
export const FID_INPUT_SIZE = 299;
export const FVD_INPUT_SIZE = 224;
/** Shortest clip whose Mixed_5c map still fits the I3D head's 2-frame pool (9 → 5 → 3 → 2 frames). */
export const FVD_MIN_FRAMES = 9;

/** Used when the backend has no binding limit (the CPU reference backend). */
const CPU_BATCH_BUDGET_BYTES = 256 * 2 ** 20;

/**
 * A weight file's state dict: safetensors, or a torch.save zip (`.pth`/`.pt`, read by the code-free pickle
 * reader; a checkpoint dict holding `state_dict`/`model` is unwrapped). Non-f32 tensors convert on load.
 */
export function readWeightFile(bytes: Uint8Array, name: string): Map<string, HostTensor> {
  const isZip = bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b;
  if (!isZip && name.toLowerCase().endsWith('.safetensors')) return readSafetensors(bytes, { name }).tensors as Map<string, HostTensor>;
  return extractStateDict(readPth(bytes, { name })) as unknown as Map<string, HostTensor>;
}

export interface FeatureNetExtractor<M> extends FeatureExtractor {
  readonly inputSize: number;
  readonly model: M;
  dispose(): void;
}

export interface FeatureNetOptions {
  /** Network input size (default 299 for FID, 224 for FVD: the reference's). */
  inputSize?: number;
  /** Frames (FID) or clips (FVD) per batch; default: as many as the binding limit allows, at most 16 / 2. */
  batch?: number;
  onProgress?: (done: number, total: number) => void;
}

function bindingLimit(backend: Backend): number {
  return backend.kind === 'webgpu' ? backend.ctx.caps.limits.maxStorageBufferBindingSize : CPU_BATCH_BUDGET_BYTES;
}

/** How many items fit one batch when each needs `peakBytes` in its largest tensor. */
function batchSize(backend: Backend, peakBytes: number, cap: number, what: string): number {
  const limit = bindingLimit(backend);
  if (peakBytes > limit && backend.kind === 'webgpu') {
    throw new Error(`${what} needs a ${(peakBytes / 2 ** 20).toFixed(0)} MiB activation, over this device's ${(limit / 2 ** 20).toFixed(0)} MiB storage-binding limit`);
  }
  return Math.max(1, Math.min(cap, Math.floor(limit / peakBytes)));
}

const channelConstants = (backend: Backend, values: readonly number[]) => fromArray(backend, [...values], [1, 3, 1, 1]);

/**
 * Frames (count, H, W) in [0, 1] → the Inception input [count, 3, size, size]: bilinear resize (of one channel;
 * the replicas are identical), then (x − mean_c) / std_c per channel.
 */
export function inceptionInput(backend: Backend, frames: Float32Array, count: number, height: number, width: number, size: number): Tensor {
  return tidy(() => {
    const x = fromArray(backend, frames.subarray(0, count * height * width), [count, 1, height, width]);
    const resized = resizeBilinear2d(x, [size, size]);
    return div(sub(resized, channelConstants(backend, IMAGENET_MEAN)), channelConstants(backend, IMAGENET_STD));
  });
}

/** Clips (count, T, H, W) in [0, 1] → the I3D input [count, 3, T, size, size] in [−1, 1]. */
export function i3dInput(backend: Backend, clips: Float32Array, count: number, frames: number, height: number, width: number, size: number): Tensor {
  return tidy(() => {
    const x = fromArray(backend, clips.subarray(0, count * frames * height * width), [count * frames, 1, height, width]);
    const signed = addScalar(mulScalar(resizeBilinear2d(x, [size, size]), 2), -1);
    return contiguous(expand(reshape(signed, [count, 1, frames, size, size]), [count, 3, frames, size, size]));
  });
}

/** Runs `run(start, n)` → [n, dims] over `count` items in batches and collects the rows in float64. */
async function batched(count: number, batch: number, dims: number, run: (start: number, n: number) => Tensor, onProgress?: (done: number, total: number) => void): Promise<Float64Array> {
  const out = new Float64Array(count * dims);
  for (let start = 0; start < count; start += batch) {
    const n = Math.min(batch, count - start);
    const rows = tidy(() => run(start, n));
    try {
      out.set(await rows.dataF64(), start * dims);
    } finally {
      rows.dispose();
    }
    onProgress?.(start + n, count);
  }
  return out;
}

/** FID features: Inception-v3 on every frame (item shape [H, W]). */
export function createInceptionExtractor(engine: Engine, weights: Map<string, HostTensor>, options: FeatureNetOptions & InceptionV3Options = {}): FeatureNetExtractor<InceptionV3> {
  const size = options.inputSize ?? FID_INPUT_SIZE;
  if (!Number.isInteger(size) || size < INCEPTION_MIN_SIZE) throw new Error(`FID input size must be an integer ≥ ${INCEPTION_MIN_SIZE}, got ${size}`);
  const backend = engine.backend;
  const model = new InceptionV3({ backend, gen: new Generator(0) }, options);
  try {
    model.loadWeights(weights);
  } catch (e) {
    model.dispose();
    throw new Error(`Inception-v3 (FID) weights: ${(e as Error).message}`);
  }
  const batch = options.batch ?? batchSize(backend, inceptionPeakActivationBytes(size), 16, `Inception-v3 at ${size}x${size}`);
  return {
    name: size === FID_INPUT_SIZE ? 'fid-inception-v3' : `fid-inception-v3-${size}px`,
    dims: INCEPTION_FEATURES,
    inputSize: size,
    model,
    async extract(items, count, itemShape) {
      const [height, width] = itemShape.slice(-2);
      const plane = height * width;
      return batched(count, batch, INCEPTION_FEATURES, (start, n) => {
        const x = inceptionInput(backend, items.subarray(start * plane), n, height, width, size);
        return model.features(x);
      }, options.onProgress);
    },
    dispose: () => model.dispose(),
  };
}

/** FVD features: I3D on every clip (item shape [T, H, W]). */
export function createI3dExtractor(engine: Engine, weights: Map<string, HostTensor>, options: FeatureNetOptions & I3dOptions = {}): FeatureNetExtractor<I3d> {
  const size = options.inputSize ?? FVD_INPUT_SIZE;
  if (!Number.isInteger(size) || size < 1) throw new Error(`FVD input size must be a positive integer, got ${size}`);
  const backend = engine.backend;
  const model = new I3d({ backend, gen: new Generator(0) }, options);
  try {
    model.loadWeights(weights);
  } catch (e) {
    model.dispose();
    throw new Error(`I3D (FVD) weights: ${(e as Error).message}`);
  }
  // The reference geometry must fit the head exactly as PyTorch would; smaller smoke-test sizes clip it.
  const clipHeadPool = size !== FVD_INPUT_SIZE;
  return {
    name: size === FVD_INPUT_SIZE ? 'fvd-i3d' : `fvd-i3d-${size}px`,
    dims: I3D_FEATURES,
    inputSize: size,
    model,
    async extract(items, count, itemShape) {
      const [frames, height, width] = itemShape.slice(-3);
      if (!clipHeadPool && i3dMixed5cFrames(frames) < I3D_HEAD_POOL[0]) {
        throw new Error(`FVD needs clips of at least ${FVD_MIN_FRAMES} frames (the I3D's final ${I3D_HEAD_POOL.join('x')} average pool), got ${frames}`);
      }
      const batch = options.batch ?? batchSize(backend, i3dPeakActivationBytes(frames, size), 2, `I3D on a ${frames}-frame clip at ${size}x${size}`);
      const clipSize = frames * height * width;
      return batched(count, batch, I3D_FEATURES, (start, n) => {
        const x = i3dInput(backend, items.subarray(start * clipSize), n, frames, height, width, size);
        return model.features(x, { clipHeadPool });
      }, options.onProgress);
    },
    dispose: () => model.dispose(),
  };
}
