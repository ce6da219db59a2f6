/**
 * Phantom 12-lead ECG from a wave-sum vectorcardiogram.
 *
 * Each beat is a sum of Gaussian-like waves (P, septal q, main R, terminal S, T, and an ST plateau when
 * present), each carrying a 3-D dipole vector. The dipole d(t) is projected on the lead-field vectors of
 * the electrodes RA, LA, LL, V1..V6; noise and baseline wander are added per electrode and the 12 leads
 * are formed from electrode potentials exactly as an ECG machine does. So Einthoven (III = II - I) and
 * Goldberger (aVR = -(I+II)/2, ...) hold to float precision even in noisy recordings.
 *
 * Body axes: x = patient's left, y = inferior (feet), z = anterior.
 */
import { Rng, hashSeed } from '../random';
import { type PhantomParams, type RegionalWall, meanRrSeconds, qtSeconds } from './params';

export const ECG_FS = 500;
export const ECG_SAMPLES = 5000;
export const LEAD_NAMES = ['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'] as const;
export type LeadName = (typeof LEAD_NAMES)[number];

type Vec3 = [number, number, number];

const norm = (v: Vec3): Vec3 => {
  const n = Math.hypot(v[0], v[1], v[2]) || 1;
  return [v[0] / n, v[1] / n, v[2] / n];
};
const scale = (v: Vec3, s: number): Vec3 => [v[0] * s, v[1] * s, v[2] * s];
const add = (a: Vec3, b: Vec3): Vec3 => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
const dot = (a: Vec3, b: Vec3) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

/** Limb electrodes on an equilateral (Einthoven) triangle, centred so the Wilson terminal is zero. */
const LIMB_ELECTRODES: Vec3[] = [
  [-0.5, -0.2887, 0], // RA
  [0.5, -0.2887, 0], // LA
  [0, 0.5774, 0], // LL
];
/** Precordial lead fields: direction round the chest from V1 (right of sternum) to V6, times proximity gain. */
const PRECORDIAL_ELECTRODES: Vec3[] = [
  scale(norm([-0.5, 0.1, 0.87]), 1.3),
  scale(norm([-0.1, 0.1, 1.0]), 1.6),
  scale(norm([0.3, 0.1, 0.95]), 1.7),
  scale(norm([0.6, 0.15, 0.78]), 1.6),
  scale(norm([0.85, 0.15, 0.5]), 1.4),
  scale(norm([0.97, 0.15, 0.1]), 1.2),
];

/** Outward direction of each LV wall (before the heart's axis rotation); leads along it "face" the wall. */
export const WALL_DIRECTIONS: Record<RegionalWall, Vec3> = {
  lateral: norm([0.95, -0.15, -0.25]),
  septal: norm([-0.3, 0.0, 0.95]),
  apical: norm([0.45, 0.45, 0.75]),
};

/** One wave: a time profile (seconds relative to the R peak) carrying a dipole vector (mV). */
interface Wave {
  center: number;
  sigmaLeft: number;
  sigmaRight: number;
  vector: Vec3;
  /** 'gauss': asymmetric Gaussian; 'plateau': flat between center-sigmaLeft and center+sigmaRight with soft edges. */
  shape: 'gauss' | 'plateau';
}

function waveValue(w: Wave, t: number): number {
  const dt = t - w.center;
  if (w.shape === 'gauss') {
    const s = dt < 0 ? w.sigmaLeft : w.sigmaRight;
    return Math.exp(-0.5 * (dt / s) * (dt / s));
  }
  // Logistic edges 8 ms wide: an ST shift that starts at the J point and melts into the T wave.
  const edge = 0.008;
  const rise = 1 / (1 + Math.exp(-(dt + w.sigmaLeft) / edge));
  const fall = 1 / (1 + Math.exp((dt - w.sigmaRight) / edge));
  return rise * fall;
}

function waveExtent(w: Wave): [number, number] {
  if (w.shape === 'gauss') return [w.center - 4.5 * w.sigmaLeft, w.center + 4.5 * w.sigmaRight];
  return [w.center - w.sigmaLeft - 0.08, w.center + w.sigmaRight + 0.08];
}

/** Rotation in the frontal (x-y) plane, turning the QRS axis without touching the anterior component. */
function rotateFrontal(v: Vec3, radians: number): Vec3 {
  const c = Math.cos(radians);
  const s = Math.sin(radians);
  return [c * v[0] - s * v[1], s * v[0] + c * v[1], v[2]];
}

/** The waves of one sinus beat of subject p, given the RR interval that precedes it (QT follows it). */
export function sinusBeatWaves(p: PhantomParams, rrSeconds: number): Wave[] {
  const qrs = p.qrsMs / 1000;
  const qt = qtSeconds(p, rrSeconds);
  const amp = p.qrsAmplitudeMv;
  let main: Vec3 = norm([0.78, 0.52, -0.35]);
  let septal: Vec3 = scale(norm([-0.6, 0.15, 0.75]), 0.15 * amp);
  let terminal: Vec3 = scale(norm([-0.35, -0.45, -0.55]), 0.3 * amp);
  let tDir: Vec3 = norm([0.62, 0.55, 0.45]);
  let st: Vec3 = [0, 0, 0];
  const extra: Wave[] = [];

  if (p.cls === 'hypertrophic') {
    // Septal hypertrophy: deep, narrow lateral q; strain: T and ST turned away from the tall-R (lateral) leads.
    septal = scale(norm([-0.6, 0.1, 0.8]), 0.3 * amp);
    terminal = scale(norm([-0.2, -0.3, -0.9]), 0.35 * amp);
    tDir = norm(add(scale(main, -1), [0, 0, 0.35]));
    st = scale(main, -0.12);
  } else if (p.cls === 'dilated') {
    // LBBB-like conduction: no septal q, broad notched lateral R, discordant T.
    main = norm([0.8, 0.25, -0.55]);
    septal = scale(norm([0.6, 0.1, -0.3]), 0.2 * amp);
    extra.push({ center: 0.22 * qrs, sigmaLeft: 0.09 * qrs, sigmaRight: 0.11 * qrs, vector: scale(main, 0.75 * amp), shape: 'gauss' });
    terminal = scale(norm([-0.2, -0.2, -0.6]), 0.15 * amp);
    tDir = norm(add(scale(main, -1), [0.1, 0.3, 0.3]));
  }

  const rotation = ((p.qrsAxisDeg * Math.PI) / 180) - Math.atan2(main[1], main[0]);
  let mainVec = scale(main, amp);

  if (p.cls === 'regional' && p.regionalWall) {
    const wall = WALL_DIRECTIONS[p.regionalWall];
    // Scar conducts nothing: forces toward the wall are lost, so early forces point away (Q waves) ...
    const along = dot(mainVec, wall);
    if (along > 0) mainVec = add(mainVec, scale(wall, -0.6 * along));
    extra.push({ center: -0.22 * qrs, sigmaLeft: 0.1 * qrs, sigmaRight: 0.1 * qrs, vector: scale(wall, -0.45 * amp), shape: 'gauss' });
    // ... and the injured wall lifts the ST segment and inverts the T waves in the leads that face it.
    st = scale(wall, 0.12 + 0.1 * (1 - p.regionalResidualMotion));
    tDir = norm(add(tDir, scale(wall, -1.2)));
  }

  const rot = (v: Vec3) => rotateFrontal(v, rotation);
  const tSigmaRight = 0.1 * qt;
  const tSigmaLeft = 0.16 * qt;
  const tEnd = qt - qrs / 2; // relative to the R peak
  const tPeak = tEnd - 2.6 * tSigmaRight;
  const jPoint = qrs / 2;
  const pCenter = -qrs / 2 - p.prMs / 1000 + 0.05;

  const waves: Wave[] = [
    { center: pCenter, sigmaLeft: 0.028, sigmaRight: 0.025, vector: scale(norm([0.55, 0.8, 0.2]), p.pAmplitudeMv), shape: 'gauss' },
    { center: -0.3 * qrs, sigmaLeft: 0.08 * qrs, sigmaRight: 0.08 * qrs, vector: rot(septal), shape: 'gauss' },
    { center: 0, sigmaLeft: 0.11 * qrs, sigmaRight: 0.1 * qrs, vector: rot(mainVec), shape: 'gauss' },
    { center: 0.28 * qrs, sigmaLeft: 0.09 * qrs, sigmaRight: 0.1 * qrs, vector: rot(terminal), shape: 'gauss' },
    { center: tPeak, sigmaLeft: tSigmaLeft, sigmaRight: tSigmaRight, vector: rot(scale(tDir, p.tAmplitudeMv)), shape: 'gauss' },
    ...extra.map((w) => ({ ...w, vector: rot(w.vector) })),
  ];
  if (dot(st, st) > 0) {
    const mid = (jPoint + tPeak) / 2;
    waves.push({ center: mid, sigmaLeft: mid - jPoint, sigmaRight: tPeak - mid, vector: rot(st), shape: 'plateau' });
  }
  return waves;
}

/** A premature ventricular beat: no P wave, wide bizarre QRS, T opposite to it. Its R peak is the big lobe. */
function ectopicBeatWaves(p: PhantomParams, rng: Rng): Wave[] {
  const amp = p.qrsAmplitudeMv * rng.uniform(1.3, 1.8);
  const dir = norm([rng.uniform(0.1, 0.5), rng.uniform(0.7, 1.0), rng.uniform(-0.6, 0.2)]);
  return [
    { center: 0, sigmaLeft: 0.028, sigmaRight: 0.03, vector: scale(dir, amp), shape: 'gauss' },
    { center: 0.07, sigmaLeft: 0.025, sigmaRight: 0.03, vector: scale(dir, -0.3 * amp), shape: 'gauss' },
    { center: 0.3, sigmaLeft: 0.07, sigmaRight: 0.05, vector: scale(dir, -0.35 * amp), shape: 'gauss' },
  ];
}

export interface EcgRhythmOptions {
  /** 'sinus' (default) or 'irregular': every RR drawn uniformly from rrRangeSeconds (AF-like). */
  rhythm?: 'sinus' | 'irregular';
  rrRangeSeconds?: [number, number];
  /** Probability that a beat is replaced by a premature ventricular beat (default 0). */
  ectopicProbability?: number;
  /** Multiplies noise, wander and powerline amplitudes (default 1; 0 gives a clean ECG). */
  noiseScale?: number;
}

export interface PhantomEcg {
  /** (12, 5000) row-major, mV, lead order LEAD_NAMES. */
  data: Float32Array;
  /** Sample index of every R peak in [0, 5000): the centre of the main QRS lobe. */
  rPeaks: number[];
  /** true for each R peak that belongs to an ectopic beat. */
  ectopic: boolean[];
}

/** Beat times (seconds) covering [-1.5 s, 11.5 s] so waves of beats just outside the window leak in. */
function beatSchedule(p: PhantomParams, rng: Rng, opts: EcgRhythmOptions) {
  const rrMean = meanRrSeconds(p);
  const beats: { time: number; rrBefore: number; ectopic: boolean }[] = [];
  const respPeriod = rng.uniform(3.5, 5.5);
  const respPhase = rng.uniform(0, 2 * Math.PI);
  const ectopicP = opts.ectopicProbability ?? 0;
  let t = -1.5 + rng.uniform(0, rrMean);
  let rrPrev = rrMean;
  let compensatory = 0;
  while (t < 11.5) {
    let rr: number;
    if (opts.rhythm === 'irregular') {
      const [lo, hi] = opts.rrRangeSeconds ?? [0.4, 1.2];
      rr = rng.uniform(lo, hi);
    } else {
      rr = rrMean * (1 + p.rrJitter * rng.gaussian() + p.respiratoryModulation * Math.sin((2 * Math.PI * t) / respPeriod + respPhase));
      rr = Math.min(2.0, Math.max(0.33, rr));
    }
    const isEctopic = compensatory === 0 && rng.next() < ectopicP;
    if (isEctopic) {
      // Premature by 25-40 %, followed by a compensatory pause.
      const early = rr * rng.uniform(0.6, 0.75);
      t += early;
      compensatory = rr * 2 - early;
      beats.push({ time: t, rrBefore: early, ectopic: true });
      rrPrev = early;
      continue;
    }
    t += compensatory > 0 ? compensatory : rr;
    beats.push({ time: t, rrBefore: compensatory > 0 ? compensatory : rrPrev, ectopic: false });
    compensatory = 0;
    rrPrev = rr;
  }
  return beats;
}

export function synthesizeEcg(p: PhantomParams, opts: EcgRhythmOptions = {}): PhantomEcg {
  const rng = new Rng(hashSeed(p.seed, p.index, 0xecc));
  const n = ECG_SAMPLES;
  const dipole = [new Float64Array(n), new Float64Array(n), new Float64Array(n)];
  const beats = beatSchedule(p, rng, opts);
  const rPeaks: number[] = [];
  const ectopic: boolean[] = [];

  for (const beat of beats) {
    const waves = beat.ectopic ? ectopicBeatWaves(p, rng) : sinusBeatWaves(p, beat.rrBefore);
    for (const w of waves) {
      const [from, to] = waveExtent(w);
      const i0 = Math.max(0, Math.ceil((beat.time + from) * ECG_FS));
      const i1 = Math.min(n - 1, Math.floor((beat.time + to) * ECG_FS));
      for (let i = i0; i <= i1; i++) {
        const g = waveValue(w, i / ECG_FS - beat.time);
        dipole[0][i] += g * w.vector[0];
        dipole[1][i] += g * w.vector[1];
        dipole[2][i] += g * w.vector[2];
      }
    }
    const idx = Math.round(beat.time * ECG_FS);
    if (idx >= 0 && idx < n) {
      rPeaks.push(idx);
      ectopic.push(beat.ectopic);
    }
  }

  // Electrode potentials = lead field . dipole + per-electrode wander, mains hum and white noise.
  const noiseScale = opts.noiseScale ?? 1;
  const electrodes = [...LIMB_ELECTRODES, ...PRECORDIAL_ELECTRODES];
  const potentials = electrodes.map((e) => {
    const out = new Float64Array(n);
    const wanderA = p.baselineWanderMv * noiseScale * rng.uniform(0.3, 1);
    const wanderB = p.baselineWanderMv * noiseScale * rng.uniform(0, 0.5);
    const fA = rng.uniform(0.1, 0.35);
    const fB = rng.uniform(0.03, 0.1);
    const phA = rng.uniform(0, 2 * Math.PI);
    const phB = rng.uniform(0, 2 * Math.PI);
    const hum = p.powerlineMv * noiseScale * rng.uniform(0.5, 1);
    const phH = rng.uniform(0, 2 * Math.PI);
    const sigma = p.ecgNoiseMv * noiseScale;
    for (let i = 0; i < n; i++) {
      const t = i / ECG_FS;
      out[i] =
        e[0] * dipole[0][i] + e[1] * dipole[1][i] + e[2] * dipole[2][i] +
        wanderA * Math.sin(2 * Math.PI * fA * t + phA) +
        wanderB * Math.sin(2 * Math.PI * fB * t + phB) +
        hum * Math.sin(2 * Math.PI * p.powerlineHz * t + phH) +
        (sigma > 0 ? sigma * rng.gaussian() : 0);
    }
    return out;
  });
  return { data: leadsFromElectrodes(potentials, n), rPeaks, ectopic };
}

/** Builds the 12 standard leads from RA, LA, LL, V1..V6 electrode potentials (9 arrays of length n). */
export function leadsFromElectrodes(potentials: ArrayLike<number>[], n: number): Float32Array {
  const [ra, la, ll] = potentials;
  const out = new Float32Array(12 * n);
  for (let i = 0; i < n; i++) {
    const wilson = (ra[i] + la[i] + ll[i]) / 3;
    out[i] = la[i] - ra[i];
    out[n + i] = ll[i] - ra[i];
    out[2 * n + i] = ll[i] - la[i];
    out[3 * n + i] = ra[i] - (la[i] + ll[i]) / 2;
    out[4 * n + i] = la[i] - (ra[i] + ll[i]) / 2;
    out[5 * n + i] = ll[i] - (ra[i] + la[i]) / 2;
    for (let v = 0; v < 6; v++) out[(6 + v) * n + i] = potentials[3 + v][i] - wilson;
  }
  return out;
}
