/** Shared setup of the training tests: contended timeouts, temporary run directories, the metrics log, the stop-and-resume check. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect } from 'vitest';
import type { Engine } from '../../src/engine/engine';
import { loadCheckpoint, parseMetrics, parseRunArgs, train, type BaseStageConfig, type StageFactory, type TrainFileSystem, type TrainRecord, type ValRecord } from '../../src/train/index';
import { flowStage } from '../../src/train/stage-flow';
import { writeTinyChain } from '../../src/train/stage-flow-fixture';
import { releaseGpu } from '../helpers/oracle';

/** Lavapipe shares 2 cores with whatever else runs; compile + train normally takes seconds. */
export const CONTENDED_TIMEOUT = 300_000;

/**
 * A maker of temporary directories named `<prefix>XXXXXX`; after the file's tests the GPU is released and
 * the directories are removed. Call at the top level of a test file.
 */
export function tempDirMaker(prefix: string): () => string {
  const tempDirs: string[] = [];
  afterAll(() => {
    releaseGpu();
    tempDirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  });
  return () => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    tempDirs.push(d);
    return d;
  };
}

export const records = (runDir: string) => parseMetrics(readFileSync(join(runDir, 'metrics.jsonl'), 'utf8'));
/** The logged training steps: step, learning rate and the stage's scalars. */
export const trainValues = <V extends Record<string, number> = Record<string, number>>(runDir: string) =>
  records(runDir).filter((r): r is TrainRecord => r.type === 'train').map((r) => ({ step: r.step, lr: r.lr, ...(r.values as V) }));
export const valValues = (runDir: string) => records(runDir).filter((r): r is ValRecord => r.type === 'val').map((r) => ({ step: r.step, ...r.values }));

/**
 * Trains `config` in `dir` until `stopAfterStep`, expects the `last` checkpoint there at the given data
 * position, resumes to the end (`steps`) and expects the logged values of the uninterrupted run in `first`.
 */
export async function expectResumeRepeats<C extends BaseStageConfig>(
  stage: StageFactory<C>,
  config: C,
  run: { engine: Engine; fs: TrainFileSystem; dir: string; first: string; stopAfterStep: number; steps: number; position: { epoch: number; batchInEpoch: number } },
): Promise<void> {
  const { engine, fs, dir } = run;
  const partial = await train(stage, config, { engine, fs, runDir: dir, progress: null, stopAfterStep: run.stopAfterStep });
  expect(partial).toMatchObject({ completed: false, steps: run.stopAfterStep });
  expect((await loadCheckpoint(fs, dir, 'last')).meta).toMatchObject({ step: run.stopAfterStep, ...run.position });
  const resumed = await train(stage, null, { engine, fs, runDir: dir, progress: null, resume: true });
  expect(resumed).toMatchObject({ completed: true, steps: run.steps });
  expect(trainValues(dir)).toEqual(trainValues(run.first));
  expect(valValues(dir)).toEqual(valValues(run.first));
}

/**
 * The tiny chain (untrained PA-MAE and VAE runs, seeded) under `dir` and a 2-step flow run on it: what the
 * generation and synthesis tests sample from.
 */
export async function tinyFlowRun(engine: Engine, fs: TrainFileSystem, dir: string, seed: number): Promise<{ chain: { ecgRun: string; vaeRun: string }; flowRun: string }> {
  const chain = await writeTinyChain(engine, fs, join(dir, 'chain'), { seed, trainSubjects: 4 });
  const config = flowStage.resolveConfig(parseRunArgs(['--stage', 'flow', '--vae-run', chain.vaeRun, '--ecg-run', chain.ecgRun, '--steps', '2', '--batch', '2', '--val-every', '2']));
  config.valSubjects = 2;
  const flowRun = join(dir, 'flow-run');
  await train(flowStage, config, { engine, fs, runDir: flowRun, progress: null });
  return { chain, flowRun };
}
