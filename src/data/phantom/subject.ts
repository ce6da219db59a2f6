/** One phantom subject: parameters, ECG, cine and the ground truth derived from them. */
import { PHANTOM_CLASSES, type PhantomClass, type PhantomParams, endSystoleSeconds, lvMassProxy, meanRrSeconds, sampleParams } from './params';
import { type EcgRhythmOptions, synthesizeEcg } from './ecg';
import { renderCine } from './cine';

export interface PhantomGroundTruth {
  cls: PhantomClass;
  /** R-peak sample indices (500 Hz) of the ECG, exact by construction. */
  rPeaks: number[];
  heartRateBpm: number;
  /** Mean RR (s): the cycle length the cine covers. */
  rrSeconds: number;
  endSystoleSeconds: number;
  endSystoleFrame: number;
  /** LV cavity area per frame (pixels of the rendered hard mask); empty if the cine was skipped. */
  lvArea: number[];
  /**
   * Volume proxies: V = area^1.5 (a cavity of area A scaled isotropically in 3-D has volume ~ A^1.5),
   * in px^3. EDV from frame 0, ESV from the smallest area, EF = (EDV - ESV) / EDV.
   */
  edvProxy: number;
  esvProxy: number;
  efProxy: number;
  /** End-diastolic LV wall thickness (septal/lateral) and at the apex, px. */
  wallThickness: number;
  apexWallThickness: number;
  /** End-diastolic LV myocardial area proxy, px^2. */
  lvMassProxy: number;
  qrsMs: number;
  qtcMs: number;
  qrsAxisDeg: number;
  regionalWall: string | null;
}

export interface PhantomSubject {
  id: string;
  params: PhantomParams;
  /** (12, 5000) mV. */
  ecg: Float32Array;
  /** (50, 96, 96) raw intensities, or null when generated with { cine: false }. */
  cine: Float32Array | null;
  truth: PhantomGroundTruth;
}

export interface PhantomOptions extends EcgRhythmOptions {
  /** Class of the subject; default: classes in turn by index (balanced). */
  cls?: PhantomClass;
  /** Skip the cine (ECG-only studies and fast tests). Default true. */
  cine?: boolean;
}

export function classForIndex(index: number): PhantomClass {
  return PHANTOM_CLASSES[index % PHANTOM_CLASSES.length];
}

export function phantomId(seed: number, index: number): string {
  return `phantom-s${seed}-${String(index).padStart(6, '0')}`;
}

export function generateSubject(seed: number, index: number, options: PhantomOptions = {}): PhantomSubject {
  const cls = options.cls ?? classForIndex(index);
  const params = sampleParams(seed, index, cls);
  const ecg = synthesizeEcg(params, options);
  const cine = options.cine === false ? null : renderCine(params);
  const lvArea = cine?.lvArea ?? [];
  const edArea = lvArea.length ? lvArea[0] : 0;
  const esArea = lvArea.length ? Math.min(...lvArea) : 0;
  const edv = Math.pow(edArea, 1.5);
  const esv = Math.pow(esArea, 1.5);
  const truth: PhantomGroundTruth = {
    cls,
    rPeaks: ecg.rPeaks,
    heartRateBpm: params.heartRateBpm,
    rrSeconds: meanRrSeconds(params),
    endSystoleSeconds: endSystoleSeconds(params),
    endSystoleFrame: cine?.endSystoleFrame ?? Math.round((endSystoleSeconds(params) / meanRrSeconds(params)) * 50),
    lvArea,
    edvProxy: edv,
    esvProxy: esv,
    efProxy: edv > 0 ? (edv - esv) / edv : 0,
    wallThickness: params.lvWallThickness,
    apexWallThickness: params.apexWallThickness,
    lvMassProxy: lvMassProxy(params.lvCavityRadius, params.lvCavityLength, params.lvWallThickness),
    qrsMs: params.qrsMs,
    qtcMs: params.qtcMs,
    qrsAxisDeg: params.qrsAxisDeg,
    regionalWall: params.regionalWall,
  };
  return { id: phantomId(seed, index), params, ecg: ecg.data, cine: cine?.frames ?? null, truth };
}
