/**
 * Checkpoints: one safetensors file per checkpoint holding every resumable tensor (model weights and
 * buffers under `model.*`, optimizer moments under `optim.*`) with the JSON metadata (config, step,
 * epoch, data position, optimizer scalars, generator states, best metric) embedded in the file's
 * `__metadata__` under the key `checkpoint`. The tensors and their metadata therefore always change
 * together, in one atomic rename; `<name>.json` is a readable copy written after it.
 *
 * Integrity (version 2): the header also holds a content hash of every tensor and of the metadata text
 * (integrity.ts). Saving refuses a state with NaN/Inf values or negative AdamW second moments; loading
 * verifies the hashes, those values and the step counts, and names the file, the entry and the fix.
 */
import { readSafetensors, writeSafetensors } from '../models/io/safetensors';
import type { HostTensor } from '../models/io/tensor';
import { joinPath } from '../data/fs';
import { writeFileAtomic, type TrainFileSystem } from './files';
import { assertFiniteWeights, assertSoundState, CheckpointIntegrityError, sealTensors, verifySealed } from './integrity';
import type { Json, StageMetadata } from './stage';

export const CHECKPOINT_FORMAT = 'ecgflowcmr-train-checkpoint';
/** 2: content hashes in `__metadata__.integrity`. Version 1 files still load, with a warning. */
export const CHECKPOINT_VERSION = 2;
export type CheckpointName = 'last' | 'best';

export interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  stage: string;
  /** The resolved configuration the run was started with. */
  config: { [key: string]: Json };
  /** Optimizer steps completed. */
  step: number;
  /** Epoch of the next step and the index of its batch within the epoch (the data-loader position). */
  epoch: number;
  batchInEpoch: number;
  /** Best validation score so far (lower is better), the step it was reached at, and its name. */
  best: { score: number | null; step: number | null; name: string | null };
  /** Seconds of training before this checkpoint (summed over resumed parts). */
  elapsedSeconds: number;
  /** Stage-owned host state: optimizer scalars and step counts, generator states. */
  stageState: StageMetadata;
  savedAt: string;
  /** Non-finite steps: the current streak of consecutive ones and the run's total (trainer policy). */
  nonFinite?: { consecutive: number; total: number };
}

export interface Checkpoint {
  meta: CheckpointMeta;
  tensors: Map<string, HostTensor>;
  /** Checks that could not be made (an old file without hashes). */
  warnings: string[];
}

export interface LoadCheckpointOptions {
  /** Load a state with NaN/Inf values (--allow-nonfinite-weights); hashes and other checks still apply. */
  allowNonFinite?: boolean;
}

/** The CLI spelling of the opt-out, for error messages. */
export const ALLOW_NON_FINITE_FLAG = '--allow-nonfinite-weights';

export const checkpointPath = (runDir: string, name: CheckpointName) => joinPath(runDir, 'checkpoints', `${name}.safetensors`);

/**
 * Writes `<runDir>/checkpoints/<name>.safetensors` atomically, then its JSON copy. Refuses (before writing
 * anything) a state with NaN/Inf values or a negative AdamW second moment, so a diverged step can never
 * replace a good checkpoint.
 */
export async function saveCheckpoint(fs: TrainFileSystem, runDir: string, name: CheckpointName, meta: CheckpointMeta, tensors: Map<string, HostTensor>): Promise<string> {
  const dir = joinPath(runDir, 'checkpoints');
  const path = checkpointPath(runDir, name);
  assertSoundState(path, tensors, `Not written: the '${name}' checkpoint on disk is kept as it was (step ${meta.step} is not saved)`, '(nothing: a bad state is never saved)');
  await fs.mkdir(dir);
  const metaText = JSON.stringify(meta);
  await writeFileAtomic(fs, path, writeSafetensors(tensors, { checkpoint: metaText, integrity: sealTensors(tensors, metaText) }));
  await writeFileAtomic(fs, joinPath(dir, `${name}.json`), JSON.stringify(meta, null, 1) + '\n');
  return path;
}

/** Optimizer step counts found in a stage's metadata (`optimizer.steps`, `optimizers.<name>.steps`). */
function optimizerStepCounts(stageState: StageMetadata): number[][] {
  const out: number[][] = [];
  const visit = (v: Json | undefined) => {
    if (v && typeof v === 'object' && !Array.isArray(v) && Array.isArray(v.steps)) out.push(v.steps as number[]);
  };
  visit(stageState.optimizer);
  const many = stageState.optimizers;
  if (many && typeof many === 'object' && !Array.isArray(many)) Object.values(many).forEach(visit);
  return out;
}

/**
 * The stored step against the rest of the checkpoint: a non-negative integer, no later than the best step
 * or any optimizer's step count, and no further ahead of the largest step count than the steps skipped
 * for non-finite gradients allow.
 */
function checkStepConsistency(path: string, meta: CheckpointMeta): void {
  const fix = 'The metadata was edited or damaged; use another checkpoint (best, or an earlier copy) or retrain';
  if (!Number.isInteger(meta.step) || meta.step < 0) throw new CheckpointIntegrityError(path, 'metadata step', `is ${String(meta.step)}, not an integer >= 0`, fix);
  if (meta.best?.step != null && meta.best.step > meta.step) throw new CheckpointIntegrityError(path, 'metadata best.step', `(${meta.best.step}) is later than the checkpoint's step ${meta.step}`, fix);
  const counts = optimizerStepCounts(meta.stageState ?? {});
  if (!counts.length) return;
  const all = counts.flat();
  const latest = Math.max(0, ...all);
  if (latest > meta.step) throw new CheckpointIntegrityError(path, 'metadata step', `is ${meta.step}, but an optimizer has taken ${latest} steps`, fix);
  const state = meta.stageState as { amp?: { skippedSteps?: number }; nonfinite?: { skippedSteps?: number } };
  const skipped = (state.amp?.skippedSteps ?? 0) + (state.nonfinite?.skippedSteps ?? 0);
  if (meta.step > 0 && latest + skipped < meta.step) {
    throw new CheckpointIntegrityError(path, 'metadata step', `is ${meta.step}, but the optimizers have taken at most ${latest} steps and ${skipped} were skipped`, fix);
  }
}

/**
 * Reads and checks `<runDir>/checkpoints/<name>.safetensors`: the content hashes (tensors and metadata text),
 * the step counts and the values (finite, second moments >= 0; non-finite ones only with allowNonFinite).
 */
export async function loadCheckpoint(fs: TrainFileSystem, runDir: string, name: CheckpointName = 'last', options: LoadCheckpointOptions = {}): Promise<Checkpoint> {
  const path = checkpointPath(runDir, name);
  if (!(await fs.exists(path))) throw new Error(`${path}: no checkpoint to resume from (is ${runDir} a run directory with a saved step?)`);
  const file = readSafetensors(await fs.readFile(path), { name: path });
  const raw = file.metadata.checkpoint;
  if (!raw) throw new Error(`${path}: not a training checkpoint (no 'checkpoint' metadata)`);
  const warnings: string[] = [];
  const sealed = verifySealed(path, file.tensors, file.metadata, 'checkpoint');
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(raw) as CheckpointMeta;
  } catch {
    throw new CheckpointIntegrityError(path, '__metadata__.checkpoint', 'is not valid JSON', 'Use another checkpoint (best, or an earlier copy) or retrain');
  }
  if (meta.format !== CHECKPOINT_FORMAT) throw new Error(`${path}: unknown checkpoint format '${meta.format}'`);
  if (meta.version > CHECKPOINT_VERSION) throw new Error(`${path}: checkpoint version ${meta.version} is newer than this code (${CHECKPOINT_VERSION})`);
  if (!sealed) {
    if (meta.version >= 2) throw new CheckpointIntegrityError(path, `__metadata__.integrity`, 'is missing from a version-2 checkpoint', 'The header was rewritten; use another checkpoint or retrain');
    warnings.push(`${path}: written before content hashes (checkpoint version ${meta.version}); only its values and step counts were checked`);
  }
  checkStepConsistency(path, meta);
  if (!options.allowNonFinite) assertSoundState(path, file.tensors, 'Use another checkpoint (best, or an earlier copy) or retrain', ALLOW_NON_FINITE_FLAG);
  return { meta, tensors: file.tensors, warnings };
}

/**
 * The checkpoint a resumed run continues from: `last`, or `best` (with a warning through `warn`) when
 * `last` is missing, unreadable or fails its checks. With neither usable, the error of `last` is thrown.
 */
export async function resumeCheckpoint(fs: TrainFileSystem, runDir: string, warn: (message: string) => void): Promise<{ checkpoint: Checkpoint; from: CheckpointName }> {
  try {
    const checkpoint = await loadCheckpoint(fs, runDir, 'last');
    checkpoint.warnings.forEach(warn);
    return { checkpoint, from: 'last' };
  } catch (lastError) {
    if (!(await fs.exists(checkpointPath(runDir, 'best')))) throw lastError;
    let checkpoint: Checkpoint;
    try {
      checkpoint = await loadCheckpoint(fs, runDir, 'best');
    } catch {
      throw lastError;
    }
    warn(`${(lastError as Error).message}\nresuming from the 'best' checkpoint instead (step ${checkpoint.meta.step}); the steps after it are repeated`);
    checkpoint.warnings.forEach(warn);
    return { checkpoint, from: 'best' };
  }
}

export interface ReadWeightsOptions {
  /** Accept NaN/Inf values (--allow-nonfinite-weights). */
  allowNonFinite?: boolean;
}

/**
 * A weights file (safetensors) for loading into a model: its content hashes verified when it has them
 * (best-weights.safetensors does), and refused with NonFiniteWeightsError, naming the file and tensor, when
 * a value is NaN/Inf (unless allowNonFinite).
 */
export async function readWeights(fs: TrainFileSystem, path: string, options: ReadWeightsOptions = {}): Promise<{ tensors: Map<string, HostTensor>; metadata: Record<string, string> }> {
  const file = readSafetensors(await fs.readFile(path), { name: path });
  verifySealed(path, file.tensors, file.metadata);
  assertFiniteWeights(file.tensors, { source: path, allowNonFinite: options.allowNonFinite, optOut: ALLOW_NON_FINITE_FLAG });
  return file;
}

/** Tensors under `prefix` with the prefix removed (e.g. the `model.` entries as a plain state dict). */
export function withoutPrefix(tensors: Map<string, HostTensor>, prefix: string): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [k, v] of tensors) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}
