/**
 * FID / FVD feature networks against PyTorch (tools/torch_oracle/feature_nets.py: torchvision's own
 * Inception3, and the I3D of VideoGPT's pytorch_i3d.py). The full-size networks' weights are too large to
 * commit, so both sides compute them from the same counter hash (`hashedValues`, bit-identical to the
 * oracle's); the fixtures hold only outputs. Inputs are small (Inception at 75x75, I3D trunk at 6x40x40);
 * FEATURE_NETS_FULL=1 adds the I3D head at its smallest valid input (9 frames at 193x193, ~14 G MAC).
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine';
import { tidy } from '../../src/engine/scope';
import { writeSafetensors } from '../../src/models/io';
import type { HostTensor } from '../../src/models/module';
import { InceptionV3 } from '../../src/models/inception-v3';
import { I3d } from '../../src/models/i3d';
import { createI3dExtractor, createInceptionExtractor, i3dInput, inceptionInput, readWeightFile } from '../../src/eval/feature-nets';
import { frechetDistance, gaussianStats } from '../../src/eval/frechet';
import { cpu, gpuEngine, releaseGpu } from '../helpers/oracle';
import { expectRelativeNear, goldenNpy, initContext } from '../helpers/golden';

afterAll(releaseGpu);

const GOLDEN = new URL('../fixtures/golden/feature_nets/', import.meta.url);
const npy = (name: string) => goldenNpy(GOLDEN, name);
const FULL = process.env.FEATURE_NETS_FULL === '1';

// ---------------------------------------------------------------------------------------------------
// The oracle's hashed values (tools/torch_oracle/feature_nets.py: fnv1a, hashed_uniform, hashed_values).

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h;
}

/** u in [0, 1): murmur3's finaliser of (i * 0x9E3779B1 + seed) mod 2^32, divided by 2^32. */
function hashedUniform(seed: number, i: number): number {
  let x = (Math.imul(i, 0x9e3779b1) + seed) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return (x >>> 0) / 4294967296;
}

/** Plain loops: typed-array `from` with a map function is ~10x slower over the 39 M weights. */
function hashedArray(name: string, n: number, map: (u: number) => number): Float32Array {
  const seed = fnv1a(name);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = map(hashedUniform(seed, i));
  return out;
}

function hashedValues(key: string, shape: readonly number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (key.endsWith('num_batches_tracked')) return new Float32Array(n).fill(7);
  if (key.endsWith('running_var') || key.endsWith('bn.weight')) return hashedArray(key, n, (u) => 0.5 + u);
  if (key.endsWith('running_mean') || key.endsWith('bias')) return hashedArray(key, n, (u) => (u - 0.5) * 0.2);
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  const scale = Math.sqrt(3) * Math.sqrt(2 / fanIn);
  return hashedArray(key, n, (u) => (2 * u - 1) * scale);
}

const hashedInput = (name: string, n: number) => hashedArray(name, n, (u) => u);

/** The model's own keys with hashed values, plus the file-only keys the loader must ignore. */
function hashedStateDict(model: InceptionV3 | I3d, extraKeys: [string, number[]][]): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [key, t] of [...model.stateDict()].map(([k, v]) => [k, v.shape] as const).concat(extraKeys)) out.set(key, { shape: [...t], data: hashedValues(key, t) });
  return out;
}

const INCEPTION_FILE_ONLY: [string, number[]][] = [['AuxLogits.fc.bias', [1000]], ['fc.bias', [1000]]];
const I3D_FILE_ONLY: [string, number[]][] = [['logits.conv3d.bias', [400]]];

// One key list per network (the shapes do not depend on the engine).
const inceptionWeights = (() => {
  const m = new InceptionV3(initContext(cpu));
  const w = hashedStateDict(m, INCEPTION_FILE_ONLY);
  m.dispose();
  return w;
})();
const i3dWeights = (() => {
  const m = new I3d(initContext(cpu));
  const w = hashedStateDict(m, I3D_FILE_ONLY);
  m.dispose();
  return w;
})();

function expectNear(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string) {
  expectRelativeNear(actual, expected, tol, what, 1e-3);
}

/** GPU (lavapipe, float32) to fp32 tolerance; the CPU backend computes in float64 like the oracle. */
const tolerance = (e: Engine) => (e.kind === 'cpu' ? 1e-6 : 5e-5);
const engines: [string, () => Promise<Engine>][] = [['webgpu', gpuEngine], ['cpu', async () => cpu]];

describe.each(engines)('Inception-v3 (FID) on %s', (_, getEngine) => {
  it('preprocessing (resize 20→75, ImageNet normalisation, transform_input) and 2048-d features match torchvision', async () => {
    const e = await getEngine();
    const frames = hashedInput('inception_frames', 2 * 20 * 20);
    const extractor = createInceptionExtractor(e, inceptionWeights, { inputSize: 75 });
    const input = tidy(() => extractor.model.applyTransformInput(inceptionInput(e.backend, frames, 1, 20, 20, 75)));
    expectNear(await input.dataF64(), npy('inception_input').data, tolerance(e), 'network input of frame 0');
    input.dispose();
    // The float64 reference convolution runs ~30 M MAC/s: one frame there, both on the GPU.
    const count = e.kind === 'cpu' ? 1 : 2;
    const features = await extractor.extract(frames, count, [20, 20]);
    const expected = npy('inception_features');
    expect(expected.shape).toEqual([2, 2048]);
    expectNear(features, expected.data.subarray(0, count * 2048), tolerance(e), 'features');
    extractor.dispose();
    if (e.kind === 'webgpu') expect(e.memory().liveBytes).toBeLessThan(1024);
  });
});

describe.each(engines)('I3D (FVD) on %s', (_, getEngine) => {
  it('preprocessing (per-frame resize 10→16, 2x − 1, 3 channels) matches', async () => {
    const e = await getEngine();
    const x = i3dInput(e.backend, hashedInput('i3d_clip', 3 * 10 * 10), 1, 3, 10, 10, 16);
    expect(x.shape).toEqual([1, 3, 3, 16, 16]);
    expectNear(await x.dataF64(), npy('i3d_input').data, tolerance(e), 'clip input');
    x.dispose();
  });

  it('trunk (TF-SAME padding, Mixed_3b..5c) and the 2x7x7 head match pytorch_i3d', async () => {
    const e = await getEngine();
    const model = new I3d(initContext(e));
    model.loadWeights(i3dWeights);
    const clips = e.kind === 'cpu' ? 1 : 2;
    const trunk = tidy(() => model.trunk(i3dInput(e.backend, hashedInput('i3d_clips', 2 * 6 * 40 * 40), clips, 6, 40, 40, 40)));
    const expected = npy('i3d_mixed5c');
    expect(trunk.shape).toEqual([clips, ...expected.shape.slice(1)]);
    expectNear(await trunk.dataF64(), expected.data.subarray(0, trunk.size), tolerance(e), 'Mixed_5c');
    trunk.dispose();
    const map = e.tensor(hashedArray('i3d_head', 1024 * 3 * 49, (u) => 2 * u - 1), [1, 1024, 3, 7, 7]);
    const head = I3d.head(map);
    expectNear(await head.dataF64(), npy('i3d_head').data, tolerance(e), 'head');
    for (const t of [map, head]) t.dispose();
    const small = e.tensor(new Float32Array(1024 * 4), [1, 1024, 1, 2, 2]);
    expect(() => I3d.head(small)).toThrow(/at least 9 frames/);
    small.dispose();
    model.dispose();
    if (e.kind === 'webgpu') expect(e.memory().liveBytes).toBeLessThan(1024);
  });

  it.skipIf(!FULL)('full path at the smallest valid input (9 frames, 193x193) matches extract_features', async () => {
    const e = await getEngine();
    if (e.kind === 'cpu') return; // ~14 G MAC in float64 JavaScript: minutes
    const extractor = createI3dExtractor(e, i3dWeights, { inputSize: 193 });
    const features = await extractor.extract(hashedInput('i3d_full_clip', 9 * 24 * 24), 1, [9, 24, 24]);
    expectNear(features, npy('i3d_full_features').data, tolerance(e), 'features');
    extractor.dispose();
  }, 600_000);
});
