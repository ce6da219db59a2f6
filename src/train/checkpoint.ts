/**
 * Checkpoints: one safetensors file per checkpoint holding every resumable tensor (model weights and
 * buffers under `model.*`, optimizer moments under `optim.*`) with the JSON metadata (config, step,
 * epoch, data position, optimizer scalars, generator states, best metric) embedded in the file's
 * `__metadata__` under the key `checkpoint`. The tensors and their metadata therefore always change
 * together, in one atomic rename; `<name>.json` is a readable copy written after it.
 */
import { readSafetensors, writeSafetensors } from '../models/io/safetensors';
import type { HostTensor } from '../models/io/tensor';
import { joinPath } from '../data/fs';
import { writeFileAtomic, type TrainFileSystem } from './files';
import type { Json, StageMetadata } from './stage';

export const CHECKPOINT_FORMAT = 'ecgflowcmr-train-checkpoint';
export const CHECKPOINT_VERSION = 1;
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
}

export interface Checkpoint {
  meta: CheckpointMeta;
  tensors: Map<string, HostTensor>;
}

export const checkpointPath = (runDir: string, name: CheckpointName) => joinPath(runDir, 'checkpoints', `${name}.safetensors`);

/** Writes `<runDir>/checkpoints/<name>.safetensors` atomically, then its JSON copy. */
export async function saveCheckpoint(fs: TrainFileSystem, runDir: string, name: CheckpointName, meta: CheckpointMeta, tensors: Map<string, HostTensor>): Promise<string> {
  const dir = joinPath(runDir, 'checkpoints');
  await fs.mkdir(dir);
  const path = checkpointPath(runDir, name);
  await writeFileAtomic(fs, path, writeSafetensors(tensors, { checkpoint: JSON.stringify(meta) }));
  await writeFileAtomic(fs, joinPath(dir, `${name}.json`), JSON.stringify(meta, null, 1) + '\n');
  return path;
}

export async function loadCheckpoint(fs: TrainFileSystem, runDir: string, name: CheckpointName = 'last'): Promise<Checkpoint> {
  const path = checkpointPath(runDir, name);
  if (!(await fs.exists(path))) throw new Error(`${path}: no checkpoint to resume from (is ${runDir} a run directory with a saved step?)`);
  const file = readSafetensors(await fs.readFile(path), { name: path });
  const raw = file.metadata.checkpoint;
  if (!raw) throw new Error(`${path}: not a training checkpoint (no 'checkpoint' metadata)`);
  const meta = JSON.parse(raw) as CheckpointMeta;
  if (meta.format !== CHECKPOINT_FORMAT) throw new Error(`${path}: unknown checkpoint format '${meta.format}'`);
  if (meta.version > CHECKPOINT_VERSION) throw new Error(`${path}: checkpoint version ${meta.version} is newer than this code (${CHECKPOINT_VERSION})`);
  return { meta, tensors: file.tensors };
}

/** Tensors under `prefix` with the prefix removed (e.g. the `model.` entries as a plain state dict). */
export function withoutPrefix(tensors: Map<string, HostTensor>, prefix: string): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [k, v] of tensors) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}
