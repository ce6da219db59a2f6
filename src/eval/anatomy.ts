/**
 * Anatomy metrics from LV cavity area curves: volume proxies V = area^1.5 (the data layer's proxy: a
 * cavity of area A scaled isotropically in 3-D has volume ~ A^1.5), EF = (EDV - ESV) / EDV with EDV from
 * the largest and ESV from the smallest area of the curve, and the Pearson correlation of two curves.
 */
import { segmentLvClip, type Point, type SegmentationOptions } from './segmentation';

export interface VolumeProxies {
  edvProxy: number;
  esvProxy: number;
  efProxy: number;
  edFrame: number;
  esFrame: number;
}

export function volumeProxies(area: ArrayLike<number>): VolumeProxies {
  let edFrame = 0;
  let esFrame = 0;
  for (let t = 1; t < area.length; t++) {
    if (area[t] > area[edFrame]) edFrame = t;
    if (area[t] < area[esFrame]) esFrame = t;
  }
  const edv = Math.pow(Math.max(0, area[edFrame] ?? 0), 1.5);
  const esv = Math.pow(Math.max(0, area[esFrame] ?? 0), 1.5);
  return { edvProxy: edv, esvProxy: esv, efProxy: edv > 0 ? (edv - esv) / edv : NaN, edFrame, esFrame };
}

/** Pearson correlation; NaN when either series is constant (correlation undefined). */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`pearson: series lengths differ (${a.length} vs ${b.length})`);
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : NaN;
}

/** Mean and largest |a - b| / |b| over the curve (b is the reference; zero references are skipped). */
export function relativeCurveError(a: ArrayLike<number>, reference: ArrayLike<number>): { mean: number; max: number } {
  let sum = 0;
  let max = 0;
  let n = 0;
  for (let i = 0; i < reference.length; i++) {
    if (reference[i] === 0) continue;
    const r = Math.abs(a[i] - reference[i]) / Math.abs(reference[i]);
    sum += r;
    max = Math.max(max, r);
    n++;
  }
  return { mean: n ? sum / n : NaN, max: n ? max : NaN };
}

export interface CurveComparison {
  /** Pearson r of the two area curves. */
  correlation: number;
  /** EF proxy of `curve` minus that of `reference`. */
  efError: number;
  relativeAreaError: { mean: number; max: number };
  curve: VolumeProxies;
  reference: VolumeProxies;
}

export function compareAreaCurves(curve: ArrayLike<number>, reference: ArrayLike<number>): CurveComparison {
  const a = volumeProxies(curve);
  const b = volumeProxies(reference);
  return { correlation: pearson(curve, reference), efError: a.efProxy - b.efProxy, relativeAreaError: relativeCurveError(curve, reference), curve: a, reference: b };
}

export interface ClipAnatomyMetrics {
  predArea: number[];
  gtArea: number[];
  /** Generated vs ground-truth segmentation. */
  predVsGt: CurveComparison;
  /** Segmentation of the ground-truth clip vs the phantom's true area curve, when metadata gives it. */
  gtSegVsTruth: CurveComparison | null;
  lvCentre: Point;
  /** 'phantom-params' when the centre came from metadata, otherwise 'default'. */
  centreSource: 'phantom-params' | 'default' | 'given';
  predMissedFrames: number;
  gtMissedFrames: number;
}

/** Segments both clips with the same method and centre, then compares their area curves (and the truth). */
export function clipAnatomyMetrics(
  pred: Float32Array,
  gt: Float32Array,
  shape: { frames: number; height: number; width: number },
  centre: Point,
  options: { trueArea?: number[] | null; centreSource?: ClipAnatomyMetrics['centreSource']; segmentation?: SegmentationOptions } = {},
): ClipAnatomyMetrics {
  const p = segmentLvClip(pred, shape.frames, shape.height, shape.width, centre, options.segmentation);
  const g = segmentLvClip(gt, shape.frames, shape.height, shape.width, centre, options.segmentation);
  const truth = options.trueArea && options.trueArea.length === shape.frames ? options.trueArea : null;
  return {
    predArea: p.area,
    gtArea: g.area,
    predVsGt: compareAreaCurves(p.area, g.area),
    gtSegVsTruth: truth ? compareAreaCurves(g.area, truth) : null,
    lvCentre: centre,
    centreSource: options.centreSource ?? 'given',
    predMissedFrames: p.missedFrames.length,
    gtMissedFrames: g.missedFrames.length,
  };
}
