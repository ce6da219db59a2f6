/**
 * Phantom cine CMR: one cardiac cycle, 50 frames of 96x96, a long-axis four-chamber-like view.
 *
 * Layout (image y grows downwards): apex at the top, tilted right by 25 deg + orientation; LV on the image
 * right, RV on the left, LA/RA below the atrioventricular plane; lungs at the upper sides, liver bottom
 * left, descending aorta behind the LA. bSSFP-like contrast: bright blood, dark myocardium, bright fat.
 *
 * The LV cavity is a truncated ellipse (apex fixed, base plane descending in systole) described by its
 * radius r(psi) around a fixed point, so a regional wall can keep its end-diastolic radius (akinesis)
 * while the rest contracts. Edges are anti-aliased through the radial distance; the ground-truth LV mask
 * is the hard test rho < r(psi) at pixel centres, so areas are exact integers of the rendered mask.
 */
import { Rng, hashSeed } from '../random';
import { type PhantomParams, endSystoleSeconds, meanRrSeconds } from './params';

export const CINE_FRAMES = 50;
export const CINE_SIZE = 96;

const ANGLES = 360;
const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);
const smoothstep = (x: number) => {
  const t = clamp01(x);
  return t * t * (3 - 2 * t);
};

/**
 * LV contraction over the cycle, 0 at end-diastole (t = 0, the R peak) and 1 at end-systole. Diastole has
 * rapid early filling, a diastasis plateau and the atrial kick, as a real volume curve does.
 */
export function contractionAt(timeFraction: number, endSystoleFraction: number): number {
  const t = ((timeFraction % 1) + 1) % 1;
  const ts = endSystoleFraction;
  if (t <= ts) return 0.5 - 0.5 * Math.cos((Math.PI * t) / ts);
  const d = (t - ts) / (1 - ts);
  if (d < 0.4) return 1 - 0.75 * smoothstep(d / 0.4);
  if (d < 0.8) return 0.25 - 0.07 * ((d - 0.4) / 0.4);
  return 0.18 * (1 - smoothstep((d - 0.8) / 0.2));
}

/** Distance from point (ou, 0) along (du, dv) to the edge of the ellipse (uc, 0; a, b) cut at u >= base. */
function truncatedEllipseRadius(ou: number, du: number, dv: number, uc: number, a: number, b: number, base: number): number {
  // ((ou + t du - uc)/a)^2 + (t dv / b)^2 = 1, positive root.
  const x0 = (ou - uc) / a;
  const A = (du / a) ** 2 + (dv / b) ** 2;
  const B = (2 * x0 * du) / a;
  const C = x0 * x0 - 1;
  let t = (-B + Math.sqrt(Math.max(0, B * B - 4 * A * C))) / (2 * A);
  if (du < 0) t = Math.min(t, (ou - base) / -du);
  return Math.max(0, t);
}

/** Shape of a ventricle cavity: apex fixed at u = apex, base at u = base; truncation at 0.6 semi-axes. */
function ventricleEllipse(apex: number, base: number, halfWidth: number) {
  const a = (apex - base) / 1.6;
  return { uc: apex - a, a, b: halfWidth, base };
}

/** Angular weight of the akinetic segment (1 at its centre, Gaussian fall-off of ~25 deg). */
function segmentWeight(psi: number, p: PhantomParams): number {
  if (!p.regionalWall) return 0;
  const centre = p.regionalWall === 'apical' ? 0 : p.regionalWall === 'lateral' ? 1.25 : -1.25;
  let d = Math.abs(psi - centre);
  if (d > Math.PI) d = 2 * Math.PI - d;
  return Math.exp(-0.5 * (d / 0.45) ** 2);
}

export interface PhantomCine {
  /** (50, 96, 96) row-major, raw intensities (roughly [0, 1.2]); not normalized. */
  frames: Float32Array;
  /** LV cavity area per frame, pixels of the hard mask. */
  lvArea: number[];
  /** Frame index of end-systole by construction (round of the end-systolic time fraction x 50). */
  endSystoleFrame: number;
  endSystoleFraction: number;
}

/** Static background: textured tissue, lungs, liver, descending aorta (the same in every frame). */
function renderBackground(p: PhantomParams, rng: Rng, bx: number, by: number): Float32Array {
  const n = CINE_SIZE;
  const img = new Float32Array(n * n);
  const blobs = Array.from({ length: 24 }, () => ({
    x: rng.uniform(0, n), y: rng.uniform(0, n), s: rng.uniform(2, 10), a: rng.uniform(-0.12, 0.12),
  }));
  // Fine texture: smoothed white noise, so the tissue is not a flat grey.
  const grain = new Float32Array(n * n).map(() => rng.gaussian());
  const smooth = new Float32Array(n * n);
  for (let y = 1; y < n - 1; y++) {
    for (let x = 1; x < n - 1; x++) {
      let s = 0;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) s += grain[(y + dy) * n + x + dx];
      smooth[y * n + x] = s / 9;
    }
  }
  const lungs = [
    { x: 2 + rng.uniform(-3, 3), y: 24 + rng.uniform(-4, 4), rx: 12, ry: 30 },
    { x: 96 + rng.uniform(-3, 3), y: 20 + rng.uniform(-4, 4), rx: 12, ry: 26 },
  ];
  const aorta = { x: bx, y: by, r: rng.uniform(3.2, 4.2) };
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      let v = p.tissueIntensity + 0.05 * smooth[y * n + x];
      for (const b of blobs) v += b.a * Math.exp(-((x - b.x) ** 2 + (y - b.y) ** 2) / (2 * b.s * b.s));
      for (const l of lungs) {
        const d = Math.sqrt(((x - l.x) / l.rx) ** 2 + ((y - l.y) / l.ry) ** 2);
        const alpha = clamp01((1 - d) * Math.min(l.rx, l.ry) * 0.35 + 0.5);
        v = v * (1 - 0.85 * alpha) + 0.05 * 0.85 * alpha;
      }
      // Liver: bottom left (patient's right), a bit brighter and smoother than muscle.
      const liver = clamp01((y - 78 - 0.35 * (x - 20)) / 3);
      v = v * (1 - liver * 0.7) + 0.5 * liver * 0.7;
      const ad = Math.hypot(x - aorta.x, y - aorta.y);
      const aAlpha = clamp01(aorta.r - ad + 0.5);
      v = v * (1 - aAlpha) + p.bloodIntensity * 0.9 * aAlpha;
      img[y * n + x] = v;
    }
  }
  return img;
}

export function renderCine(p: PhantomParams): PhantomCine {
  const rng = new Rng(hashSeed(p.seed, p.index, 0xc1e));
  const n = CINE_SIZE;
  const rr = meanRrSeconds(p);
  const endSystoleFraction = Math.min(0.6, endSystoleSeconds(p) / rr);

  // Long axis (base -> apex) and the perpendicular pointing to the LV lateral wall, in image coordinates.
  const angle = ((-90 + 25 + p.orientationDeg) * Math.PI) / 180;
  const ax = Math.cos(angle);
  const ay = Math.sin(angle);
  const px = -ay;
  const py = ax;
  // Mitral-plane centre at end-diastole: below the image centre so ventricles and atria both fit.
  const baseX = p.centerX + 4 - 8 * ax + 2 * px;
  const baseY = p.centerY - 8 * ay + 2 * py;

  // LV end-diastolic and end-systolic cavities. Area ~ length x width, so split the target area ratio
  // (1 - EF)^(2/3) (the inverse of our volume ~ area^1.5 proxy) 30 % longitudinal, 70 % radial.
  const L = p.lvCavityLength;
  const areaRatio = Math.pow(1 - p.ejectionFraction, 2 / 3);
  const longScale = Math.pow(areaRatio, 0.3);
  const radialScale = Math.pow(areaRatio, 0.7);
  const ed = ventricleEllipse(L, 0, p.lvCavityRadius);
  const es = ventricleEllipse(L, L * (1 - longScale), p.lvCavityRadius * radialScale);
  const originU = ed.uc; // fixed reference point for the radial description, inside both shapes
  const rED = new Float64Array(ANGLES);
  const rES = new Float64Array(ANGLES);
  const wallED = new Float64Array(ANGLES);
  const segment = new Float64Array(ANGLES);
  for (let k = 0; k < ANGLES; k++) {
    const psi = -Math.PI + (2 * Math.PI * k) / ANGLES;
    const du = Math.cos(psi);
    const dv = Math.sin(psi);
    rED[k] = truncatedEllipseRadius(originU, du, dv, ed.uc, ed.a, ed.b, ed.base);
    const rContracted = truncatedEllipseRadius(originU, du, dv, es.uc, es.a, es.b, es.base);
    const w = segmentWeight(psi, p);
    segment[k] = w;
    // The akinetic segment keeps (1 - residual) of its end-diastolic radius during systole.
    rES[k] = rContracted + w * (1 - p.regionalResidualMotion) * (rED[k] - rContracted);
    const apexWeight = Math.max(0, du) ** 2;
    const thickness = p.lvWallThickness + (p.apexWallThickness - p.lvWallThickness) * apexWeight;
    wallED[k] = thickness * (1 - 0.35 * w); // scar is thinner
  }

  const rv = {
    length: L * p.rvLengthFraction,
    radius: p.rvCavityRadius,
    areaRatio: Math.pow(1 - p.rvEjectionFraction, 2 / 3),
    wall: 2.0,
  };
  const laRadius = p.lvCavityRadius * 0.85 + (p.cls === 'dilated' ? 1.5 : 0);
  const background = renderBackground(p, rng, baseX - (2.2 * laRadius + 3) * ax + 0.6 * laRadius * px, baseY - (2.2 * laRadius + 3) * ay + 0.6 * laRadius * py);

  // Smooth multiplicative bias: random low-order polynomial scaled to the chosen peak-to-peak.
  const coeffs = Array.from({ length: 5 }, () => rng.uniform(-1, 1));
  const bias = new Float32Array(n * n);
  let bMin = Infinity;
  let bMax = -Infinity;
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const xn = (x - 47.5) / 48;
      const yn = (y - 47.5) / 48;
      const b = coeffs[0] * xn + coeffs[1] * yn + coeffs[2] * xn * yn + coeffs[3] * (xn * xn - 0.33) + coeffs[4] * (yn * yn - 0.33);
      bias[y * n + x] = b;
      bMin = Math.min(bMin, b);
      bMax = Math.max(bMax, b);
    }
  }
  const biasScale = p.biasStrength / Math.max(1e-6, bMax - bMin);
  for (let i = 0; i < bias.length; i++) bias[i] = 1 + (bias[i] - (bMin + bMax) / 2) * biasScale;

  const frames = new Float32Array(CINE_FRAMES * n * n);
  const lvArea: number[] = [];
  const rEndo = new Float64Array(ANGLES);
  const rEpi = new Float64Array(ANGLES);
  const fat = 0.75;
  const myo = p.myocardiumIntensity;
  const blood = p.bloodIntensity;

  for (let f = 0; f < CINE_FRAMES; f++) {
    const c = contractionAt(f / CINE_FRAMES, endSystoleFraction);
    for (let k = 0; k < ANGLES; k++) {
      rEndo[k] = rED[k] + c * (rES[k] - rED[k]);
      const thickening = 1 + c * p.wallThickening * (1 - segment[k] * (1 - p.regionalResidualMotion));
      rEpi[k] = rEndo[k] + wallED[k] * thickening;
    }
    const lvBase = c * (L - L * longScale);
    // Septal epicardium position (v < 0) at mid-cavity, where the RV cavity leans on it.
    const septumV = -rEpi[Math.round(ANGLES / 4)];
    const rvLong = Math.pow(rv.areaRatio, 0.5 * c);
    const rvWidth = rv.radius * Math.pow(rv.areaRatio, 0.5 * c);
    const rvBase = lvBase * 1.3; // the tricuspid annulus moves more than the mitral one
    const rvShape = ventricleEllipse(rv.length, rvBase + (1 - rvLong) * 0, rvWidth);
    const rvCentreV = septumV - rvWidth * 0.8;
    const atrialScale = 1 + 0.2 * c;
    const la = { u: lvBase - laRadius * 1.05 * atrialScale, v: 2.5, a: laRadius * 1.15 * atrialScale, b: laRadius };
    const raRadius = rv.radius * 1.05;
    const ra = { u: rvBase - raRadius * atrialScale, v: -laRadius - raRadius + 1.5, a: raRadius * 1.1 * atrialScale, b: raRadius };
    const valveClosed = c > 0.02 && f / CINE_FRAMES <= endSystoleFraction + 0.02 ? 1 : 0;

    let area = 0;
    const frameOffset = f * n * n;
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        const qx = x - baseX;
        const qy = y - baseY;
        const u = qx * ax + qy * ay;
        const v = qx * px + qy * py;
        let value = background[y * n + x];

        // LV: radial lookup around the fixed origin.
        const du = u - originU;
        const rho = Math.hypot(du, v);
        const psi = Math.atan2(v, du);
        const kf = ((psi + Math.PI) / (2 * Math.PI)) * ANGLES;
        const k0 = Math.floor(kf) % ANGLES;
        const k1 = (k0 + 1) % ANGLES;
        const t = kf - Math.floor(kf);
        const endo = rEndo[k0] * (1 - t) + rEndo[k1] * t;
        const epi = rEpi[k0] * (1 - t) + rEpi[k1] * t;
        const belowBase = clamp01(u - (lvBase - 1.5) + 0.5);
        const lvEpiAlpha = clamp01(epi - rho + 0.5) * belowBase;
        const lvCavAlpha = clamp01(endo - rho + 0.5);
        if (rho < endo) area++;

        // RV: implicit truncated ellipse in its own frame, septal side hidden behind the LV wall.
        const ru = (u - rvShape.uc) / rvShape.a;
        const rvv = (v - rvCentreV) / rvShape.b;
        const rvDist = (Math.sqrt(ru * ru + rvv * rvv) - 1) * rvShape.b;
        const rvCut = clamp01(u - rvBase + 0.5);
        const rvCavAlpha = clamp01(-rvDist + 0.5) * rvCut * (1 - lvEpiAlpha);
        const rvEpiAlpha = clamp01(rv.wall - rvDist + 0.5) * clamp01(u - (rvBase - 1.5) + 0.5);

        // Atria: ellipses below the valve planes, thin walls.
        const laDist = (Math.sqrt(((u - la.u) / la.a) ** 2 + ((v - la.v) / la.b) ** 2) - 1) * la.b;
        const raDist = (Math.sqrt(((u - ra.u) / ra.a) ** 2 + ((v - ra.v) / ra.b) ** 2) - 1) * ra.b;
        const laAlpha = clamp01(-laDist + 0.5) * clamp01(lvBase - 0.8 - u + 0.5);
        const raAlpha = clamp01(-raDist + 0.5) * clamp01(rvBase - 0.8 - u + 0.5);
        const atrialWall = Math.max(clamp01(1.3 - laDist + 0.5), clamp01(1.3 - raDist + 0.5));

        // Epicardial fat ring, then muscle, then blood pools.
        const heartOuter = Math.max(lvEpiAlpha, rvEpiAlpha, atrialWall);
        const fatAlpha = Math.max(clamp01(epi + 1.8 - rho + 0.5) * belowBase, clamp01(rv.wall + 1.6 - rvDist + 0.5)) * 0.55;
        value = value * (1 - fatAlpha) + fat * fatAlpha;
        value = value * (1 - heartOuter) + myo * heartOuter;
        // Papillary muscle: a small dark body on the lateral side of the cavity (counted as cavity in the mask).
        const papU = originU + 0.1 * L;
        const papV = 0.62 * (rEndo[Math.round((3 * ANGLES) / 4)]);
        const papAlpha = clamp01(2.0 - Math.hypot(u - papU, v - papV) + 0.5) * lvCavAlpha;
        const pool = Math.max(rvCavAlpha, lvCavAlpha, laAlpha * (1 - lvEpiAlpha), raAlpha * (1 - rvCavAlpha * 0));
        value = value * (1 - pool) + blood * pool;
        value = value * (1 - 0.8 * papAlpha) + myo * 0.8 * papAlpha;
        // Closed mitral/tricuspid leaflets in systole: a thin dark line across the annulus.
        if (valveClosed) {
          const leaflet = clamp01(0.9 - Math.abs(u - lvBase + 0.4)) * clamp01(endo - rho + 2) * (du < 0 ? 1 : 0);
          value = value * (1 - 0.6 * leaflet) + myo * 0.6 * leaflet;
        }
        frames[frameOffset + y * n + x] = value * bias[y * n + x] * (1 + 0.4 * (background[y * n + x] - p.tissueIntensity));
      }
    }
    lvArea.push(area);
  }

  // Rician noise: magnitude of a complex signal with Gaussian noise on both channels.
  const sigma = p.noiseSigma;
  for (let i = 0; i < frames.length; i++) {
    const re = frames[i] + sigma * rng.gaussian();
    const im = sigma * rng.gaussian();
    frames[i] = Math.sqrt(re * re + im * im);
  }
  return {
    frames,
    lvArea,
    endSystoleFrame: Math.round(endSystoleFraction * CINE_FRAMES),
    endSystoleFraction,
  };
}
