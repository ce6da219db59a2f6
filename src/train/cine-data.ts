/**
 * Data for stage 2 (VAE): cine clips in [-1, 1] at a model's input size T × H × W, in batches addressed by
 * (epoch, index).
 *
 * Clips come from the phantom (rendered on the fly, ≈150 ms per subject, min-max normalised exactly as the
 * dataset writer does) or from a dataset directory's cmr.npy (already normalised, 50 × 96 × 96). A clip
 * that is not already at the model size goes through the data layer's own preprocessing steps, in the
 * same order as `prepareCine`: spatial resize (area average when shrinking), cyclic linear temporal
 * resampling (frame j at source time j·T/F, so frame 0 stays the R peak), then min-max to [-1, 1] again
 * (so a resized clip spans exactly [-1, 1] like a full-size one). At 50 × 96 × 96 it passes unchanged.
 */
import type { DataFileSystem } from '../data/fs';
import { NpyDatasetSource } from '../data/loader';
import { generateSubject, phantomId } from '../data/phantom/subject';
import { cropResizeFrame, normalizeClip, resampleCyclic } from '../data/preprocess/cmr';
import type { SplitName } from '../data/dataset';
import { RowBatches, type RowBatchesOptions } from './row-batches';

export const SOURCE_FRAMES = 50;
export const SOURCE_SIZE = 96;

/** Model input geometry: frames and a square frame size. */
export interface CineGeometry {
  frames: number;
  size: number;
}

export interface CineBatch {
  /** (size, 1, frames, height, width) row-major, in [-1, 1]. */
  cine: Float32Array;
  size: number;
  frames: number;
  height: number;
  width: number;
  /** Source rows of the samples and their subject ids (for logs, tests and the latent dump). */
  rows: number[];
  ids: string[];
}

/** Where normalised 50 × 96 × 96 clips come from. */
export interface CineSubjects {
  readonly length: number;
  id(row: number): string;
  cine(row: number): Promise<Float32Array>;
  /** JSON description of the source (stored with the latent dump). */
  describe(): { [key: string]: string | number };
}

/** Phantom subjects `offset .. offset + length - 1` of `seed`, normalised like `npm run data -- synth`. */
export class PhantomCineSubjects implements CineSubjects {
  constructor(readonly seed: number, readonly offset: number, readonly length: number) {}
  id(row: number): string {
    return phantomId(this.seed, this.offset + row);
  }
  async cine(row: number): Promise<Float32Array> {
    if (row < 0 || row >= this.length) throw new RangeError(`phantom row ${row} out of range 0..${this.length - 1}`);
    const subject = generateSubject(this.seed, this.offset + row, { cine: true });
    return normalizeClip(subject.cine!);
  }
  describe() {
    return { source: 'phantom', seed: this.seed, offset: this.offset, count: this.length };
  }
}

/** One split of a dataset directory (cmr.npy, read sample by sample; the ECG read alongside is ignored). */
export class NpyCineSubjects implements CineSubjects {
  private constructor(private readonly source: NpyDatasetSource, private readonly dir: string, private readonly split: SplitName) {}
  static async open(fs: DataFileSystem, dir: string, split: SplitName): Promise<NpyCineSubjects> {
    return new NpyCineSubjects(await NpyDatasetSource.open(fs, dir, split, { batchSize: 1, shuffle: false }), dir, split);
  }
  get length(): number {
    return this.source.length;
  }
  id(row: number): string {
    return this.source.ids[row] ?? String(row);
  }
  async cine(row: number): Promise<Float32Array> {
    return (await this.source.readSample(row)).cmr;
  }
  describe() {
    return { source: 'dataset', dir: this.dir, split: this.split, count: this.length };
  }
}

/** A normalised 50 × 96 × 96 clip → frames × size × size in [-1, 1] (see the file comment). */
export function resizeCine(clip: Float32Array, geometry: CineGeometry): Float32Array {
  const plane = SOURCE_SIZE * SOURCE_SIZE;
  if (clip.length !== SOURCE_FRAMES * plane) throw new Error(`resizeCine: expected 50 × 96 × 96 values, got ${clip.length}`);
  const { frames, size } = geometry;
  if (frames === SOURCE_FRAMES && size === SOURCE_SIZE) return clip;
  let data = clip;
  if (size !== SOURCE_SIZE) {
    data = new Float32Array(SOURCE_FRAMES * size * size);
    for (let f = 0; f < SOURCE_FRAMES; f++) data.set(cropResizeFrame(clip.subarray(f * plane, (f + 1) * plane), SOURCE_SIZE, SOURCE_SIZE, size), f * size * size);
  }
  if (frames !== SOURCE_FRAMES) data = resampleCyclic({ data, frames: SOURCE_FRAMES, height: size, width: size }, frames).data;
  return normalizeClip(data);
}

/** Clip geometry and batching; `cache` keeps prepared clips in memory (fixed phantom sets are re-rendered otherwise). */
export interface CineBatchesOptions extends CineGeometry, RowBatchesOptions {}

/** Random-access batches over CineSubjects; batch (epoch, index) depends only on (seed, epoch, index). */
export class CineBatches extends RowBatches<CineSubjects, CineBatchesOptions, Float32Array, CineBatch> {
  protected prepare(row: number): Promise<Float32Array> {
    return this.subjects.cine(row).then((clip) => resizeCine(clip, this.options));
  }

  /** A batch of the given source rows, in that order (validation and the latent dump use fixed order). */
  async loadRows(rows: number[]): Promise<CineBatch> {
    const { frames, size } = this.options;
    const clips = await Promise.all(rows.map((r) => this.prepared(r)));
    const volume = frames * size * size;
    const cine = new Float32Array(rows.length * volume);
    clips.forEach((c, i) => cine.set(c, i * volume));
    return { cine, size: rows.length, frames, height: size, width: size, rows, ids: rows.map((r) => this.subjects.id(r)) };
  }
}
