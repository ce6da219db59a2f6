/**
 * Training runs outside the CLI (a web page, the browser test's Node reference): the same trainer and
 * stages as `npm run train`, on an in-memory TrainFileSystem, with every metrics line handed to a
 * listener as it is appended (the page's live loss curve). Browser-safe.
 */
import type { Engine } from '../engine/engine';
import { joinPath } from '../data/fs';
import { MemoryTrainFileSystem } from '../train/files';
import { parseMetrics, readMetrics, type MetricsRecord } from '../train/metrics';
import type { Preset, RunOverrides } from '../train/options';
import { STAGES } from '../train/stages';
import { train, type TrainSummary } from '../train/trainer';

export type StageName = 'ecg' | 'vae' | 'flow';

/** A MemoryTrainFileSystem that reports every record appended to a run's metrics.jsonl. */
export class ObservedMemoryFileSystem extends MemoryTrainFileSystem {
  listener: ((runDir: string, record: MetricsRecord) => void) | null = null;

  override async appendFile(path: string, data: Uint8Array): Promise<void> {
    await super.appendFile(path, data);
    if (this.listener && path.endsWith('/metrics.jsonl')) {
      const runDir = path.slice(0, -'/metrics.jsonl'.length);
      for (const record of parseMetrics(new TextDecoder().decode(data))) this.listener(runDir, record);
    }
  }
}

export interface StageRunOptions {
  stage: StageName;
  runDir: string;
  preset?: Preset;
  overrides?: RunOverrides;
  /** Stage flow: the VAE and PA-MAE run directories (in the same file system). */
  vaeRun?: string;
  ecgRun?: string;
  /** Stop after this many steps, as the trainer's tests do (no validation unless at a boundary). */
  stopAfterStep?: number;
}

/** One stage through `train()` (the CLI's loop, checkpoints and stage hooks included). */
export async function runStage(engine: Engine, fs: MemoryTrainFileSystem, options: StageRunOptions): Promise<TrainSummary> {
  const factory = STAGES[options.stage];
  if (!factory) throw new Error(`stage '${options.stage}' is not available`);
  const config = factory.resolveConfig({
    stage: options.stage, preset: options.preset ?? 'tiny', overrides: options.overrides ?? {}, vaeRun: options.vaeRun, ecgRun: options.ecgRun, quiet: true,
  });
  return train(factory, config, { engine, fs, runDir: options.runDir, progress: null, stopAfterStep: options.stopAfterStep });
}

/** The training losses of a run directory, by step (1-based step → loss). */
export async function trainingLosses(fs: MemoryTrainFileSystem, runDir: string): Promise<number[]> {
  const records = await readMetrics(fs, joinPath(runDir, 'metrics.jsonl'));
  return records.filter((r) => r.type === 'train').map((r) => r.values.loss);
}

/**
 * The browser test's training probe: `steps` steps of stage flow (tiny preset, `seed`) on an installed
 * chain, stopped before the first validation; returns the per-step losses and gradient norms.
 */
export async function flowTrainingProbe(engine: Engine, fs: MemoryTrainFileSystem, chain: { ecg: string; vae: string }, steps: number, seed: number, runDir = '/probe/flow'): Promise<{ loss: number[]; gradNorm: number[] }> {
  await runStage(engine, fs, { stage: 'flow', runDir, vaeRun: chain.vae, ecgRun: chain.ecg, overrides: { seed }, stopAfterStep: steps });
  const records = (await readMetrics(fs, joinPath(runDir, 'metrics.jsonl'))).filter((r) => r.type === 'train');
  return { loss: records.map((r) => r.values.loss), gradNorm: records.map((r) => r.values.gradNorm) };
}
