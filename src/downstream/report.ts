/**
 * The experiment's report: per arm and mix ratio, every metric as mean ± sd over the (seed, fold) runs,
 * for the held-out folds (cross-validation) and the test set, plus a 95 % percentile bootstrap CI over test
 * subjects of the metric averaged across the runs; JSON, a markdown table, and one SVG per headline
 * metric (metric vs mix ratio, one line per arm; `none` and `real` have no synthetic clips and are drawn as
 * horizontal reference lines).
 */
import { bootstrapCis, classificationMetrics, meanSd, regressionMetrics } from './metrics';
import type { Arm, ExperimentSettings, RunRecord } from './experiment';

export interface TestTruth {
  task: 'classify' | 'regress';
  /** classify: class index per test subject; regress: rows × targets on the original scale. */
  values: number[];
  classes: string[];
  targets: string[];
}

export interface ReportRow {
  arm: Arm;
  mix: number;
  runs: number;
  cv: Record<string, { mean: number; sd: number }>;
  test: Record<string, { mean: number; sd: number; ci: [number, number] | null }> | null;
}

/**
 * A paired comparison on the test set: metric(arm, mix) − metric(baseline), each averaged over its runs, with a
 * 95 % bootstrap CI over test subjects drawn once for both sides (every arm is scored on the same subjects, so
 * the pairing removes the between-subject spread that makes the per-arm CIs overlap).
 */
export interface Comparison {
  arm: Arm;
  mix: number;
  /**
   * `none` (does pretraining help at all?), `real` (do generated clips help beyond the real ones?) or
   * `unconditional` at the same mix (does the ECG help?).
   */
  baseline: 'none' | 'real' | 'unconditional';
  metric: string;
  difference: number;
  ci: [number, number];
}

export interface ExperimentReport {
  settings: ExperimentSettings;
  rows: ReportRow[];
  headline: string[];
  comparisons: Comparison[];
}

const ARM_ORDER: Arm[] = ['none', 'real', 'synthetic', 'unconditional'];

/** The named test metrics of one run's predictions on the given test rows (one metrics call for all names). */
function metricsOnRows(truth: TestTruth, predictions: number[], rows: number[], metrics: string[]): number[] {
  if (truth.task === 'classify') {
    const k = truth.classes.length;
    const probs = new Float64Array(rows.length * k);
    rows.forEach((r, i) => probs.set(predictions.slice(r * k, (r + 1) * k), i * k));
    const all = classificationMetrics(probs, rows.map((r) => truth.values[r]), k) as unknown as Record<string, number>;
    return metrics.map((m) => all[m]);
  }
  const m = truth.targets.length;
  const byTarget = new Map<string, { mae: number; r2: number }>();
  return metrics.map((metric) => {
    const [name, kind] = metric.split('.');
    if (!byTarget.has(name)) {
      const j = truth.targets.indexOf(name);
      byTarget.set(name, regressionMetrics(rows.map((row) => predictions[row * m + j]), rows.map((row) => truth.values[row * m + j])));
    }
    const r = byTarget.get(name)!;
    return kind === 'mae' ? r.mae : r.r2;
  });
}

/** The metrics averaged over runs (each run scored on the same rows). */
function averagedOnRows(truth: TestTruth, runs: RunRecord[], rows: number[], metrics: string[]): number[] {
  const sums = new Array<number>(metrics.length).fill(0);
  for (const r of runs) metricsOnRows(truth, r.testPredictions!, rows, metrics).forEach((v, k) => (sums[k] += v));
  return sums.map((v) => v / runs.length);
}

export function buildReport(settings: ExperimentSettings, records: RunRecord[], truth: TestTruth | null, resamples = 1000): ExperimentReport {
  const groups = new Map<string, RunRecord[]>();
  for (const r of records) {
    const key = `${r.arm}|${r.mix}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(r);
  }
  const rows: ReportRow[] = [];
  for (const [key, runs] of groups) {
    const [arm, mix] = key.split('|');
    const metrics = Object.keys(runs[0].cv);
    const cv: ReportRow['cv'] = {};
    for (const m of metrics) {
      const { mean, sd } = meanSd(runs.map((r) => r.cv[m]));
      cv[m] = { mean, sd };
    }
    let test: ReportRow['test'] = null;
    const withTest = runs.filter((r) => r.test && r.testPredictions);
    if (withTest.length) {
      test = {};
      const names = Object.keys(withTest[0].test!);
      const n = truth ? truth.values.length / (truth.task === 'regress' ? truth.targets.length : 1) : 0;
      const cis = truth && n > 1 ? bootstrapCis(n, (idx) => averagedOnRows(truth, withTest, idx, names), { resamples, seed: 7 }) : null;
      names.forEach((m, k) => {
        const { mean, sd } = meanSd(withTest.map((r) => r.test![m]));
        test![m] = { mean, sd, ci: cis ? cis[k] : null };
      });
    }
    rows.push({ arm: arm as Arm, mix: Number(mix), runs: runs.length, cv, test });
  }
  rows.sort((a, b) => ARM_ORDER.indexOf(a.arm) - ARM_ORDER.indexOf(b.arm) || a.mix - b.mix);
  const headline = settings.task === 'classify' ? ['acc', 'balancedAcc', 'macroAuc', 'macroF1'] : settings.labels.flatMap((l) => [`${l}.mae`, `${l}.r2`]);
  return { settings, rows, headline, comparisons: truth ? pairedComparisons(groups, truth, headline, resamples) : [] };
}

function pairedComparisons(groups: Map<string, RunRecord[]>, truth: TestTruth, headline: string[], resamples: number): Comparison[] {
  const n = truth.values.length / (truth.task === 'regress' ? truth.targets.length : 1);
  if (n < 2) return [];
  const scored = (key: string) => (groups.get(key) ?? []).filter((r) => r.testPredictions);
  const all = Array.from({ length: n }, (_, i) => i);
  const out: Comparison[] = [];
  const compare = (arm: Arm, mix: number, baseline: Comparison['baseline'], a: RunRecord[], b: RunRecord[]) => {
    if (!a.length || !b.length) return;
    const diff = (rows: number[]) => {
      const [x, y] = [averagedOnRows(truth, a, rows, headline), averagedOnRows(truth, b, rows, headline)];
      return x.map((v, k) => v - y[k]);
    };
    const point = diff(all);
    const cis = bootstrapCis(n, diff, { resamples, seed: 11 });
    headline.forEach((metric, k) => out.push({ arm, mix, baseline, metric, difference: point[k], ci: cis[k] }));
  };
  compare('real', 0, 'none', scored('real|0'), scored('none|0'));
  const mixes = [...new Set([...groups.values()].flat().filter((r) => r.arm === 'synthetic' || r.arm === 'unconditional').map((r) => r.mix))].sort((a, b) => a - b);
  for (const mix of mixes) {
    for (const arm of ['synthetic', 'unconditional'] as const) {
      compare(arm, mix, 'none', scored(`${arm}|${mix}`), scored('none|0'));
      compare(arm, mix, 'real', scored(`${arm}|${mix}`), scored('real|0'));
    }
    compare('synthetic', mix, 'unconditional', scored(`synthetic|${mix}`), scored(`unconditional|${mix}`));
  }
  return out;
}

const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');

export function reportMarkdown(report: ExperimentReport): string {
  const s = report.settings;
  const lines = [
    `# Downstream ${s.task === 'classify' ? `classification of '${s.labels[0]}'` : `regression of ${s.labels.join(', ')}`}`,
    '',
    `${s.folds}-fold cross-validation by subject × ${s.seeds} seed(s); encoder width ${s.encoder.width}, clips ${s.geometry.frames} × ${s.geometry.size} × ${s.geometry.size}; ` +
      `pretraining ${s.pretrainEpochs} epochs (batch ${s.pretrainBatch}, lr ${s.pretrainLr}, τ ${s.temperature}), fine-tuning ${s.finetuneEpochs} epochs (batch ${s.finetuneBatch}, lr ${s.finetuneLr}).`,
    'Cells: mean ± sd over runs; test cells add the 95 % bootstrap CI over test subjects.',
    '',
  ];
  const hasTest = report.rows.some((r) => r.test);
  const header = ['arm', 'mix', 'runs', ...report.headline.map((m) => `CV ${m}`), ...(hasTest ? report.headline.map((m) => `test ${m}`) : [])];
  lines.push(`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`);
  for (const r of report.rows) {
    const cells = [r.arm, r.arm === 'none' || r.arm === 'real' ? '—' : `${r.mix}`, `${r.runs}`];
    for (const m of report.headline) cells.push(r.cv[m] ? `${fmt(r.cv[m].mean)} ± ${fmt(r.cv[m].sd)}` : '');
    if (hasTest) for (const m of report.headline) {
      const t = r.test?.[m];
      cells.push(t ? `${fmt(t.mean)} ± ${fmt(t.sd)}${t.ci ? ` [${fmt(t.ci[0])}, ${fmt(t.ci[1])}]` : ''}` : '');
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  if (report.comparisons.length) {
    lines.push('', 'Paired differences on the test set (same subjects, one bootstrap over them for both sides; 95 % CI):', '');
    const cols = report.headline;
    lines.push(`| comparison | mix | ${cols.map((m) => `Δ test ${m}`).join(' | ')} |`, `|---|---|${cols.map(() => '---').join('|')}|`);
    const keys = [...new Set(report.comparisons.map((c) => `${c.arm}|${c.baseline}|${c.mix}`))];
    for (const key of keys) {
      const [arm, baseline, mix] = key.split('|');
      const cells = cols.map((m) => {
        const c = report.comparisons.find((x) => `${x.arm}|${x.baseline}|${x.mix}` === key && x.metric === m);
        return c ? `${c.difference >= 0 ? '+' : ''}${fmt(c.difference)} [${fmt(c.ci[0])}, ${fmt(c.ci[1])}]` : '';
      });
      lines.push(`| ${arm} − ${baseline} | ${mix} | ${cells.join(' | ')} |`);
    }
  }
  return lines.join('\n') + '\n';
}

const COLORS: Record<Arm, string> = { none: '#888', real: '#1f77b4', synthetic: '#d62728', unconditional: '#2ca02c' };

/** metric vs mix ratio, one line per arm (test values when there is a test set, else CV). */
export function metricPlotSvg(report: ExperimentReport, metric: string): string {
  const W = 520;
  const H = 320;
  const pad = { l: 56, r: 130, t: 30, b: 44 };
  const value = (r: ReportRow) => (r.test?.[metric] ?? r.cv[metric])?.mean ?? NaN;
  const mixes = [0, ...report.settings.mixes.filter((m) => m > 0)];
  const values = report.rows.map(value).filter(Number.isFinite);
  if (!values.length) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><text x="20" y="40">no ${metric} values</text></svg>`;
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi - lo < 1e-6) (lo -= 0.05), (hi += 0.05);
  const span = hi - lo;
  lo -= 0.1 * span;
  hi += 0.1 * span;
  const maxMix = Math.max(1, ...mixes);
  const x = (m: number) => pad.l + ((W - pad.l - pad.r) * m) / maxMix;
  const y = (v: number) => H - pad.b - ((H - pad.t - pad.b) * (v - lo)) / (hi - lo);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${pad.l}" y="18" font-size="13">${metric} (${report.rows.some((r) => r.test) ? 'test set' : 'cross-validation'}) vs synthetic mix ratio</text>`,
    `<line x1="${pad.l}" y1="${H - pad.b}" x2="${W - pad.r}" y2="${H - pad.b}" stroke="black"/>`,
    `<line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${H - pad.b}" stroke="black"/>`];
  for (const m of mixes) parts.push(`<text x="${x(m)}" y="${H - pad.b + 16}" text-anchor="middle">${m}</text>`);
  parts.push(`<text x="${(pad.l + W - pad.r) / 2}" y="${H - 8}" text-anchor="middle">synthetic clips / real clips</text>`);
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    parts.push(`<text x="${pad.l - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(3)}</text>`);
  }
  let legend = pad.t + 10;
  for (const arm of ARM_ORDER) {
    const rows = report.rows.filter((r) => r.arm === arm);
    if (!rows.length) continue;
    if (arm === 'none' || arm === 'real') {
      const v = value(rows[0]);
      parts.push(`<line x1="${x(0)}" y1="${y(v)}" x2="${x(maxMix)}" y2="${y(v)}" stroke="${COLORS[arm]}" stroke-dasharray="${arm === 'none' ? '2,3' : '6,3'}" stroke-width="2"/>`);
    } else {
      const real = report.rows.find((r) => r.arm === 'real');
      const points = [...(real ? [[0, value(real)]] : []), ...rows.map((r) => [r.mix, value(r)])].filter(([, v]) => Number.isFinite(v));
      parts.push(`<polyline fill="none" stroke="${COLORS[arm]}" stroke-width="2" points="${points.map(([m, v]) => `${x(m).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>`);
      for (const [m, v] of points) parts.push(`<circle cx="${x(m).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${COLORS[arm]}"/>`);
    }
    parts.push(`<line x1="${W - pad.r + 10}" y1="${legend}" x2="${W - pad.r + 30}" y2="${legend}" stroke="${COLORS[arm]}" stroke-width="2"/><text x="${W - pad.r + 34}" y="${legend + 4}">${arm}</text>`);
    legend += 18;
  }
  parts.push('</svg>');
  return parts.join('\n');
}
