/**
 * `npm run data -- build`: pairs -> preprocessed dataset (the layout of `synth`), parallel and resumable.
 *
 * Workers read and preprocess subjects concurrently; the main thread appends the results strictly in pair
 * order (a bounded reorder window), so the NPY bytes depend on the pairs and the seed only, not on the
 * number of workers or on the sharding. A shard (i/n) builds pairs with index mod n = i into its own
 * folder; `mergeShards` joins the n folders in pair order into the dataset a single build writes.
 */
import type { SplitName } from '../dataset';
import type { BuildFileSystem } from './build-fs';
import type { PairList, SubjectPair } from './pairs';
import { splitForId, inShard, type SplitFractions, type ShardSpec } from './split';
import { DatasetAppender, type BuildIdentity, type BuiltDatasetManifest } from './store';
import { InlineRunner, WorkerPool, type SubjectRunner } from './worker-pool';
import type { SubjectOptions, SubjectOutcome } from './subject';
import type { ProgressState } from './progress';
import { writeQcReport } from './qc';

export interface BuildOptions {
  out: string;
  pairs: PairList;
  /** Seed of the split hash (default 42). */
  seed?: number;
  /** train, val, test fractions (default 0.8, 0.1, 0.1). */
  fractions?: SplitFractions;
  shard?: ShardSpec;
  /** Worker threads; 0 runs subjects on the calling thread. */
  workers: number;
  /** Heap limit per worker thread (MB); a subject that needs more is rejected (stage 'worker') instead of exhausting the machine. */
  workerMemoryMb?: number;
  resume?: boolean;
  /** Label column that becomes each subject's `cls` (default: a column named class/cls/label/diagnosis, if any). */
  classColumn?: string | null;
  subject?: SubjectOptions;
  /** Runs the subjects instead of the default (a WorkerPool, or inline with workers = 0): tests, custom executors. */
  runner?: SubjectRunner;
  /** Write qc.md and pictures at the end (default true). */
  qc?: boolean;
  onProgress?: (state: ProgressState) => void;
}

export interface BuildResult {
  manifest: BuiltDatasetManifest;
  accepted: number;
  rejected: number;
  /** Subjects processed by this run and its wall time (resume skips the rest). */
  processedThisRun: number;
  seconds: number;
}

const CLASS_COLUMN_NAMES = ['class', 'cls', 'label', 'diagnosis'];

export function pickClassColumn(pairs: PairList, requested: string | null | undefined): string | null {
  if (requested === null) return null;
  if (requested !== undefined) {
    if (!pairs.labelColumns.some((c) => c.name === requested)) {
      throw new Error(`--class-column '${requested}' is not a label column (have: ${pairs.labelColumns.map((c) => c.name).join(', ') || 'none'})`);
    }
    return requested;
  }
  return pairs.labelColumns.find((c) => c.type === 'string' && CLASS_COLUMN_NAMES.includes(c.name.toLowerCase()))?.name ?? null;
}

export function splitOf(pair: SubjectPair, fractions: SplitFractions, seed: number): SplitName {
  return pair.split ?? splitForId(pair.id, fractions, seed);
}

export async function buildDataset(fs: BuildFileSystem, options: BuildOptions): Promise<BuildResult> {
  const seed = options.seed ?? 42;
  const fractions = options.fractions ?? [0.8, 0.1, 0.1];
  const shard = options.shard ?? { index: 0, count: 1 };
  const identity: BuildIdentity = {
    pairsDigest: options.pairs.digest, pairCount: options.pairs.pairs.length, seed, fractions,
    labelColumns: options.pairs.labelColumns, classColumn: pickClassColumn(options.pairs, options.classColumn), shard,
  };
  const store = await DatasetAppender.open(fs, options.out, identity, options.resume ?? false);
  const mine = options.pairs.pairs.filter((p) => inShard(p.index, shard));
  const todo = mine.filter((p) => !store.done.has(p.index));
  const runner: SubjectRunner = options.runner ?? (options.workers > 0 ? new WorkerPool(options.workers, options.subject ?? {}, options.workerMemoryMb ? { maxOldGenerationSizeMb: options.workerMemoryMb } : undefined) : new InlineRunner(fs, options.subject ?? {}));
  const t0 = Date.now();
  const report = (k: number) => options.onProgress?.({
    done: mine.length - todo.length + k, total: mine.length, rejected: store.rejectedCount, doneThisRun: k, elapsedSeconds: (Date.now() - t0) / 1000,
  });
  try {
    // At most `window` subjects are in flight or waiting for their turn: memory stays bounded while
    // a slow subject holds back the appends behind it.
    const window = Math.max(2, runner.concurrency * 2);
    const pending = new Map<number, Promise<SubjectOutcome>>();
    let started = 0;
    report(0);
    for (let k = 0; k < todo.length; k++) {
      while (started < todo.length && started < k + window) {
        const outcome = runner.run(todo[started]);
        // Awaited in order below; without this a failure of a later one would be an unhandled rejection first.
        outcome.catch(() => undefined);
        pending.set(started, outcome);
        started++;
      }
      const outcome = await pending.get(k)!;
      pending.delete(k);
      await store.append(todo[k], outcome, splitOf(todo[k], fractions, seed));
      report(k + 1);
    }
  } finally {
    await runner.close();
  }
  const manifest = await store.finalize();
  if (options.qc ?? true) await writeQcReport(fs, options.out, manifest);
  return { manifest, accepted: store.acceptedCount, rejected: store.rejectedCount, processedThisRun: todo.length, seconds: (Date.now() - t0) / 1000 };
}
