/**
 * Batch sources for training: a streaming reader over a dataset split on disk, and an on-the-fly phantom
 * source, both with the same interface. Each batch holds ECG (B, 12, 5000) and CMR (B, 1, 50, 96, 96)
 * as flat Float32Arrays.
 *
 * The disk source never loads a whole array: it reads each sample by byte offset from the NPY files and
 * keeps at most `prefetch` batches in flight ahead of the consumer (a bounded queue of promises).
 */
import { DataError } from './errors';
import { type DataFileSystem, joinPath, decodeText } from './fs';
import { NPY_HEADER_PROBE_BYTES, parseNpyHeader, shapeSize, type NpyHeader } from './npy';
import { hashSeed, seededPermutation } from './random';
import type { DatasetManifest, SplitName } from './dataset';
import { generateSubject, classForIndex } from './phantom/subject';
import type { PhantomClass } from './phantom/params';
import { normalizeClip } from './preprocess/cmr';

export const ECG_SAMPLE_SHAPE = [12, 5000] as const;
export const CMR_SAMPLE_SHAPE = [1, 50, 96, 96] as const;
const ECG_SAMPLE_SIZE = 12 * 5000;
const CMR_SAMPLE_SIZE = 50 * 96 * 96;

export interface Batch {
  /** (size, 12, 5000) */
  ecg: Float32Array;
  /** (size, 1, 50, 96, 96) */
  cmr: Float32Array;
  size: number;
  /** Row index within the source of each sample. */
  indices: number[];
  ids: string[];
  classes: string[];
}

export interface BatchSource {
  readonly length: number;
  /** Batches of one epoch; the order depends only on (seed, epoch). */
  batches(epoch: number): AsyncGenerator<Batch>;
}

export interface BatchOptions {
  batchSize: number;
  shuffle?: boolean;
  seed?: number;
  /** Drop a last partial batch (default false). */
  dropLast?: boolean;
  /** Batches loaded ahead of the consumer (default 2; 0 = load on demand). */
  prefetch?: number;
}

/** Sample order of one epoch. */
export function epochOrder(length: number, epoch: number, shuffle: boolean, seed: number): number[] {
  return shuffle ? seededPermutation(length, hashSeed(seed, epoch, 0xe90c)) : Array.from({ length }, (_, i) => i);
}

function batchRanges(order: number[], batchSize: number, dropLast: boolean): number[][] {
  if (!(batchSize >= 1)) throw new Error(`batchSize must be >= 1, got ${batchSize}`);
  const out: number[][] = [];
  for (let i = 0; i < order.length; i += batchSize) {
    const chunk = order.slice(i, i + batchSize);
    if (chunk.length < batchSize && dropLast) break;
    out.push(chunk);
  }
  return out;
}

/** Runs load(0..count-1) keeping at most `ahead` + 1 loads in flight, yielding results in order. */
async function* prefetched<T>(count: number, ahead: number, load: (i: number) => Promise<T>): AsyncGenerator<T> {
  const queue: Promise<T>[] = [];
  let next = 0;
  const fill = () => {
    while (next < count && queue.length <= ahead) queue.push(load(next++));
  };
  fill();
  while (queue.length) {
    const head = queue.shift()!;
    // Suppress unhandled-rejection noise for queued loads; the error surfaces when awaited.
    queue.forEach((p) => p.catch(() => undefined));
    const value = await head;
    fill();
    yield value;
  }
}

export class NpyDatasetSource implements BatchSource {
  private constructor(
    private readonly fs: DataFileSystem,
    private readonly ecgPath: string,
    private readonly cmrPath: string,
    private readonly ecgHeader: NpyHeader,
    private readonly cmrHeader: NpyHeader,
    readonly ids: string[],
    readonly classes: string[],
    private readonly options: BatchOptions,
  ) {}

  get length(): number {
    return this.ecgHeader.shape[0];
  }

  /** Opens DIR/<split>: reads the manifest and the NPY headers only. */
  static async open(fs: DataFileSystem, dir: string, split: SplitName, options: BatchOptions): Promise<NpyDatasetSource> {
    const manifestPath = joinPath(dir, 'manifest.json');
    if (!(await fs.exists(manifestPath))) throw new DataError(manifestPath, 'no manifest.json; is this a dataset directory?');
    const manifest = JSON.parse(decodeText(await fs.readFile(manifestPath))) as DatasetManifest;
    const info = manifest.splits?.[split];
    if (!info) throw new DataError(manifestPath, `no split '${split}'`);
    const ecgPath = joinPath(dir, info.ecg);
    const cmrPath = joinPath(dir, info.cmr);
    const ecgHeader = await readNpyFileHeader(fs, ecgPath);
    const cmrHeader = await readNpyFileHeader(fs, cmrPath);
    const check = (path: string, h: NpyHeader, tail: readonly number[]) => {
      if (h.dtype !== 'f4') throw new DataError(path, `expected float32 data, got ${h.dtype}`);
      if (h.shape.length !== tail.length + 1 || tail.some((d, i) => h.shape[i + 1] !== d)) {
        throw new DataError(path, `expected shape (N, ${tail.join(', ')}), got (${h.shape.join(', ')})`);
      }
      if (h.shape[0] !== info.count) throw new DataError(path, `manifest says ${info.count} samples, file holds ${h.shape[0]}`);
    };
    check(ecgPath, ecgHeader, ECG_SAMPLE_SHAPE);
    check(cmrPath, cmrHeader, [50, 96, 96]);
    for (const [path, h] of [[ecgPath, ecgHeader], [cmrPath, cmrHeader]] as const) {
      const expected = h.dataOffset + shapeSize(h.shape) * 4;
      const actual = await fs.fileSize(path);
      if (actual < expected) throw new DataError(path, `truncated: ${actual} bytes, header promises ${expected}`);
    }
    const subjects = manifest.subjects.filter((s) => s.split === split).sort((a, b) => a.row - b.row);
    return new NpyDatasetSource(fs, ecgPath, cmrPath, ecgHeader, cmrHeader, subjects.map((s) => s.id), subjects.map((s) => s.cls), options);
  }

  /** Reads one sample (ECG and CMR) by byte offset. */
  async readSample(row: number): Promise<{ ecg: Float32Array; cmr: Float32Array }> {
    if (row < 0 || row >= this.length) throw new RangeError(`row ${row} out of range 0..${this.length - 1}`);
    const [ecgBytes, cmrBytes] = await Promise.all([
      this.fs.readRange(this.ecgPath, this.ecgHeader.dataOffset + row * ECG_SAMPLE_SIZE * 4, ECG_SAMPLE_SIZE * 4),
      this.fs.readRange(this.cmrPath, this.cmrHeader.dataOffset + row * CMR_SAMPLE_SIZE * 4, CMR_SAMPLE_SIZE * 4),
    ]);
    return { ecg: new Float32Array(ecgBytes.slice().buffer), cmr: new Float32Array(cmrBytes.slice().buffer) };
  }

  async *batches(epoch: number): AsyncGenerator<Batch> {
    const { batchSize, shuffle = true, seed = 0, dropLast = false, prefetch = 2 } = this.options;
    const groups = batchRanges(epochOrder(this.length, epoch, shuffle, seed), batchSize, dropLast);
    yield* prefetched(groups.length, prefetch, async (g) => {
      const rows = groups[g];
      const samples = await Promise.all(rows.map((r) => this.readSample(r)));
      return assemble(samples, rows, rows.map((r) => this.ids[r] ?? String(r)), rows.map((r) => this.classes[r] ?? ''));
    });
  }
}

/** The header of an NPY file on `fs`, read from its first bytes only (a missing file is a DataError). */
export async function readNpyFileHeader(fs: DataFileSystem, path: string): Promise<NpyHeader> {
  if (!(await fs.exists(path))) throw new DataError(path, 'file not found');
  const size = await fs.fileSize(path);
  return parseNpyHeader(await fs.readRange(path, 0, Math.min(size, NPY_HEADER_PROBE_BYTES)), path);
}

function assemble(samples: { ecg: Float32Array; cmr: Float32Array }[], indices: number[], ids: string[], classes: string[]): Batch {
  const size = samples.length;
  const ecg = new Float32Array(size * ECG_SAMPLE_SIZE);
  const cmr = new Float32Array(size * CMR_SAMPLE_SIZE);
  samples.forEach((s, i) => {
    ecg.set(s.ecg, i * ECG_SAMPLE_SIZE);
    cmr.set(s.cmr, i * CMR_SAMPLE_SIZE);
  });
  return { ecg, cmr, size, indices, ids, classes };
}

export interface PhantomSourceOptions extends BatchOptions {
  /** Subjects per epoch (default 1024). */
  length?: number;
  /** 'fixed' (default): subject i is the same every epoch; 'fresh': new subjects every epoch. */
  subjects?: 'fixed' | 'fresh';
  classes?: PhantomClass[];
}

/** Phantom subjects generated on the fly, normalized exactly like the dataset writer does. */
export class PhantomSource implements BatchSource {
  readonly length: number;
  constructor(private readonly options: PhantomSourceOptions) {
    this.length = options.length ?? 1024;
  }

  async *batches(epoch: number): AsyncGenerator<Batch> {
    const { batchSize, shuffle = true, seed = 0, dropLast = false, prefetch = 1 } = this.options;
    const groups = batchRanges(epochOrder(this.length, epoch, shuffle, seed), batchSize, dropLast);
    const fresh = this.options.subjects === 'fresh';
    const classes = this.options.classes;
    yield* prefetched(groups.length, prefetch, async (g) => {
      // Yield to the event loop so prefetching does not starve the consumer of a turn.
      await new Promise((resolve) => setTimeout(resolve, 0));
      const rows = groups[g];
      const subjects = rows.map((r) => {
        const index = fresh ? epoch * this.length + r : r;
        const cls = classes ? classes[index % classes.length] : classForIndex(index);
        return generateSubject(seed, index, { cls });
      });
      return assemble(
        subjects.map((s) => ({ ecg: s.ecg, cmr: normalizeClip(s.cine!) })),
        rows,
        subjects.map((s) => s.id),
        subjects.map((s) => s.truth.cls),
      );
    });
  }
}
