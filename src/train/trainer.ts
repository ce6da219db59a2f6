/**
 * The stage-independent training loop: data prefetch, one-step-late readback of the step's scalars,
 * metrics log, loss-curve SVG, periodic validation with best-checkpoint selection, atomic `last`/`best`
 * checkpoints and exact resume.
 *
 * Run directory:
 *   config.json                        the resolved configuration
 *   metrics.jsonl                      one JSON line per step ("train") and per validation ("val")
 *   loss.svg                           loss curves, redrawn every plotEvery steps and at the end
 *   checkpoints/last.safetensors       (+ last.json) newest state: weights, optimizer moments, metadata
 *   checkpoints/best.safetensors       (+ best.json) state at the best validation score
 *   best-weights.safetensors           the best model weights alone, reference key names
 *   summary.json                       written when the run completes
 *
 * Exact resume: everything a step depends on is restored (weights, BatchNorm buffers, optimizer moments
 * and step counts, generator counters) and the rest is a pure function of the step index (learning rate,
 * data epoch/batch), so a resumed run repeats the uninterrupted run's arithmetic step for step. A `last`
 * checkpoint that fails its checks (checkpoint.ts) is replaced by `best`, with a warning.
 *
 * Non-finite values (nonfinite.ts): judged from the scalars read back anyway, by the run's policy; a state
 * with NaN/Inf is never checkpointed and a non-finite validation score is never `best`.
 */
import type { Engine } from '../engine/engine';
import type { Tensor } from '../engine/tensor';
import { concat } from '../kernels/layout';
import { reshape } from '../kernels/views';
import { tidy } from '../engine/scope';
import { joinPath } from '../data/fs';
import { writeSafetensors } from '../models/io/safetensors';
import { writeFileAtomic, type TrainFileSystem } from './files';
import { MetricsLog, type TrainRecord } from './metrics';
import { lossCurveSvg } from './plot';
import { Progress, type ProgressSink } from './progress';
import { formatKernelProfile, type KernelProfile } from '../engine/profiler';
import { CHECKPOINT_FORMAT, CHECKPOINT_VERSION, checkpointPath, resumeCheckpoint, saveCheckpoint, type CheckpointMeta, type CheckpointName } from './checkpoint';
import { CheckpointIntegrityError, findNonFinite, INTEGRITY_KEY, NonFiniteWeightsError, sealTensors } from './integrity';
import { NonFiniteMonitor, nonFiniteStateError, NonFiniteTrainingError, type NonFiniteCounts, type NonFinitePolicy } from './nonfinite';
import type { BaseStageConfig, Json, Stage, StageBatches, StageFactory } from './stage';

export interface TrainerOptions {
  engine: Engine;
  fs: TrainFileSystem;
  runDir: string;
  /** Continue the run in runDir from its `last` checkpoint (the stored config wins). */
  resume?: boolean;
  /** Progress output (stderr in the CLI); null = silent. */
  progress?: ProgressSink | null;
  /** Stop (after checkpointing) once this many steps are done, as if interrupted (tests). */
  stopAfterStep?: number;
  /** Batches loaded ahead of the step that uses them. */
  prefetch?: number;
  /**
   * Time every kernel of this many steps (from the second step of this process on: the first compiles
   * pipelines) and write `profile.json` and `profile.txt`; 0 = off. Profiled steps run slower.
   */
  profileSteps?: number;
  /** Output-only settings that win over the stored configuration (so a resumed run may log differently). */
  display?: { logEvery?: number; plotEvery?: number };
  /** What to do about NaN/Inf losses and gradients (default: stop after 3 consecutive, 25 with AMP). */
  nonFinite?: NonFinitePolicy;
  /** Stage flow: load upstream weights with NaN/Inf values (refused by default). */
  allowNonFiniteWeights?: boolean;
  /** Warnings (a checkpoint fallback, skipped metrics lines, non-finite steps); default console.warn. */
  warn?: (message: string) => void;
}

export interface TrainSummary {
  stage: string;
  runDir: string;
  steps: number;
  totalSteps: number;
  completed: boolean;
  firstLoss: number | null;
  lastLoss: number | null;
  best: CheckpointMeta['best'];
  stepsPerSecond: number;
  seconds: number;
  files: Record<string, string>;
  /** Non-finite steps (skipped updates, NaN/Inf losses): the last streak and the run's total. */
  nonFinite: NonFiniteCounts;
}

/** Keeps up to `ahead` future batches loading while the current step runs. */
class Prefetcher<B> {
  private readonly pending = new Map<number, Promise<B>>();
  constructor(private readonly batches: StageBatches<B>, private readonly ahead: number, private readonly totalSteps: number) {}

  private request(step: number): void {
    if (step >= this.totalSteps || this.pending.has(step)) return;
    const bpe = this.batches.batchesPerEpoch;
    const promise = this.batches.load(Math.floor(step / bpe), step % bpe);
    // A failure surfaces when the step awaits it; until then keep it from being reported as unhandled.
    promise.catch(() => undefined);
    this.pending.set(step, promise);
  }

  get(step: number): Promise<B> {
    for (let s = step; s <= step + this.ahead; s++) this.request(s);
    const promise = this.pending.get(step)!;
    this.pending.delete(step);
    return promise;
  }
}

/** One pending readback: the packed scalars of a step, copied off the device but not yet awaited. */
interface PendingRead {
  step: number;
  epoch: number;
  lr: number;
  names: string[];
  values: Promise<Float32Array | Int32Array | Uint32Array>;
}

/** Packs the step's scalars into one tensor and starts its copy to the host (no wait). */
function startReadback(engine: Engine, scalars: Record<string, Tensor>): { names: string[]; values: PendingRead['values'] } {
  const names = Object.keys(scalars);
  const packed = tidy(() => concat(names.map((n) => reshape(scalars[n], [1])), 0));
  engine.flush();
  // data() records the copy and submits it synchronously; awaiting happens a step later.
  const values = packed.data();
  packed.dispose();
  for (const n of names) scalars[n].dispose();
  return { names, values };
}

const isBoundary = (done: number, every: number, total: number) => done === total || (every > 0 && done % every === 0);

export class Trainer {
  private constructor(
    private readonly options: TrainerOptions,
    readonly stage: Stage,
    private readonly metrics: MetricsLog,
    private step: number,
    private best: CheckpointMeta['best'],
    private readonly elapsedBefore: number,
    private readonly nonFinite: NonFiniteMonitor,
  ) {
    this.lastSaved = step;
  }

  private static warner(options: TrainerOptions): (message: string) => void {
    return options.warn ?? ((m) => console.warn(`warning: ${m}`));
  }

  /** Builds the stage from a fresh config or from the run directory's last checkpoint. */
  static async open<C extends BaseStageConfig>(factory: StageFactory<C>, config: C | null, options: TrainerOptions): Promise<Trainer> {
    const { fs, runDir, engine } = options;
    await fs.mkdir(runDir);
    await fs.mkdir(joinPath(runDir, 'checkpoints'));
    const metricsPath = joinPath(runDir, 'metrics.jsonl');
    if (options.resume) {
      // A process killed while writing leaves a temporary file next to the intact checkpoint: drop it.
      const checkpointDir = joinPath(runDir, 'checkpoints');
      for (const name of await fs.listDir(checkpointDir)) if (name.includes('.tmp-')) await fs.remove(joinPath(checkpointDir, name));
      for (const name of await fs.listDir(runDir)) if (name.includes('.tmp-')) await fs.remove(joinPath(runDir, name));
      const { checkpoint, from } = await resumeCheckpoint(fs, runDir, Trainer.warner(options));
      const meta = checkpoint.meta;
      if (meta.stage !== factory.name) throw new Error(`${runDir} holds a '${meta.stage}' run, not '${factory.name}'`);
      const stage = await factory.create(meta.config as unknown as C, { engine, fs, allowNonFiniteWeights: options.allowNonFiniteWeights });
      try {
        const bpe = stage.train.batchesPerEpoch;
        if (meta.epoch * bpe + meta.batchInEpoch !== meta.step) {
          throw new CheckpointIntegrityError(checkpointPath(runDir, from), 'metadata epoch/batchInEpoch', `(${meta.epoch}, ${meta.batchInEpoch}) do not give step ${meta.step} at ${bpe} batches per epoch`, 'The metadata was edited or damaged; use another checkpoint or retrain');
        }
        stage.loadState(checkpoint.tensors, meta.stageState);
      } catch (e) {
        stage.dispose();
        throw e;
      }
      const metrics = await MetricsLog.resume(fs, metricsPath, meta.step, from, Trainer.warner(options));
      const monitor = new NonFiniteMonitor(options.nonFinite, Boolean(meta.config.amp), meta.nonFinite);
      return new Trainer(options, stage, metrics, meta.step, meta.best, meta.elapsedSeconds, monitor);
    }
    if (!config) throw new Error('Trainer.open: a configuration is needed for a new run');
    const stage = await factory.create(config, { engine, fs, allowNonFiniteWeights: options.allowNonFiniteWeights });
    // Written after create(): a stage may refine its config once the data is open (epoch length).
    await writeFileAtomic(fs, joinPath(runDir, 'config.json'), JSON.stringify(stage.config, null, 1) + '\n');
    const metrics = await MetricsLog.create(fs, metricsPath);
    const monitor = new NonFiniteMonitor(options.nonFinite, Boolean((config as { amp?: boolean }).amp));
    return new Trainer(options, stage, metrics, 0, { score: null, step: null, name: null }, 0, monitor);
  }

  get config(): BaseStageConfig {
    return this.stage.config;
  }

  get stepsDone(): number {
    return this.step;
  }

  private path(name: string): string {
    return joinPath(this.options.runDir, name);
  }

  private metaAt(elapsed: number): CheckpointMeta {
    const bpe = this.stage.train.batchesPerEpoch;
    return {
      format: CHECKPOINT_FORMAT,
      version: CHECKPOINT_VERSION,
      stage: this.stage.name,
      config: this.config as unknown as { [key: string]: Json },
      step: this.step,
      epoch: Math.floor(this.step / bpe),
      batchInEpoch: this.step % bpe,
      best: this.best,
      elapsedSeconds: elapsed,
      stageState: this.stage.metadata(),
      savedAt: new Date().toISOString(),
      nonFinite: this.nonFinite.state,
    };
  }

  /** Saves a checkpoint; a state with NaN/Inf values is not saved and stops the run (naming the tensor). */
  private async checkpoint(name: CheckpointName, elapsed: number): Promise<string> {
    const tensors = await this.stage.stateTensors();
    try {
      return await saveCheckpoint(this.options.fs, this.options.runDir, name, this.metaAt(elapsed), tensors);
    } catch (e) {
      if (e instanceof NonFiniteWeightsError) throw nonFiniteStateError(this.step, `training state for the '${name}' checkpoint`, e.report);
      throw e;
    }
  }

  /** The model weights alone as best-weights.safetensors, hashed; never with NaN/Inf values. */
  private async saveBestWeights(step: number): Promise<void> {
    const weights = await this.stage.weightTensors();
    const report = findNonFinite(weights);
    if (report) throw nonFiniteStateError(step, 'best model weights', report);
    const bytes = writeSafetensors(weights, { stage: this.stage.name, step: String(step), [INTEGRITY_KEY]: sealTensors(weights) });
    await writeFileAtomic(this.options.fs, this.path('best-weights.safetensors'), bytes);
  }

  /** Adds to a stop error where the model state stands (one readback; only when stopping). */
  private async diagnose(error: NonFiniteTrainingError): Promise<NonFiniteTrainingError> {
    let state: string;
    try {
      const report = findNonFinite(await this.stage.stateTensors());
      state = report
        ? `model state: tensor '${report.key}' holds ${report.count} non-finite value(s) of ${report.numel}`
        : 'model state: finite (the non-finite updates were skipped)';
      if (report && !error.tensors.includes(report.key)) error.tensors.push(report.key);
    } catch (e) {
      state = `model state could not be read back (${(e as Error).message})`;
    }
    const saved = this.lastSaved > 0 ? `the checkpoints on disk are from step ${this.lastSaved} or earlier` : 'no checkpoint was written';
    error.message = `${error.message}. ${state}; ${saved}`;
    return error;
  }

  /** The step of the newest checkpoint on disk (the resumed one before this process saves). */
  private lastSaved: number;

  private async plot(): Promise<void> {
    await writeFileAtomic(this.options.fs, this.path('loss.svg'), lossCurveSvg(this.metrics.records, `${this.stage.name}: loss (log scale) by step`));
  }

  /** Runs from the current step to the end (or to stopAfterStep). */
  async run(): Promise<TrainSummary> {
    const { engine, fs } = this.options;
    const config = this.config;
    const total = config.totalSteps;
    const bpe = this.stage.train.batchesPerEpoch;
    const logEvery = this.options.display?.logEvery ?? config.logEvery;
    const plotEvery = this.options.display?.plotEvery ?? config.plotEvery;
    const progress = new Progress(this.options.progress ?? null, logEvery);
    // Warnings go through the progress output (keeping a terminal bar tidy), or to console.warn when quiet.
    const warn = this.options.warn ?? (this.options.progress ? (m: string) => progress.note(`warning: ${m}`) : Trainer.warner(this.options));
    const prefetch = new Prefetcher(this.stage.train, this.options.prefetch ?? 2, total);
    const stopAt = Math.min(total, this.options.stopAfterStep ?? total);
    const started = performance.now();
    const elapsed = () => this.elapsedBefore + (performance.now() - started) / 1000;
    const startStep = this.step;
    let rateStart: { step: number; time: number } | null = null;
    let stepsPerSecond = 0;
    let pending: PendingRead | null = null;

    const drain = async (): Promise<void> => {
      if (!pending) return;
      const read = pending;
      pending = null;
      const raw = await read.values;
      const values: Record<string, number> = {};
      // The loss scaler's scalars (`amp.*`, or the guard's `nonfinite.*`) go to their own fields, not to the loss curves.
      const amp: Record<string, number> = {};
      const guard: Record<string, number> = {};
      read.names.forEach((n, i) => {
        if (n.startsWith('amp.')) amp[n.slice(4)] = raw[i];
        else if (n.startsWith('nonfinite.')) guard[n.slice(10)] = raw[i];
        else values[n] = raw[i];
      });
      const now = performance.now();
      // Steps/s from the second completed step on: the first one includes pipeline compilation.
      if (!rateStart) rateStart = { step: read.step, time: now };
      else stepsPerSecond = (read.step - rateStart.step) / ((now - rateStart.time) / 1000);
      const memory = engine.memory();
      const record: TrainRecord & { amp?: Record<string, number>; nonfinite?: Record<string, number> } = {
        type: 'train', step: read.step, epoch: read.epoch, lr: read.lr, values, time: elapsed(), stepsPerSecond,
        memory: { liveMiB: memory.liveBytes / 2 ** 20, peakMiB: memory.peakBytes / 2 ** 20 },
        ...(Object.keys(amp).length ? { amp } : {}),
        ...(Object.keys(guard).length ? { nonfinite: guard } : {}),
      };
      await this.metrics.append(record);
      // NaN/Inf in the loss parts or a device-skipped update: warn, or stop by the policy (throws).
      const warning = this.nonFinite.observe(read.step, values, guard.skipped ?? amp.skipped);
      if (warning) warn(warning);
      progress.update({ step: read.step, totalSteps: total, epoch: read.epoch, values, stepsPerSecond });
      if (plotEvery > 0 && read.step % plotEvery === 0) await this.plot();
    };

    const profileFrom = startStep + 1;
    const profileTo = profileFrom + (this.options.profileSteps ?? 0);
    try {
      while (this.step < stopAt) {
        const stepIndex = this.step;
        const epoch = Math.floor(stepIndex / bpe);
        const batch = await prefetch.get(stepIndex);
        if (stepIndex === profileFrom && profileTo > profileFrom) engine.startProfile();
        const out = await this.stage.trainStep(batch, stepIndex);
        if (stepIndex + 1 === Math.min(profileTo, stopAt) && stepIndex >= profileFrom) await this.writeProfile(await engine.stopProfile(), stepIndex + 1 - profileFrom, progress);
        const current: PendingRead = { step: stepIndex + 1, epoch, lr: out.lr, ...startReadback(engine, out.scalars) };
        this.step = stepIndex + 1;
        // Log the previous step while the device works on this one.
        await drain();
        pending = current;
        const done = this.step;
        const validate = isBoundary(done, config.valEvery, total);
        const save = validate || isBoundary(done, config.checkpointEvery, total) || done === stopAt;
        if (!save) continue;
        await drain();
        if (validate) {
          const result = await this.stage.validate();
          const finite = Number.isFinite(result.score) && Object.values(result.metrics).every(Number.isFinite);
          const improved = finite && (this.best.score === null || result.score < this.best.score);
          if (improved) this.best = { score: result.score, step: done, name: result.scoreName };
          await this.metrics.append({ type: 'val', step: done, epoch, values: result.metrics, score: result.score, scoreName: result.scoreName, best: improved, time: elapsed() });
          // A NaN/Inf score is never best; the policy decides whether the run goes on (throws to stop).
          if (!finite) warn(this.nonFinite.observeValidation(done, result.metrics, result.scoreName));
          const shown = Object.entries(result.metrics).map(([k, v]) => `${k} ${v.toPrecision(4)}`).join('  ');
          progress.note(`validation at step ${done}: ${shown}${improved ? '  (best)' : ''}`);
          if (improved) {
            await this.checkpoint('best', elapsed());
            await this.saveBestWeights(done);
          }
        }
        await this.checkpoint('last', elapsed());
        this.lastSaved = done;
      }
      await drain();
    } catch (e) {
      progress.finish();
      throw e instanceof NonFiniteTrainingError ? await this.diagnose(e) : e;
    }
    progress.finish();
    await this.plot();

    const trainRecords = this.metrics.records.filter((r): r is TrainRecord => r.type === 'train');
    const files: Record<string, string> = {
      runDir: this.options.runDir,
      config: this.path('config.json'),
      metrics: this.path('metrics.jsonl'),
      lossCurve: this.path('loss.svg'),
      lastCheckpoint: this.path('checkpoints/last.safetensors'),
    };
    if (this.best.step !== null) {
      files.bestCheckpoint = this.path('checkpoints/best.safetensors');
      files.bestWeights = this.path('best-weights.safetensors');
    }
    const summary: TrainSummary = {
      stage: this.stage.name,
      runDir: this.options.runDir,
      steps: this.step,
      totalSteps: total,
      completed: this.step >= total,
      firstLoss: trainRecords[0]?.values.loss ?? null,
      lastLoss: trainRecords[trainRecords.length - 1]?.values.loss ?? null,
      best: this.best,
      // A resumed run that had nothing left to do reports the rate its last logged step saw.
      stepsPerSecond: this.step > startStep ? stepsPerSecond : (trainRecords[trainRecords.length - 1]?.stepsPerSecond ?? 0),
      seconds: elapsed(),
      files,
      nonFinite: this.nonFinite.state,
    };
    if (summary.completed) {
      files.summary = this.path('summary.json');
      await writeFileAtomic(fs, files.summary, JSON.stringify(summary, null, 1) + '\n');
    }
    return summary;
  }

  private async writeProfile(profile: KernelProfile, steps: number, progress: Progress): Promise<void> {
    const perStep = { ...profile, steps, kernels: profile.kernels.map((k) => ({ ...k, msPerStep: k.totalMs / steps })) };
    await writeFileAtomic(this.options.fs, this.path('profile.json'), JSON.stringify(perStep, null, 1) + '\n');
    const table = `${steps} profiled step(s) of stage ${this.stage.name}\n${formatKernelProfile(profile, 40)}\n`;
    await writeFileAtomic(this.options.fs, this.path('profile.txt'), table);
    progress.note(`kernel profile of ${steps} step(s): ${(profile.totalMs / steps).toFixed(0)} ms GPU time per step; ${this.path('profile.txt')}`);
  }

  dispose(): void {
    this.stage.dispose();
  }
}

/** Opens (or resumes) a run, trains it and frees the stage. */
export async function train<C extends BaseStageConfig>(factory: StageFactory<C>, config: C | null, options: TrainerOptions): Promise<TrainSummary> {
  const trainer = await Trainer.open(factory, config, options);
  let summary: TrainSummary;
  try {
    summary = await trainer.run();
  } finally {
    trainer.dispose();
  }
  if (summary.completed && factory.afterTraining) {
    const { engine, fs, runDir } = options;
    Object.assign(summary.files, await factory.afterTraining({ engine, fs, runDir }));
  }
  return summary;
}
