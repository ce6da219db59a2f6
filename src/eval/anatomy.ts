/**
 * Anatomy metrics from LV cavity area curves: volume proxies V = area^1.5 (the data layer's proxy: a
 * cavity of area A scaled isotropically in 3-D has volume ~ A^1.5), EF = (EDV - ESV) / EDV with EDV from
 * the largest and ESV from the smallest area of the curve, and the Pearson correlation of two curves.
 */
import { cropResizeFrame } from '../data/preprocess/cmr';
import { lvCavityRegion, segmentLvClip, type LvCavityParams, type Point, type SegmentationOptions } from './segmentation';

/** Frame size of the phantom's rendering: the LV centre and the segmentation's pixel radii are in its units. */
export const PHANTOM_FRAME_SIZE = 96;

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
  /**
   * Set when the clips were not 96 × 96: each frame was resized (bilinear) to the phantom's 96 × 96 before
   * segmentation, so areas are in phantom pixels, and the true curve was resampled to the clips' frames.
   */
  resampledFrom: { height: number; width: number } | null;
  /** Whether the phantom's end-diastolic cavity bounded the segmentation (resized clips with known parameters). */
  cavityBounded: boolean;
}

/**
 * Square clips of another size (a model trained at 32 × 32, say) back on the phantom's pixel grid: the data
 * layer made them by resizing the 96 × 96 rendering (a square needs no crop), so resizing back puts the LV
 * where the phantom parameters say it is. Each frame is resized alone; the frame count is kept.
 */
function toPhantomGrid(clip: Float32Array, frames: number, height: number, width: number): Float32Array {
  const size = PHANTOM_FRAME_SIZE;
  const out = new Float32Array(frames * size * size);
  for (let f = 0; f < frames; f++) out.set(cropResizeFrame(clip.subarray(f * height * width, (f + 1) * height * width), height, width, size), f * size * size);
  return out;
}

/** A curve over one cycle at `frames` points, frame j at source position j·n/frames (cyclic linear), as resampleCyclic does. */
export function resampleCurveCyclic(curve: readonly number[], frames: number): number[] {
  const n = curve.length;
  return Array.from({ length: frames }, (_, j) => {
    const s = (j * n) / frames;
    const i0 = Math.floor(s) % n;
    const w = s - Math.floor(s);
    return (1 - w) * curve[i0] + w * curve[(i0 + 1) % n];
  });
}

/** Segments both clips with the same method and centre, then compares their area curves (and the truth). */
export function clipAnatomyMetrics(
  pred: Float32Array,
  gt: Float32Array,
  shape: { frames: number; height: number; width: number },
  centre: Point,
  options: {
    trueArea?: number[] | null;
    centreSource?: ClipAnatomyMetrics['centreSource'];
    segmentation?: SegmentationOptions;
    /** Phantom geometry of the ground-truth subject: on clips that are not 96 × 96 it bounds the cavity (lvCavityRegion). */
    cavity?: LvCavityParams | null;
  } = {},
): ClipAnatomyMetrics {
  const { frames, height, width } = shape;
  const native = height === PHANTOM_FRAME_SIZE && width === PHANTOM_FRAME_SIZE;
  if (!native && height !== width) throw new Error(`anatomy metrics need square frames (the phantom's geometry), got ${height}x${width}`);
  const onGrid = (clip: Float32Array) => (native ? clip : toPhantomGrid(clip, frames, height, width));
  const size = PHANTOM_FRAME_SIZE;
  // On a resized coarse clip the walls are blurred and the cavity would run into the RV and atria; the
  // subject's end-diastolic cavity (+3 px) bounds it, identically for both clips.
  const allowed = !native && options.cavity ? lvCavityRegion(options.cavity, size) : null;
  const segmentation: SegmentationOptions = native ? { ...options.segmentation } : { ...options.segmentation, allowed: options.segmentation?.allowed ?? allowed };
  const p = segmentLvClip(onGrid(pred), frames, size, size, centre, segmentation);
  const g = segmentLvClip(onGrid(gt), frames, size, size, centre, segmentation);
  const trueArea = options.trueArea ?? null;
  const truth = trueArea && trueArea.length > 1 ? (trueArea.length === frames ? trueArea : resampleCurveCyclic(trueArea, frames)) : null;
  return {
    predArea: p.area,
    gtArea: g.area,
    predVsGt: compareAreaCurves(p.area, g.area),
    gtSegVsTruth: truth ? compareAreaCurves(g.area, truth) : null,
    lvCentre: centre,
    centreSource: options.centreSource ?? 'given',
    predMissedFrames: p.missedFrames.length,
    gtMissedFrames: g.missedFrames.length,
    resampledFrom: native ? null : { height, width },
    cavityBounded: allowed !== null,
  };
}
