/**
 * Training loops of the downstream models: contrastive pretraining of the video encoder (SimCLR's NT-Xent
 * over two augmented views), then supervised fine-tuning of encoder + linear head (classification with
 * cross-entropy, or regression of standardised phenotypes with MSE), and prediction.
 *
 * Every random choice (batch order, augmentations, initialisation) comes from the run's seed, so a run is
 * reproducible; the loss of every step stays on the device until the loop reads the epoch's mean once
 * (one read-back per epoch), and a non-finite epoch loss stops the run with an error naming the epoch.
 */
import { backward, noGrad } from '../engine/autograd';
import { fromArray } from '../engine/create';
import type { Engine } from '../engine/engine';
import { tidy, keep } from '../engine/scope';
import type { Tensor } from '../engine/tensor';
import { add, mulScalar, sub, square } from '../kernels/elementwise';
import { AdamW } from '../kernels/optimizer';
import { mean } from '../kernels/reduce';
import { softmax } from '../kernels/softmax';
import { Generator } from '../kernels/random';
import { Linear } from '../models/layers';
import type { CineGeometry } from '../train/cine-data';
import { augmentClip } from './augment';
import { ntXentLoss, softmaxCrossEntropy } from './losses';
import { ProjectionHead, VideoEncoder, type VideoEncoderConfig } from './model';
import { Rng } from '../data/random';

export interface PretrainOptions {
  epochs: number;
  batch: number;
  lr: number;
  temperature: number;
  seed: number;
  onEpoch?: (epoch: number, loss: number) => void;
}

export interface FinetuneOptions {
  epochs: number;
  batch: number;
  lr: number;
  seed: number;
  weightDecay?: number;
  onEpoch?: (epoch: number, loss: number) => void;
}

/** A task: classes (labels 0..k−1) or standardised regression targets (n × m). */
export type Task = { kind: 'classify'; classes: number; labels: number[] } | { kind: 'regress'; targets: Float64Array; outputs: number };

export class DownstreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DownstreamError';
  }
}

function stack(clips: Float32Array[], g: CineGeometry): Float32Array {
  const n = g.frames * g.size * g.size;
  const out = new Float32Array(clips.length * n);
  clips.forEach((c, i) => out.set(c, i * n));
  return out;
}

async function epochMean(losses: Tensor[], what: string, epoch: number): Promise<number> {
  const total = noGrad(() => tidy(() => mulScalar(losses.reduce((a, b) => add(a, b)), 1 / losses.length)));
  const value = await total.item();
  total.dispose();
  losses.forEach((l) => l.dispose());
  if (!Number.isFinite(value)) throw new DownstreamError(`${what}: the loss of epoch ${epoch} is not finite (${value}); lower --lr`);
  return value;
}

export function newEncoder(engine: Engine, config: VideoEncoderConfig, seed: number): VideoEncoder {
  return new VideoEncoder({ backend: engine.backend, gen: new Generator(seed) }, config);
}

/** Contrastive pretraining on `clips` (no labels). Returns the per-epoch losses. */
export async function pretrainContrastive(engine: Engine, encoder: VideoEncoder, clips: Float32Array[], g: CineGeometry, o: PretrainOptions): Promise<number[]> {
  if (clips.length < 2) throw new DownstreamError(`contrastive pretraining needs at least 2 clips, got ${clips.length}`);
  const projection = new ProjectionHead({ backend: engine.backend, gen: new Generator(o.seed + 1) }, encoder.featureDim);
  const params = [...encoder.parameters(), ...projection.parameters()];
  const optimizer = new AdamW(params, { lr: o.lr, weightDecay: 1e-4 });
  const rng = new Rng(o.seed);
  const batch = Math.min(o.batch, clips.length);
  const curve: number[] = [];
  encoder.training = true;
  try {
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const order = rng.shuffle([...clips.keys()]);
      const losses: Tensor[] = [];
      // Full batches only: NT-Xent's difficulty depends on the batch size.
      for (let start = 0; start + batch <= order.length; start += batch) {
        const rows = order.slice(start, start + batch);
        const shape = [rows.length, 1, g.frames, g.size, g.size];
        const v1 = engine.tensor(stack(rows.map((r) => augmentClip(clips[r], g, rng)), g), shape);
        const v2 = engine.tensor(stack(rows.map((r) => augmentClip(clips[r], g, rng)), g), shape);
        const loss = tidy(() => {
          const l = ntXentLoss(projection.forward(encoder.forward(v1)), projection.forward(encoder.forward(v2)), o.temperature);
          backward(l);
          return keep(l);
        });
        optimizer.step();
        optimizer.zeroGrad();
        v1.dispose();
        v2.dispose();
        losses.push(loss);
      }
      const value = await epochMean(losses, 'pretraining', epoch);
      curve.push(value);
      o.onEpoch?.(epoch, value);
    }
  } finally {
    projection.dispose();
    optimizer.dispose();
  }
  return curve;
}

function taskLoss(task: Task, out: Tensor, rows: number[]): Tensor {
  if (task.kind === 'classify') return softmaxCrossEntropy(out, rows.map((r) => task.labels[r]));
  const target = new Float32Array(rows.length * task.outputs);
  rows.forEach((r, i) => {
    for (let j = 0; j < task.outputs; j++) target[i * task.outputs + j] = task.targets[r * task.outputs + j];
  });
  return mean(square(sub(out, fromArray(out.backend, target, [rows.length, task.outputs]))));
}

export interface Finetuned {
  encoder: VideoEncoder;
  head: Linear;
  curve: number[];
}

/** Fine-tunes encoder + a new linear head on the rows `train` of `clips`. The encoder is trained in place. */
export async function finetune(engine: Engine, encoder: VideoEncoder, clips: Float32Array[], g: CineGeometry, task: Task, train: number[], o: FinetuneOptions): Promise<Finetuned> {
  const outputs = task.kind === 'classify' ? task.classes : task.outputs;
  const head = new Linear({ backend: engine.backend, gen: new Generator(o.seed + 2) }, encoder.featureDim, outputs);
  const optimizer = new AdamW([...encoder.parameters(), ...head.parameters()], { lr: o.lr, weightDecay: o.weightDecay ?? 1e-4 });
  const rng = new Rng(o.seed + 3);
  const curve: number[] = [];
  encoder.training = true;
  try {
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const order = rng.shuffle([...train]);
      const losses: Tensor[] = [];
      for (let start = 0; start < order.length; start += o.batch) {
        const rows = order.slice(start, start + o.batch);
        const x = engine.tensor(stack(rows.map((r) => clips[r]), g), [rows.length, 1, g.frames, g.size, g.size]);
        const loss = tidy(() => {
          const l = taskLoss(task, head.forward(encoder.forward(x)), rows);
          backward(l);
          return keep(l);
        });
        optimizer.step();
        optimizer.zeroGrad();
        x.dispose();
        losses.push(loss);
      }
      const value = await epochMean(losses, 'fine-tuning', epoch);
      curve.push(value);
      o.onEpoch?.(epoch, value);
    }
  } finally {
    optimizer.dispose();
  }
  return { encoder, head, curve };
}

/** Class probabilities (classify) or standardised predictions (regress) for `rows`, n × outputs. */
export async function predict(engine: Engine, model: Finetuned, clips: Float32Array[], g: CineGeometry, task: Task, rows: number[], batch = 16): Promise<Float64Array> {
  const outputs = task.kind === 'classify' ? task.classes : task.outputs;
  const result = new Float64Array(rows.length * outputs);
  model.encoder.training = false;
  for (let start = 0; start < rows.length; start += batch) {
    const chunk = rows.slice(start, start + batch);
    const x = engine.tensor(stack(chunk.map((r) => clips[r]), g), [chunk.length, 1, g.frames, g.size, g.size]);
    const out = noGrad(() => tidy(() => {
      const y = model.head.forward(model.encoder.forward(x));
      return task.kind === 'classify' ? softmax(y, 1) : mulScalar(y, 1);
    }));
    const values = await out.data();
    out.dispose();
    x.dispose();
    result.set(Float64Array.from(values), start * outputs);
  }
  if (!result.every(Number.isFinite)) throw new DownstreamError('prediction holds non-finite values: the fine-tuned model diverged; lower --lr');
  return result;
}
