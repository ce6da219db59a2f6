/**
 * Fréchet distance between Gaussian fits of two feature sets (the FID/FVD statistic), in float64:
 *   FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2)
 * S1^1/2 comes from a symmetric eigen-decomposition of S1 (Householder tridiagonalisation, then implicit
 * QR with Wilkinson shifts); the trace term is the sum of the square roots of the eigenvalues of the
 * symmetric PSD matrix S1^1/2 S2 S1^1/2. This equals tr(sqrtm(S1 S2)) of the usual scipy formulation but
 * never needs a non-symmetric square root, so there are no imaginary parts to drop; eigenvalues that
 * rounding makes slightly negative are clamped to 0 (the reference adds 1e-6 to the diagonals instead
 * when its result is not finite; that case cannot arise here).
 * Covariances use the n - 1 normalisation (numpy.cov, as pytorch-fid does). With fewer samples than dims
 * (FID over a few hundred frames, FVD over fewer than 1024 clips) the same trace comes from the singular
 * values of the n1 x n2 product of the centred samples, without any d x d decomposition (lowRankCrossTrace).
 */

export interface GaussianStats {
  dims: number;
  count: number;
  mean: Float64Array;
  /** (dims, dims) row-major. */
  covariance: Float64Array;
  /**
   * With fewer samples than dims: A, (count − 1, dims) row-major, with covariance = AᵀA — the centred rows in
   * an orthonormal (Helmert) basis of the zero-sum directions, scaled by 1/√(count − 1). Centred rows always
   * sum to zero; dropping that known null direction keeps it out of the square roots in frechetDistance.
   */
  sampleBasis?: Float64Array;
}

/** Mean and covariance of `count` feature rows of length `dims` (row-major). */
export function gaussianStats(features: ArrayLike<number>, count: number, dims: number): GaussianStats {
  if (features.length !== count * dims) throw new Error(`gaussianStats: ${features.length} values are not ${count} rows of ${dims}`);
  if (count < 2) throw new Error(`gaussianStats: need at least 2 samples for a covariance, got ${count}`);
  const mean = new Float64Array(dims);
  for (let r = 0; r < count; r++) for (let j = 0; j < dims; j++) mean[j] += features[r * dims + j];
  for (let j = 0; j < dims; j++) mean[j] /= count;
  const covariance = new Float64Array(dims * dims);
  const centred = new Float64Array(dims);
  const sampleBasis = count <= dims ? new Float64Array((count - 1) * dims) : undefined;
  const prefix = sampleBasis ? new Float64Array(dims) : null;
  for (let r = 0; r < count; r++) {
    for (let j = 0; j < dims; j++) centred[j] = features[r * dims + j] - mean[j];
    if (sampleBasis && prefix) {
      // Helmert row r: (c_0 + … + c_{r−1} − r·c_r) / √(r (r + 1)), then the 1/√(count − 1) of the covariance.
      if (r > 0) {
        const scale = 1 / Math.sqrt(r * (r + 1) * (count - 1));
        for (let j = 0; j < dims; j++) sampleBasis[(r - 1) * dims + j] = (prefix[j] - r * centred[j]) * scale;
      }
      for (let j = 0; j < dims; j++) prefix[j] += centred[j];
    }
    for (let i = 0; i < dims; i++) {
      const ci = centred[i];
      if (ci === 0) continue;
      const row = i * dims;
      for (let j = i; j < dims; j++) covariance[row + j] += ci * centred[j];
    }
  }
  for (let i = 0; i < dims; i++) {
    for (let j = i; j < dims; j++) {
      const v = covariance[i * dims + j] / (count - 1);
      covariance[i * dims + j] = v;
      covariance[j * dims + i] = v;
    }
  }
  return { dims, count, mean, covariance, ...(sampleBasis ? { sampleBasis } : {}) };
}

export interface SymmetricEigen {
  /** Ascending. */
  values: Float64Array;
  /** (n, n) row-major; column k is the eigenvector of values[k]. Null when not requested. */
  vectors: Float64Array | null;
}

/**
 * Eigen-decomposition of a symmetric (n, n) matrix (only the lower triangle is trusted; the input is not
 * modified). O(n^3): Householder reduction to tridiagonal form, then implicit symmetric QR steps.
 */
export function symmetricEigen(matrix: ArrayLike<number>, n: number, options: { vectors?: boolean } = {}): SymmetricEigen {
  if (matrix.length !== n * n) throw new Error(`symmetricEigen: expected ${n}x${n} values, got ${matrix.length}`);
  const wantVectors = options.vectors ?? true;
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = matrix[i * n + j];
  }
  const qt = wantVectors ? identity(n) : null;
  const d = new Float64Array(n);
  const e = new Float64Array(Math.max(0, n - 1));
  tridiagonalize(a, n, qt);
  for (let i = 0; i < n; i++) d[i] = a[i * n + i];
  for (let i = 0; i < n - 1; i++) e[i] = a[(i + 1) * n + i];
  tridiagonalQr(d, e, qt, n);
  // Sort ascending, permuting the vector columns with the values.
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => d[i] - d[j]);
  const values = Float64Array.from(order, (i) => d[i]);
  let vectors: Float64Array | null = null;
  if (qt) {
    vectors = new Float64Array(n * n);
    for (let k = 0; k < n; k++) {
      const src = order[k] * n;
      for (let r = 0; r < n; r++) vectors[r * n + k] = qt[src + r];
    }
  }
  return { values, vectors };
}

function identity(n: number): Float64Array {
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) m[i * n + i] = 1;
  return m;
}

/**
 * In place: a ← Hᵀ a H with Householder reflections H = I - 2vvᵀ chosen column by column so that a
 * becomes tridiagonal; qt (if given) accumulates the transposed product of the reflections q, with
 * A = q T qᵀ. Eigenvector work is done on the transpose so every update runs along contiguous rows.
 */
function tridiagonalize(a: Float64Array, n: number, qt: Float64Array | null): void {
  const v = new Float64Array(n);
  const p = new Float64Array(n);
  const w = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const s = k + 1;
    let norm = 0;
    for (let i = s; i < n; i++) norm += a[i * n + k] ** 2;
    norm = Math.sqrt(norm);
    if (norm === 0) continue;
    const x0 = a[s * n + k];
    // alpha has the opposite sign of x0 so v = x - alpha e1 does not cancel.
    const alpha = x0 > 0 ? -norm : norm;
    for (let i = s; i < n; i++) v[i] = a[i * n + k];
    v[s] -= alpha;
    let vnorm = 0;
    for (let i = s; i < n; i++) vnorm += v[i] * v[i];
    vnorm = Math.sqrt(vnorm);
    if (vnorm === 0) continue;
    for (let i = s; i < n; i++) v[i] /= vnorm;
    // p = A_sub v, K = vᵀ p, w = p - K v; A_sub ← A_sub - 2 v wᵀ - 2 w vᵀ.
    let kappa = 0;
    for (let i = s; i < n; i++) {
      let sum = 0;
      const row = i * n;
      for (let j = s; j < n; j++) sum += a[row + j] * v[j];
      p[i] = sum;
      kappa += v[i] * sum;
    }
    for (let i = s; i < n; i++) p[i] -= kappa * v[i];
    for (let i = s; i < n; i++) {
      const row = i * n;
      const vi = v[i];
      const pi = p[i];
      for (let j = s; j < n; j++) a[row + j] -= 2 * (vi * p[j] + pi * v[j]);
    }
    a[s * n + k] = a[k * n + s] = alpha;
    for (let i = s + 1; i < n; i++) a[i * n + k] = a[k * n + i] = 0;
    if (qt) {
      // qt ← H qt (qt = qᵀ, so rows stay contiguous): rows j >= s lose 2 v_j (vᵀ qt).
      w.fill(0);
      for (let j = s; j < n; j++) {
        const vj = v[j];
        if (vj === 0) continue;
        const row = j * n;
        for (let c = 0; c < n; c++) w[c] += vj * qt[row + c];
      }
      for (let j = s; j < n; j++) {
        const vj = 2 * v[j];
        if (vj === 0) continue;
        const row = j * n;
        for (let c = 0; c < n; c++) qt[row + c] -= vj * w[c];
      }
    }
  }
}

/**
 * Implicit symmetric QR with Wilkinson shifts on the tridiagonal (d, e), e[i] = T[i, i+1]. On return d
 * holds the eigenvalues; zt (if given, transposed) is rotated so its rows are the eigenvectors.
 */
function tridiagonalQr(d: Float64Array, e: Float64Array, zt: Float64Array | null, n: number): void {
  const eps = Number.EPSILON;
  const maxIterations = 50 * Math.max(1, n);
  for (let iteration = 0; iteration < maxIterations; iteration++) {
    for (let i = 0; i < n - 1; i++) {
      if (Math.abs(e[i]) <= eps * (Math.abs(d[i]) + Math.abs(d[i + 1]))) e[i] = 0;
    }
    let hi = n - 1;
    while (hi > 0 && e[hi - 1] === 0) hi--;
    if (hi === 0) return;
    let lo = hi - 1;
    while (lo > 0 && e[lo - 1] !== 0) lo--;

    const delta = (d[hi - 1] - d[hi]) / 2;
    const b = e[hi - 1];
    const sign = delta >= 0 ? 1 : -1;
    const mu = d[hi] - (b * b) / (delta + sign * Math.hypot(delta, b));
    let x = d[lo] - mu;
    let y = e[lo];
    let bulge = 0;
    for (let k = lo; k < hi; k++) {
      if (k > lo) {
        x = e[k - 1];
        y = bulge;
      }
      const r = Math.hypot(x, y);
      const c = r === 0 ? 1 : x / r;
      const s = r === 0 ? 0 : y / r;
      if (k > lo) e[k - 1] = r;
      const dk = d[k];
      const dk1 = d[k + 1];
      const ek = e[k];
      d[k] = c * c * dk + 2 * c * s * ek + s * s * dk1;
      d[k + 1] = s * s * dk - 2 * c * s * ek + c * c * dk1;
      e[k] = c * s * (dk1 - dk) + (c * c - s * s) * ek;
      if (k < hi - 1) {
        bulge = s * e[k + 1];
        e[k + 1] *= c;
      }
      if (zt) {
        const rowK = k * n;
        const rowK1 = rowK + n;
        for (let col = 0; col < n; col++) {
          const zk = zt[rowK + col];
          const zk1 = zt[rowK1 + col];
          zt[rowK + col] = c * zk + s * zk1;
          zt[rowK1 + col] = -s * zk + c * zk1;
        }
      }
    }
  }
  throw new Error(`symmetricEigen: QR iteration did not converge for n = ${n}`);
}

/** Square root of a symmetric PSD matrix (negative eigenvalues from rounding are clamped to 0). */
export function sqrtPsd(matrix: ArrayLike<number>, n: number): Float64Array {
  const { values, vectors } = symmetricEigen(matrix, n, { vectors: true });
  const v = vectors!;
  const roots = values.map((l) => Math.sqrt(Math.max(0, l)));
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const w = v[i * n + k] * roots[k];
      if (w === 0) continue;
      const row = i * n;
      for (let j = 0; j < n; j++) out[row + j] += w * v[j * n + k];
    }
  }
  return out;
}

function matmul(a: Float64Array, b: ArrayLike<number>, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const row = i * n;
    for (let k = 0; k < n; k++) {
      const aik = a[row + k];
      if (aik === 0) continue;
      const brow = k * n;
      for (let j = 0; j < n; j++) out[row + j] += aik * b[brow + j];
    }
  }
  return out;
}

export interface FrechetResult {
  distance: number;
  meanTerm: number;
  traceTerm: number;
}

export function frechetDistance(a: GaussianStats, b: GaussianStats): FrechetResult {
  if (a.dims !== b.dims) throw new Error(`frechetDistance: feature sizes differ (${a.dims} vs ${b.dims})`);
  const n = a.dims;
  let meanTerm = 0;
  for (let i = 0; i < n; i++) meanTerm += (a.mean[i] - b.mean[i]) ** 2;
  const crossTrace = a.sampleBasis && b.sampleBasis ? lowRankCrossTrace(a.sampleBasis, b.sampleBasis, n) : fullCrossTrace(a, b);
  let traces = 0;
  for (let i = 0; i < n; i++) traces += a.covariance[i * n + i] + b.covariance[i * n + i];
  const traceTerm = traces - 2 * crossTrace;
  // Rounding can leave a tiny negative value for identical sets; the distance is non-negative.
  return { distance: Math.max(0, meanTerm + traceTerm), meanTerm, traceTerm };
}

/** tr((S1^1/2 S2 S1^1/2)^1/2) from d x d eigen-decompositions: O(d^3), ~3 min at d = 2048 on one core. */
function fullCrossTrace(a: GaussianStats, b: GaussianStats): number {
  const n = a.dims;
  const root = sqrtPsd(a.covariance, n);
  const middle = matmul(matmul(root, b.covariance, n), root, n);
  const { values } = symmetricEigen(middle, n, { vectors: false });
  let crossTrace = 0;
  for (const l of values) crossTrace += Math.sqrt(Math.max(0, l));
  return crossTrace;
}

/**
 * The same trace when both sets have fewer samples than dims (S1 = AᵀA, S2 = BᵀB with A, B the sample bases):
 * the non-zero eigenvalues of S1^1/2 S2 S1^1/2 are those of S1 S2 = AᵀA BᵀB, i.e. of C Cᵀ with C = A Bᵀ
 * (n1 − 1 by n2 − 1), so the trace is the sum of C's singular values. O(d n1 n2 + n^3) instead of O(d^3):
 * FID over a few hundred frames takes well under a second instead of minutes.
 */
function lowRankCrossTrace(a: Float64Array, b: Float64Array, d: number): number {
  const [small, large] = a.length <= b.length ? [a, b] : [b, a];
  const m = small.length / d;
  const k = large.length / d;
  const c = new Float64Array(m * k);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let t = 0; t < d; t++) s += small[i * d + t] * large[j * d + t];
      c[i * k + j] = s;
    }
  }
  const gram = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += c[i * k + t] * c[j * k + t];
      gram[i * m + j] = gram[j * m + i] = s;
    }
  }
  let crossTrace = 0;
  for (const l of symmetricEigen(gram, m, { vectors: false }).values) crossTrace += Math.sqrt(Math.max(0, l));
  return crossTrace;
}

/**
 * Pluggable feature network for Fréchet metrics: takes `count` frames or clips and returns `count` rows of
 * `dims` features. Inception-v3 (FID) and I3D (FVD) are in ./feature-nets (user-supplied weights).
 */
export interface FeatureExtractor {
  readonly name: string;
  readonly dims: number;
  /** Input: `count` items of `itemSize` values in [0, 1]; output: (count, dims) row-major. */
  extract(items: Float32Array, count: number, itemShape: readonly number[]): Promise<Float64Array>;
}

/**
 * A network-free extractor: each frame average-pooled to size x size (default 8x8 = 64 features). Only a
 * sanity statistic for phantom studies; it is not FID and its values are not comparable with FID.
 */
export function pooledPixelFeatures(size = 8): FeatureExtractor {
  return {
    name: `pooled-pixels-${size}x${size}`,
    dims: size * size,
    async extract(items, count, itemShape) {
      const [h, w] = itemShape.slice(-2);
      const plane = h * w;
      const out = new Float64Array(count * size * size);
      for (let f = 0; f < count; f++) {
        for (let by = 0; by < size; by++) {
          const y0 = Math.floor((by * h) / size);
          const y1 = Math.floor(((by + 1) * h) / size);
          for (let bx = 0; bx < size; bx++) {
            const x0 = Math.floor((bx * w) / size);
            const x1 = Math.floor(((bx + 1) * w) / size);
            let s = 0;
            for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) s += items[f * plane + y * w + x];
            out[f * size * size + by * size + bx] = s / ((y1 - y0) * (x1 - x0));
          }
        }
      }
      return out;
    },
  };
}
