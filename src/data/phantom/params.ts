/**
 * Phantom subject parameters: per-class ranges (the single source for docs/DATA.md and the tests)
 * and the deterministic sampler. Lengths are pixels of the 96x96 cine (about 2 mm per pixel),
 * times are milliseconds, voltages millivolts.
 */
import { Rng, hashSeed } from '../random';

export const PHANTOM_CLASSES = ['healthy', 'hypertrophic', 'dilated', 'regional'] as const;
export type PhantomClass = (typeof PHANTOM_CLASSES)[number];

/** LV walls visible in a four-chamber view; 'regional' subjects lose the motion of one of them. */
export const REGIONAL_WALLS = ['septal', 'lateral', 'apical'] as const;
export type RegionalWall = (typeof REGIONAL_WALLS)[number];

export type Range = readonly [number, number];

/** Uniform sampling ranges per class. Anything not listed here is shared by all classes (see SHARED_RANGES). */
export interface ClassRanges {
  heartRateBpm: Range;
  lvCavityRadius: Range; // end-diastolic LV cavity half-width (short semi-axis), px
  lvCavityLength: Range; // end-diastolic LV cavity length, mitral plane to apex, px
  lvWallThickness: Range; // end-diastolic septal/lateral wall thickness, px
  ejectionFraction: Range; // target EF of the contracting LV myocardium (volume proxy, see cine.ts)
  wallThickening: Range; // systolic wall-thickness gain (0.5 = 50 % thicker at end-systole)
  qtcMs: Range; // Bazett-corrected QT; sets the T-wave end and the end-systolic time
  qrsBaseMs: Range; // QRS duration before the LV-size coupling term
  qrsAxisDeg: Range; // frontal QRS axis before the orientation coupling
  tAmplitudeMv: Range;
}

export const CLASS_RANGES: Record<PhantomClass, ClassRanges> = {
  healthy: {
    heartRateBpm: [55, 85],
    lvCavityRadius: [12, 14],
    lvCavityLength: [37, 42],
    lvWallThickness: [3.6, 4.5],
    ejectionFraction: [0.56, 0.7],
    wallThickening: [0.45, 0.65],
    qtcMs: [380, 430],
    qrsBaseMs: [80, 98],
    qrsAxisDeg: [35, 75],
    tAmplitudeMv: [0.3, 0.5],
  },
  hypertrophic: {
    heartRateBpm: [55, 85],
    lvCavityRadius: [9.5, 12],
    lvCavityLength: [34, 39],
    lvWallThickness: [6.5, 9],
    ejectionFraction: [0.65, 0.8],
    wallThickening: [0.2, 0.35],
    qtcMs: [420, 470],
    qrsBaseMs: [92, 110],
    qrsAxisDeg: [10, 50],
    tAmplitudeMv: [0.25, 0.45],
  },
  dilated: {
    heartRateBpm: [70, 100],
    lvCavityRadius: [16.5, 19],
    lvCavityLength: [42, 47],
    lvWallThickness: [2.8, 3.6],
    ejectionFraction: [0.18, 0.38],
    wallThickening: [0.1, 0.25],
    qtcMs: [430, 480],
    qrsBaseMs: [120, 150],
    qrsAxisDeg: [15, 50],
    tAmplitudeMv: [0.2, 0.35],
  },
  regional: {
    heartRateBpm: [60, 90],
    lvCavityRadius: [13, 15.5],
    lvCavityLength: [38, 43],
    lvWallThickness: [3.6, 4.5],
    ejectionFraction: [0.5, 0.62],
    wallThickening: [0.35, 0.55],
    qtcMs: [400, 450],
    qrsBaseMs: [86, 105],
    qrsAxisDeg: [30, 75],
    tAmplitudeMv: [0.25, 0.4],
  },
};

export const SHARED_RANGES = {
  rrJitter: [0.01, 0.04] as Range, // SD of beat-to-beat RR as a fraction of the mean
  respiratoryModulation: [0.0, 0.04] as Range, // respiratory sinus arrhythmia amplitude (fraction of RR)
  prMs: [130, 190] as Range,
  pAmplitudeMv: [0.1, 0.2] as Range,
  orientationDeg: [-15, 15] as Range, // tilt of the long axis from our default; also rotates the QRS axis
  centerOffsetPx: [-2.5, 2.5] as Range,
  rvEjectionFraction: [0.45, 0.6] as Range, // dilated hearts take 0.6x of this
  regionalResidualMotion: [0.0, 0.2] as Range, // fraction of normal motion the affected segment keeps
  noiseSigma: [0.015, 0.035] as Range, // Rician noise on the [0,1]-scaled image
  biasStrength: [0.05, 0.2] as Range, // peak-to-peak of the multiplicative bias field
  ecgNoiseMv: [0.005, 0.02] as Range,
  baselineWanderMv: [0.02, 0.12] as Range,
  powerlineMv: [0.0, 0.015] as Range,
};

/** Every parameter of one phantom subject; written to the dataset metadata as is. */
export interface PhantomParams {
  seed: number;
  index: number;
  cls: PhantomClass;
  heartRateBpm: number;
  rrJitter: number;
  respiratoryModulation: number;
  lvCavityRadius: number;
  lvCavityLength: number;
  lvWallThickness: number;
  apexWallThickness: number;
  rvCavityRadius: number;
  rvLengthFraction: number;
  ejectionFraction: number;
  rvEjectionFraction: number;
  wallThickening: number;
  regionalWall: RegionalWall | null;
  regionalResidualMotion: number;
  orientationDeg: number;
  centerX: number;
  centerY: number;
  qtcMs: number;
  qrsMs: number;
  prMs: number;
  qrsAxisDeg: number;
  qrsAmplitudeMv: number;
  tAmplitudeMv: number;
  pAmplitudeMv: number;
  ecgNoiseMv: number;
  baselineWanderMv: number;
  powerlineMv: number;
  powerlineHz: number;
  bloodIntensity: number;
  myocardiumIntensity: number;
  tissueIntensity: number;
  noiseSigma: number;
  biasStrength: number;
}

/** Myocardial area of the end-diastolic LV (two ellipses, px^2): the "wall mass" the QRS voltage follows. */
export function lvMassProxy(radius: number, length: number, wall: number): number {
  const outer = Math.PI * (radius + wall) * (length * 0.8 + wall);
  const inner = Math.PI * radius * length * 0.8;
  return outer - inner;
}

/** The mass proxy of a mid-range healthy heart; QRS amplitude is scaled relative to it. */
export const REFERENCE_MASS = lvMassProxy(13, 39.5, 4.0);

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

export function sampleParams(seed: number, index: number, cls: PhantomClass): PhantomParams {
  const rng = new Rng(hashSeed(seed, index, 0x5eed));
  const r = CLASS_RANGES[cls];
  const s = SHARED_RANGES;
  const u = (range: Range) => rng.uniform(range[0], range[1]);

  const lvCavityRadius = u(r.lvCavityRadius);
  const lvCavityLength = u(r.lvCavityLength);
  const lvWallThickness = u(r.lvWallThickness);
  const orientationDeg = u(s.orientationDeg);

  // Electrical coupling. QRS widens with LV size (longer conduction path); voltage grows with mass.
  const qrsMs = u(r.qrsBaseMs) + 2.5 * Math.max(0, lvCavityRadius - 13);
  const massRatio = lvMassProxy(lvCavityRadius, lvCavityLength, lvWallThickness) / REFERENCE_MASS;
  const classVoltage = cls === 'hypertrophic' ? 1.25 : cls === 'dilated' ? 0.85 : 1.0;
  const qrsAmplitudeMv = rng.uniform(1.0, 1.3) * Math.pow(massRatio, 0.7) * classVoltage;
  // A heart tilted towards horizontal turns the frontal QRS axis the same way.
  const qrsAxisDeg = clamp(u(r.qrsAxisDeg) + 0.8 * orientationDeg, -10, 85);

  return {
    seed,
    index,
    cls,
    heartRateBpm: u(r.heartRateBpm),
    rrJitter: u(s.rrJitter),
    respiratoryModulation: u(s.respiratoryModulation),
    lvCavityRadius,
    lvCavityLength,
    lvWallThickness,
    apexWallThickness: lvWallThickness * rng.uniform(0.7, 0.9),
    rvCavityRadius: lvCavityRadius * rng.uniform(0.65, 0.8) * (cls === 'dilated' ? 1.1 : 1),
    rvLengthFraction: rng.uniform(0.7, 0.82),
    ejectionFraction: u(r.ejectionFraction),
    rvEjectionFraction: u(s.rvEjectionFraction) * (cls === 'dilated' ? 0.6 : 1),
    wallThickening: u(r.wallThickening),
    regionalWall: cls === 'regional' ? rng.pick(REGIONAL_WALLS) : null,
    regionalResidualMotion: cls === 'regional' ? u(s.regionalResidualMotion) : 1,
    orientationDeg,
    centerX: 48 + u(s.centerOffsetPx),
    centerY: 48 + u(s.centerOffsetPx),
    qtcMs: u(r.qtcMs),
    qrsMs,
    prMs: u(s.prMs),
    qrsAxisDeg,
    qrsAmplitudeMv,
    tAmplitudeMv: u(r.tAmplitudeMv),
    pAmplitudeMv: u(s.pAmplitudeMv),
    ecgNoiseMv: u(s.ecgNoiseMv),
    baselineWanderMv: u(s.baselineWanderMv),
    powerlineMv: u(s.powerlineMv),
    powerlineHz: rng.next() < 0.5 ? 50 : 60,
    bloodIntensity: rng.uniform(0.85, 1.0),
    myocardiumIntensity: rng.uniform(0.2, 0.3),
    tissueIntensity: rng.uniform(0.4, 0.55),
    noiseSigma: u(s.noiseSigma),
    biasStrength: u(s.biasStrength),
  };
}

/** Mean RR interval in seconds. */
export function meanRrSeconds(p: PhantomParams): number {
  return 60 / p.heartRateBpm;
}

/** QT (QRS onset to T end) in seconds for a given RR, Bazett: QT = QTc * sqrt(RR). */
export function qtSeconds(p: PhantomParams, rrSeconds: number): number {
  return (p.qtcMs / 1000) * Math.sqrt(rrSeconds);
}

/**
 * Time from the R peak to end-systole (seconds). Mechanical systole ends close to the end of the T wave,
 * so end-systole = T end = QRS onset + QT, and the R peak sits half a QRS after QRS onset.
 */
export function endSystoleSeconds(p: PhantomParams): number {
  return qtSeconds(p, meanRrSeconds(p)) - p.qrsMs / 2000;
}
