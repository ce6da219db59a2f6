/**
 * One subject: read both files with the project's readers, preprocess exactly like the rest of the data
 * layer (prepareEcg, prepareCine), and measure what the QC report needs. Runs in a worker thread or inline;
 * it never throws for a bad input: the failure comes back as a rejection naming the file and the reason.
 */
import { DataError } from '../errors';
import type { DataFileSystem } from '../fs';
import { readEcgFile, readCmrFile, type EcgReadOptions, type CmrReadOptions } from '../readers/index';
import { prepareEcg, type PrepareEcgOptions } from '../preprocess/ecg';
import { prepareCine } from '../preprocess/cmr';
import { robustRPeaks } from '../ecg-phase';
import type { SubjectPair } from './pairs';

export interface SubjectOptions {
  ecgRead?: EcgReadOptions & Record<string, unknown>;
  cmrRead?: CmrReadOptions & Record<string, unknown>;
  ecgPrepare?: PrepareEcgOptions;
}

export type RejectStage = 'pair' | 'ecg' | 'cmr' | 'worker';

export interface Rejection {
  stage: RejectStage;
  file: string;
  reason: string;
}

export interface SubjectStats {
  /** 60 / median RR of the robust detector on lead II of the prepared ECG (null with < 2 R peaks). */
  heartRateBpm: number | null;
  rPeaks: number[];
  /** Largest robust peak-to-peak (0.5th to 99.5th percentile) over the 12 prepared leads, mV: flags unit mistakes. */
  amplitudeMv: number;
}

export interface PreparedSubject {
  ok: true;
  ecg: Float32Array;
  cmr: Float32Array;
  warnings: string[];
  /** The CMR series the reader chose, when it reports one. */
  series?: unknown;
  stats: SubjectStats;
}

export type SubjectOutcome = PreparedSubject | ({ ok: false } & Rejection);

function percentile(sorted: Float32Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
}

export function ecgStats(ecg: Float32Array, leads = 12): SubjectStats {
  const n = ecg.length / leads;
  const lead2 = ecg.subarray(n, 2 * n);
  const rPeaks = robustRPeaks(lead2, 500);
  let heartRateBpm: number | null = null;
  if (rPeaks.length >= 2) {
    const rr = rPeaks.slice(1).map((r, i) => r - rPeaks[i]).sort((a, b) => a - b);
    const mid = rr.length >> 1;
    const median = rr.length % 2 ? rr[mid] : (rr[mid - 1] + rr[mid]) / 2;
    heartRateBpm = (60 * 500) / median;
  }
  let amplitudeMv = 0;
  for (let l = 0; l < leads; l++) {
    const sorted = Float32Array.from(ecg.subarray(l * n, (l + 1) * n)).sort();
    amplitudeMv = Math.max(amplitudeMv, percentile(sorted, 0.995) - percentile(sorted, 0.005));
  }
  return { heartRateBpm, rPeaks, amplitudeMv };
}

/**
 * The series a DICOM reader picked, for the manifest: what it reports as `selection` ({chosen, reason,
 * series: every one found}) shrunk to the choice, the reason and how many series there were.
 */
export function chosenSeries(volume: object): unknown {
  const selection = (volume as { selection?: { chosen?: unknown; reason?: unknown; series?: unknown[] } }).selection;
  if (!selection) return undefined;
  return { chosen: selection.chosen, reason: selection.reason, seriesFound: selection.series?.length ?? null };
}

function message(e: unknown): string {
  if (e instanceof DataError) return e.problem;
  return e instanceof Error ? `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}` : String(e);
}

function fileOf(e: unknown, fallback: string): string {
  return e instanceof DataError && e.source ? e.source : fallback;
}

export async function processPair(fs: DataFileSystem, pair: SubjectPair, options: SubjectOptions = {}): Promise<SubjectOutcome> {
  if (pair.missing || !pair.ecg || !pair.cmr) {
    const file = pair.ecg || pair.cmr || pair.origin;
    return { ok: false, stage: 'pair', file, reason: pair.missing ?? `${pair.origin}: no ${!pair.ecg ? 'ECG' : 'CMR'} path` };
  }
  let ecg: Float32Array;
  let series: unknown;
  const warnings: string[] = [];
  try {
    const rec = await readEcgFile(fs, pair.ecg, options.ecgRead);
    const prepared = prepareEcg(rec, options.ecgPrepare);
    warnings.push(...rec.warnings, ...prepared.warnings);
    ecg = prepared.data;
  } catch (e) {
    return { ok: false, stage: 'ecg', file: fileOf(e, pair.ecg), reason: message(e) };
  }
  let cmr: Float32Array;
  try {
    const volume = await readCmrFile(fs, pair.cmr, options.cmrRead);
    const prepared = prepareCine(volume, { source: pair.cmr });
    warnings.push(...volume.warnings, ...prepared.warnings);
    series = chosenSeries(volume);
    cmr = prepared.data;
  } catch (e) {
    return { ok: false, stage: 'cmr', file: fileOf(e, pair.cmr), reason: message(e) };
  }
  return { ok: true, ecg, cmr, warnings, series, stats: ecgStats(ecg) };
}
