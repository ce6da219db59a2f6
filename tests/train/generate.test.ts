/**
 * Sampling and generation. On the CPU reference backend: the Euler sampler evaluates at the mid-interval
 * times (k + 0.5)/N and reproduces the analytic endpoint of fields affine in t, Heun is exact there and
 * second order on v = λx, guidance at scale 1 is the conditional pass. On the GPU: a tiny chain (untrained
 * PA-MAE and VAE, a 2-step flow run) generates deterministically, and `npm run generate` writes GIF,
 * NIfTI and NPY (and the side-by-side GIF with the phantom's ground truth). NaN weights are refused at load
 * (by the pipeline and by a flow run on top of them); with the opt-out, generation fails instead of writing
 * an all-black clip.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../../src/data/npy';
import { readNifti } from '../../src/data/readers/nifti';
import { generateSubject } from '../../src/data/phantom/subject';
import { normalizeClip } from '../../src/data/preprocess/cmr';
import { keep } from '../../src/engine/scope';
import { assign } from '../../src/engine/create';
import type { Tensor } from '../../src/engine/tensor';
import { add, mul, mulScalar, zerosLike } from '../../src/kernels/elementwise';
import { Generator, randn } from '../../src/kernels/random';
import { reshape } from '../../src/kernels/views';
import { DIT_CONFIGS, EcgDiT } from '../../src/models/dit';
import { parseRunArgs, train } from '../../src/train/index';
import { NodeTrainFileSystem } from '../../src/train/node-files';
import { FlowPipeline, NonFiniteOutputError } from '../../src/train/pipeline';
import { NonFiniteWeightsError } from '../../src/models/io/state-dict';
import { rewrite, setValue } from './file-mutation';
import { ditField, evaluationTimes, FlowIntegration, integrateFlow, sampleLatents } from '../../src/train/sampler';
import { cpu, gpuEngine } from '../helpers/oracle';
import { flowStage } from '../../src/train/stage-flow';
import { CONTENDED_TIMEOUT, tempDirMaker, tinyFlowRun } from './run-helpers';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const tempDir = tempDirMaker('generate-');

const values = async (t: Tensor) => Array.from(await t.data());

describe('sampler (CPU reference backend)', () => {
  const x0Values = [0.5, -1, 2, 0.25, 0, -0.75];
  const aValues = [1, 2, -1, 0.5, 3, -2];
  const bValues = [-2, 0.5, 4, 1, -1, 0];

  it('Euler evaluates at (k + 0.5)/N and reproduces the endpoint of a field affine in t', async () => {
    const x0 = cpu.tensor(x0Values, [2, 3]);
    const a = cpu.tensor(aValues, [2, 3]);
    const b = cpu.tensor(bValues, [2, 3]);
    const seen: Tensor[] = [];
    const field = (_x: Tensor, t: Tensor) => {
      seen.push(keep(reshape(t, [2])));
      return add(a, mul(b, reshape(t, [2, 1])));
    };
    const x1 = integrateFlow(x0, field, { steps: 4, method: 'euler' });
    expect(evaluationTimes('euler', 4)).toEqual([0.125, 0.375, 0.625, 0.875]);
    const times = await Promise.all(seen.map(values));
    expect(times).toEqual([0.125, 0.375, 0.625, 0.875].map((t) => [t, t]));
    // x(1) = x0 + a + b/2; left-endpoint Euler would miss it by b/(2N).
    (await values(x1)).forEach((v, i) => expect(v).toBeCloseTo(x0Values[i] + aValues[i] + bValues[i] / 2, 5));
    for (const t of [x0, a, b, x1, ...seen]) t.dispose();
  });

  it('FlowIntegration steps one at a time: the state after k steps is x0 · (1 + λh)^k, and misuse is refused', async () => {
    const x0 = cpu.tensor(x0Values, [2, 3]);
    const lambda = -1.5;
    const n = 4;
    const owned = cpu.tensor([1], [1]);
    const integration = new FlowIntegration(x0, (x) => mulScalar(x, lambda), { steps: n, method: 'euler' }, [owned]);
    for (let k = 1; k <= n; k++) {
      integration.advance();
      expect(integration.done).toBe(k === n);
    }
    expect(() => integration.advance()).toThrow(/all 4 steps are done/);
    const x1 = integration.take();
    (await values(x1)).forEach((v, i) => expect(v).toBeCloseTo(x0Values[i] * (1 + lambda / n) ** n, 6));
    expect(owned.disposed).toBe(true);
    expect(x0.disposed).toBe(false);
    expect(() => integration.take()).toThrow(/taken or disposed/);
    for (const t of [x0, x1]) t.dispose();
  });

  it('Heun is exact for fields affine in t and second order on v = λx', async () => {
    const x0 = cpu.tensor(x0Values, [2, 3]);
    const a = cpu.tensor(aValues, [2, 3]);
    const b = cpu.tensor(bValues, [2, 3]);
    expect(evaluationTimes('heun', 2)).toEqual([0, 0.5, 0.5, 1]);
    const affine = integrateFlow(x0, (_x, t) => add(a, mul(b, reshape(t, [2, 1]))), { steps: 3, method: 'heun' });
    (await values(affine)).forEach((v, i) => expect(v).toBeCloseTo(x0Values[i] + aValues[i] + bValues[i] / 2, 5));
    const lambda = -1.5;
    const n = 5;
    const h = 1 / n;
    const heun = integrateFlow(x0, (x) => mulScalar(x, lambda), { steps: n, method: 'heun' });
    const euler = integrateFlow(x0, (x) => mulScalar(x, lambda), { steps: n, method: 'euler' });
    const heunFactor = (1 + lambda * h + (lambda * h) ** 2 / 2) ** n;
    const eulerFactor = (1 + lambda * h) ** n;
    (await values(heun)).forEach((v, i) => expect(v).toBeCloseTo(x0Values[i] * heunFactor, 5));
    (await values(euler)).forEach((v, i) => expect(v).toBeCloseTo(x0Values[i] * eulerFactor, 5));
    // Heun lands closer to the exact e^λ.
    expect(Math.abs(heunFactor - Math.exp(lambda))).toBeLessThan(Math.abs(eulerFactor - Math.exp(lambda)) / 5);
    for (const t of [x0, a, b, affine, heun, euler]) t.dispose();
  });

  it('guidance at scale 1 is the conditional pass; above 1 it extrapolates from the null condition', async () => {
    const config = DIT_CONFIGS.tiny;
    const gen = new Generator(9);
    const dit = new EcgDiT({ backend: cpu.backend, gen }, config);
    // Non-zero adaLN outputs, so the ECG tokens actually change the velocity (they start zero-initialised).
    let k = 0;
    for (const [name, p] of dit.namedParameters()) if (name.includes('adaLN_modulation')) assign(p, Array.from({ length: p.size }, () => 0.2 * Math.sin(1.7 * ++k)));
    const x = randn(cpu.backend, [1, 4, 5, 3, 4], gen);
    const t = cpu.tensor([0.3], [1]);
    const tokens = randn(cpu.backend, [1, 6, 24], gen);
    const conditional = await values(dit.forward(x, t, tokens));
    expect(await values(ditField(dit, tokens, 1)(x, t))).toEqual(conditional);
    expect(await values(ditField(dit, tokens, 0.5)(x, t))).toEqual(conditional);
    const unconditional = await values(dit.forward(x, t, zerosLike(tokens)));
    const guided = await values(ditField(dit, tokens, 2)(x, t));
    guided.forEach((v, i) => expect(v).toBeCloseTo(unconditional[i] + 2 * (conditional[i] - unconditional[i]), 5));
    expect(guided.some((v, i) => Math.abs(v - conditional[i]) > 1e-4)).toBe(true);
    // The sampler with scale 1 integrates the conditional field from template + α·ε.
    const template = cpu.tensor(new Array(4 * 12).fill(0.1), [1, 4, 1, 3, 4]);
    const sampled = await values(sampleLatents(dit, tokens, template, { steps: 2, guidance: 1, alpha: 0.6, seed: 4 }));
    const manualStart = add(template, mulScalar(randn(cpu.backend, [1, 4, 5, 3, 4], new Generator(4)), 0.6));
    const manual = await values(integrateFlow(manualStart, (xx, tt) => dit.forward(xx, tt, tokens), { steps: 2, method: 'euler' }));
    expect(sampled).toEqual(manual);
  });
});

describe('generation with a tiny chain (GPU)', () => {
  const fs = new NodeTrainFileSystem();
  let flowRun = '';
  let chain = { ecgRun: '', vaeRun: '' };

  beforeAll(async () => {
    const engine = await gpuEngine();
    const dir = tempDir();
    ({ chain, flowRun } = await tinyFlowRun(engine, fs, dir, 5));
  }, CONTENDED_TIMEOUT);

  it('the pipeline generates a clip in [0, 1], the same one for the same seed', async () => {
    const engine = await gpuEngine();
    const pipeline = await FlowPipeline.load(engine, fs, flowRun);
    try {
      expect(pipeline.weightsSource).toBe(join(flowRun, 'best-weights.safetensors'));
      const ecg = generateSubject(42, 3, { cine: false }).ecg;
      const a = await pipeline.generate(ecg, { steps: 2, seed: 1 });
      const b = await pipeline.generate(ecg, { steps: 2, seed: 1 });
      const c = await pipeline.generate(ecg, { steps: 2, seed: 2 });
      const unconditional = await pipeline.generate(ecg, { steps: 2, seed: 1, unconditional: true });
      const otherEcg = await pipeline.generate(generateSubject(42, 9, { cine: false }).ecg, { steps: 2, seed: 1, unconditional: true });
      expect(unconditional.clip).not.toEqual(a.clip);
      // Without the ECG only the noise seed matters.
      expect(otherEcg.clip).toEqual(unconditional.clip);
      expect([a.frames, a.height, a.width]).toEqual([4, 16, 16]);
      expect(a.latent.length).toBe(4 * 4 * 8 * 8);
      // The VAE round trip of the ground truth: deterministic, at the model geometry, in [0, 1].
      const cine = normalizeClip(generateSubject(42, 3, { cine: true }).cine!);
      const r1 = await pipeline.reconstruct(cine);
      const r2 = await pipeline.reconstruct(cine);
      expect([r1.frames, r1.height, r1.width]).toEqual([4, 16, 16]);
      expect(r1.latent.length).toBe(4 * 4 * 8 * 8);
      expect(r1.clip).toEqual(r2.clip);
      expect(r1.clip.every((v) => v >= 0 && v <= 1)).toBe(true);
      expect(a.clip).toEqual(b.clip);
      expect(a.clip).not.toEqual(c.clip);
      expect(a.clip.every((v) => v >= 0 && v <= 1)).toBe(true);
    } finally {
      pipeline.dispose();
    }
  }, CONTENDED_TIMEOUT);

  it('npm run generate writes GIF, NIfTI, NPY and the side-by-side GIF for a phantom ECG', async () => {
    const out = join(tempDir(), 'out');
    const args = ['--checkpoint', flowRun, '--out', out, '--phantom-index', '3-4', '--phantom-gt', '--steps', '2', '--sampler', 'heun'];
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/generate.ts', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('phantom-s42-000003: 4x16x16');
    expect(result.stdout).toContain('MAE vs GT');
    const base = join(out, 'phantom-s42-000003');
    for (const ext of ['.gif', '.nii.gz', '.npy', '-vs-gt.gif']) expect(existsSync(base + ext), base + ext).toBe(true);
    expect(new TextDecoder().decode(readFileSync(`${base}.gif`).subarray(0, 6))).toBe('GIF89a');
    const npy = readNpy(new Uint8Array(readFileSync(`${base}.npy`)));
    expect(npy.shape).toEqual([4, 16, 16]);
    const nifti = readNifti(readFileSync(`${base}.nii.gz`));
    expect([nifti.frames, nifti.height, nifti.width]).toEqual([4, 16, 16]);
    expect(Array.from(nifti.data)).toEqual(Array.from(npy.data as Float32Array));
    // Ground truth at the model geometry plus phantom metadata: what `npm run evaluate` reads.
    expect(result.stdout).toContain('phantom-s42-000004: 4x16x16');
    const gt = readNpy(new Uint8Array(readFileSync(join(out, 'ground-truth', 'phantom-s42-000003.npy'))));
    expect(gt.shape).toEqual([4, 16, 16]);
    const meta = JSON.parse(readFileSync(join(out, 'ground-truth', 'meta.json'), 'utf8')) as { subjects: { id: string; params: { lvCavityRadius: number } }[] };
    expect(meta.subjects.map((m) => m.id)).toEqual(['phantom-s42-000003', 'phantom-s42-000004']);
    expect(meta.subjects[0].params.lvCavityRadius).toBeGreaterThan(0);
    expect(result.stdout).toContain(`--phantom-meta ${join(out, 'ground-truth', 'meta.json')}`);
  }, CONTENDED_TIMEOUT);

  it('NaN weights: loading is refused naming file and tensor; with the opt-out, generation fails instead of writing a black clip', async () => {
    const engine = await gpuEngine();
    const broken = join(tempDir(), 'flow-run');
    cpSync(flowRun, broken, { recursive: true });
    const weights = join(broken, 'best-weights.safetensors');
    // A diverged run's weights (re-sealed, so the hash check passes and the value check has to catch it).
    let poisonedKey = '';
    rewrite(weights, (tensors) => {
      poisonedKey = [...tensors.keys()].find((k) => k.startsWith('dit.') && k.endsWith('.weight'))!;
      setValue(tensors, poisonedKey, 0, NaN);
    }, { reseal: true });
    const refused = await FlowPipeline.load(engine, fs, broken).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(NonFiniteWeightsError);
    expect((refused as Error).message).toContain(`${weights}: tensor '${poisonedKey}' holds 1 non-finite value(s)`);
    const pipeline = await FlowPipeline.load(engine, fs, broken, { allowNonFiniteWeights: true });
    try {
      const failed = await pipeline.generate(generateSubject(42, 3, { cine: false }).ecg, { steps: 2, seed: 1 }).catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(NonFiniteOutputError);
      expect((failed as Error).message).toMatch(/non-finite value\(s\) of \d+ in the sampled latent; refusing to write a clip/);
    } finally {
      pipeline.dispose();
    }
    // The CLI: exit code 1, the reason on stderr, no clip written.
    const out = join(tempDir(), 'out');
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const args = ['--checkpoint', broken, '--out', out, '--phantom-index', '3', '--steps', '2', '--allow-nonfinite-weights', '--time-grid', 'start'];
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/generate.ts', ...args], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code, stderr }));
    });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain('euler start times');
    expect(result.stderr).toMatch(/error: generation produced \d+ non-finite value/);
    expect(existsSync(join(out, 'phantom-s42-000003.npy'))).toBe(false);
  }, CONTENDED_TIMEOUT);

  it('a flow run on top of a PA-MAE run with NaN weights is refused, naming the file and tensor', async () => {
    const engine = await gpuEngine();
    const ecgRun = join(tempDir(), 'ecg-run');
    cpSync(chain.ecgRun, ecgRun, { recursive: true });
    const weights = join(ecgRun, 'best-weights.safetensors');
    rewrite(weights, (tensors) => setValue(tensors, 'encoder.stem.0.weight', 2, -Infinity), { reseal: false });
    const config = flowStage.resolveConfig(parseRunArgs(['--stage', 'flow', '--vae-run', chain.vaeRun, '--ecg-run', ecgRun, '--steps', '1', '--batch', '2']));
    config.valSubjects = 2;
    const runDir = join(tempDir(), 'flow');
    const error = await train(flowStage, config, { engine, fs, runDir, progress: null }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonFiniteWeightsError);
    expect((error as Error).message).toContain(`${weights}: tensor 'encoder.stem.0.weight' holds 1 non-finite value(s) of `);
    expect((error as Error).message).toContain('(first at index 2: -Infinity)');
    expect((error as Error).message).toContain('--allow-nonfinite-weights');
  }, CONTENDED_TIMEOUT);

  it('usage errors exit with code 2 before starting the device', async () => {
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/generate.ts', '--out', 'x', '--phantom-index', '1'], { cwd: repoRoot, stdio: 'ignore' });
      child.on('close', resolve);
    });
    expect(code).toBe(2);
  }, CONTENDED_TIMEOUT);
});
