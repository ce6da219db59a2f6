/**
 * The output folder of a build, written subject by subject and safe to resume after a kill (even kill -9):
 *
 *   DIR/<split>/ecg.npy, cmr.npy   header (count rewritten at the end) + rows appended in pair order
 *   DIR/build-journal.jsonl        line 1: the build's identity; then one line per finished subject,
 *                                  written after its rows, so a row without a journal line is unfinished
 *
 * On resume the journal is read up to its last complete line and every NPY file is cut back to the rows
 * the journal vouches for; the build then goes on with the subjects not in the journal. Finalising
 * rewrites the NPY headers with the row counts and writes manifest.json, meta.json, rejected.csv.
 */
import { DataError } from '../errors';
import { joinPath, decodeText, encodeText } from '../fs';
import { npyHeaderBytes } from '../npy';
import { SPLIT_NAMES, DATASET_VERSION, type SplitName, type DatasetManifest } from '../dataset';
import type { BuildFileSystem } from './build-fs';
import type { LabelColumn, LabelValue, SubjectPair } from './pairs';
import type { SplitFractions, ShardSpec } from './split';
import type { SubjectOutcome, RejectStage } from './subject';

export const ECG_ROW_BYTES = 12 * 5000 * 4;
export const CMR_ROW_BYTES = 50 * 96 * 96 * 4;
export const JOURNAL_FILE = 'build-journal.jsonl';

/** What makes two builds (or shards) the same build. */
export interface BuildIdentity {
  pairsDigest: string;
  pairCount: number;
  seed: number;
  fractions: SplitFractions;
  labelColumns: LabelColumn[];
  /** Label column whose values become `cls` (the loader's class), or null. */
  classColumn: string | null;
  shard: ShardSpec;
}

export interface BuiltSubject {
  id: string;
  cls: string;
  split: SplitName;
  row: number;
  pairIndex: number;
  heartRateBpm: number | null;
  amplitudeMv: number;
  rPeaks: number[];
  labels: Record<string, LabelValue>;
  sources: { ecg: string; cmr: string };
  series?: unknown;
  warnings: string[];
}

export interface RejectedSubject {
  id: string;
  pairIndex: number;
  stage: RejectStage;
  file: string;
  reason: string;
}

type JournalLine = { kind: 'subject'; subject: BuiltSubject } | { kind: 'rejected'; rejected: RejectedSubject };

export type BuiltDatasetManifest = Omit<DatasetManifest, 'subjects'> & {
  subjects: Omit<BuiltSubject, 'rPeaks'>[];
  build: BuildIdentity & { rejected: number; rejectedFile: string };
  /** Datasets of generated cines (`npm run synthesize`): weights hash, sampler settings, sources. */
  synthesis?: unknown;
};

/** What wrote a dataset: `data build` by default; `npm run synthesize` adds its provenance. Merges keep the shards'. */
export type DatasetOrigin = Pick<BuiltDatasetManifest, 'generator' | 'createdBy' | 'synthesis'>;
const BUILD_ORIGIN: DatasetOrigin = { generator: 'ecgflowcmr build v1', createdBy: 'npm run data -- build' };

function sameIdentity(a: BuildIdentity, b: BuildIdentity): string | null {
  for (const key of ['pairsDigest', 'pairCount', 'seed', 'fractions', 'labelColumns', 'classColumn', 'shard'] as const) {
    if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) return `${key} was ${JSON.stringify(a[key])}, now ${JSON.stringify(b[key])}`;
  }
  return null;
}

function npyPath(dir: string, split: SplitName, kind: 'ecg' | 'cmr'): string {
  return joinPath(dir, split, `${kind}.npy`);
}

/** Header bytes for `rows` rows; the same length for 0 and for any realistic count, so it can be rewritten in place. */
function headerFor(kind: 'ecg' | 'cmr', rows: number): Uint8Array {
  return npyHeaderBytes('f4', kind === 'ecg' ? [rows, 12, 5000] : [rows, 50, 96, 96]);
}

export class DatasetAppender {
  readonly done = new Set<number>();
  private readonly rows: Record<SplitName, number> = { train: 0, val: 0, test: 0 };
  private readonly subjects: BuiltSubject[] = [];
  private readonly rejected: RejectedSubject[] = [];

  private constructor(private readonly fs: BuildFileSystem, readonly dir: string, readonly identity: BuildIdentity) {}

  get acceptedCount(): number {
    return this.subjects.length;
  }

  get rejectedCount(): number {
    return this.rejected.length;
  }

  static async open(fs: BuildFileSystem, dir: string, identity: BuildIdentity, resume: boolean): Promise<DatasetAppender> {
    const store = new DatasetAppender(fs, dir, identity);
    const journal = joinPath(dir, JOURNAL_FILE);
    if (await fs.exists(journal)) {
      if (!resume) throw new DataError(dir, 'already holds a build (build-journal.jsonl); pass --resume to continue it, or choose a new --out');
      await store.recover(journal);
      return store;
    }
    if (await fs.exists(joinPath(dir, 'manifest.json'))) throw new DataError(dir, 'already holds a dataset (manifest.json) that is not a resumable build; choose a new --out');
    await fs.mkdir(dir);
    for (const split of SPLIT_NAMES) {
      await fs.mkdir(joinPath(dir, split));
      for (const kind of ['ecg', 'cmr'] as const) await fs.writeFile(npyPath(dir, split, kind), headerFor(kind, 0));
    }
    await fs.writeFile(journal, JSON.stringify({ kind: 'build', version: 1, identity }) + '\n');
    return store;
  }

  private async recover(journal: string): Promise<void> {
    const text = decodeText(await this.fs.readFile(journal));
    const lines = text.split('\n');
    const complete: string[] = [];
    // The last line is complete only when the file ends with '\n'; a kill can leave half a line.
    for (const line of lines.slice(0, -1)) {
      try {
        JSON.parse(line);
        complete.push(line);
      } catch {
        break;
      }
    }
    if (!complete.length) throw new DataError(journal, 'has no readable first line; delete the output folder and build again');
    const head = JSON.parse(complete[0]) as { kind: string; identity: BuildIdentity };
    const mismatch = head.kind === 'build' ? sameIdentity(head.identity, this.identity) : 'not a build journal';
    if (mismatch) throw new DataError(journal, `belongs to a different build (${mismatch}); use the same pairs and options, or a new --out`);
    for (const line of complete.slice(1)) {
      const entry = JSON.parse(line) as JournalLine;
      if (entry.kind === 'subject') {
        const s = entry.subject;
        if (s.row !== this.rows[s.split]) throw new DataError(journal, `subject ${s.id} claims row ${s.row} of ${s.split}, expected ${this.rows[s.split]}; the journal is damaged, build again`);
        this.rows[s.split]++;
        this.subjects.push(s);
        this.done.add(s.pairIndex);
      } else if (entry.rejected.stage !== 'worker') {
        this.rejected.push(entry.rejected);
        this.done.add(entry.rejected.pairIndex);
      }
      // A 'worker' rejection (a thread that died, e.g. out of memory) says nothing about the input: retry it.
    }
    // Rows appended after the last journal line belong to a subject that did not finish: cut them off.
    for (const split of SPLIT_NAMES) {
      for (const kind of ['ecg', 'cmr'] as const) {
        const path = npyPath(this.dir, split, kind);
        const expected = headerFor(kind, 0).length + this.rows[split] * (kind === 'ecg' ? ECG_ROW_BYTES : CMR_ROW_BYTES);
        const size = await this.fs.fileSize(path);
        if (size < expected) throw new DataError(path, `holds ${size} bytes but the journal vouches for ${this.rows[split]} rows (${expected} bytes); the file was damaged, build again`);
        if (size > expected) await this.fs.truncate(path, expected);
      }
    }
    // Drop a half-written last line by truncating (not rewriting), so a second kill here cannot lose the journal.
    const completeBytes = encodeText(complete.join('\n') + '\n').length;
    if (completeBytes < (await this.fs.fileSize(journal))) await this.fs.truncate(journal, completeBytes);
  }

  /** Appends one finished subject: rows first, then its journal line (the commit point). */
  async append(pair: SubjectPair, outcome: SubjectOutcome, split: SplitName): Promise<void> {
    const journal = joinPath(this.dir, JOURNAL_FILE);
    let line: JournalLine;
    if (outcome.ok) {
      const classColumn = this.identity.classColumn;
      const cls = classColumn && pair.labels[classColumn] !== null && pair.labels[classColumn] !== undefined ? String(pair.labels[classColumn]) : '';
      const subject: BuiltSubject = {
        id: pair.id, cls, split, row: this.rows[split], pairIndex: pair.index,
        heartRateBpm: outcome.stats.heartRateBpm === null ? null : Math.round(outcome.stats.heartRateBpm * 10) / 10,
        amplitudeMv: Math.round(outcome.stats.amplitudeMv * 1000) / 1000,
        rPeaks: outcome.stats.rPeaks, labels: pair.labels, sources: { ecg: pair.ecg, cmr: pair.cmr },
        ...(outcome.series !== undefined ? { series: outcome.series } : {}), warnings: outcome.warnings,
      };
      await this.fs.appendFile(npyPath(this.dir, split, 'ecg'), new Uint8Array(outcome.ecg.buffer, outcome.ecg.byteOffset, outcome.ecg.byteLength));
      await this.fs.appendFile(npyPath(this.dir, split, 'cmr'), new Uint8Array(outcome.cmr.buffer, outcome.cmr.byteOffset, outcome.cmr.byteLength));
      this.rows[split]++;
      this.subjects.push(subject);
      line = { kind: 'subject', subject };
    } else {
      const rejected: RejectedSubject = { id: pair.id, pairIndex: pair.index, stage: outcome.stage, file: outcome.file, reason: outcome.reason };
      this.rejected.push(rejected);
      line = { kind: 'rejected', rejected };
    }
    await this.fs.appendFile(journal, encodeText(JSON.stringify(line) + '\n'));
    this.done.add(pair.index);
  }

  /** Rewrites the NPY headers with the row counts and writes manifest, meta and rejected.csv. */
  async finalize(origin: DatasetOrigin = BUILD_ORIGIN): Promise<BuiltDatasetManifest> {
    for (const split of SPLIT_NAMES) {
      for (const kind of ['ecg', 'cmr'] as const) {
        await writeNpyCount(this.fs, npyPath(this.dir, split, kind), kind, this.rows[split]);
      }
    }
    return writeDatasetDescription(this.fs, this.dir, this.identity, this.subjects, this.rejected, origin);
  }
}

/** Every subject of a finished build folder, with its R peaks, from the splits' meta.json. */
export async function readBuiltSubjects(fs: BuildFileSystem, dir: string): Promise<BuiltSubject[]> {
  const out: BuiltSubject[] = [];
  for (const split of SPLIT_NAMES) {
    const path = joinPath(dir, split, 'meta.json');
    if (!(await fs.exists(path))) throw new DataError(path, 'missing; the build did not finish (rerun it with --resume)');
    out.push(...(JSON.parse(decodeText(await fs.readFile(path))) as { subjects: BuiltSubject[] }).subjects);
  }
  return out.sort((a, b) => a.pairIndex - b.pairIndex);
}

export async function writeNpyCount(fs: BuildFileSystem, path: string, kind: 'ecg' | 'cmr', rows: number): Promise<void> {
  const header = headerFor(kind, rows);
  if (header.length !== headerFor(kind, 0).length) throw new Error(`${path}: NPY header length changed with ${rows} rows`);
  await fs.writeAt(path, 0, header);
}

function csvCell(value: string | number): string {
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function rejectedCsv(rejected: RejectedSubject[]): string {
  const lines = ['subject_id,pair_index,stage,file,reason'];
  for (const r of rejected) lines.push([r.id, r.pairIndex, r.stage, r.file, r.reason].map(csvCell).join(','));
  return lines.join('\n') + '\n';
}

/**
 * manifest.json, <split>/meta.json and rejected.csv. Subjects are listed in pair order and keep the row
 * their data was written to. A single build and a merge of its shards both end here, so they describe
 * their datasets identically (in a clean build, rows are in pair order, as merge writes them).
 */
export async function writeDatasetDescription(
  fs: BuildFileSystem, dir: string, identity: BuildIdentity, subjects: BuiltSubject[], rejected: RejectedSubject[], origin: DatasetOrigin = BUILD_ORIGIN,
): Promise<BuiltDatasetManifest> {
  const described = [...subjects].sort((a, b) => a.pairIndex - b.pairIndex);
  const manifest: BuiltDatasetManifest = {
    version: DATASET_VERSION,
    generator: origin.generator,
    seed: identity.seed,
    createdBy: origin.createdBy,
    ecg: { shape: [12, 5000], dtype: 'float32', fs: 500, units: 'mV', leads: ['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'] },
    cmr: { shape: [50, 96, 96], dtype: 'float32', range: [-1, 1], normalization: 'per clip: 2 (x - min) / max(max - min, 1e-6) - 1' },
    splits: {} as DatasetManifest['splits'],
    // R peaks stay in meta.json: the manifest is read whole by every consumer and should stay small.
    subjects: described.map(({ rPeaks: _rPeaks, ...rest }) => rest),
    build: { ...identity, rejected: rejected.length, rejectedFile: 'rejected.csv' },
    ...(origin.synthesis !== undefined ? { synthesis: origin.synthesis } : {}),
  };
  for (const split of SPLIT_NAMES) {
    // meta.json lists a split's subjects by row, as the loader reads them.
    const inSplit = described.filter((s) => s.split === split).sort((a, b) => a.row - b.row);
    const classes: Record<string, number> = {};
    for (const s of inSplit) if (s.cls) classes[s.cls] = (classes[s.cls] ?? 0) + 1;
    manifest.splits[split] = { count: inSplit.length, ecg: `${split}/ecg.npy`, cmr: `${split}/cmr.npy`, meta: `${split}/meta.json`, classes };
    await fs.writeFile(joinPath(dir, split, 'meta.json'), JSON.stringify({ split, subjects: inSplit }));
  }
  await fs.writeFile(joinPath(dir, 'rejected.csv'), rejectedCsv([...rejected].sort((a, b) => a.pairIndex - b.pairIndex)));
  await fs.writeFile(joinPath(dir, 'manifest.json'), JSON.stringify(manifest, null, 1));
  return manifest;
}
