/**
 * The augmentation experiment (REFERENCE_SPEC §8): does pretraining a CMR encoder on real + generated cines
 * help a downstream task more than real cines alone, and more than generated cines without the ECG?
 *
 * Arms (each × seeds; the pretrained arms × mix ratios r, synthetic count = r × the real pretraining pool):
 *   none           no pretraining: the encoder starts from its random initialisation
 *   real           contrastive pretraining on the labelled real clips only (labels unused)
 *   synthetic      … on the real clips + r × as many clips generated from ECGs (npm run synthesize)
 *   unconditional  … on the real clips + r × as many clips generated with the null ECG (--unconditional):
 *                  separates "more pictures" from "pictures that carry the ECG's information"
 * Then, for each of k folds by subject over the labelled real set, the encoder (+ a linear head) is
 * fine-tuned on k − 1 folds and scored on the held-out fold (cross-validation) and on the real test set,
 * which is never used for pretraining, fine-tuning or generation.
 *
 * A unit of work is one (arm, mix, seed): its pretraining and its k fine-tunings. Units are independent:
 * `shard` takes units with index mod n = i; every finished fine-tuning appends one JSON line to
 * results-<shard>.jsonl, and a rerun skips what is there (resume after a kill); the report reads every
 * results-*.jsonl in the folder (so shards need no merge step).
 */
import type { Engine } from '../engine/engine';
import type { TrainFileSystem } from '../train/files';
import { joinPath, decodeText, encodeText } from '../data/fs';
import { HostTensor } from '../models/io/tensor';
import { readSafetensors, writeSafetensors } from '../models/io/safetensors';
import type { CineGeometry } from '../train/cine-data';
import { clipAt, type ClipSet } from './clips';
import type { VideoEncoderConfig, VideoEncoder } from './model';
import { hashSeed, Rng } from '../data/random';
import { textDigest } from '../data/build/pairs';
import { subjectFolds } from './random';
import { DownstreamError, finetune, newEncoder, predict, pretrainContrastive, type Task } from './train';
import { classificationMetrics, regressionMetrics } from './metrics';

export type Arm = 'none' | 'real' | 'synthetic' | 'unconditional';

export interface ExperimentSettings {
  task: 'classify' | 'regress';
  /** classify: the label column; regress: the target columns. */
  labels: string[];
  mixes: number[];
  folds: number;
  seeds: number;
  pretrain: 'none' | 'ssl';
  geometry: CineGeometry;
  encoder: VideoEncoderConfig;
  pretrainEpochs: number;
  pretrainBatch: number;
  pretrainLr: number;
  temperature: number;
  finetuneEpochs: number;
  finetuneBatch: number;
  finetuneLr: number;
  seed: number;
}

export interface Unit {
  arm: Arm;
  mix: number;
  seed: number;
}

export interface RunRecord extends Unit {
  fold: number;
  /** Scores on the held-out fold (cross-validation) and on the test set (when there is one). */
  cv: Record<string, number>;
  test: Record<string, number> | null;
  /** Test-set predictions, rows × outputs (probabilities or values on the original scale), for the bootstrap. */
  testPredictions: number[] | null;
  pretrainLoss: number[] | null;
  finetuneLoss: number[];
  pretrainClips: number;
  seconds: number;
}

export interface ExperimentData {
  real: ClipSet;
  test: ClipSet | null;
  synthetic: ClipSet | null;
  unconditional: ClipSet | null;
}

/** The units of the settings, in a fixed order (the shard key). */
export function experimentUnits(s: ExperimentSettings, data: Pick<ExperimentData, 'synthetic' | 'unconditional'>): Unit[] {
  const units: Unit[] = [];
  for (let seed = 0; seed < s.seeds; seed++) {
    units.push({ arm: 'none', mix: 0, seed });
    if (s.pretrain === 'none') continue;
    units.push({ arm: 'real', mix: 0, seed });
    for (const mix of s.mixes.filter((m) => m > 0)) {
      if (data.synthetic) units.push({ arm: 'synthetic', mix, seed });
      if (data.unconditional) units.push({ arm: 'unconditional', mix, seed });
    }
  }
  return units;
}

export const unitKey = (u: Unit) => `${u.arm}/mix${u.mix}/seed${u.seed}`;

/** The task of a clip set: class indices (classes sorted) or standardisation-ready targets; unlabelled rows are dropped. */
export function taskRows(set: ClipSet, s: ExperimentSettings): { rows: number[]; classes: string[]; values: Float64Array } {
  const columns = s.labels.map((name) => {
    const column = set.labels[name];
    if (!column) throw new DownstreamError(`${set.source}: no label '${name}' in the manifest (it has: ${Object.keys(set.labels).join(', ') || 'none'})`);
    return column;
  });
  const rows = set.ids.map((_, i) => i).filter((i) => columns.every((c) => c[i] !== null && c[i] !== undefined));
  if (s.task === 'classify') {
    const classes = [...new Set(rows.map((i) => String(columns[0][i])))].sort();
    if (classes.length < 2) throw new DownstreamError(`${set.source}: label '${s.labels[0]}' has ${classes.length} class(es); classification needs at least 2`);
    return { rows, classes, values: Float64Array.from(rows.map((i) => classes.indexOf(String(columns[0][i])))) };
  }
  const values = new Float64Array(rows.length * columns.length);
  rows.forEach((i, r) => columns.forEach((c, j) => {
    const v = Number(c[i]);
    if (!Number.isFinite(v)) throw new DownstreamError(`${set.source}: subject ${set.ids[i]} has a non-numeric '${s.labels[j]}' (${c[i]})`);
    values[r * columns.length + j] = v;
  }));
  return { rows, classes: [], values };
}

async function encoderWeights(encoder: VideoEncoder): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  for (const [name, t] of encoder.stateDict()) out.set(name, new HostTensor('f32', [...t.shape], Float32Array.from(await t.data())));
  return out;
}

function syntheticPool(set: ClipSet | null, count: number, seed: number, what: string): { ids: string[]; clips: Float32Array[] } {
  if (count === 0) return { ids: [], clips: [] };
  if (!set) throw new DownstreamError(`the ${what} arm needs --${what === 'synthetic' ? 'synthetic' : 'unconditional'} DIR`);
  if (set.ids.length < count) throw new DownstreamError(`${set.source}: mix needs ${count} ${what} clips, the folder holds ${set.ids.length}; synthesize more or lower --mix`);
  // The same seed picks the same subset for every mix, so larger mixes extend smaller ones.
  const chosen = new Rng(hashSeed(seed, 0x5e1)).shuffle([...set.ids.keys()]).slice(0, count);
  return { ids: chosen.map((i) => `${what}:${set.ids[i]}`), clips: chosen.map((i) => clipAt(set, i)) };
}

/**
 * What a pretrained encoder depends on: the pretraining settings, the unit and the clips (by id). Stored with the
 * weights and compared on reuse, so a cache shared between experiments (--pretrained-cache) or left over from
 * other settings is never silently taken for the right one.
 */
export function pretrainingKey(s: ExperimentSettings, unit: Unit, clipIds: string[]): string {
  const { geometry, encoder, pretrainEpochs, pretrainBatch, pretrainLr, temperature, seed } = s;
  return JSON.stringify({ unit: unitKey(unit), seed, geometry, encoder, pretrainEpochs, pretrainBatch, pretrainLr, temperature, clips: clipIds.length, clipsDigest: textDigest(clipIds.join('\n')) });
}

export interface RunContext {
  engine: Engine;
  fs: TrainFileSystem;
  out: string;
  /** Where pretrained encoders are kept (default out/pretrained); experiments that share it share pretraining. */
  pretrainedDir?: string;
  onLog?: (line: string) => void;
  onRunDone?: (record: RunRecord) => void;
}

/** Reads every results-*.jsonl of `out`; a damaged line is skipped with a warning. */
export async function readRecords(fs: TrainFileSystem, out: string, warn?: (w: string) => void): Promise<RunRecord[]> {
  const records: RunRecord[] = [];
  if (!(await fs.exists(out))) return records;
  for (const name of (await fs.listDir(out)).filter((n) => /^results-.*\.jsonl$/.test(n)).sort()) {
    const lines = decodeText(await fs.readFile(joinPath(out, name))).split('\n');
    lines.forEach((line, k) => {
      if (!line.trim()) return;
      try {
        records.push(JSON.parse(line) as RunRecord);
      } catch {
        warn?.(`${name} line ${k + 1} is damaged (an interrupted write?) and was skipped; its run will be redone`);
      }
    });
  }
  return records;
}

/**
 * Runs the units of one shard. Finished (unit, fold) pairs found in the folder's results are skipped.
 * Returns the records this call produced.
 */
export async function runUnits(ctx: RunContext, s: ExperimentSettings, data: ExperimentData, units: Unit[], shardName: string): Promise<RunRecord[]> {
  const { engine, fs, out } = ctx;
  const done = new Set((await readRecords(fs, out, ctx.onLog)).map((r) => `${unitKey(r)}/fold${r.fold}`));
  const real = taskRows(data.real, s);
  const folds = subjectFolds(real.rows.map((i) => data.real.ids[i]), s.folds, s.seed, s.task === 'classify' ? Array.from(real.values) : undefined);
  const test = data.test ? taskRows(data.test, s) : null;
  if (test && s.task === 'classify') {
    const unknown = test.classes.filter((c) => !real.classes.includes(c));
    if (unknown.length) throw new DownstreamError(`${data.test!.source}: classes ${unknown.join(', ')} do not occur in the labelled real set`);
  }
  const realClips = real.rows.map((i) => clipAt(data.real, i));
  const realIds = real.rows.map((i) => `real:${data.real.ids[i]}`);
  const pretrainedDir = ctx.pretrainedDir ?? joinPath(out, 'pretrained');
  const testClips = test ? test.rows.map((i) => clipAt(data.test!, i)) : [];
  const outputs = s.task === 'classify' ? real.classes.length : s.labels.length;
  const results = joinPath(out, `results-${shardName}.jsonl`);
  const produced: RunRecord[] = [];
  for (const unit of units) {
    const pending = folds.map((_, f) => f).filter((f) => !done.has(`${unitKey(unit)}/fold${f}`));
    if (!pending.length) continue;
    const unitSeed = hashSeed(s.seed, unit.seed, unit.arm.length, Math.round(unit.mix * 1000));
    // Pretraining (once per unit; the weights are kept so a resumed unit does not pretrain again).
    let pretrained: Map<string, HostTensor> | null = null;
    let pretrainLoss: number[] | null = null;
    let pool = 0;
    if (unit.arm !== 'none') {
      const file = joinPath(pretrainedDir, `${unit.arm}-mix${unit.mix}-seed${unit.seed}.safetensors`);
      const extra = unit.arm === 'real' ? { ids: [], clips: [] } : syntheticPool(unit.arm === 'synthetic' ? data.synthetic : data.unconditional, Math.round(unit.mix * realClips.length), unitSeed, unit.arm);
      pool = realClips.length + extra.clips.length;
      const key = pretrainingKey(s, unit, [...realIds, ...extra.ids]);
      if (await fs.exists(file)) {
        const stored = readSafetensors(await fs.readFile(file), { name: file });
        if (stored.metadata.key !== key) {
          throw new DownstreamError(`${file} was pretrained with other settings or clips (stored: ${stored.metadata.key ?? 'no key'}; now: ${key}); delete it or point --pretrained-cache elsewhere`);
        }
        pretrained = stored.tensors;
        pretrainLoss = JSON.parse(stored.metadata.loss ?? 'null');
      } else {
        const started = Date.now();
        const encoder = newEncoder(engine, s.encoder, unitSeed);
        try {
          pretrainLoss = await pretrainContrastive(engine, encoder, [...realClips, ...extra.clips], s.geometry, {
            epochs: s.pretrainEpochs, batch: s.pretrainBatch, lr: s.pretrainLr, temperature: s.temperature, seed: unitSeed,
            onEpoch: (epoch, loss) => ctx.onLog?.(`${unitKey(unit)} pretrain epoch ${epoch}/${s.pretrainEpochs} loss ${loss.toFixed(4)} (${pool} clips)`),
          });
          pretrained = await encoderWeights(encoder);
        } finally {
          encoder.dispose();
        }
        await fs.mkdir(pretrainedDir);
        await fs.writeFile(file, writeSafetensors(pretrained, { key, loss: JSON.stringify(pretrainLoss), clips: String(pool), seconds: String((Date.now() - started) / 1000) }));
      }
    }
    for (const fold of pending) {
      const started = Date.now();
      const heldOut = folds[fold];
      const trainRows = folds.flatMap((f, k) => (k === fold ? [] : f));
      // Regression targets are standardised with the training rows' mean and sd (the test is not looked at).
      let task: Task;
      let mu: number[] = [];
      let sd: number[] = [];
      if (s.task === 'classify') task = { kind: 'classify', classes: outputs, labels: Array.from(real.values) };
      else {
        mu = s.labels.map((_, j) => trainRows.reduce((a, r) => a + real.values[r * outputs + j], 0) / trainRows.length);
        sd = s.labels.map((_, j) => Math.sqrt(trainRows.reduce((a, r) => a + (real.values[r * outputs + j] - mu[j]) ** 2, 0) / Math.max(1, trainRows.length - 1)) || 1);
        task = { kind: 'regress', outputs, targets: real.values.map((v, k) => (v - mu[k % outputs]) / sd[k % outputs]) };
      }
      const encoder = newEncoder(engine, s.encoder, unitSeed + fold);
      if (pretrained) encoder.loadStateDict(pretrained);
      try {
        const model = await finetune(engine, encoder, realClips, s.geometry, task, trainRows, {
          epochs: s.finetuneEpochs, batch: s.finetuneBatch, lr: s.finetuneLr, seed: unitSeed + 17 * fold,
        });
        const unscale = (p: Float64Array) => (s.task === 'classify' ? p : p.map((v, k) => v * sd[k % outputs] + mu[k % outputs]));
        const score = (p: Float64Array, truth: Float64Array, rows: number[]): Record<string, number> => {
          if (s.task === 'classify') return { ...classificationMetrics(p, rows.map((r) => truth[r]), outputs) };
          const m: Record<string, number> = {};
          s.labels.forEach((name, j) => {
            const r = regressionMetrics(rows.map((_, i) => p[i * outputs + j]), rows.map((row) => truth[row * outputs + j]));
            m[`${name}.mae`] = r.mae;
            m[`${name}.r2`] = r.r2;
          });
          return m;
        };
        const cvPred = unscale(await predict(engine, model, realClips, s.geometry, task, heldOut));
        const cv = score(cvPred, real.values, heldOut);
        let testScores: Record<string, number> | null = null;
        let testPredictions: number[] | null = null;
        if (test && testClips.length) {
          const testTask: Task = s.task === 'classify' ? task : { kind: 'regress', outputs, targets: new Float64Array(testClips.length * outputs) };
          const p = unscale(await predict(engine, model, testClips, s.geometry, testTask, testClips.map((_, i) => i)));
          const truth = s.task === 'classify' ? Float64Array.from(test.values, (v) => real.classes.indexOf(test.classes[v])) : test.values;
          testScores = score(p, truth, testClips.map((_, i) => i));
          testPredictions = Array.from(p, (v) => Math.round(v * 1e6) / 1e6);
        }
        model.head.dispose();
        const record: RunRecord = {
          ...unit, fold, cv, test: testScores, testPredictions, pretrainLoss, finetuneLoss: model.curve, pretrainClips: pool, seconds: (Date.now() - started) / 1000,
        };
        await fs.appendFile(results, encodeText(JSON.stringify(record) + '\n'));
        produced.push(record);
        ctx.onRunDone?.(record);
      } finally {
        encoder.dispose();
      }
    }
  }
  return produced;
}
