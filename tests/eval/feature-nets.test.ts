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
import { HostTensor as FileTensor, writeSafetensors } from '../../src/models/io';
import type { HostTensor } from '../../src/models/module';
import { InceptionV3 } from '../../src/models/inception-v3';
import { I3d } from '../../src/models/i3d';
import { createI3dExtractor, createInceptionExtractor, i3dInput, inceptionInput, readWeightFile } from '../../src/eval/feature-nets';
import { frechetDistance, gaussianStats } from '../../src/eval/frechet';
import { evaluateClipSets } from '../../src/eval/report';
import type { ClipSet } from '../../src/eval/inputs';
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
    // One frame per batch on the GPU: the batch offsets are checked against the oracle too.
    const extractor = createInceptionExtractor(e, inceptionWeights, { inputSize: 75, batch: e.kind === 'webgpu' ? 1 : undefined });
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

describe('weights files', () => {
  it('a wrong, missing or mis-shaped key is an error naming it; AuxLogits/fc/logits are ignored', () => {
    const renamed = new Map(inceptionWeights);
    renamed.set('Mixed_6b.branch7x7_2.conv.weights', renamed.get('Mixed_6b.branch7x7_2.conv.weight')!);
    renamed.delete('Mixed_6b.branch7x7_2.conv.weight');
    expect(() => createInceptionExtractor(cpu, renamed)).toThrow(/Inception-v3 \(FID\) weights: .*missing key.*Mixed_6b\.branch7x7_2\.conv\.weight.*unexpected key.*Mixed_6b\.branch7x7_2\.conv\.weights/);
    const missing = new Map(i3dWeights);
    missing.delete('Conv3d_1a_7x7.bn.running_var');
    expect(() => createI3dExtractor(cpu, missing)).toThrow(/I3D \(FVD\) weights: .*Conv3d_1a_7x7\.bn\.running_var/);
    const misShaped = new Map(i3dWeights);
    misShaped.set('Mixed_4c.b1b.conv3d.weight', { shape: [224, 112, 1, 3, 3], data: new Float32Array(224 * 112 * 9) });
    expect(() => createI3dExtractor(cpu, misShaped)).toThrow(/Mixed_4c\.b1b\.conv3d\.weight has shape \[224, 112, 1, 3, 3\] in the file/);
    // The complete dicts (which include the file-only keys) load.
    createI3dExtractor(cpu, i3dWeights).dispose();
  });

  it('.pth (torch.save, int64 num_batches_tracked) and .safetensors read to the same tensors, which load into the networks', async () => {
    const fromPth = readWeightFile(new Uint8Array(readFileSync(new URL('sample_weights.pth', GOLDEN))), 'sample_weights.pth');
    expect([...fromPth.keys()].sort()).toEqual([
      'Conv2d_1a_3x3.bn.bias', 'Conv2d_1a_3x3.bn.num_batches_tracked', 'Conv2d_1a_3x3.bn.running_mean', 'Conv2d_1a_3x3.bn.running_var',
      'Conv2d_1a_3x3.bn.weight', 'Conv2d_1a_3x3.conv.weight', 'Mixed_3b.b2a.bn.num_batches_tracked', 'Mixed_3b.b2a.conv3d.weight',
    ]);
    const asFile = new Map([...fromPth].map(([k, t]) => [k, t as FileTensor]));
    const fromSafetensors = readWeightFile(writeSafetensors(asFile), 'sample.safetensors');
    for (const [key, t] of fromPth) {
      const values = (t as FileTensor).toFloat32();
      expect([...values], key).toEqual([...(fromSafetensors.get(key) as FileTensor).toFloat32()]);
      expect(fromSafetensors.get(key)!.shape, key).toEqual(t.shape);
      expect([...values], key).toEqual([...hashedValues(key, t.shape)]);
    }
    expect((fromPth.get('Conv2d_1a_3x3.bn.num_batches_tracked') as FileTensor).dtype).toBe('i64');
    for (const source of [fromPth, fromSafetensors]) {
      const inception = createInceptionExtractor(cpu, new Map([...inceptionWeights, ...[...source].filter(([k]) => !k.startsWith('Mixed_3b'))]));
      const conv = inception.model.stateDict().get('Conv2d_1a_3x3.conv.weight')!;
      expectNear(await conv.dataF64(), hashedValues('Conv2d_1a_3x3.conv.weight', conv.shape), 1e-7, 'loaded weight');
      inception.dispose();
      const i3d = createI3dExtractor(cpu, new Map([...i3dWeights, ...[...source].filter(([k]) => k.startsWith('Mixed_3b'))]));
      expect(await i3d.model.stateDict().get('Mixed_3b.b2a.bn.num_batches_tracked')!.item()).toBe(7);
      i3d.dispose();
    }
  });
});

describe('Fréchet distance over the networks', () => {
  it('the low-rank route (fewer samples than dims): closed form for a scaled copy; the d x d eigen route agrees', () => {
    const d = 40;
    let s = 5;
    const random = (n: number) => Float64Array.from({ length: n }, () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) - 0.5);
    const samples = random(6 * d);
    const a = gaussianStats(samples, 6, d);
    // B = 3·A + 1: S2 = 9·S1, so the trace term is tr S1 + 9 tr S1 − 2·3 tr S1 = 4 tr S1.
    const b = gaussianStats(samples.map((v) => 3 * v + 1), 6, d);
    expect(a.sampleBasis && b.sampleBasis).toBeTruthy();
    let traceA = 0;
    for (let i = 0; i < d; i++) traceA += a.covariance[i * d + i];
    const lowRank = frechetDistance(a, b);
    expect(lowRank.traceTerm).toBeCloseTo(4 * traceA, 12);
    expect(frechetDistance(a, a).distance).toBeLessThan(1e-12);
    const c = gaussianStats(random(9 * d), 9, d);
    const mixed = frechetDistance(a, c);
    expect(frechetDistance(c, a).distance).toBeCloseTo(mixed.distance, 12);
    // The d x d route takes square roots of rounding noise in its d − 5 zero eigenvalues: ~1e-8 relative.
    const full = frechetDistance({ ...a, sampleBasis: undefined }, { ...c, sampleBasis: undefined });
    expect(Math.abs(mixed.distance - full.distance)).toBeLessThan(1e-6 * full.distance);
  });

  it('in the report: identical sets give 0, different ones > 0; batching does not change the I3D features', async () => {
    const e = await gpuEngine();
    const clip = (k: number, shift: number) => hashedArray(`report_clip_${k}`, 16 * 16, (u) => Math.min(1, u + shift));
    const set = (shift: number): ClipSet => ({ clips: [clip(0, shift), clip(1, shift)], ids: [null, null], frames: 1, height: 16, width: 16, range: 'unit' });
    const fid = createInceptionExtractor(e, inceptionWeights, { inputSize: 75 });
    const fvd = createI3dExtractor(e, i3dWeights, { inputSize: 32, batch: 1 });
    const frechet = [{ extractor: fid, unit: 'frame' as const }, { extractor: fvd, unit: 'clip' as const }];
    const same = await evaluateClipSets(set(0), set(0), { anatomy: false, frechet });
    const shifted = await evaluateClipSets(set(0.2), set(0), { anatomy: false, frechet });
    expect(same.aggregate.frechet.map((f) => f.extractor)).toEqual(['fid-inception-v3-75px', 'fvd-i3d-32px']);
    for (const [k, f] of same.aggregate.frechet.entries()) {
      const scale = shifted.aggregate.frechet[k].distance;
      expect(scale).toBeGreaterThan(0);
      expect(f.distance).toBeLessThan(1e-9 * scale);
    }
    // Clips one by one against both in one batch (the FID batch offsets are checked in its golden test).
    const clips = new Float32Array(2 * 256);
    set(0).clips.forEach((c, k) => clips.set(c, k * c.length));
    const both = createI3dExtractor(e, i3dWeights, { inputSize: 32, batch: 2 });
    expectNear(await fvd.extract(clips, 2, [1, 16, 16]), await both.extract(clips, 2, [1, 16, 16]), 1e-6, 'FVD batches');
    for (const x of [fid, fvd, both]) x.dispose();
    expect(e.memory().liveBytes).toBeLessThan(1024);
  });
});
