/**
 * LV cavity segmentation for phantom-like four-chamber cines, applied identically to generated and
 * ground-truth clips (it never sees a ground-truth mask). Per clip (T, H, W) in [0, 1]:
 *   1. light 3x3 binomial smoothing of each frame (damps pixel noise; keeps 1-px walls dark enough);
 *   2. a first threshold by Otsu's method on the pixels of a disk (radius 30 px) around the LV centre,
 *      pooled over all frames;
 *   3. per frame, the 4-connected bright component that contains the LV centre, or else the one whose
 *      nearest pixel is closest to it (at most `maxCentreDistance` px, at least `minComponentSize` px);
 *      holes inside it (the papillary muscle) are filled;
 *   4. refinement: blood level = median inside the step-3 cavities (eroded by one pixel), myocardium
 *      level = median of the ring 2-3 px outside them (the first pixel out is partial volume), pooled over the clip; the final threshold is
 *      `fraction` (0.5) of the way from myocardium to blood, and step 3 is repeated with it.
 * A threshold half-way between the two levels puts the edge where the rendered partial-volume alpha is
 * 0.5, i.e. where the phantom's hard ground-truth mask has its edge. The LV centre comes from the phantom
 * parameters (lvCentreFromParams) or from the caller.
 */

export interface Point {
  x: number;
  y: number;
}

export interface SegmentationOptions {
  /** Where the threshold sits between the myocardium (0) and blood (1) levels. Default 0.5. */
  fraction?: number;
  /** Radius (px) of the disk around the LV centre used for the first (Otsu) threshold. Default 30. */
  roiRadius?: number;
  /** Components farther than this from the centre are not the LV. Default 12 px. */
  maxCentreDistance?: number;
  minComponentSize?: number;
  /** 3x3 binomial smoothing before thresholding. Default true. */
  smooth?: boolean;
  /**
   * (H, W) mask of the pixels the cavity may occupy (1 = allowed); everything else counts as dark. A leak
   * guard for coarse clips, where blurred walls let the cavity run into the neighbouring chambers.
   */
  allowed?: Uint8Array | null;
}

export interface ClipSegmentation {
  /** Cavity area per frame, pixels. */
  area: number[];
  /** (T, H, W) masks, 1 = cavity. */
  masks: Uint8Array;
  threshold: number;
  bloodLevel: number;
  myocardiumLevel: number;
  /** Frames where no component was found near the centre (area 0). */
  missedFrames: number[];
}

/**
 * The fixed point inside the phantom LV cavity in image coordinates (x = column, y = row), from the
 * rendering geometry of src/data/phantom/cine.ts: the long axis is tilted (-65 + orientation) degrees,
 * the mitral-plane centre sits 4 px right of (centreX, centreY), 8 px back along the axis and 2 px to the
 * side, and the cavity's reference point is 0.375 of the cavity length up the axis from there
 * (ellipse centre of a cavity truncated at 0.6 semi-axes). It lies inside the cavity in every frame.
 */
export function lvCentreFromParams(params: { orientationDeg: number; centerX: number; centerY: number; lvCavityLength: number }): Point {
  const angle = ((-90 + 25 + params.orientationDeg) * Math.PI) / 180;
  const ax = Math.cos(angle);
  const ay = Math.sin(angle);
  const px = -ay;
  const py = ax;
  const baseX = params.centerX + 4 - 8 * ax + 2 * px;
  const baseY = params.centerY - 8 * ay + 2 * py;
  const origin = params.lvCavityLength * (1 - 1 / 1.6);
  return { x: baseX + origin * ax, y: baseY + origin * ay };
}

/** The phantom parameters that place the end-diastolic LV cavity (src/data/phantom/cine.ts). */
export interface LvCavityParams {
  orientationDeg: number;
  centerX: number;
  centerY: number;
  lvCavityLength: number;
  lvCavityRadius: number;
}

/**
 * Pixels within `margin` px of the phantom's end-diastolic LV cavity (96 × 96 grid): the truncated ellipse
 * of cine.ts (apex at L along the long axis from the mitral-plane centre, semi-axes L/1.6 and the cavity
 * radius, cut at the mitral plane). Every later frame's cavity lies inside it (systole only shrinks it;
 * the base descends towards the apex), so it bounds the cavity of a faithful clip in every frame.
 */
export function lvCavityRegion(params: LvCavityParams, size = 96, margin = 3): Uint8Array {
  const angle = ((-90 + 25 + params.orientationDeg) * Math.PI) / 180;
  const ax = Math.cos(angle);
  const ay = Math.sin(angle);
  const baseX = params.centerX + 4 - 8 * ax + 2 * -ay;
  const baseY = params.centerY - 8 * ay + 2 * ax;
  const L = params.lvCavityLength;
  const a = L / 1.6 + margin;
  const b = params.lvCavityRadius + margin;
  const uc = L - L / 1.6;
  const out = new Uint8Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dx = x - baseX;
      const dy = y - baseY;
      const u = dx * ax + dy * ay;
      const v = -dx * ay + dy * ax;
      if (u >= -margin && ((u - uc) / a) ** 2 + (v / b) ** 2 <= 1) out[y * size + x] = 1;
    }
  }
  return out;
}

/** The LV centre of a phantom with mid-range parameters; a fallback when no metadata is given. */
export const DEFAULT_LV_CENTRE: Point = lvCentreFromParams({ orientationDeg: 0, centerX: 48, centerY: 48, lvCavityLength: 39.5 });

function smooth3x3(src: Float32Array | Float64Array, offset: number, h: number, w: number): Float64Array {
  const out = new Float64Array(h * w);
  const weights = [1, 2, 1];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      let ws = 0;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= w) continue;
          const k = weights[dy + 1] * weights[dx + 1];
          s += k * src[offset + yy * w + xx];
          ws += k;
        }
      }
      out[y * w + x] = s / ws;
    }
  }
  return out;
}

/** Otsu's threshold of values (256 bins over their range). */
export function otsuThreshold(values: ArrayLike<number>): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    lo = Math.min(lo, values[i]);
    hi = Math.max(hi, values[i]);
  }
  if (!(hi > lo)) return lo;
  const bins = 256;
  const hist = new Float64Array(bins);
  const scale = (bins - 1) / (hi - lo);
  for (let i = 0; i < values.length; i++) hist[Math.round((values[i] - lo) * scale)]++;
  let total = 0;
  let sumAll = 0;
  for (let b = 0; b < bins; b++) {
    total += hist[b];
    sumAll += b * hist[b];
  }
  let wB = 0;
  let sumB = 0;
  let best = -1;
  let bestBin = 0;
  for (let b = 0; b < bins - 1; b++) {
    wB += hist[b];
    sumB += b * hist[b];
    const wF = total - wB;
    if (wB === 0 || wF === 0) continue;
    const between = wB * wF * (sumB / wB - (sumAll - sumB) / wF) ** 2;
    if (between > best) {
      best = between;
      bestBin = b;
    }
  }
  return lo + (bestBin + 0.5) / scale;
}

function median(values: number[]): number {
  if (!values.length) return NaN;
  const s = Float64Array.from(values).sort();
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : 0.5 * (s[m - 1] + s[m]);
}

/**
 * The 4-connected component of `bright` picked as the LV (see the file comment), holes filled.
 * Returns null when no component qualifies.
 */
function pickComponent(bright: Uint8Array, h: number, w: number, centre: Point, maxDistance: number, minSize: number): Uint8Array | null {
  const labels = new Int32Array(h * w).fill(-1);
  const stack: number[] = [];
  let bestLabel = -1;
  let bestDistance = Infinity;
  const cx = Math.round(centre.x);
  const cy = Math.round(centre.y);
  const components: number[][] = [];
  for (let start = 0; start < h * w; start++) {
    if (!bright[start] || labels[start] >= 0) continue;
    const label = components.length;
    const pixels: number[] = [];
    labels[start] = label;
    stack.push(start);
    let nearest = Infinity;
    while (stack.length) {
      const p = stack.pop()!;
      pixels.push(p);
      const y = (p / w) | 0;
      const x = p - y * w;
      nearest = Math.min(nearest, Math.hypot(x - centre.x, y - centre.y));
      const neighbours = [x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1, y > 0 ? p - w : -1, y < h - 1 ? p + w : -1];
      for (const q of neighbours) {
        if (q >= 0 && bright[q] && labels[q] < 0) {
          labels[q] = label;
          stack.push(q);
        }
      }
    }
    components.push(pixels);
    const containsCentre = cx >= 0 && cx < w && cy >= 0 && cy < h && labels[cy * w + cx] === label;
    const distance = containsCentre ? -1 : nearest;
    if (pixels.length >= minSize && distance <= maxDistance && distance < bestDistance) {
      bestDistance = distance;
      bestLabel = label;
    }
  }
  if (bestLabel < 0) return null;
  const mask = new Uint8Array(h * w);
  for (const p of components[bestLabel]) mask[p] = 1;
  return fillHoles(mask, h, w);
}

/** Sets every background pixel not 4-connected to the border (an enclosed hole) to 1. */
export function fillHoles(mask: Uint8Array, h: number, w: number): Uint8Array {
  const outside = new Uint8Array(h * w);
  const stack: number[] = [];
  const seed = (p: number) => {
    if (!mask[p] && !outside[p]) {
      outside[p] = 1;
      stack.push(p);
    }
  };
  for (let x = 0; x < w; x++) {
    seed(x);
    seed((h - 1) * w + x);
  }
  for (let y = 0; y < h; y++) {
    seed(y * w);
    seed(y * w + w - 1);
  }
  while (stack.length) {
    const p = stack.pop()!;
    const y = (p / w) | 0;
    const x = p - y * w;
    if (x > 0) seed(p - 1);
    if (x < w - 1) seed(p + 1);
    if (y > 0) seed(p - w);
    if (y < h - 1) seed(p + w);
  }
  const out = new Uint8Array(h * w);
  for (let i = 0; i < h * w; i++) out[i] = outside[i] ? 0 : 1;
  return out;
}

/** One step of binary erosion (4-neighbourhood; pixels on the border erode). */
function erode(mask: Uint8Array, h: number, w: number): Uint8Array {
  const out = new Uint8Array(h * w);
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      const p = y * w + x;
      out[p] = mask[p] & mask[p - 1] & mask[p + 1] & mask[p - w] & mask[p + w];
    }
  }
  return out;
}

function dilate(mask: Uint8Array, h: number, w: number): Uint8Array {
  const out = new Uint8Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = y * w + x;
      out[p] = mask[p] | (x > 0 ? mask[p - 1] : 0) | (x < w - 1 ? mask[p + 1] : 0) | (y > 0 ? mask[p - w] : 0) | (y < h - 1 ? mask[p + w] : 0);
    }
  }
  return out;
}

/** Segments the LV cavity in every frame of a clip (T, H, W) in [0, 1]. */
export function segmentLvClip(clip: Float32Array | Float64Array, frames: number, height: number, width: number, centre: Point, options: SegmentationOptions = {}): ClipSegmentation {
  const plane = height * width;
  if (clip.length !== frames * plane) throw new Error(`segmentLvClip: expected ${frames}x${height}x${width} values, got ${clip.length}`);
  const fraction = options.fraction ?? 0.5;
  const roiRadius = options.roiRadius ?? 30;
  const maxDistance = options.maxCentreDistance ?? 12;
  const minSize = options.minComponentSize ?? 12;
  const smoothed: Float64Array[] = [];
  for (let t = 0; t < frames; t++) {
    smoothed.push(options.smooth === false ? Float64Array.from(clip.subarray(t * plane, (t + 1) * plane)) : smooth3x3(clip, t * plane, height, width));
  }

  const roi: number[] = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (Math.hypot(x - centre.x, y - centre.y) <= roiRadius) roi.push(y * width + x);
    }
  }
  const roiValues: number[] = [];
  for (const frame of smoothed) for (const p of roi) roiValues.push(frame[p]);
  const firstThreshold = otsuThreshold(roiValues);

  const allowed = options.allowed ?? null;
  if (allowed && allowed.length !== plane) throw new Error(`segmentLvClip: allowed mask has ${allowed.length} pixels, frames ${plane}`);
  const segmentAll = (threshold: number) => smoothed.map((frame) => {
    const bright = new Uint8Array(plane);
    for (let i = 0; i < plane; i++) bright[i] = frame[i] > threshold && (!allowed || allowed[i]) ? 1 : 0;
    return pickComponent(bright, height, width, centre, maxDistance, minSize);
  });

  const first = segmentAll(firstThreshold);
  const bloodValues: number[] = [];
  const wallValues: number[] = [];
  first.forEach((mask, t) => {
    if (!mask) return;
    const core = erode(mask, height, width);
    // Skip the first pixel outside the cavity (partial volume), sample the next two (the wall).
    const inner = dilate(mask, height, width);
    const ring = dilate(dilate(inner, height, width), height, width);
    for (let i = 0; i < plane; i++) {
      if (core[i]) bloodValues.push(smoothed[t][i]);
      else if (ring[i] && !inner[i]) wallValues.push(smoothed[t][i]);
    }
  });
  const bloodLevel = median(bloodValues);
  const myocardiumLevel = median(wallValues);
  const threshold = Number.isFinite(bloodLevel) && Number.isFinite(myocardiumLevel) && bloodLevel > myocardiumLevel
    ? myocardiumLevel + fraction * (bloodLevel - myocardiumLevel)
    : firstThreshold;
  const final = segmentAll(threshold);

  const masks = new Uint8Array(frames * plane);
  const area: number[] = [];
  const missedFrames: number[] = [];
  final.forEach((mask, t) => {
    if (!mask) {
      missedFrames.push(t);
      area.push(0);
      return;
    }
    masks.set(mask, t * plane);
    let a = 0;
    for (let i = 0; i < plane; i++) a += mask[i];
    area.push(a);
  });
  return { area, masks, threshold, bloodLevel, myocardiumLevel, missedFrames };
}
