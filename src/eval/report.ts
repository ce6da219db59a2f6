/**
 * One evaluation run over matched clip pairs: per clip PSNR/SSIM (+ LPIPS when a scorer is given) and
 * the LV anatomy metrics, aggregated over the set, plus optional Fréchet distances. Host arrays in, a
 * JSON-ready report out; `formatReport` renders the readable table.
 */
import { clipImageMetrics, meanOf, summarize, type Summary } from './image-metrics';
import { clipAnatomyMetrics, pearson, type ClipAnatomyMetrics } from './anatomy';
import { DEFAULT_LV_CENTRE, lvCentreFromParams, type Point } from './segmentation';
import { frechetDistance, gaussianStats, type FeatureExtractor, type FrechetResult } from './frechet';
import type { LpipsScorer } from './lpips-eval';
import type { ClipSet } from './inputs';

/** What the evaluation uses from a subject's metadata (the dataset's meta.json rows fit this). */
export interface SubjectMeta {
  id: string;
  cls?: string;
  params?: { orientationDeg: number; centerX: number; centerY: number; lvCavityLength: number; lvCavityRadius?: number };
  truth?: { lvArea?: number[]; efProxy?: number };
}

export interface EvaluationOptions {
  /** Per clip pair, the ground-truth subject's metadata (or null). */
  meta?: (SubjectMeta | null)[];
  /** LV centre when no metadata gives one (default: the mid-range phantom's). */
  lvCentre?: Point;
  anatomy?: boolean;
  lpips?: LpipsScorer | null;
  /** Feature extractors for Fréchet distances over all frames (or clips) of each set. */
  frechet?: { extractor: FeatureExtractor; unit: 'frame' | 'clip' }[];
  onProgress?: (done: number, total: number) => void;
}

export interface ClipReport {
  index: number;
  id: string | null;
  cls: string | null;
  psnrMean: number;
  psnrClip: number;
  ssimMean: number;
  lpipsMean: number | null;
  psnrPerFrame: number[];
  ssimPerFrame: number[];
  lpipsPerFrame: number[] | null;
  anatomy: ClipAnatomyMetrics | null;
}

export interface AnatomyAggregate {
  /** |EF(generated) - EF(GT segmentation)| over clips. */
  efAbsError: Summary;
  efSignedErrorMean: number;
  /**
   * Pearson r over clips of EF(generated) against EF(ground truth): whether the generated function follows the
   * subject, which a low mean error alone does not show (a population-average clip scores well on it).
   */
  efCorrelation: number;
  areaCorrelation: Summary;
  /** Ground-truth segmentation vs the phantom's true area curve (only clips whose metadata has it). */
  gtSegmentation: { clips: number; meanRelativeAreaError: number; maxRelativeAreaError: number; correlation: Summary; efAbsError: Summary } | null;
  byClass: Record<string, { clips: number; efAbsErrorMean: number; areaCorrelationMean: number }>;
}

export interface EvaluationReport {
  version: 1;
  clips: number;
  shape: { frames: number; height: number; width: number };
  inputRange: { pred: string; gt: string };
  conventions: Record<string, string>;
  aggregate: {
    /** Over clips of the per-clip mean PSNR (dB). */
    psnr: Summary & { nonFinite: number };
    /** Over every frame pair. */
    psnrFrames: Summary & { nonFinite: number };
    ssim: Summary & { nonFinite: number };
    ssimFrames: Summary & { nonFinite: number };
    lpips: (Summary & { nonFinite: number; backbone: string }) | null;
    anatomy: AnatomyAggregate | null;
    frechet: (FrechetResult & { extractor: string; unit: string; dims: number })[];
  };
  notes: string[];
  perClip: ClipReport[];
}

export const CONVENTIONS = {
  range: 'clips mapped to [0, 1] (0-255 if max > 1.1, [-1, 1] if min < -0.05), then clamped',
  psnr: 'per frame, data range 1, 10 log10(1 / MSE); clip value = mean over frames; identical frames = +inf (JSON null)',
  ssim: 'per frame, Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, data range 1, valid window positions only',
  lpips: 'per frame at native size, input 2x - 1, grey broadcast to RGB; mean over all frames',
  anatomy: 'LV cavity segmentation (docs/EVALUATION.md) on both clips; volume proxy area^1.5; EF = (EDV - ESV) / EDV from the max / min area',
};

function centreFor(meta: SubjectMeta | null | undefined, fallback: Point): { centre: Point; source: ClipAnatomyMetrics['centreSource'] } {
  if (meta?.params && ['orientationDeg', 'centerX', 'centerY', 'lvCavityLength'].every((k) => Number.isFinite((meta.params as Record<string, number>)[k]))) {
    return { centre: lvCentreFromParams(meta.params), source: 'phantom-params' };
  }
  return { centre: fallback, source: fallback === DEFAULT_LV_CENTRE ? 'default' : 'given' };
}

export async function evaluateClipSets(pred: ClipSet, gt: ClipSet, options: EvaluationOptions = {}): Promise<EvaluationReport> {
  if (pred.frames !== gt.frames || pred.height !== gt.height || pred.width !== gt.width) {
    throw new Error(`prediction clips are ${pred.frames}x${pred.height}x${pred.width}, ground truth ${gt.frames}x${gt.height}x${gt.width}`);
  }
  if (pred.clips.length !== gt.clips.length) throw new Error(`${pred.clips.length} predicted clips but ${gt.clips.length} ground-truth clips`);
  const shape = { frames: pred.frames, height: pred.height, width: pred.width };
  const notes: string[] = [];
  const perClip: ClipReport[] = [];
  const fallback = options.lvCentre ?? DEFAULT_LV_CENTRE;
  let defaultCentreUsed = 0;
  for (let k = 0; k < pred.clips.length; k++) {
    const image = clipImageMetrics(pred.clips[k], gt.clips[k], shape);
    const meta = options.meta?.[k] ?? null;
    let lpipsPerFrame: number[] | null = null;
    if (options.lpips) lpipsPerFrame = [...(await options.lpips.score(pred.clips[k], gt.clips[k], shape.frames, shape.height, shape.width))];
    let anatomy: ClipAnatomyMetrics | null = null;
    if (options.anatomy !== false) {
      const { centre, source } = centreFor(meta, fallback);
      if (source !== 'phantom-params') defaultCentreUsed++;
      const params = meta?.params;
      const cavity = params && params.lvCavityRadius !== undefined ? { ...params, lvCavityRadius: params.lvCavityRadius } : null;
      anatomy = clipAnatomyMetrics(pred.clips[k], gt.clips[k], shape, centre, { trueArea: meta?.truth?.lvArea ?? null, centreSource: source, cavity });
    }
    perClip.push({
      index: k,
      id: gt.ids[k] ?? pred.ids[k] ?? meta?.id ?? null,
      cls: meta?.cls ?? null,
      psnrMean: image.psnrMean,
      psnrClip: image.psnrClip,
      ssimMean: image.ssimMean,
      lpipsMean: lpipsPerFrame ? meanOf(lpipsPerFrame) : null,
      psnrPerFrame: image.psnrPerFrame,
      ssimPerFrame: image.ssimPerFrame,
      lpipsPerFrame,
      anatomy,
    });
    options.onProgress?.(k + 1, pred.clips.length);
  }
  if (options.anatomy !== false && (shape.height !== 96 || shape.width !== 96)) {
    notes.push(`anatomy: ${shape.height}x${shape.width} frames were resized (bilinear) to the phantom's 96x96 before segmentation, which was bounded by each subject's end-diastolic LV cavity (+3 px) where the metadata gives it; areas are in phantom pixels and the true area curve was resampled to ${shape.frames} frames`);
  }
  if (defaultCentreUsed) notes.push(`${defaultCentreUsed} clip(s) had no phantom parameters: the LV centre of a mid-range phantom was used (${fallback.x.toFixed(1)}, ${fallback.y.toFixed(1)})`);

  const frechet: EvaluationReport['aggregate']['frechet'] = [];
  for (const { extractor, unit } of options.frechet ?? []) {
    const features = async (set: ClipSet) => {
      const clipSize = shape.frames * shape.height * shape.width;
      const all = new Float32Array(set.clips.length * clipSize);
      set.clips.forEach((c, k) => all.set(c, k * clipSize));
      const count = unit === 'frame' ? set.clips.length * shape.frames : set.clips.length;
      const itemShape = unit === 'frame' ? [shape.height, shape.width] : [shape.frames, shape.height, shape.width];
      return { rows: await extractor.extract(all, count, itemShape), count };
    };
    const a = await features(pred);
    const b = await features(gt);
    if (a.count < 2 || b.count < 2) {
      notes.push(`Fréchet distance (${extractor.name}) skipped: needs at least 2 ${unit}s per set`);
      continue;
    }
    const result = frechetDistance(gaussianStats(a.rows, a.count, extractor.dims), gaussianStats(b.rows, b.count, extractor.dims));
    frechet.push({ ...result, extractor: extractor.name, unit, dims: extractor.dims });
  }

  const allFrames = (pick: (c: ClipReport) => number[]) => perClip.flatMap(pick);
  return {
    version: 1,
    clips: perClip.length,
    shape,
    inputRange: { pred: pred.range, gt: gt.range },
    conventions: { ...CONVENTIONS },
    aggregate: {
      psnr: summarize(perClip.map((c) => c.psnrMean)),
      psnrFrames: summarize(allFrames((c) => c.psnrPerFrame)),
      ssim: summarize(perClip.map((c) => c.ssimMean)),
      ssimFrames: summarize(allFrames((c) => c.ssimPerFrame)),
      lpips: options.lpips ? { ...summarize(allFrames((c) => c.lpipsPerFrame ?? [])), backbone: options.lpips.backbone } : null,
      anatomy: options.anatomy === false ? null : aggregateAnatomy(perClip),
      frechet,
    },
    notes,
    perClip,
  };
}

function aggregateAnatomy(perClip: ClipReport[]): AnatomyAggregate | null {
  const withAnatomy = perClip.filter((c) => c.anatomy);
  if (!withAnatomy.length) return null;
  const efErrors = withAnatomy.map((c) => c.anatomy!.predVsGt.efError);
  const truthClips = withAnatomy.filter((c) => c.anatomy!.gtSegVsTruth);
  const byClass: AnatomyAggregate['byClass'] = {};
  for (const cls of new Set(withAnatomy.map((c) => c.cls ?? 'unknown'))) {
    const members = withAnatomy.filter((c) => (c.cls ?? 'unknown') === cls);
    byClass[cls] = {
      clips: members.length,
      efAbsErrorMean: meanOf(members.map((c) => Math.abs(c.anatomy!.predVsGt.efError))),
      areaCorrelationMean: meanOf(members.map((c) => c.anatomy!.predVsGt.correlation).filter(Number.isFinite)),
    };
  }
  return {
    efAbsError: summarize(efErrors.map(Math.abs)),
    efSignedErrorMean: meanOf(efErrors.filter(Number.isFinite)),
    efCorrelation: withAnatomy.length > 2 ? pearson(withAnatomy.map((c) => c.anatomy!.predVsGt.curve.efProxy), withAnatomy.map((c) => c.anatomy!.predVsGt.reference.efProxy)) : NaN,
    areaCorrelation: summarize(withAnatomy.map((c) => c.anatomy!.predVsGt.correlation)),
    gtSegmentation: truthClips.length
      ? {
          clips: truthClips.length,
          meanRelativeAreaError: meanOf(truthClips.map((c) => c.anatomy!.gtSegVsTruth!.relativeAreaError.mean)),
          maxRelativeAreaError: Math.max(...truthClips.map((c) => c.anatomy!.gtSegVsTruth!.relativeAreaError.max)),
          correlation: summarize(truthClips.map((c) => c.anatomy!.gtSegVsTruth!.correlation)),
          efAbsError: summarize(truthClips.map((c) => Math.abs(c.anatomy!.gtSegVsTruth!.efError))),
        }
      : null,
    byClass,
  };
}

const fixed = (v: number | null | undefined, digits: number) => (v === null || v === undefined ? '-' : Number.isFinite(v) ? v.toFixed(digits) : v > 0 ? 'inf' : 'nan');

/** The readable summary printed by the CLI: one row per clip (at most `maxRows`), then the aggregates. */
export function formatReport(report: EvaluationReport, maxRows = 40): string {
  const lines: string[] = [];
  const hasLpips = report.aggregate.lpips !== null;
  const hasAnatomy = report.aggregate.anatomy !== null;
  const header = ['#', 'id'.padEnd(24), 'class'.padEnd(12), 'PSNR dB', '  SSIM', ...(hasLpips ? [' LPIPS'] : []), ...(hasAnatomy ? ['EF gen', ' EF gt', 'EF err', 'area r', 'seg vs truth'] : [])];
  lines.push(header.join('  '));
  for (const c of report.perClip.slice(0, maxRows)) {
    const a = c.anatomy;
    const truth = a?.gtSegVsTruth ? `${(100 * a.gtSegVsTruth.relativeAreaError.mean).toFixed(1)}% r=${fixed(a.gtSegVsTruth.correlation, 3)}` : '-';
    lines.push([
      String(c.index).padStart(1),
      (c.id ?? '-').slice(0, 24).padEnd(24),
      (c.cls ?? '-').padEnd(12),
      fixed(c.psnrMean, 2).padStart(7),
      fixed(c.ssimMean, 4).padStart(6),
      ...(hasLpips ? [fixed(c.lpipsMean, 4).padStart(6)] : []),
      ...(a ? [fixed(a.predVsGt.curve.efProxy, 3).padStart(6), fixed(a.predVsGt.reference.efProxy, 3).padStart(6), fixed(a.predVsGt.efError, 3).padStart(6), fixed(a.predVsGt.correlation, 3).padStart(6), truth] : []),
    ].join('  '));
  }
  if (report.perClip.length > maxRows) lines.push(`… ${report.perClip.length - maxRows} more clips in the JSON report`);
  const g = report.aggregate;
  const ms = (s: Summary, d: number) => `${fixed(s.mean, d)} ± ${fixed(s.std, d)} (min ${fixed(s.min, d)}, max ${fixed(s.max, d)})`;
  lines.push('', `${report.clips} clips of ${report.shape.frames}x${report.shape.height}x${report.shape.width}; input ranges pred=${report.inputRange.pred}, gt=${report.inputRange.gt}`);
  lines.push(`PSNR (dB, per-clip means): ${ms(g.psnr, 2)}${g.psnr.nonFinite ? `; ${g.psnr.nonFinite} clip(s) identical (inf)` : ''}`);
  lines.push(`SSIM (per-clip means):     ${ms(g.ssim, 4)}`);
  if (g.lpips) lines.push(`LPIPS-${g.lpips.backbone} (all frames): ${ms(g.lpips, 4)}`);
  if (g.anatomy) {
    lines.push(`EF proxy |error| gen vs GT: ${ms(g.anatomy.efAbsError, 3)}; signed mean ${fixed(g.anatomy.efSignedErrorMean, 3)}`);
    lines.push(`EF across clips, gen vs GT: Pearson r ${fixed(g.anatomy.efCorrelation, 3)}`);
    lines.push(`LV area curve Pearson r:    ${ms(g.anatomy.areaCorrelation, 3)}`);
    for (const [cls, v] of Object.entries(g.anatomy.byClass)) lines.push(`  ${cls.padEnd(12)} ${v.clips} clips: |EF err| ${fixed(v.efAbsErrorMean, 3)}, r ${fixed(v.areaCorrelationMean, 3)}`);
    const s = g.anatomy.gtSegmentation;
    if (s) lines.push(`Segmentation of GT vs phantom truth (${s.clips} clips): mean rel. area error ${(100 * s.meanRelativeAreaError).toFixed(1)}% (max ${(100 * s.maxRelativeAreaError).toFixed(1)}%), r ${ms(s.correlation, 3)}, |EF err| ${fixed(s.efAbsError.mean, 3)}`);
  }
  for (const f of g.frechet) lines.push(`Fréchet distance (${f.extractor}, per ${f.unit}, ${f.dims}-d): ${f.distance.toPrecision(5)} (mean term ${f.meanTerm.toPrecision(4)})`);
  for (const n of report.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}
