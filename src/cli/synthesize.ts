/**
 * `npm run synthesize -- --checkpoint FLOW_RUN (--phantom N | --ecg-data DIR | --pairs FILE) --out DIR [options]`:
 * generated cines at scale, written as a dataset (docs/DOWNSTREAM.md).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { NodeBuildFileSystem } from '../data/build/build-fs';
import type { LabelColumn } from '../data/build/pairs';
import { parseShard, parseSplitFractions, type ShardSpec, type SplitFractions } from '../data/build/split';
import { PHANTOM_PHENOTYPES, SPLIT_NAMES, type SplitName } from '../data/dataset';
import { Engine } from '../engine/engine';
import { runSynthesis } from '../synthesize/job';
import { datasetSources, fileSources, phantomSources, type SynthesisSource } from '../synthesize/sources';
import { oneOf, UsageError } from '../train/options';
import { NodeTrainFileSystem } from '../train/node-files';
import { FlowPipeline } from '../train/pipeline';
import { formatDuration } from '../train/progress';
import { SAMPLE_DEFAULTS, SAMPLER_METHODS, TIME_GRIDS, type SamplerMethod, type TimeGrid } from '../train/sampler';
import { runCliMain } from './cli-main';

const USAGE = `usage: npm run synthesize -- --checkpoint FLOW_RUN --out DIR (--phantom N | --ecg-data DIR | --pairs FILE) [options]

Generates one cine per ECG with a trained chain and writes them as a dataset (NPY + manifest, 50 x 96 x 96 in
[-1, 1], the layout training and downstream read), with provenance (weights hash, sampler, per-clip seed).

sources (one):
  --phantom N            N phantom ECGs (no cines), subjects --phantom-start.. of --phantom-seed
  --phantom-seed S       default 42
  --phantom-start I      first phantom index (default 0)
  --ecg-data DIR         the ECGs of a dataset directory (--ecg-split train,val,test: which splits; default all)
  --pairs FILE           CSV with subject_id,ecg[,labels...] (a data-build pairs file works; cmr is ignored)
  --fs HZ                sampling rate of NPY ECG files (they carry none)

output and scheduling:
  --out DIR              the synthetic dataset (one shard's, with --shard)
  --batch B              clips per generation call (default 4)
  --shard i/n            generate sources with position mod n = i (0-based; Slurm array / indexed Job);
                         join the shard folders with: npm run data -- merge --out DIR SHARD_DIRS...
  --resume               continue an interrupted run in --out (same sources, weights and sampler)
  --split A,B,C          train/val/test fractions of the synthetic dataset (default 1,0,0: all train)

sampler (as npm run generate):
  --steps N              default ${SAMPLE_DEFAULTS.steps}
  --sampler euler|heun   default ${SAMPLE_DEFAULTS.method}
  --time-grid mid|start  Euler's evaluation times: (k + 0.5)/N (infer_flow.py, default) or k/N (ECG_DiT.sample)
  --guidance S           default ${SAMPLE_DEFAULTS.guidance}
  --alpha A              default ${SAMPLE_DEFAULTS.alpha}
  --seed S               default ${SAMPLE_DEFAULTS.seed}; clip k uses noise hash(seed, k), k = the source's position
  --unconditional        null ECG condition: the "more pictures without the ECG" baseline
  --stage1-encoder       the PA-MAE run's encoder instead of the fine-tuned one
`;

interface Args {
  checkpoint: string;
  out: string;
  phantom: number;
  phantomSeed: number;
  phantomStart: number;
  ecgData: string;
  ecgSplits: SplitName[];
  pairs: string;
  fs?: number;
  batch: number;
  shard: ShardSpec;
  resume: boolean;
  split: SplitFractions;
  steps: number;
  sampler: SamplerMethod;
  timeGrid: TimeGrid;
  guidance: number;
  alpha: number;
  seed: number;
  unconditional: boolean;
  stage1Encoder: boolean;
}

export function parseSynthesizeArgs(argv: string[]): Args {
  const args: Args = {
    checkpoint: '', out: '', phantom: 0, phantomSeed: 42, phantomStart: 0, ecgData: '', ecgSplits: [...SPLIT_NAMES], pairs: '',
    batch: 4, shard: { index: 0, count: 1 }, resume: false, split: [1, 0, 0], steps: SAMPLE_DEFAULTS.steps, sampler: SAMPLE_DEFAULTS.method, timeGrid: SAMPLE_DEFAULTS.timeGrid,
    guidance: SAMPLE_DEFAULTS.guidance, alpha: SAMPLE_DEFAULTS.alpha, seed: SAMPLE_DEFAULTS.seed, unconditional: false, stage1Encoder: false,
  };
  const list = argv.flatMap((a) => (a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a]));
  for (let i = 0; i < list.length; i++) {
    const flag = list[i];
    const one = (): string => {
      const v = list[++i];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    const int = (min: number): number => {
      const raw = one();
      const n = Number(raw);
      if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} must be an integer >= ${min}, got '${raw}'`);
      return n;
    };
    const num = (min: number): number => {
      const raw = one();
      const n = Number(raw);
      if (!Number.isFinite(n) || n < min) throw new UsageError(`${flag} must be a number >= ${min}, got '${raw}'`);
      return n;
    };
    const usage = <T>(fn: () => T): T => {
      try {
        return fn();
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
    };
    if (flag === '--checkpoint') args.checkpoint = one();
    else if (flag === '--out') args.out = one();
    else if (flag === '--phantom') args.phantom = int(1);
    else if (flag === '--phantom-seed') args.phantomSeed = int(0);
    else if (flag === '--phantom-start') args.phantomStart = int(0);
    else if (flag === '--ecg-data') args.ecgData = one();
    else if (flag === '--ecg-split') {
      const splits = one().split(',');
      const bad = splits.find((s) => !(SPLIT_NAMES as readonly string[]).includes(s));
      if (bad !== undefined) throw new UsageError(`--ecg-split takes ${SPLIT_NAMES.join(', ')}; got '${bad}'`);
      args.ecgSplits = splits as SplitName[];
    } else if (flag === '--pairs') args.pairs = one();
    else if (flag === '--fs') args.fs = num(1);
    else if (flag === '--batch') args.batch = int(1);
    else if (flag === '--shard') args.shard = usage(() => parseShard(one()));
    else if (flag === '--resume') args.resume = true;
    else if (flag === '--split') args.split = usage(() => parseSplitFractions(one()));
    else if (flag === '--steps') args.steps = int(1);
    else if (flag === '--guidance') args.guidance = num(0);
    else if (flag === '--alpha') args.alpha = num(0);
    else if (flag === '--seed') args.seed = int(0);
    else if (flag === '--unconditional') args.unconditional = true;
    else if (flag === '--stage1-encoder') args.stage1Encoder = true;
    else if (flag === '--time-grid') args.timeGrid = oneOf(flag, one(), TIME_GRIDS);
    else if (flag === '--sampler') args.sampler = oneOf(flag, one(), SAMPLER_METHODS);
    else throw new UsageError(`unknown argument '${flag}'`);
  }
  if (!args.checkpoint) throw new UsageError('--checkpoint is required (a flow run directory)');
  if (!args.out) throw new UsageError('--out is required');
  const kinds = [args.phantom > 0, !!args.ecgData, !!args.pairs].filter(Boolean).length;
  if (kinds !== 1) throw new UsageError('give exactly one source: --phantom N, --ecg-data DIR or --pairs FILE');
  return args;
}

const PHANTOM_LABELS: LabelColumn[] = [{ name: 'cls', type: 'string' }, ...PHANTOM_PHENOTYPES.map((name): LabelColumn => ({ name, type: 'number' }))];

/** Label columns from the sources' labels (dataset and file sources know theirs without loading). */
function labelColumnsOf(sources: SynthesisSource[]): LabelColumn[] {
  const types = new Map<string, Set<string>>();
  for (const s of sources) for (const [name, v] of Object.entries(s.labels)) {
    if (!types.has(name)) types.set(name, new Set());
    if (v !== null) types.get(name)!.add(typeof v);
  }
  return [...types.entries()].map(([name, seen]) => ({ name, type: seen.size === 1 && seen.has('number') ? 'number' : 'string' }));
}

async function main(argv: string[]): Promise<number> {
  const args = parseSynthesizeArgs(argv);
  const fs = new NodeBuildFileSystem();
  let sources: SynthesisSource[];
  let labelColumns: LabelColumn[];
  let sourceKind: string;
  if (args.phantom > 0) {
    sources = phantomSources(args.phantomSeed, args.phantomStart, args.phantom);
    labelColumns = PHANTOM_LABELS;
    sourceKind = `phantom seed ${args.phantomSeed} from ${args.phantomStart}`;
  } else if (args.ecgData) {
    sources = await datasetSources(fs, args.ecgData, args.ecgSplits);
    labelColumns = labelColumnsOf(sources);
    sourceKind = `dataset ${args.ecgData} (${args.ecgSplits.join(',')})`;
  } else {
    sources = await fileSources(fs, args.pairs, { fs: args.fs });
    labelColumns = labelColumnsOf(sources);
    sourceKind = `files listed in ${args.pairs}`;
  }
  const engine = await Engine.webgpu();
  let pipeline: FlowPipeline | null = null;
  try {
    pipeline = await FlowPipeline.load(engine, new NodeTrainFileSystem(), args.checkpoint, { stage1Encoder: args.stage1Encoder });
    const sha = createHash('sha256').update(readFileSync(pipeline.weightsSource)).digest('hex');
    const mine = sources.filter((_, k) => k % args.shard.count === args.shard.index).length;
    const adapter = engine.caps?.adapter;
    process.stderr.write(`synthesizing ${mine} of ${sources.length} clip(s) (shard ${args.shard.index}/${args.shard.count}) with ${args.checkpoint} ` +
      `(${args.sampler}, ${args.steps} steps, guidance ${args.guidance}, alpha ${args.alpha}, seed ${args.seed}${args.unconditional ? ', unconditional' : ''}), batch ${args.batch}, on ${adapter?.description || adapter?.device || 'WebGPU'}\n`);
    const tty = process.stderr.isTTY;
    let lastLine = 0;
    const result = await runSynthesis(fs, pipeline, {
      out: args.out, sources, labelColumns, sourceKind, checkpoint: args.checkpoint, checkpointSha256: sha, batch: args.batch,
      shard: args.shard, resume: args.resume, fractions: args.split,
      sample: { steps: args.steps, method: args.sampler, timeGrid: args.timeGrid, guidance: args.guidance, alpha: args.alpha, seed: args.seed, unconditional: args.unconditional },
      onWarning: (w) => process.stderr.write(`${tty ? '\r\x1b[2K' : ''}warning: ${w}\n`),
      onProgress: (done, total, rate) => {
        const eta = rate > 0 ? formatDuration((total - done) / rate) : '?';
        const line = `${done}/${total} clips  ${rate.toFixed(2)} clips/s  ETA ${eta}`;
        if (tty) process.stderr.write(`\r\x1b[2K${line}`);
        else if (Date.now() - lastLine > 10_000 || done === total) {
          process.stderr.write(line + '\n');
          lastLine = Date.now();
        }
      },
    });
    if (tty) process.stderr.write('\n');
    console.log(`${result.generated} clip(s) generated${result.skipped ? `, ${result.skipped} already done (resumed)` : ''} at ${result.clipsPerSecond.toFixed(2)} clips/s; dataset in ${result.out}`);
    return 0;
  } finally {
    pipeline?.dispose();
    engine.destroy();
  }
}

runCliMain(USAGE, main);
