/**
 * `npm run data -- merge`: joins the n shard folders of one build (same pairs, seed and fractions;
 * shards 0..n-1 each exactly once, all finished) into one dataset. Rows are copied one at a time in pair
 * order, so the result is byte for byte what a single build of all pairs writes, and memory stays at one row.
 * A killed merge is simply run again: it rewrites the output from the shards.
 */
import { DataError } from '../errors';
import { joinPath, decodeText } from '../fs';
import { npyHeaderBytes } from '../npy';
import { SPLIT_NAMES } from '../dataset';
import type { BuildFileSystem } from './build-fs';
import { parseCsvRows } from './pairs';
import { ECG_ROW_BYTES, CMR_ROW_BYTES, JOURNAL_FILE, readBuiltSubjects, writeDatasetDescription, writeNpyCount, type BuiltDatasetManifest, type BuiltSubject, type RejectedSubject, type BuildIdentity } from './store';
import type { RejectStage } from './subject';
import type { ProgressState } from './progress';
import { writeQcReport } from './qc';
import { readNpyFileHeader } from '../loader';

export interface MergeOptions {
  qc?: boolean;
  onProgress?: (state: ProgressState) => void;
}

async function readManifest(fs: BuildFileSystem, dir: string): Promise<BuiltDatasetManifest> {
  const path = joinPath(dir, 'manifest.json');
  if (!(await fs.exists(path))) {
    const hint = (await fs.exists(joinPath(dir, JOURNAL_FILE))) ? 'the shard did not finish; rerun it with --resume' : 'not a build output folder';
    throw new DataError(path, `missing (${hint})`);
  }
  const manifest = JSON.parse(decodeText(await fs.readFile(path))) as BuiltDatasetManifest;
  if (!manifest.build?.shard) throw new DataError(path, 'has no build section; only outputs of `data build --shard i/n` can be merged');
  return manifest;
}

export async function mergeShards(fs: BuildFileSystem, shardDirs: string[], out: string, options: MergeOptions = {}): Promise<BuiltDatasetManifest> {
  if (!shardDirs.length) throw new Error('merge needs the shard folders');
  const shards = await Promise.all(shardDirs.map(async (dir) => ({ dir, manifest: await readManifest(fs, dir) })));
  const first = shards[0].manifest.build;
  const count = first.shard.count;
  const seen = new Map<number, string>();
  for (const { dir, manifest } of shards) {
    const b = manifest.build;
    for (const key of ['pairsDigest', 'pairCount', 'seed', 'fractions', 'labelColumns', 'classColumn'] as const) {
      if (JSON.stringify(b[key]) !== JSON.stringify(first[key])) {
        throw new DataError(joinPath(dir, 'manifest.json'), `${key} differs from ${shardDirs[0]} (${JSON.stringify(b[key])} vs ${JSON.stringify(first[key])}); shards of one build share pairs, --seed and --split`);
      }
    }
    if (b.shard.count !== count) throw new DataError(joinPath(dir, 'manifest.json'), `is shard ${b.shard.index}/${b.shard.count}, others are of ${count}`);
    if (seen.has(b.shard.index)) throw new DataError(dir, `shard ${b.shard.index}/${count} given twice (also ${seen.get(b.shard.index)})`);
    seen.set(b.shard.index, dir);
  }
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !seen.has(i));
  if (missing.length) throw new Error(`missing shard(s) ${missing.map((i) => `${i}/${count}`).join(', ')}; pass all ${count} shard folders`);

  if (shardDirs.some((d) => d.replace(/\/+$/, '') === out.replace(/\/+$/, ''))) throw new Error(`--out ${out} is one of the shard folders; merge into a new folder`);
  await fs.mkdir(out);
  const subjects: { subject: BuiltSubject; dir: string }[] = [];
  for (const { dir } of shards) subjects.push(...(await readBuiltSubjects(fs, dir)).map((subject) => ({ subject, dir })));
  subjects.sort((a, b) => a.subject.pairIndex - b.subject.pairIndex);
  const t0 = Date.now();
  let copied = 0;
  for (const split of SPLIT_NAMES) {
    await fs.mkdir(joinPath(out, split));
    const rows = subjects.filter((s) => s.subject.split === split);
    for (const [kind, bytes] of [['ecg', ECG_ROW_BYTES], ['cmr', CMR_ROW_BYTES]] as const) {
      const target = joinPath(out, split, `${kind}.npy`);
      await fs.writeFile(target, npyHeaderBytes('f4', kind === 'ecg' ? [0, 12, 5000] : [0, 50, 96, 96]));
      const offsets = new Map<string, number>();
      for (const { subject, dir } of rows) {
        const source = joinPath(dir, split, `${kind}.npy`);
        if (!offsets.has(source)) offsets.set(source, (await readNpyFileHeader(fs, source)).dataOffset);
        await fs.appendFile(target, await fs.readRange(source, offsets.get(source)! + subject.row * bytes, bytes));
        if (kind === 'cmr') options.onProgress?.({ done: ++copied, total: subjects.length, rejected: 0, doneThisRun: copied, elapsedSeconds: (Date.now() - t0) / 1000 });
      }
      await writeNpyCount(fs, target, kind, rows.length);
    }
  }
  const rejected: RejectedSubject[] = [];
  for (const { dir } of shards) {
    const rows = parseCsvRows(decodeText(await fs.readFile(joinPath(dir, 'rejected.csv'))), joinPath(dir, 'rejected.csv')).slice(1);
    for (const r of rows) rejected.push({ id: r.cells[0], pairIndex: Number(r.cells[1]), stage: r.cells[2] as RejectStage, file: r.cells[3], reason: r.cells[4] });
  }
  // Merge writes every split in pair order: that is each subject's new row.
  const rowCounter: Record<string, number> = { train: 0, val: 0, test: 0 };
  const merged = subjects.map(({ subject }) => ({ ...subject, row: rowCounter[subject.split]++ }));
  const identity: BuildIdentity = { ...first, shard: { index: 0, count: 1 } };
  delete (identity as Partial<BuiltDatasetManifest['build']>).rejected;
  delete (identity as Partial<BuiltDatasetManifest['build']>).rejectedFile;
  // The shards' origin is kept: a merge of `npm run synthesize` shards stays a synthetic dataset with its provenance.
  const { generator, createdBy, synthesis } = shards[0].manifest;
  const manifest = await writeDatasetDescription(fs, out, identity, merged, rejected, { generator, createdBy, synthesis });
  if (options.qc ?? true) await writeQcReport(fs, out, manifest);
  return manifest;
}
