/**
 * `npm run data -- build` and `npm run data -- merge` (see docs/DATA.md, "Building a dataset from files").
 *   build --pairs pairs.csv --out DIR [--workers N] [--shard i/n] [--resume] [--split 0.8,0.1,0.1] [--seed 42]
 *         [--worker-memory-mb MB] [--class-column NAME] [--fs HZ] [--slice Z] [--series-pattern P] [--series-uid UID] [--strict | --lenient] [--no-qc]
 *   build --ecg-dir D --cmr-dir D --out DIR [--id-pattern REGEX] [--labels labels.csv] [...]
 *   merge --out DIR SHARD_DIR... [--no-qc]
 *   synth-files --n N --out DIR [--seed S] [--gzip]   phantom subjects as WFDB + NIfTI files and a pairs.csv
 */
import { availableParallelism } from 'node:os';
import { NodeBuildFileSystem } from '../data/build/build-fs';
import { readPairsCsv, pairFolders } from '../data/build/pairs';
import { parseShard, parseSplitFractions } from '../data/build/split';
import { buildDataset } from '../data/build/builder';
import { mergeShards } from '../data/build/merge';
import { ProgressPrinter, formatDuration } from '../data/build/progress';
import type { SubjectOptions } from '../data/build/subject';
import { writePhantomCohort } from '../data/build/phantom-files';

type Flags = Record<string, string | boolean>;

function text(flags: Flags, key: string): string | undefined {
  const v = flags[key];
  if (v === true) throw new Error(`--${key} needs a value`);
  return v === undefined || v === false ? undefined : v;
}

function number(flags: Flags, key: string): number | undefined {
  const v = text(flags, key);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${key} must be a number, got '${v}'`);
  return n;
}

/** A switch; data.ts's parser gives a switch the next word as value when one follows, which is handed back to `positional`. */
function switchOn(flags: Flags, key: string, positional?: string[]): boolean {
  const v = flags[key];
  if (typeof v === 'string') {
    if (!positional) throw new Error(`--${key} takes no value (got '${v}')`);
    positional.push(v);
  }
  return v !== undefined && v !== false;
}

function subjectOptions(flags: Flags): SubjectOptions {
  const fs = number(flags, 'fs');
  const slice = number(flags, 'slice');
  const seriesPattern = text(flags, 'series-pattern');
  const seriesUid = text(flags, 'series-uid');
  return {
    ecgRead: fs !== undefined ? { fs, npyFs: fs } : {},
    cmrRead: { ...(slice !== undefined ? { slice } : {}), ...(seriesPattern !== undefined ? { seriesPattern } : {}), ...(seriesUid !== undefined ? { seriesUid } : {}) },
    // The ECG plausibility checks (docs/DATA.md): --strict refuses on any doubt, --lenient keeps unusual data with warnings.
    ecgPrepare: { checks: switchOn(flags, 'strict') ? 'strict' : switchOn(flags, 'lenient') ? 'lenient' : 'normal' },
  };
}

export async function buildCommand(flags: Flags): Promise<void> {
  const fs = new NodeBuildFileSystem();
  const out = text(flags, 'out');
  if (!out) throw new Error('missing --out DIR');
  const pairsFile = text(flags, 'pairs');
  const ecgDir = text(flags, 'ecg-dir');
  const cmrDir = text(flags, 'cmr-dir');
  if (!pairsFile && !(ecgDir && cmrDir)) throw new Error('give --pairs pairs.csv, or --ecg-dir and --cmr-dir (with --id-pattern)');
  const pairs = pairsFile
    ? await readPairsCsv(fs, pairsFile)
    : await pairFolders(fs, { ecgDir: ecgDir!, cmrDir: cmrDir!, idPattern: text(flags, 'id-pattern'), labelsCsv: text(flags, 'labels') });
  const shardText = text(flags, 'shard');
  const shard = shardText !== undefined ? parseShard(shardText) : undefined;
  const workers = number(flags, 'workers') ?? availableParallelism();
  const splitText = text(flags, 'split');
  const classColumn = switchOn(flags, 'no-class') ? null : text(flags, 'class-column');
  const label = shard ? `shard ${shard.index}/${shard.count}` : '';
  const printer = new ProgressPrinter(process.stderr, label);
  const result = await buildDataset(fs, {
    out, pairs, shard, workers, classColumn,
    workerMemoryMb: number(flags, 'worker-memory-mb'),
    seed: number(flags, 'seed'),
    fractions: splitText !== undefined ? parseSplitFractions(splitText) : undefined,
    resume: switchOn(flags, 'resume'),
    subject: subjectOptions(flags),
    qc: !switchOn(flags, 'no-qc'),
    onProgress: (p) => printer.update(p),
  });
  printer.end();
  const counts = Object.entries(result.manifest.splits).map(([k, v]) => `${k} ${v.count}`).join(', ');
  const rate = result.processedThisRun / Math.max(result.seconds, 1e-9);
  console.log(`wrote ${out}: ${counts}; rejected ${result.rejected} (rejected.csv); ${result.processedThisRun} subjects in ${formatDuration(result.seconds)} (${rate.toFixed(2)} subj/s, ${workers > 0 ? `${workers} worker thread(s), ${(rate / workers).toFixed(2)} subj/s per worker` : 'inline on the main thread'})`);
}

export async function mergeCommand(positional: string[], flags: Flags): Promise<void> {
  const fs = new NodeBuildFileSystem();
  const out = text(flags, 'out');
  if (!out) throw new Error('missing --out DIR');
  const shardDirs = [...positional];
  const qc = !switchOn(flags, 'no-qc', shardDirs);
  const printer = new ProgressPrinter(process.stderr, 'merge');
  const manifest = await mergeShards(fs, shardDirs, out, { qc, onProgress: (p) => printer.update(p) });
  printer.end();
  const counts = Object.entries(manifest.splits).map(([k, v]) => `${k} ${v.count}`).join(', ');
  console.log(`merged ${shardDirs.length} shard(s) into ${out}: ${counts}; rejected ${manifest.build.rejected} (rejected.csv)`);
}

export async function synthFilesCommand(flags: Flags): Promise<void> {
  const out = text(flags, 'out');
  const n = number(flags, 'n');
  if (!out || n === undefined || !Number.isInteger(n) || n < 1) throw new Error('synth-files needs --n N (a positive integer) and --out DIR');
  const t0 = Date.now();
  await writePhantomCohort(new NodeBuildFileSystem(), out, { n, seed: number(flags, 'seed'), gzip: switchOn(flags, 'gzip') });
  console.log(`wrote ${n} phantom subjects as files and ${out}/pairs.csv (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}
