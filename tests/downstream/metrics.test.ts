/** Downstream metrics, folds, augmentation and losses against values worked out by hand or in float64. */
import { describe, expect, it } from 'vitest';
import { augmentClip } from '../../src/downstream/augment';
import { ntXentLoss, softmaxCrossEntropy } from '../../src/downstream/losses';
import { binaryAuc, bootstrapCi, bootstrapCis, classificationMetrics, meanSd, regressionMetrics } from '../../src/downstream/metrics';
import { subjectFolds } from '../../src/downstream/random';
import { Rng } from '../../src/data/random';
import { cpu } from '../helpers/oracle';
import { buildReport, reportMarkdown, type TestTruth } from '../../src/downstream/report';
import type { ExperimentSettings, RunRecord } from '../../src/downstream/experiment';

describe('metrics', () => {
  it('AUC counts ties as one half and needs both groups', () => {
    // Positives 0.8, 0.4; negatives 0.4, 0.1: pairs (0.8>0.4) (0.8>0.1) (0.4=0.4 → ½) (0.4>0.1) → 3.5 / 4.
    expect(binaryAuc([0.8, 0.4, 0.4, 0.1], [true, true, false, false])).toBeCloseTo(0.875, 12);
    expect(binaryAuc([0.1, 0.9], [false, true])).toBe(1);
    expect(binaryAuc([0.3, 0.2], [true, true])).toBeNaN();
  });

  it('accuracy, balanced accuracy, macro F1 and macro AUC of a 3-class example', () => {
    // Truth 0 0 0 1 1 2; predictions (argmax) 0 0 1 1 1 0.
    const probs = Float64Array.from([
      0.7, 0.2, 0.1, 0.6, 0.3, 0.1, 0.3, 0.5, 0.2,
      0.1, 0.8, 0.1, 0.2, 0.6, 0.2, 0.5, 0.1, 0.4,
    ]);
    const m = classificationMetrics(probs, [0, 0, 0, 1, 1, 2], 3);
    expect(m.acc).toBeCloseTo(4 / 6, 12);
    // Recalls 2/3, 1, 0 → 5/9.
    expect(m.balancedAcc).toBeCloseTo(5 / 9, 12);
    // F1: class 0 p=2/3 r=2/3 → 2/3; class 1 p=2/3 r=1 → 0.8; class 2 → 0.
    expect(m.macroF1).toBeCloseTo((2 / 3 + 0.8 + 0) / 3, 12);
    const auc0 = binaryAuc([0.7, 0.6, 0.3, 0.1, 0.2, 0.5], [true, true, true, false, false, false]);
    const auc1 = binaryAuc([0.2, 0.3, 0.5, 0.8, 0.6, 0.1], [false, false, false, true, true, false]);
    const auc2 = binaryAuc([0.1, 0.1, 0.2, 0.1, 0.2, 0.4], [false, false, false, false, false, true]);
    expect(m.macroAuc).toBeCloseTo((auc0 + auc1 + auc2) / 3, 12);
  });

  it('MAE, R², mean ± sd and a seeded bootstrap CI around the estimate', () => {
    const r = regressionMetrics([1, 2, 4], [1, 3, 5]);
    expect(r.mae).toBeCloseTo(2 / 3, 12);
    // SS_res = 0 + 1 + 1 = 2; mean 3, SS_tot = 4 + 0 + 4 = 8 → R² = 0.75.
    expect(r.r2).toBeCloseTo(0.75, 12);
    expect(meanSd([1, 2, 3, 4])).toEqual({ mean: 2.5, sd: Math.sqrt(5 / 3), n: 4 });
    const values = Array.from({ length: 200 }, (_, i) => (i % 10) / 10);
    const mean = (idx: number[]) => idx.reduce((a, i) => a + values[i], 0) / idx.length;
    const ci = bootstrapCi(values.length, mean, { resamples: 500, seed: 3 });
    expect(ci[0]).toBeLessThan(0.45);
    expect(ci[1]).toBeGreaterThan(0.45);
    expect(ci[1] - ci[0]).toBeLessThan(0.15);
    expect(bootstrapCi(values.length, mean, { resamples: 500, seed: 3 })).toEqual(ci);
  });
});

describe('folds by subject', () => {
  const ids = Array.from({ length: 23 }, (_, i) => `s${i}`);
  const classes = ids.map((_, i) => ['a', 'b', 'c'][i % 3]);

  it('put every subject in exactly one fold, keep the class balance, and depend only on the seed', () => {
    const folds = subjectFolds(ids, 5, 1, classes);
    expect(folds.flat().sort((a, b) => a - b)).toEqual(ids.map((_, i) => i));
    for (const f of folds) {
      for (const c of ['a', 'b', 'c']) {
        const n = f.filter((i) => classes[i] === c).length;
        expect(n).toBeGreaterThanOrEqual(1);
        expect(n).toBeLessThanOrEqual(2);
      }
    }
    expect(subjectFolds(ids, 5, 1, classes)).toEqual(folds);
    expect(subjectFolds(ids, 5, 2, classes)).not.toEqual(folds);
    expect(() => subjectFolds(['a', 'a', 'b'], 2, 1)).toThrow(/unique/);
    expect(() => subjectFolds(['a'], 2, 1)).toThrow(/cannot make/);
  });
});

describe('augmentation', () => {
  it('keeps [-1, 1], is seeded, and shifts time cyclically', () => {
    const g = { frames: 6, size: 8 };
    const clip = new Float32Array(6 * 64);
    for (let f = 0; f < 6; f++) clip.fill(-1 + (2 * f) / 5, f * 64, (f + 1) * 64);
    const a = augmentClip(clip, g, new Rng(4));
    expect(augmentClip(clip, g, new Rng(4))).toEqual(a);
    expect(a.every((v) => v >= -1 && v <= 1)).toBe(true);
    // Spatially constant frames stay (nearly) constant: the frame means follow a cyclic shift of 0..5.
    const means = Array.from({ length: 6 }, (_, f) => a.subarray(f * 64, (f + 1) * 64).reduce((s, v) => s + v, 0) / 64);
    const order = means.map((m, f) => [m, f]).sort((x, y) => x[0] - y[0]).map(([, f]) => f);
    const start = order[0];
    expect(order).toEqual(Array.from({ length: 6 }, (_, k) => (start + k) % 6));
  });
});

describe('losses (CPU float64 backend)', () => {
  it('softmax cross-entropy and NT-Xent match a direct float64 computation', async () => {
    const logits = [1, 2, 0.5, -1, 0, 3];
    const ce = await softmaxCrossEntropy(cpu.tensor(logits, [2, 3]), [1, 2]).item();
    const lse = (row: number[]) => Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
    expect(ce).toBeCloseTo((lse(logits.slice(0, 3)) - 2 + lse(logits.slice(3)) - 3) / 2, 6);

    const z1 = [1, 0.5, -0.2, 0.3, 0.9, 0.1];
    const z2 = [0.8, 0.7, 0.1, -0.5, 0.2, 1.1];
    const tau = 0.5;
    const loss = await ntXentLoss(cpu.tensor(z1, [2, 3]), cpu.tensor(z2, [2, 3]), tau).item();
    const rows = [z1.slice(0, 3), z1.slice(3), z2.slice(0, 3), z2.slice(3)].map((v) => {
      const n = Math.hypot(...v);
      return v.map((x) => x / n);
    });
    let expected = 0;
    for (let i = 0; i < 4; i++) {
      const sims = rows.map((r, j) => (j === i ? -Infinity : r.reduce((a, x, k) => a + x * rows[i][k], 0) / tau));
      const partner = (i + 2) % 4;
      expected += Math.log(sims.reduce((a, s) => a + Math.exp(s), 0)) - sims[partner];
    }
    expect(loss).toBeCloseTo(expected / 4, 6);
  });
});

describe('bootstrapCis', () => {
  it('draws the same resamples as bootstrapCi with the same seed, for every metric at once', () => {
    const xs = Array.from({ length: 30 }, (_, i) => Math.sin(i * 1.7) + i / 30);
    const mean = (idx: number[]) => idx.reduce((a, i) => a + xs[i], 0) / idx.length;
    const max = (idx: number[]) => Math.max(...idx.map((i) => xs[i]));
    const both = bootstrapCis(30, (idx) => [mean(idx), max(idx)], { resamples: 300, seed: 5 });
    expect(both).toEqual([bootstrapCi(30, mean, { resamples: 300, seed: 5 }), bootstrapCi(30, max, { resamples: 300, seed: 5 })]);
    expect(both[0][0]).toBeLessThan(both[0][1]);
  });
});

describe('report: paired comparisons on the test set', () => {
  it('gives the difference of the arms on the same subjects, with a bootstrap CI drawn once for both sides', () => {
    const n = 40;
    const truthValues = Array.from({ length: n }, (_, i) => i % 2);
    const truth: TestTruth = { task: 'classify', classes: ['a', 'b'], targets: [], values: truthValues };
    // Probabilities [p(a), p(b)] per subject: `right` rows predicted correctly, the others wrongly.
    const predict = (right: (i: number) => boolean) => truthValues.flatMap((c, i) => ((right(i) ? c : 1 - c) === 0 ? [0.9, 0.1] : [0.1, 0.9]));
    const record = (arm: RunRecord['arm'], mix: number, fold: number, predictions: number[]): RunRecord => ({
      arm, mix, seed: 0, fold, cv: { acc: 0.5 }, test: { acc: 0.5 }, testPredictions: predictions, pretrainLoss: null, finetuneLoss: [], pretrainClips: 0, seconds: 0,
    });
    const half = predict((i) => i < n / 2);
    const records = [0, 1].flatMap((fold) => [
      record('real', 0, fold, half), record('unconditional', 1, fold, half), record('synthetic', 1, fold, predict(() => true)),
    ]);
    const settings: ExperimentSettings = {
      task: 'classify', labels: ['cls'], mixes: [0, 1], folds: 2, seeds: 1, pretrain: 'ssl', geometry: { frames: 16, size: 32 }, encoder: { width: 16, groups: 4 },
      pretrainEpochs: 1, pretrainBatch: 8, pretrainLr: 1e-3, temperature: 0.2, finetuneEpochs: 1, finetuneBatch: 8, finetuneLr: 5e-4, seed: 0,
    };
    const report = buildReport(settings, records, truth, 200);
    const find = (arm: string, baseline: string) => report.comparisons.find((c) => c.arm === arm && c.baseline === baseline && c.metric === 'acc')!;
    expect(find('synthetic', 'real').difference).toBeCloseTo(0.5, 12);
    expect(find('synthetic', 'real').ci[0]).toBeGreaterThan(0.25);
    expect(find('synthetic', 'real').ci[1]).toBeLessThan(0.75);
    // Identical predictions: the paired difference is exactly 0 in every resample.
    expect(find('unconditional', 'real')).toMatchObject({ difference: 0, ci: [0, 0] });
    expect(find('synthetic', 'unconditional').difference).toBeCloseTo(0.5, 12);
    expect(reportMarkdown(report)).toMatch(/\| synthetic − real \| 1 \| \+0\.500 \[/);
  });
});
