/**
 * `npm run downstream -- --task classify|regress --real DIR [--synthetic DIR] [--unconditional DIR] --out DIR [options]`
 * and `npm run downstream -- report --out DIR`: the generative-augmentation experiment (docs/DOWNSTREAM.md).
 */
import { parseShard, type ShardSpec } from '../data/build/split';
import { SPLIT_NAMES, type SplitName } from '../data/dataset';
import { decodeText, encodeText, joinPath } from '../data/fs';
import { loadClipSet, type ClipSet } from '../downstream/clips';
import { experimentUnits, readRecords, runUnits, taskRows, unitKey, type ExperimentSettings } from '../downstream/experiment';
import { VIDEO_ENCODER_DEFAULT } from '../downstream/model';
import { buildReport, metricPlotSvg, reportMarkdown, type TestTruth } from '../downstream/report';
import { Engine } from '../engine/engine';
import { NodeTrainFileSystem } from '../train/node-files';
import { UsageError } from '../train/options';
import { formatDuration } from '../train/progress';
import { runCliMain } from './cli-main';

const USAGE = `usage: npm run downstream -- --task classify|regress --real DIR --out DIR [options]
       npm run downstream -- report --out DIR

Pretrains a compact 3-D CNN on real (+ synthetic) cines with a contrastive objective, fine-tunes it on the
labelled real set with k-fold cross-validation by subject, and scores the held-out folds and a test set.

data (dataset folders: npm run data -- synth | build, npm run synthesize):
  --real DIR             labelled real cines; --real-splits (default train,val) are the CV set
  --test DIR             held-out real test set (default: --real's test split when it has rows); --test-split S
  --no-test              cross-validation only
  --synthetic DIR        clips generated from ECGs (npm run synthesize)
  --unconditional DIR    clips generated with the null ECG (npm run synthesize -- --unconditional)
task:
  --task classify|regress
  --label NAME           classify: the class column (default cls)
  --targets A,B          regress: numeric columns (default efProxy,edvProxy,esvProxy,wallThickness)
protocol:
  --mix 0,1,2,3,4        synthetic clips per real clip in pretraining (default 0,1,2,3,4)
  --pretrain none|ssl    ssl (default): all arms; none: only the no-pretraining baseline
  --folds K              default 5          --seeds S   default 3          --seed N   default 0
  --shard i/n            units (arm, mix, seed) with index mod n = i; then: npm run downstream -- report --out DIR
  --pretrained-cache DIR where pretrained encoders are kept (default OUT/pretrained); a classification and a
                         regression run with the same pretraining settings and clips can share one (checked)
model and training (defaults sized for a CPU adapter):
  --frames T --size S    clip geometry (default 16, 32)          --width W   encoder width (default 16)
  --pretrain-epochs N    default 10   --pretrain-batch B  default 16   --pretrain-lr  default 1e-3   --temperature default 0.2
  --finetune-epochs N    default 15   --finetune-batch B  default 16   --finetune-lr  default 5e-4
  --limit N              use at most N clips of each folder (quick trials)
`;

interface Args {
  report: boolean;
  out: string;
  real: string;
  realSplits: SplitName[];
  test: string;
  testSplit: SplitName;
  noTest: boolean;
  synthetic: string;
  unconditional: string;
  pretrainedCache: string;
  limit?: number;
  shard: ShardSpec;
  settings: ExperimentSettings;
}

function parseArgs(argv: string[]): Args {
  const s: ExperimentSettings = {
    task: 'classify', labels: [], mixes: [0, 1, 2, 3, 4], folds: 5, seeds: 3, pretrain: 'ssl', geometry: { frames: 16, size: 32 },
    encoder: { ...VIDEO_ENCODER_DEFAULT }, pretrainEpochs: 10, pretrainBatch: 16, pretrainLr: 1e-3, temperature: 0.2,
    finetuneEpochs: 15, finetuneBatch: 16, finetuneLr: 5e-4, seed: 0,
  };
  const a: Args = { report: false, out: '', real: '', realSplits: ['train', 'val'], test: '', testSplit: 'test', noTest: false, synthetic: '', unconditional: '', pretrainedCache: '', shard: { index: 0, count: 1 }, settings: s };
  let taskGiven = false;
  const list = argv.flatMap((x) => (x.startsWith('--') && x.includes('=') ? [x.slice(0, x.indexOf('=')), x.slice(x.indexOf('=') + 1)] : [x]));
  if (list[0] === 'report') (a.report = true), list.shift();
  for (let i = 0; i < list.length; i++) {
    const flag = list[i];
    const one = () => {
      const v = list[++i];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    const num = (min: number, integer = false) => {
      const raw = one();
      const n = Number(raw);
      if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) throw new UsageError(`${flag} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got '${raw}'`);
      return n;
    };
    const splits = (raw: string) => raw.split(',').map((x) => {
      if (!(SPLIT_NAMES as readonly string[]).includes(x)) throw new UsageError(`${flag}: '${x}' is not one of ${SPLIT_NAMES.join(', ')}`);
      return x as SplitName;
    });
    switch (flag) {
      case '--out': a.out = one(); break;
      case '--real': a.real = one(); break;
      case '--real-splits': a.realSplits = splits(one()); break;
      case '--test': a.test = one(); break;
      case '--test-split': a.testSplit = splits(one())[0]; break;
      case '--no-test': a.noTest = true; break;
      case '--synthetic': a.synthetic = one(); break;
      case '--unconditional': a.unconditional = one(); break;
      case '--pretrained-cache': a.pretrainedCache = one(); break;
      case '--task': {
        const t = one();
        if (t !== 'classify' && t !== 'regress') throw new UsageError(`--task must be classify or regress, got '${t}'`);
        s.task = t;
        taskGiven = true;
        break;
      }
      case '--label': s.labels = [one()]; break;
      case '--targets': s.labels = one().split(',').filter(Boolean); break;
      case '--mix': s.mixes = one().split(',').map((m) => {
        const n = Number(m);
        if (!Number.isFinite(n) || n < 0) throw new UsageError(`--mix takes ratios >= 0, got '${m}'`);
        return n;
      }); break;
      case '--pretrain': {
        const p = one();
        if (p !== 'none' && p !== 'ssl') throw new UsageError(`--pretrain must be none or ssl, got '${p}'`);
        s.pretrain = p;
        break;
      }
      case '--folds': s.folds = num(2, true); break;
      case '--seeds': s.seeds = num(1, true); break;
      case '--seed': s.seed = num(0, true); break;
      case '--shard': try { a.shard = parseShard(one()); } catch (e) { throw new UsageError((e as Error).message); } break;
      case '--frames': s.geometry.frames = num(4, true); break;
      case '--size': s.geometry.size = num(8, true); break;
      case '--width': s.encoder.width = num(4, true); break;
      case '--pretrain-epochs': s.pretrainEpochs = num(1, true); break;
      case '--pretrain-batch': s.pretrainBatch = num(2, true); break;
      case '--pretrain-lr': s.pretrainLr = num(0); break;
      case '--temperature': s.temperature = num(0.001); break;
      case '--finetune-epochs': s.finetuneEpochs = num(1, true); break;
      case '--finetune-batch': s.finetuneBatch = num(1, true); break;
      case '--finetune-lr': s.finetuneLr = num(0); break;
      case '--limit': a.limit = num(2, true); break;
      default: throw new UsageError(`unknown argument '${flag}'`);
    }
  }
  if (!a.out) throw new UsageError('--out is required');
  if (a.report) return a;
  if (!taskGiven) throw new UsageError('--task classify|regress is required');
  if (!a.real) throw new UsageError('--real DIR is required');
  if (!s.labels.length) s.labels = s.task === 'classify' ? ['cls'] : ['efProxy', 'edvProxy', 'esvProxy', 'wallThickness'];
  if (s.task === 'classify' && s.labels.length !== 1) throw new UsageError('--label takes one column for classification');
  if (s.encoder.width % s.encoder.groups !== 0) throw new UsageError(`--width must be a multiple of ${s.encoder.groups}`);
  return a;
}

const json = (v: unknown) => encodeText(JSON.stringify(v, null, 1) + '\n');

async function writeReport(fs: NodeTrainFileSystem, out: string, log: (l: string) => void): Promise<void> {
  const settings = JSON.parse(decodeText(await fs.readFile(joinPath(out, 'settings.json')))) as ExperimentSettings;
  const truthPath = joinPath(out, 'test-truth.json');
  const truth = (await fs.exists(truthPath)) ? (JSON.parse(decodeText(await fs.readFile(truthPath))) as TestTruth) : null;
  const records = await readRecords(fs, out, (w) => log(`warning: ${w}`));
  if (!records.length) throw new Error(`${out}: no results-*.jsonl records yet; run the experiment first`);
  const report = buildReport(settings, records, truth);
  await fs.writeFile(joinPath(out, 'results.json'), json(report));
  await fs.writeFile(joinPath(out, 'results.md'), encodeText(reportMarkdown(report)));
  for (const metric of report.headline) await fs.writeFile(joinPath(out, `plot-${metric.replace(/[^A-Za-z0-9.]/g, '_')}.svg`), encodeText(metricPlotSvg(report, metric)));
  log(reportMarkdown(report));
  log(`report: ${joinPath(out, 'results.md')}, results.json, plot-*.svg (${records.length} runs)`);
}

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const fs = new NodeTrainFileSystem();
  const log = (line: string) => process.stderr.write(line + '\n');
  if (args.report) {
    await writeReport(fs, args.out, log);
    return 0;
  }
  const s = args.settings;
  const load = async (dir: string, splits: SplitName[], what: string): Promise<ClipSet> => {
    const t0 = Date.now();
    const set = await loadClipSet(fs, dir, splits, s.geometry, { limit: args.limit });
    log(`${what}: ${set.ids.length} clips from ${set.source} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    return set;
  };
  const real = await load(args.real, args.realSplits, 'real (cross-validation set)');
  let test: ClipSet | null = null;
  if (!args.noTest) {
    const dir = args.test || args.real;
    const manifest = JSON.parse(decodeText(await fs.readFile(joinPath(dir, 'manifest.json'))));
    if ((manifest.splits?.[args.testSplit]?.count ?? 0) > 0) test = await load(dir, [args.testSplit], 'real (test set)');
    else if (args.test) throw new Error(`${dir}: split '${args.testSplit}' is empty`);
    else log(`no test set (${dir} has no '${args.testSplit}' rows): cross-validation only`);
  }
  const synthetic = args.synthetic ? await load(args.synthetic, [...SPLIT_NAMES], 'synthetic (ECG-conditioned)') : null;
  const unconditional = args.unconditional ? await load(args.unconditional, [...SPLIT_NAMES], 'synthetic (unconditional)') : null;
  if (s.pretrain === 'ssl' && s.mixes.some((m) => m > 0) && !synthetic && !unconditional) log('note: no --synthetic/--unconditional folder: only the none and real arms run');

  await fs.mkdir(args.out);
  const settingsPath = joinPath(args.out, 'settings.json');
  if (await fs.exists(settingsPath)) {
    const before = decodeText(await fs.readFile(settingsPath));
    if (before.trim() !== JSON.stringify(s, null, 1).trim()) throw new Error(`${settingsPath}: this folder holds an experiment with other settings; use a new --out (or the same options to resume)`);
  } else await fs.writeFile(settingsPath, json(s));
  if (test) {
    const rows = taskRows(test, s);
    const realClasses = taskRows(real, s).classes;
    const truth: TestTruth = {
      task: s.task, classes: realClasses, targets: s.task === 'regress' ? s.labels : [],
      values: s.task === 'classify' ? Array.from(rows.values, (v) => realClasses.indexOf(rows.classes[v])) : Array.from(rows.values),
    };
    await fs.writeFile(joinPath(args.out, 'test-truth.json'), json(truth));
  }
  const all = experimentUnits(s, { synthetic, unconditional });
  const mine = all.filter((_, k) => k % args.shard.count === args.shard.index);
  const before = (await readRecords(fs, args.out)).length;
  const total = mine.length * s.folds;
  const engine = await Engine.webgpu();
  const started = Date.now();
  let finished = 0;
  try {
    log(`${mine.length} of ${all.length} unit(s) (arm × mix × seed) in shard ${args.shard.index}/${args.shard.count}, ${s.folds} folds each; ${before} run(s) already in ${args.out}`);
    await runUnits({
      engine, fs, out: args.out, pretrainedDir: args.pretrainedCache || undefined, onLog: log,
      onRunDone: (r) => {
        finished++;
        const rate = finished / ((Date.now() - started) / 1000);
        const left = Math.max(0, total - finished - before);
        const main = Object.entries(r.test ?? r.cv).slice(0, 2).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(' ');
        log(`[${finished}/${Math.max(0, total - before)}] ${unitKey(r)} fold ${r.fold}: ${r.test ? 'test' : 'cv'} ${main} (${r.seconds.toFixed(0)} s)  ETA ${formatDuration(left / rate)}`);
      },
    }, s, { real, test, synthetic, unconditional }, mine, args.shard.count === 1 ? 'all' : `${args.shard.index}-of-${args.shard.count}`);
  } finally {
    engine.destroy();
  }
  if (args.shard.count === 1) await writeReport(fs, args.out, log);
  else log(`shard done; when every shard has finished: npm run downstream -- report --out ${args.out}`);
  return 0;
}

runCliMain(USAGE, main);
