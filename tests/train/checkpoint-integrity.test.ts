/**
 * Checkpoints written by a real (tiny, stage ecg, GPU) run, then damaged: a flipped exponent bit, a negative
 * AdamW second moment, an edited step, a NaN weight, a truncated file, a bad metrics line. Each is refused
 * with an error naming the file, the entry and the fix; resuming falls back to `best` when `last` is bad;
 * the metrics log stays append-only and keeps every readable line.
 */
import { cpSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { NonFiniteWeightsError } from '../../src/models/io/state-dict';
import { checkpointPath, ecgStage, loadCheckpoint, parseRunArgs, readWeights, train, type EcgStageConfig } from '../../src/train/index';
import { CheckpointIntegrityError } from '../../src/train/integrity';
import { parseMetricsDetailed } from '../../src/train/metrics';
import { NodeTrainFileSystem } from '../../src/train/node-files';
import { gpuEngine } from '../helpers/oracle';
import { flipBit, rewrite, setValue } from './file-mutation';
import { CONTENDED_TIMEOUT, tempDirMaker, trainValues } from './run-helpers';

const tempDir = tempDirMaker('train-integrity-');
const fs = new NodeTrainFileSystem();

/** 16 training subjects, batch 4: 4 steps per epoch; 6 steps, validation and checkpoints every 3. */
function testConfig(): EcgStageConfig {
  const config = ecgStage.resolveConfig(parseRunArgs(['--stage', 'ecg', '--steps', '6', '--batch', '4', '--seed', '3', '--val-every', '3', '--lr', '3e-3']));
  config.trainSubjects = 16;
  config.valSubjects = 4;
  config.stepsPerEpoch = 4;
  return config;
}

const WEIGHT = 'model.encoder.stem.0.weight';
const MOMENT = 'optim.encoder.stem.0.weight.exp_avg_sq';

describe('checkpoint integrity (GPU, stage ecg)', () => {
  let run = '';
  let early = '';
  /** A copy of the finished run whose `best` is the step-3 checkpoint, so a fallback repeats steps 4..6. */
  const copy = () => {
    const dir = join(tempDir(), 'run');
    cpSync(run, dir, { recursive: true });
    for (const f of ['best.safetensors', 'best.json']) cpSync(join(early, 'checkpoints', f), join(dir, 'checkpoints', f));
    return dir;
  };

  beforeAll(async () => {
    const engine = await gpuEngine();
    run = join(tempDir(), 'run');
    await train(ecgStage, testConfig(), { engine, fs, runDir: run, progress: null, stopAfterStep: 3 });
    early = join(tempDir(), 'early');
    cpSync(run, early, { recursive: true });
    await train(ecgStage, null, { engine, fs, runDir: run, progress: null, resume: true });
  }, CONTENDED_TIMEOUT);

  it('an intact checkpoint carries hashes and loads without warnings', async () => {
    const last = await loadCheckpoint(fs, run, 'last');
    expect(last.meta).toMatchObject({ version: 2, step: 6 });
    expect(last.warnings).toEqual([]);
    const integrity = JSON.parse(readFileHeader(checkpointPath(run, 'last')).integrity) as { tensors: Record<string, string>; meta: string };
    expect(Object.keys(integrity.tensors)).toContain(WEIGHT);
    expect(integrity.meta).toMatch(/^[0-9a-f]{16}$/);
    expect((await readWeights(fs, join(run, 'best-weights.safetensors'))).tensors.size).toBeGreaterThan(0);
  });

  it('a flipped exponent bit is refused naming the tensor; resume falls back to best with a warning', async () => {
    const dir = copy();
    flipBit(checkpointPath(dir, 'last'), WEIGHT, 5, 30);
    const error = await loadCheckpoint(fs, dir, 'last').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointIntegrityError);
    expect((error as Error).message).toContain(`${checkpointPath(dir, 'last')}: tensor '${WEIGHT}': content hash`);
    expect((error as Error).message).toMatch(/use another checkpoint/);
    const best = (await loadCheckpoint(fs, dir, 'best')).meta.step;
    expect(best).toBe(3);
    const warnings: string[] = [];
    const engine = await gpuEngine();
    const summary = await train(ecgStage, null, { engine, fs, runDir: dir, progress: null, resume: true, warn: (m) => warnings.push(m) });
    expect(summary).toMatchObject({ completed: true, steps: 6 });
    expect(warnings.join('\n')).toContain(`resuming from the 'best' checkpoint instead (step ${best})`);
    expect(warnings.join('\n')).toContain(WEIGHT);
    // The log reads as one run: steps 1..6 once each, the repeated ones replaced.
    expect(trainValues(dir).map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(trainValues(dir)).toEqual(trainValues(run));
    expect(readFileSync(join(dir, 'metrics.jsonl'), 'utf8')).toContain(`{"type":"resume","step":${best},"from":"best"`);
  }, CONTENDED_TIMEOUT);

  it('a negative AdamW second moment is refused even with matching hashes', async () => {
    const dir = copy();
    rewrite(checkpointPath(dir, 'last'), (tensors) => setValue(tensors, MOMENT, 2, -1e-6), { reseal: true });
    await expect(loadCheckpoint(fs, dir, 'last')).rejects.toThrow(new RegExp(`tensor '${MOMENT.replace(/\./g, '\\.')}': AdamW second moment is negative \\(-9\\.99`));
    // Without re-sealing, the hash catches it first.
    const other = copy();
    rewrite(checkpointPath(other, 'last'), (tensors) => setValue(tensors, MOMENT, 2, -1e-6), { reseal: false });
    await expect(loadCheckpoint(fs, other, 'last')).rejects.toThrow(/content hash .* differs from the stored/);
  });

  it('an edited step is refused: by the metadata hash, and by the step counts when re-sealed', async () => {
    const dir = copy();
    const editStep = (metadata: Record<string, string>) => {
      const meta = JSON.parse(metadata.checkpoint) as { step: number; batchInEpoch: number };
      meta.step = 5;
      meta.batchInEpoch = 1;
      metadata.checkpoint = JSON.stringify(meta);
    };
    rewrite(checkpointPath(dir, 'last'), (_t, metadata) => editStep(metadata), { reseal: false });
    await expect(loadCheckpoint(fs, dir, 'last')).rejects.toThrow(/__metadata__\.checkpoint: does not match its stored hash \(an edited step/);
    rewrite(checkpointPath(dir, 'last'), (_t, metadata) => editStep(metadata), { reseal: true });
    await expect(loadCheckpoint(fs, dir, 'last')).rejects.toThrow(/metadata step: is 5, but an optimizer has taken 6 steps/);
  });

  it('NaN weights are refused naming file and tensor, unless the opt-out is given', async () => {
    const dir = copy();
    const weights = join(dir, 'best-weights.safetensors');
    rewrite(weights, (tensors) => setValue(tensors, 'encoder.stem.0.weight', 7, NaN), { reseal: true });
    const error = await readWeights(fs, weights).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonFiniteWeightsError);
    expect((error as Error).message).toContain(`${weights}: tensor 'encoder.stem.0.weight' holds 1 non-finite value(s)`);
    expect((error as Error).message).toContain('--allow-nonfinite-weights');
    const loaded = await readWeights(fs, weights, { allowNonFinite: true });
    expect(Number.isNaN(loaded.tensors.get('encoder.stem.0.weight')!.data[7])).toBe(true);
    // The same in a checkpoint (re-sealed, so only the value check can object).
    rewrite(checkpointPath(dir, 'last'), (tensors) => setValue(tensors, WEIGHT, 0, Infinity), { reseal: true });
    await expect(loadCheckpoint(fs, dir, 'last')).rejects.toThrow(/tensor 'model\.encoder\.stem\.0\.weight' holds 1 non-finite value/);
    expect((await loadCheckpoint(fs, dir, 'last', { allowNonFinite: true })).meta.step).toBe(6);
  });

  it('a truncated last checkpoint and a bad metrics line: resume from best, keep every readable line', async () => {
    const dir = copy();
    truncateSync(checkpointPath(dir, 'last'), 1000);
    const metricsPath = join(dir, 'metrics.jsonl');
    const lines = readFileSync(metricsPath, 'utf8').split('\n');
    lines.splice(1, 0, '{"type":"train","step":');
    const damaged = lines.join('\n');
    writeFileSync(metricsPath, damaged);
    const parsed = parseMetricsDetailed(damaged, 'm.jsonl');
    expect(parsed.warnings).toEqual([expect.stringMatching(/^m\.jsonl:2: skipped a line that is not JSON/)]);
    expect(parsed.records.filter((r) => r.type === 'train').map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    const warnings: string[] = [];
    const engine = await gpuEngine();
    await train(ecgStage, null, { engine, fs, runDir: dir, progress: null, resume: true, warn: (m) => warnings.push(m) });
    expect(warnings.some((w) => w.includes('metrics.jsonl:2: skipped'))).toBe(true);
    expect(warnings.some((w) => w.includes("resuming from the 'best' checkpoint"))).toBe(true);
    // Append-only: the damaged text is still the file's beginning.
    expect(readFileSync(metricsPath, 'utf8').startsWith(damaged)).toBe(true);
    expect(trainValues(dir).map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    // Resumed from best: the repeated steps give the first run's values again.
    expect(trainValues(dir)).toEqual(trainValues(run));
  }, CONTENDED_TIMEOUT);
});

function readFileHeader(path: string): Record<string, string> {
  const bytes = new Uint8Array(readFileSync(path));
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  return (JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length))) as { __metadata__: Record<string, string> }).__metadata__;
}
