/**
 * Data for stage 3 (AMDF flow matching): the stored VAE latents of the VAE run's training subjects
 * (x₁ = mode μ, computed once by stage `vae`), each paired with the same subject's ECG, in batches
 * addressed by (epoch, index); the validation subjects' latents are read from the VAE run when it stored
 * them, otherwise encoded here once with the VAE's best weights (mode μ, no gradient).
 *
 * Pairing: the latents file names its subjects (ids or indices in its metadata, see `latentSubjects`).
 * Phantom subjects are (seed, index) pairs whose ECG is regenerated on the fly (ECG only, ≈30 ms); dataset
 * subjects are rows of the dataset's `train` split, read through NpyDatasetSource.
 */
import { DataError } from '../data/errors';
import { joinPath, type DataFileSystem } from '../data/fs';
import { epochOrder, NpyDatasetSource } from '../data/loader';
import { generateSubject } from '../data/phantom/subject';
import { normalizeClip } from '../data/preprocess/cmr';
import type { SplitName } from '../data/dataset';
import { readSafetensors } from '../models/io/safetensors';
import type { HostTensor } from '../models/io/tensor';
import { resampleArea, SOURCE_LEADS, SOURCE_SAMPLES } from './ecg-data';
import type { StageBatches } from './stage';

/** File names inside a VAE run directory (written by stage `vae`). */
export const VAE_RUN_FILES = {
  weights: 'best-weights.safetensors',
  latents: 'latents.safetensors',
  template: 'template.safetensors',
  /** Optional: latents of the validation subjects, same layout (encoded here when absent). */
  valLatents: 'val-latents.safetensors',
} as const;

/** Where one subject's ECG (and cine) comes from. */
export type SubjectRef = { kind: 'phantom'; seed: number; index: number } | { kind: 'dataset'; dir: string; split: SplitName; row: number };

/** Latents (N, C, T, h, w) as one host array with the subjects they belong to, in order. */
export interface LatentSet {
  data: Float32Array;
  /** [C, T, h, w] of one sample. */
  sampleShape: [number, number, number, number];
  subjects: SubjectRef[];
}

const PHANTOM_ID = /^phantom-s(\d+)-(\d+)$/;

function parseJsonArray(text: string | undefined): unknown[] | null {
  if (text === undefined) return null;
  try {
    const value = JSON.parse(text) as unknown;
    return Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

/** The one rank-5 tensor of a file, preferring `preferred` when several are stored. */
export function pickTensor(tensors: Map<string, HostTensor>, preferred: readonly string[], source: string): HostTensor {
  for (const key of preferred) {
    const t = tensors.get(key);
    if (t) return t;
  }
  const rank5 = [...tensors.values()].filter((t) => t.shape.length === 5);
  if (rank5.length !== 1) throw new DataError(source, `expected one (N, C, T, h, w) tensor (named ${preferred.join(' or ')}), found ${[...tensors.keys()].join(', ') || 'none'}`);
  return rank5[0];
}

/**
 * The subjects of a latents file, in row order. Its metadata may hold `ids` (JSON string array: phantom
 * ids `phantom-s<seed>-<index>` or dataset subject ids) and/or `indices` (JSON number array: phantom
 * indices or dataset rows). Without either, row i is phantom index i of the VAE run's seed, or row i of
 * the dataset's train split when the VAE run trained on `data`.
 */
export function latentSubjects(metadata: Record<string, string>, count: number, vaeRun: { seed: number; data: string | null }, datasetIds?: readonly string[]): SubjectRef[] {
  const ids = parseJsonArray(metadata.ids ?? metadata.subjectIds ?? metadata.subjects);
  const indices = parseJsonArray(metadata.indices ?? metadata.rows);
  const check = (n: number) => {
    if (n !== count) throw new DataError('latents', `metadata lists ${n} subjects for ${count} latents`);
  };
  if (ids && ids.every((id) => typeof id === 'string' && PHANTOM_ID.test(id))) {
    check(ids.length);
    return (ids as string[]).map((id) => {
      const m = PHANTOM_ID.exec(id)!;
      return { kind: 'phantom', seed: Number(m[1]), index: Number(m[2]) };
    });
  }
  if (vaeRun.data) {
    const dir = vaeRun.data;
    if (ids && datasetIds) {
      check(ids.length);
      const rowOf = new Map(datasetIds.map((id, row) => [id, row]));
      return (ids as string[]).map((id) => {
        const row = rowOf.get(id);
        if (row === undefined) throw new DataError(dir, `latent subject '${id}' is not in the train split`);
        return { kind: 'dataset', dir, split: 'train', row };
      });
    }
    const rows = indices ?? Array.from({ length: count }, (_, i) => i);
    check(rows.length);
    return rows.map((row) => ({ kind: 'dataset', dir, split: 'train', row: Number(row) }));
  }
  const phantomIndices = indices ?? Array.from({ length: count }, (_, i) => i);
  check(phantomIndices.length);
  return phantomIndices.map((index) => ({ kind: 'phantom', seed: vaeRun.seed, index: Number(index) }));
}

export async function readLatentFile(fs: DataFileSystem, path: string, vaeRun: { seed: number; data: string | null }): Promise<LatentSet> {
  const file = readSafetensors(await fs.readFile(path), { name: path });
  const t = pickTensor(file.tensors, ['latents', 'all_latents'], path);
  const [n, c, frames, h, w] = t.shape;
  const datasetIds = vaeRun.data ? (await NpyDatasetSource.open(fs, vaeRun.data, 'train', { batchSize: 1, shuffle: false })).ids : undefined;
  return { data: t.toFloat32(), sampleShape: [c, frames, h, w], subjects: latentSubjects(file.metadata, n, vaeRun, datasetIds) };
}

/** The anatomy template (1, C, 1, h, w) of a VAE run. */
export async function readTemplate(fs: DataFileSystem, vaeRunDir: string): Promise<HostTensor> {
  const path = joinPath(vaeRunDir, VAE_RUN_FILES.template);
  if (!(await fs.exists(path))) throw new DataError(path, 'no anatomy template; was the VAE run completed?');
  const t = pickTensor(readSafetensors(await fs.readFile(path), { name: path }).tensors, ['template', 'anatomy_template'], path);
  if (t.shape[0] !== 1 || t.shape[2] !== 1) throw new DataError(path, `template must be (1, C, 1, h, w), got (${t.shape.join(', ')})`);
  return t;
}

/** Reads subjects' ECGs (12 × 5000) and normalised cines (50 × 96 × 96 in [-1, 1]); datasets stay open. */
export class SubjectReader {
  private readonly datasets = new Map<string, Promise<NpyDatasetSource>>();
  constructor(private readonly fs: DataFileSystem) {}

  private dataset(dir: string, split: SplitName): Promise<NpyDatasetSource> {
    const key = `${split}\n${dir}`;
    let source = this.datasets.get(key);
    if (!source) {
      source = NpyDatasetSource.open(this.fs, dir, split, { batchSize: 1, shuffle: false });
      this.datasets.set(key, source);
    }
    return source;
  }

  async ecg(ref: SubjectRef): Promise<Float32Array> {
    if (ref.kind === 'phantom') return generateSubject(ref.seed, ref.index, { cine: false }).ecg;
    return (await (await this.dataset(ref.dir, ref.split)).readSample(ref.row)).ecg;
  }

  async cine(ref: SubjectRef): Promise<Float32Array> {
    if (ref.kind === 'phantom') return normalizeClip(generateSubject(ref.seed, ref.index, { cine: true }).cine!);
    return (await (await this.dataset(ref.dir, ref.split)).readSample(ref.row)).cmr;
  }

  /** Validation subjects: the dataset's val split, or the phantom indices after the training subjects. */
  async validationSubjects(train: readonly SubjectRef[], count: number): Promise<SubjectRef[]> {
    const first = train[0];
    if (!first) throw new Error('no training subjects');
    if (first.kind === 'dataset') {
      const val = await this.dataset(first.dir, 'val');
      return Array.from({ length: Math.min(count, val.length) }, (_, row) => ({ kind: 'dataset', dir: first.dir, split: 'val', row }));
    }
    const next = Math.max(...train.map((s) => (s.kind === 'phantom' ? s.index : -1))) + 1;
    return Array.from({ length: count }, (_, i) => ({ kind: 'phantom', seed: first.seed, index: next + i }));
  }
}

/** One raw recording (12 × 5000) → the encoder's input (12 × length), as stage `ecg` prepares it. */
export function ecgModelInput(raw: Float32Array, length: number): Float32Array {
  if (raw.length !== SOURCE_LEADS * SOURCE_SAMPLES) throw new DataError('ecg', `expected 12 × 5000 samples, got ${raw.length}`);
  return resampleArea(raw, SOURCE_LEADS, SOURCE_SAMPLES, length);
}

export interface FlowBatch {
  /** (size, 12, length). */
  ecg: Float32Array;
  /** (size, C, T, h, w): x₁. */
  latents: Float32Array;
  size: number;
  /** Rows of the latent set (for logs and tests). */
  rows: number[];
}

export interface FlowBatchesOptions {
  batchSize: number;
  ecgLength: number;
  /** Shuffle each epoch with epochOrder(seed, epoch) and drop the last partial batch (training). */
  shuffle: boolean;
  seed: number;
}

/** Random-access batches over a LatentSet; batch (epoch, index) depends only on (seed, epoch, index). */
export class FlowBatches implements StageBatches<FlowBatch> {
  readonly batchesPerEpoch: number;
  private readonly ecgCache = new Map<number, Promise<Float32Array>>();
  private readonly sampleSize: number;

  constructor(readonly latents: LatentSet, private readonly reader: SubjectReader, readonly options: FlowBatchesOptions) {
    const n = latents.subjects.length;
    if (options.shuffle && n < options.batchSize) throw new Error(`${n} training latents are fewer than one batch of ${options.batchSize}`);
    this.batchesPerEpoch = options.shuffle ? Math.floor(n / options.batchSize) : Math.ceil(n / options.batchSize);
    this.sampleSize = latents.sampleShape.reduce((a, b) => a * b, 1);
  }

  /** ECG inputs are small (12 × length floats), so every prepared one is kept. */
  private ecg(row: number): Promise<Float32Array> {
    let hit = this.ecgCache.get(row);
    if (!hit) {
      hit = this.reader.ecg(this.latents.subjects[row]).then((raw) => ecgModelInput(raw, this.options.ecgLength));
      this.ecgCache.set(row, hit);
    }
    return hit;
  }

  rows(epoch: number, index: number): number[] {
    const { batchSize, shuffle, seed } = this.options;
    return epochOrder(this.latents.subjects.length, epoch, shuffle, seed).slice(index * batchSize, (index + 1) * batchSize);
  }

  async load(epoch: number, index: number): Promise<FlowBatch> {
    // Host work on a later event-loop turn, so a prefetch right after a step's submission does not delay it.
    await new Promise((resolve) => setTimeout(resolve, 0));
    const rows = this.rows(epoch, index);
    const length = this.options.ecgLength;
    const ecgs = await Promise.all(rows.map((r) => this.ecg(r)));
    const ecg = new Float32Array(rows.length * SOURCE_LEADS * length);
    const latents = new Float32Array(rows.length * this.sampleSize);
    rows.forEach((r, i) => {
      ecg.set(ecgs[i], i * SOURCE_LEADS * length);
      latents.set(this.latents.data.subarray(r * this.sampleSize, (r + 1) * this.sampleSize), i * this.sampleSize);
    });
    return { ecg, latents, size: rows.length, rows };
  }
}
