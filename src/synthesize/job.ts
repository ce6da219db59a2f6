/**
 * A synthesis run: ECGs from a source → cines from a trained chain → a dataset in the project's layout
 * (NPY + manifest), so every downstream command reads real and synthetic data the same way.
 *
 * - Batched: B recordings per generation call (`generateBatch`), one read-back per batch.
 * - Sharded like `data build`: shard i/n takes sources with position mod n = i; `npm run data -- merge`
 *   joins the shard folders into one dataset identical to a single run (clip noise depends on the
 *   source's position, never on B, the shard or the batch-mates).
 * - Resumable: rows and journal lines are written by the dataset appender of `data build`; `--resume`
 *   cuts back a half-written row and goes on with the sources not yet in the journal.
 * - Provenance: the manifest's `synthesis` block holds the flow checkpoint's SHA-256, the sampler
 *   settings and the seed; each subject's labels hold its source id, origin and noise seed.
 *
 * Generated clips (the chain's geometry, values in [0, 1]) are brought to the dataset's 50 × 96 × 96 by
 * the same `prepareCine` that real cines go through (cyclic temporal resampling, resize, per-clip min-max
 * to [-1, 1]).
 */
import { DataError } from '../data/errors';
import { joinPath } from '../data/fs';
import { prepareCine } from '../data/preprocess/cmr';
import type { BuildFileSystem } from '../data/build/build-fs';
import { textDigest, type LabelColumn, type LabelValue, type SubjectPair } from '../data/build/pairs';
import { inShard, splitForId, type ShardSpec, type SplitFractions } from '../data/build/split';
import { DatasetAppender, type BuildIdentity } from '../data/build/store';
import { ecgStats } from '../data/build/subject';
import type { FlowPipeline } from '../train/pipeline';
import { SAMPLE_DEFAULTS, type FlowSampleOptions } from '../train/sampler';
import { clipNoiseSeed, generateBatch, type BatchItem } from './batch-generate';
import type { SynthesisSource } from './sources';

export interface SynthesisSettings {
  steps: number;
  guidance: number;
  alpha: number;
  method: string;
  timeGrid: string;
  seed: number;
  unconditional: boolean;
}

export interface SynthesisProvenance {
  checkpoint: string;
  /** SHA-256 (hex) of the flow weights file the pipeline loaded. */
  checkpointSha256: string;
  weightsFile: string;
  sampler: SynthesisSettings;
  sourceKind: string;
  sourceCount: number;
}

export interface SynthesisOptions {
  out: string;
  sources: SynthesisSource[];
  /** Label columns every source provides (fixed per source kind, so shards agree). */
  labelColumns: LabelColumn[];
  sourceKind: string;
  checkpoint: string;
  checkpointSha256: string;
  batch: number;
  shard?: ShardSpec;
  resume?: boolean;
  /** Split fractions of the synthetic dataset (default all train: synthetic clips are for pretraining). */
  fractions?: SplitFractions;
  sample?: FlowSampleOptions;
  onProgress?: (done: number, total: number, clipsPerSecond: number) => void;
  onWarning?: (text: string) => void;
}

export interface SynthesisResult {
  out: string;
  generated: number;
  skipped: number;
  clipsPerSecond: number;
  provenance: SynthesisProvenance;
}

export function syntheticId(sourceId: string): string {
  return `syn-${sourceId}`;
}

export async function runSynthesis(fs: BuildFileSystem, pipeline: FlowPipeline, options: SynthesisOptions): Promise<SynthesisResult> {
  const sample = { ...SAMPLE_DEFAULTS, ...options.sample };
  const settings: SynthesisSettings = {
    steps: sample.steps, guidance: sample.guidance, alpha: sample.alpha, method: sample.method, timeGrid: sample.timeGrid, seed: sample.seed, unconditional: sample.unconditional,
  };
  if (!Number.isInteger(options.batch) || options.batch < 1) throw new DataError('--batch', `must be a positive integer, got ${options.batch}`);
  const shard = options.shard ?? { index: 0, count: 1 };
  const fractions = options.fractions ?? [1, 0, 0];
  const provenance: SynthesisProvenance = {
    checkpoint: options.checkpoint, checkpointSha256: options.checkpointSha256, weightsFile: pipeline.weightsSource,
    sampler: settings, sourceKind: options.sourceKind, sourceCount: options.sources.length,
  };
  // What must not change between the shards of one run or across a resume: the sources, the weights and the sampler.
  const runDigest = textDigest(JSON.stringify({ ids: options.sources.map((s) => s.id), sha: options.checkpointSha256, settings }));
  const identity: BuildIdentity = {
    pairsDigest: runDigest, pairCount: options.sources.length, seed: sample.seed, fractions,
    labelColumns: options.labelColumns, classColumn: options.labelColumns.some((c) => c.name === 'cls') ? 'cls' : null, shard,
  };
  const store = await DatasetAppender.open(fs, options.out, identity, options.resume ?? false);
  await fs.writeFile(joinPath(options.out, 'synthesis.json'), JSON.stringify(provenance, null, 1));

  const todo = options.sources.map((source, position) => ({ source, position })).filter(({ position }) => inShard(position, shard) && !store.done.has(position));
  const total = options.sources.filter((_, position) => inShard(position, shard)).length;
  const skipped = total - todo.length;
  const started = Date.now();
  let generated = 0;
  let cineNoted = false;
  for (let start = 0; start < todo.length; start += options.batch) {
    const chunk = todo.slice(start, start + options.batch);
    const loaded = await Promise.all(chunk.map(async ({ source }) => source.load()));
    const items: BatchItem[] = chunk.map(({ position }, k) => ({ ecg: loaded[k].ecg, index: position }));
    const clips = await generateBatch(pipeline, items, sample);
    for (let k = 0; k < chunk.length; k++) {
      const { source, position } = chunk[k];
      const clip = clips[k];
      const id = syntheticId(source.id);
      const cine = prepareCine({ data: clip.clip, frames: clip.frames, height: clip.height, width: clip.width }, { source: id });
      const labels: Record<string, LabelValue> = {};
      for (const column of options.labelColumns) labels[column.name] = source.labels[column.name] ?? null;
      const pair: SubjectPair = {
        index: position, id, ecg: source.origin, cmr: `generated: seed ${clipNoiseSeed(sample.seed, position)}`, labels,
      } as SubjectPair;
      const warnings = [...loaded[k].warnings, ...cine.warnings];
      loaded[k].warnings.forEach((w) => options.onWarning?.(`${id}: ${w}`));
      // The cine notes (the model's geometry resampled to the dataset's) are the same for every generated clip:
      // said once, kept per subject in the manifest. They already name the clip.
      if (!cineNoted && cine.warnings.length) {
        cine.warnings.forEach((w) => options.onWarning?.(`${w} (so is every generated clip; said once)`));
        cineNoted = true;
      }
      await store.append(pair, { ok: true, ecg: loaded[k].ecg, cmr: cine.data, warnings, stats: ecgStats(loaded[k].ecg) }, splitForId(id, fractions, sample.seed));
      generated++;
    }
    const seconds = (Date.now() - started) / 1000;
    options.onProgress?.(skipped + generated, total, seconds > 0 ? generated / seconds : 0);
  }
  await store.finalize({ generator: 'ecgflowcmr synthesize v1', createdBy: 'npm run synthesize', synthesis: provenance });
  const seconds = (Date.now() - started) / 1000;
  return { out: options.out, generated, skipped, clipsPerSecond: seconds > 0 ? generated / seconds : 0, provenance };
}
