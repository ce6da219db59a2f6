/**
 * Frame-wise image metrics on host arrays: PSNR and SSIM for clips (T, H, W) with values in [0, 1]
 * (data range 1). Everything is computed in float64 whatever the input type.
 *
 * SSIM convention (Wang et al. 2004, the skimage `gaussian_weights=True, use_sample_covariance=False`
 * and torchmetrics/pytorch-msssim default): 11x11 Gaussian window with sigma 1.5 normalised to sum 1,
 * K1 = 0.01, K2 = 0.03, L = 1, local statistics only where the window fits inside the frame ('valid'),
 * frame SSIM = mean of that (H-10) x (W-10) map. Frames smaller than 11 pixels are refused.
 */

export const SSIM_WINDOW = 11;
export const SSIM_SIGMA = 1.5;
export const SSIM_K1 = 0.01;
export const SSIM_K2 = 0.03;

export interface ClipShape {
  frames: number;
  height: number;
  width: number;
}

function checkPair(a: ArrayLike<number>, b: ArrayLike<number>, shape: ClipShape, what: string): void {
  const n = shape.frames * shape.height * shape.width;
  if (a.length !== n || b.length !== n) {
    throw new Error(`${what}: clips must both hold ${shape.frames}x${shape.height}x${shape.width} = ${n} values (got ${a.length} and ${b.length})`);
  }
}

/** PSNR of one frame pair for data range 1: 10 log10(1 / MSE); identical frames give +Infinity. */
export function psnrFromMse(mse: number): number {
  return mse > 0 ? -10 * Math.log10(mse) : Infinity;
}

/** Per-frame mean squared error of two clips. */
export function frameMse(pred: ArrayLike<number>, target: ArrayLike<number>, shape: ClipShape): Float64Array {
  checkPair(pred, target, shape, 'frameMse');
  const plane = shape.height * shape.width;
  const out = new Float64Array(shape.frames);
  for (let t = 0; t < shape.frames; t++) {
    let s = 0;
    for (let i = t * plane; i < (t + 1) * plane; i++) {
      const d = pred[i] - target[i];
      s += d * d;
    }
    out[t] = s / plane;
  }
  return out;
}

/** Per-frame PSNR (dB, data range 1). */
export function framePsnr(pred: ArrayLike<number>, target: ArrayLike<number>, shape: ClipShape): Float64Array {
  return frameMse(pred, target, shape).map(psnrFromMse);
}

/** The normalised 1-D Gaussian; the 2-D window is its outer product (separable). */
export function gaussianWindow1d(size = SSIM_WINDOW, sigma = SSIM_SIGMA): Float64Array {
  const w = new Float64Array(size);
  const c = (size - 1) / 2;
  let s = 0;
  for (let i = 0; i < size; i++) s += w[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
  return w.map((v) => v / s);
}

/** 'valid' separable filtering of one plane (h, w) → (h - k + 1, w - k + 1). */
function filterValid(src: Float64Array, h: number, w: number, kernel: Float64Array): Float64Array {
  const k = kernel.length;
  const ow = w - k + 1;
  const oh = h - k + 1;
  const rows = new Float64Array(h * ow);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += kernel[j] * src[y * w + x + j];
      rows[y * ow + x] = s;
    }
  }
  const out = new Float64Array(oh * ow);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += kernel[j] * rows[(y + j) * ow + x];
      out[y * ow + x] = s;
    }
  }
  return out;
}

export interface SsimOptions {
  windowSize?: number;
  sigma?: number;
  dataRange?: number;
}

/** SSIM of one frame pair (h, w) given as views; see the file comment for the convention. */
export function ssimFrame(a: ArrayLike<number>, b: ArrayLike<number>, h: number, w: number, options: SsimOptions = {}): number {
  const size = options.windowSize ?? SSIM_WINDOW;
  if (h < size || w < size) throw new Error(`ssim: frames of ${h}x${w} are smaller than the ${size}x${size} window`);
  const range = options.dataRange ?? 1;
  const kernel = gaussianWindow1d(size, options.sigma ?? SSIM_SIGMA);
  const n = h * w;
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = a[i];
    y[i] = b[i];
  }
  const mx = filterValid(x, h, w, kernel);
  const my = filterValid(y, h, w, kernel);
  const xx = filterValid(x.map((v) => v * v), h, w, kernel);
  const yy = filterValid(y.map((v) => v * v), h, w, kernel);
  const xy = filterValid(x.map((v, i) => v * y[i]), h, w, kernel);
  const c1 = (SSIM_K1 * range) ** 2;
  const c2 = (SSIM_K2 * range) ** 2;
  let total = 0;
  for (let i = 0; i < mx.length; i++) {
    const vx = xx[i] - mx[i] * mx[i];
    const vy = yy[i] - my[i] * my[i];
    const cxy = xy[i] - mx[i] * my[i];
    total += ((2 * mx[i] * my[i] + c1) * (2 * cxy + c2)) / ((mx[i] * mx[i] + my[i] * my[i] + c1) * (vx + vy + c2));
  }
  return total / mx.length;
}

/** Per-frame SSIM of two clips (T, H, W). */
export function frameSsim(pred: Float32Array | Float64Array, target: Float32Array | Float64Array, shape: ClipShape, options: SsimOptions = {}): Float64Array {
  checkPair(pred, target, shape, 'frameSsim');
  const plane = shape.height * shape.width;
  const out = new Float64Array(shape.frames);
  for (let t = 0; t < shape.frames; t++) {
    out[t] = ssimFrame(pred.subarray(t * plane, (t + 1) * plane), target.subarray(t * plane, (t + 1) * plane), shape.height, shape.width, options);
  }
  return out;
}

export interface ClipImageMetrics {
  psnrPerFrame: number[];
  ssimPerFrame: number[];
  /** Mean of the per-frame PSNRs (+Infinity if any frame is identical). */
  psnrMean: number;
  /** PSNR of the MSE pooled over the whole clip (finite unless the clips are identical). */
  psnrClip: number;
  ssimMean: number;
}

export function clipImageMetrics(pred: Float32Array | Float64Array, target: Float32Array | Float64Array, shape: ClipShape): ClipImageMetrics {
  const mse = frameMse(pred, target, shape);
  const psnr = [...mse].map(psnrFromMse);
  const ssim = [...frameSsim(pred, target, shape)];
  const pooledMse = mse.reduce((s, v) => s + v, 0) / Math.max(1, mse.length);
  return {
    psnrPerFrame: psnr,
    ssimPerFrame: ssim,
    psnrMean: meanOf(psnr),
    psnrClip: psnrFromMse(pooledMse),
    ssimMean: meanOf(ssim),
  };
}

export function meanOf(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i];
  return values.length ? s / values.length : NaN;
}

/** Sample standard deviation (n - 1); 0 for a single value, NaN for none. */
export function stdOf(values: ArrayLike<number>): number {
  if (values.length < 2) return values.length ? 0 : NaN;
  const m = meanOf(values);
  let s = 0;
  for (let i = 0; i < values.length; i++) s += (values[i] - m) ** 2;
  return Math.sqrt(s / (values.length - 1));
}

export interface Summary {
  mean: number;
  std: number;
  min: number;
  max: number;
  count: number;
}

/** Mean, sample std, min and max of finite values; non-finite ones (identical-frame PSNR) are counted apart. */
export function summarize(values: ArrayLike<number>): Summary & { nonFinite: number } {
  const finite: number[] = [];
  let nonFinite = 0;
  for (let i = 0; i < values.length; i++) {
    if (Number.isFinite(values[i])) finite.push(values[i]);
    else nonFinite++;
  }
  return {
    mean: meanOf(finite),
    std: stdOf(finite),
    min: finite.length ? Math.min(...finite) : NaN,
    max: finite.length ? Math.max(...finite) : NaN,
    count: finite.length,
    nonFinite,
  };
}
