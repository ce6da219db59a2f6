/**
 * Data for stage 1 (PA-MAE): ECGs with their phase targets, in batches addressed by (epoch, index).
 *
 * Subjects come from the phantom (generated on the fly, ECG only, cached: the sets are fixed by the seed)
 * or from a dataset directory (NpyDatasetSource's train/val splits, read sample by sample). Each ECG is
 * prepared on the host when its batch is loaded (ahead of use by the trainer's prefetch):
 *   - R peaks by the reference detector on lead II of the full 12 × 5000 recording (spec §2.5);
 *   - φ linear 0 → 2π over each R–R interval, sampled once per encoder feature step
 *     (every 8th sample for 5000-sample models, as the reference; every 100th for the tiny 400-sample
 *     model), target [sin φ, cos φ];
 *   - models built for fewer samples than 5000 (the tiny preset: 400) get the whole 10 s recording
 *     resampled by area averaging (an anti-aliased box filter), so they still see every beat and the
 *     same phase structure, at 40 Hz instead of 500 Hz.
 */
import { DataError } from '../data/errors';
import type { DataFileSystem } from '../data/fs';
import { NpyDatasetSource } from '../data/loader';
import { generateSubject } from '../data/phantom/subject';
import { phaseTargets, referenceRPeaks } from '../data/ecg-phase';
import type { SplitName } from '../data/dataset';
import { RowBatches, type RowBatchesOptions } from './row-batches';

export const SOURCE_LEADS = 12;
export const SOURCE_SAMPLES = 5000;
export const SOURCE_FS = 500;
/** The reference takes channel 1 as lead II for R-peak detection. */
const LEAD_II = 1;

export interface EcgBatch {
  /** (size, 12, length) row-major. */
  ecg: Float32Array;
  /** (size, 2, steps): [sin φ, cos φ] on the encoder's feature grid. */
  phase: Float32Array;
  size: number;
  length: number;
  steps: number;
  /** Source rows of the samples (for logs and tests). */
  rows: number[];
}

/** Where raw 12 × 5000 ECGs come from. */
export interface EcgSubjects {
  readonly length: number;
  ecg(row: number): Promise<Float32Array>;
}

/** Phantom subjects `offset .. offset + length - 1` of `seed`, ECG only (no cine rendering). */
export class PhantomEcgSubjects implements EcgSubjects {
  constructor(readonly seed: number, readonly offset: number, readonly length: number) {}
  async ecg(row: number): Promise<Float32Array> {
    if (row < 0 || row >= this.length) throw new RangeError(`phantom row ${row} out of range 0..${this.length - 1}`);
    return generateSubject(this.seed, this.offset + row, { cine: false }).ecg;
  }
}

/** One split of a dataset directory. (NpyDatasetSource reads the CMR clip of a sample too; stage 1 ignores it.) */
export class NpyEcgSubjects implements EcgSubjects {
  private constructor(private readonly source: NpyDatasetSource) {}
  static async open(fs: DataFileSystem, dir: string, split: SplitName): Promise<NpyEcgSubjects> {
    return new NpyEcgSubjects(await NpyDatasetSource.open(fs, dir, split, { batchSize: 1, shuffle: false }));
  }
  get length(): number {
    return this.source.length;
  }
  async ecg(row: number): Promise<Float32Array> {
    return (await this.source.readSample(row)).ecg;
  }
}

/**
 * Area-average resampling of each of `channels` rows from `inLength` to `outLength` samples: output i is
 * the mean of the input over [i·r, (i+1)·r) with r = inLength / outLength, partial samples weighted by
 * their overlap. Exact pass-through when the lengths are equal.
 */
export function resampleArea(data: Float32Array, channels: number, inLength: number, outLength: number): Float32Array {
  if (data.length !== channels * inLength) throw new Error(`resampleArea: expected ${channels} × ${inLength} values, got ${data.length}`);
  if (outLength === inLength) return data.slice();
  if (outLength > inLength) throw new Error(`resampleArea only shrinks (${inLength} → ${outLength})`);
  const out = new Float32Array(channels * outLength);
  const ratio = inLength / outLength;
  for (let c = 0; c < channels; c++) {
    const row = c * inLength;
    for (let i = 0; i < outLength; i++) {
      const a = i * ratio;
      const b = (i + 1) * ratio;
      let acc = 0;
      for (let k = Math.floor(a); k < Math.ceil(b); k++) {
        const overlap = Math.min(b, k + 1) - Math.max(a, k);
        if (overlap > 0) acc += overlap * data[row + k];
      }
      out[c * outLength + i] = acc / ratio;
    }
  }
  return out;
}

export interface PreparedEcg {
  ecg: Float32Array;
  phase: Float32Array;
}

/** One recording → model input (12 × length) and phase target (2 × steps). */
export function prepareEcg(raw: Float32Array, length: number, steps: number): PreparedEcg {
  if (raw.length !== SOURCE_LEADS * SOURCE_SAMPLES) throw new DataError('ecg', `expected 12 × 5000 samples, got ${raw.length}`);
  const decimation = SOURCE_SAMPLES / steps;
  if (!Number.isInteger(decimation)) throw new Error(`phase targets: ${SOURCE_SAMPLES} samples do not divide into ${steps} feature steps`);
  const peaks = referenceRPeaks(raw.subarray(LEAD_II * SOURCE_SAMPLES, (LEAD_II + 1) * SOURCE_SAMPLES), SOURCE_FS);
  return { ecg: resampleArea(raw, SOURCE_LEADS, SOURCE_SAMPLES, length), phase: phaseTargets(peaks, SOURCE_SAMPLES, decimation) };
}

export interface EcgBatchesOptions extends RowBatchesOptions {
  /** Model input length (samples per lead) and encoder feature steps. */
  length: number;
  steps: number;
}

/** Random-access batches over EcgSubjects; batch (epoch, index) depends only on (seed, epoch, index). */
export class EcgBatches extends RowBatches<EcgSubjects, EcgBatchesOptions, PreparedEcg, EcgBatch> {
  protected prepare(row: number): Promise<PreparedEcg> {
    return this.subjects.ecg(row).then((raw) => prepareEcg(raw, this.options.length, this.options.steps));
  }

  /** A batch of the given source rows, in that order. */
  async loadRows(rows: number[]): Promise<EcgBatch> {
    const { length, steps } = this.options;
    const samples = await Promise.all(rows.map((r) => this.prepared(r)));
    const ecg = new Float32Array(rows.length * SOURCE_LEADS * length);
    const phase = new Float32Array(rows.length * 2 * steps);
    samples.forEach((s, i) => {
      ecg.set(s.ecg, i * SOURCE_LEADS * length);
      phase.set(s.phase, i * 2 * steps);
    });
    return { ecg, phase, size: rows.length, length, steps, rows };
  }
}
