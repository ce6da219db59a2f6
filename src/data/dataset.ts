/**
 * Synthetic dataset on disk:
 *   DIR/manifest.json                 version, shapes, dtypes, splits with counts, per-subject class + truth scalars
 *   DIR/<split>/ecg.npy               (N, 12, 5000) float32, mV
 *   DIR/<split>/cmr.npy               (N, 50, 96, 96) float32, per-clip min-max to [-1, 1]
 *   DIR/<split>/meta.json             per subject: id, class, ground truth (R peaks, LV areas, ...), params
 * Subjects are generated and appended one at a time, so N is not limited by memory.
 */
import { type DataFileSystem, joinPath } from './fs';
import { npyHeaderBytes } from './npy';
import { seededPermutation, hashSeed } from './random';
import { generateSubject, type PhantomGroundTruth } from './phantom/subject';
import type { PhantomClass, PhantomParams } from './phantom/params';
import { normalizeClip } from './preprocess/cmr';

export const DATASET_VERSION = 1;
export const SPLIT_NAMES = ['train', 'val', 'test'] as const;
/** The phantom's per-subject phenotypes kept beside the class in manifests: labels for evaluation, synthesis and downstream tasks. */
export const PHANTOM_PHENOTYPES = ['efProxy', 'edvProxy', 'esvProxy', 'heartRateBpm', 'wallThickness'] as const;
export type SplitName = (typeof SPLIT_NAMES)[number];

export interface SubjectRecord {
  id: string;
  index: number;
  cls: PhantomClass;
  truth: PhantomGroundTruth;
  params: PhantomParams;
}

export interface ManifestSubject {
  id: string;
  cls: PhantomClass;
  split: SplitName;
  /** Row within the split's arrays. */
  row: number;
  heartRateBpm: number;
  efProxy: number;
  edvProxy: number;
  esvProxy: number;
  wallThickness: number;
  endSystoleFrame: number;
  qrsMs: number;
}

export interface DatasetManifest {
  version: number;
  generator: string;
  seed: number;
  createdBy: string;
  ecg: { shape: [12, 5000]; dtype: 'float32'; fs: 500; units: 'mV'; leads: string[] };
  cmr: { shape: [50, 96, 96]; dtype: 'float32'; range: [-1, 1]; normalization: string };
  splits: Record<SplitName, { count: number; ecg: string; cmr: string; meta: string; classes: Record<string, number> }>;
  subjects: ManifestSubject[];
}

/** Split sizes for n subjects from fractions; rounding leftovers go to train. */
export function splitCounts(n: number, fractions: [number, number, number]): [number, number, number] {
  const total = fractions[0] + fractions[1] + fractions[2];
  if (!(total > 0) || fractions.some((f) => f < 0)) throw new Error(`invalid split fractions ${fractions.join(',')}`);
  const val = Math.floor((n * fractions[1]) / total);
  const test = Math.floor((n * fractions[2]) / total);
  return [n - val - test, val, test];
}

export interface SynthOptions {
  n: number;
  seed?: number;
  split?: [number, number, number];
  /** Called after each subject (for progress output). */
  onProgress?: (done: number, total: number) => void;
}

export async function writeSyntheticDataset(fs: DataFileSystem, dir: string, options: SynthOptions): Promise<DatasetManifest> {
  const seed = options.seed ?? 42;
  const n = options.n;
  if (!Number.isInteger(n) || n < 1) throw new Error(`--n must be a positive integer, got ${n}`);
  const counts = splitCounts(n, options.split ?? [0.8, 0.1, 0.1]);
  // Subject i keeps its identity; which split it lands in is a seeded shuffle (classes stay mixed).
  const order = seededPermutation(n, hashSeed(seed, 0x5711));
  const assignment: SplitName[] = new Array(n);
  order.forEach((subject, position) => {
    assignment[subject] = position < counts[0] ? 'train' : position < counts[0] + counts[1] ? 'val' : 'test';
  });

  await fs.mkdir(dir);
  const manifest: DatasetManifest = {
    version: DATASET_VERSION,
    generator: 'ecgflowcmr phantom v1',
    seed,
    createdBy: 'npm run data -- synth',
    ecg: { shape: [12, 5000], dtype: 'float32', fs: 500, units: 'mV', leads: ['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'] },
    cmr: { shape: [50, 96, 96], dtype: 'float32', range: [-1, 1], normalization: "per clip: 2 (x - min) / max(max - min, 1e-6) - 1" },
    splits: {} as DatasetManifest['splits'],
    subjects: [],
  };
  const rows: Record<SplitName, SubjectRecord[]> = { train: [], val: [], test: [] };
  for (const [k, split] of SPLIT_NAMES.entries()) {
    const splitDir = joinPath(dir, split);
    await fs.mkdir(splitDir);
    await fs.writeFile(joinPath(splitDir, 'ecg.npy'), npyHeaderBytes('f4', [counts[k], 12, 5000]));
    await fs.writeFile(joinPath(splitDir, 'cmr.npy'), npyHeaderBytes('f4', [counts[k], 50, 96, 96]));
  }
  for (let i = 0; i < n; i++) {
    const subject = generateSubject(seed, i, { cine: true });
    const split = assignment[i];
    const splitDir = joinPath(dir, split);
    const cmr = normalizeClip(subject.cine!);
    await fs.appendFile(joinPath(splitDir, 'ecg.npy'), new Uint8Array(subject.ecg.buffer, subject.ecg.byteOffset, subject.ecg.byteLength));
    await fs.appendFile(joinPath(splitDir, 'cmr.npy'), new Uint8Array(cmr.buffer, cmr.byteOffset, cmr.byteLength));
    const t = subject.truth;
    manifest.subjects.push({
      id: subject.id, cls: t.cls, split, row: rows[split].length, heartRateBpm: t.heartRateBpm, efProxy: t.efProxy,
      edvProxy: t.edvProxy, esvProxy: t.esvProxy, wallThickness: t.wallThickness, endSystoleFrame: t.endSystoleFrame, qrsMs: t.qrsMs,
    });
    rows[split].push({ id: subject.id, index: i, cls: t.cls, truth: t, params: subject.params });
    options.onProgress?.(i + 1, n);
  }
  for (const [k, split] of SPLIT_NAMES.entries()) {
    const classes: Record<string, number> = {};
    for (const r of rows[split]) classes[r.cls] = (classes[r.cls] ?? 0) + 1;
    manifest.splits[split] = { count: counts[k], ecg: `${split}/ecg.npy`, cmr: `${split}/cmr.npy`, meta: `${split}/meta.json`, classes };
    await fs.writeFile(joinPath(dir, split, 'meta.json'), JSON.stringify({ split, subjects: rows[split] }));
  }
  await fs.writeFile(joinPath(dir, 'manifest.json'), JSON.stringify(manifest, null, 1));
  return manifest;
}
