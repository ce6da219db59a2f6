/**
 * Normalization kernels (batch / group / layer norm share them; only the index maps differ).
 *
 * A "reduction group" r enumerates its `count` elements e as
 *   addr = base(r) + (e / B)·strideA + (e % B)·strideB,   base(r) = (r / rInner)·rOuterStride + (r % rInner)·rInnerStride
 * and is split into `chunks` chunks of `chunkLen` elements, one workgroup per (group, chunk), so a few huge
 * groups (VAE GroupNorm: 32 groups of millions of elements) still spread over the whole device.
 * A "stat group" / "channel" of a flat element index i is (i / div) % mod.
 */

const GEOMETRY_FIELDS = `R: u32, chunks: u32, chunkLen: u32, count: u32,
  rInner: u32, rInnerStride: u32, rOuterStride: u32, A: u32,
  strideA: u32, B: u32, strideB: u32, xOffset: u32,
  gOffset: u32, statDiv: u32, statMod: u32, chanDiv: u32,
  chanMod: u32, meanOffset: u32, rstdOffset: u32, wOffset: u32`;

/**
 * Per (group, chunk) partial results, two floats each:
 *   stats: [chunk mean, Σ (x − chunk mean)²] (two passes over the chunk: exact for data offset by a large mean);
 *   grad:  [Σ g·w, Σ g·w·x̂] with x̂ = (x − mean[s])·rstd[s] (w = 1 unless `weighted`).
 */
export function normReduceShader(o: { mode: 'stats' | 'grad'; weighted: boolean; contiguousGroups: boolean; statPerGroup: boolean; perThread: boolean; workgroupSize: number }): string {
  const wg = o.workgroupSize;
  const grad = o.mode === 'grad';
  // perThread: one invocation per (group, chunk), no barriers (many short groups: layer norm rows).
  // Otherwise one workgroup per (group, chunk) with shared-memory trees.
  const step = o.perThread ? '1u' : `${wg}u`;
  // Walks this invocation's elements of the chunk; `body` sees the element address `addr` and index `e`.
  // A contiguous group (A = 1, strideB = 1) is plain base + e; otherwise (a, b) = (e / B, e % B) is carried
  // along and only re-divided when b wraps (integer division is slow on CPU Vulkan).
  const forEach = (body: string) =>
    o.contiguousGroups
      ? `for (var e = start + lid; e < end; e += ${step}) {
    let addr = base + e;
    ${body}
  }`
      : `{
    var e = start + lid;
    var a = e / u.B;
    var b = e - a * u.B;
    for (; e < end; e += ${step}) {
      let addr = base + a * u.strideA + b * u.strideB;
      ${body}
      b += ${step};
      if (b >= u.B) { a += b / u.B; b = b % u.B; }
    }
  }`;
  // The statistics of x̂: fixed per group when a group lies inside one stat group (batch, group norm segments,
  // layer norm rows), else looked up per element (layer norm columns).
  const statIndex = o.statPerGroup ? 'sGroup' : '(addr / u.statDiv) % u.statMod';
  const bindings = grad
    ? `@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read> meanBuf: array<f32>;
@group(0) @binding(4) var<storage, read> rstdBuf: array<f32>;
${o.weighted ? '@group(0) @binding(5) var<storage, read> w: array<f32>;\n' : ''}@group(0) @binding(${o.weighted ? 6 : 5}) var<storage, read_write> partial: array<f32>;`
    : `@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;`;
  const tree = (v: string) => o.perThread ? '' : `
  scratch[lid] = ${v};
  workgroupBarrier();
  for (var t = ${wg / 2}u; t > 0u; t = t >> 1u) {
    if (lid < t) { scratch[lid] = scratch[lid] + scratch[lid + t]; }
    workgroupBarrier();
  }
  ${v} = scratch[0];
  workgroupBarrier();`;
  const body = grad
    ? `
  var s1 = vec2<f32>(0.0, 0.0);
  let sGroup = (base / u.statDiv) % u.statMod;
  ${forEach(`let s = ${statIndex};
    let xhat = (x[u.xOffset + addr] - meanBuf[u.meanOffset + s]) * rstdBuf[u.rstdOffset + s];
    // Weighted groups are whole rows aligned with the affine parameters: the channel is e.
    let gw = g[u.gOffset + addr]${o.weighted ? ' * w[u.wOffset + e]' : ''};
    s1 += vec2<f32>(gw, gw * xhat);`)}
  ${tree('s1')}
  if (lid == 0u) { partial[task * 2u] = s1.x; partial[task * 2u + 1u] = s1.y; }`
    : `
  var s1 = vec2<f32>(0.0, 0.0);
  ${forEach('s1.x += x[u.xOffset + addr];')}
  ${tree('s1')}
  let m = s1.x / f32(end - start);
  var s2 = vec2<f32>(0.0, 0.0);
  ${forEach(`let d = x[u.xOffset + addr] - m;
    s2.x += d * d;`)}
  ${tree('s2')}
  if (lid == 0u) { partial[task * 2u] = m; partial[task * 2u + 1u] = s2.x; }`;
  return `struct Params { ${GEOMETRY_FIELDS} };
@group(0) @binding(0) var<uniform> u: Params;
${bindings}
${o.perThread ? '' : `var<workgroup> scratch: array<vec2<f32>, ${wg}>;`}

@compute @workgroup_size(${wg})
${o.perThread
    ? `fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let task = gid.x + gid.y * nwg.x * ${wg}u;
  let lid = 0u;`
    : `fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
  let task = wid.x + wid.y * nwg.x;`}
  if (task >= u.R * u.chunks) { return; }
  let r = task / u.chunks;
  let k = task % u.chunks;
  let base = (r / u.rInner) * u.rOuterStride + (r % u.rInner) * u.rInnerStride;
  let start = k * u.chunkLen;
  let end = min(start + u.chunkLen, u.count);
  ${body}
}
`;
}

/**
 * Merges the chunk statistics of each group (Chan et al.'s pairwise update) into mean and 1/sqrt(var + eps)
 * (biased variance). `updateRunning`: also updates running mean / running (unbiased) variance in place,
 * PyTorch's BatchNorm rule; those buffers are bound read-write. Unlike PyTorch, a group whose batch mean or
 * variance is NaN/Inf leaves its running statistics as they were: the training gate skips that step's weight
 * update, and without this the running statistics alone would carry the bad batch into every later evaluation.
 * The test is on the bits (exponent all ones), which no fast-math rewrite of a NaN comparison can remove.
 */
export function normFinalizeShader(o: { updateRunning: boolean; sharedRunning: boolean }): string {
  // Both running buffers in one storage buffer (views of one tensor) must be bound once: WebGPU forbids
  // two writable bindings of overlapping ranges.
  const varBuffer = o.sharedRunning ? 'runningMean' : 'runningVar';
  return `struct Params { R: u32, chunks: u32, chunkLen: u32, count: u32, rmOffset: u32, rmStride: u32, rvOffset: u32, rvStride: u32, eps: f32, momentum: f32 };
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> meanOut: array<f32>;
@group(0) @binding(3) var<storage, read_write> rstdOut: array<f32>;
${o.updateRunning ? `@group(0) @binding(4) var<storage, read_write> runningMean: array<f32>;
${o.sharedRunning ? '' : '@group(0) @binding(5) var<storage, read_write> runningVar: array<f32>;'}` : ''}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.x + gid.y * nwg.x * 64u;
  if (r >= u.R) { return; }
  var n = 0.0;
  var mean = 0.0;
  var m2 = 0.0;
  for (var k = 0u; k < u.chunks; k++) {
    let nb = f32(min(u.chunkLen, u.count - k * u.chunkLen));
    let mb = partial[(r * u.chunks + k) * 2u];
    let m2b = partial[(r * u.chunks + k) * 2u + 1u];
    let total = n + nb;
    let delta = mb - mean;
    mean += delta * (nb / total);
    m2 += m2b + delta * delta * (n * nb / total);
    n = total;
  }
  let variance = m2 / n;
  meanOut[r] = mean;
  rstdOut[r] = inverseSqrt(variance + u.eps);
  ${o.updateRunning ? `let unbiased = m2 / max(n - 1.0, 1.0);
  let nonFinite = (bitcast<u32>(mean) & 0x7f800000u) == 0x7f800000u || (bitcast<u32>(unbiased) & 0x7f800000u) == 0x7f800000u;
  if (nonFinite) { return; }
  let im = u.rmOffset + r * u.rmStride;
  let iv = u.rvOffset + r * u.rvStride;
  runningMean[im] = (1.0 - u.momentum) * runningMean[im] + u.momentum * mean;
  ${varBuffer}[iv] = (1.0 - u.momentum) * ${varBuffer}[iv] + u.momentum * unbiased;` : ''}
}
`;
}

/**
 * Elementwise passes over contiguous x (one invocation per element):
 *   forward:  y = (x − mean[s])·rstd[s]·w[c] + b[c]
 *   backward: dx = rstd[s]·(g·w[c] − S1[s]/n − x̂·S2[s]/n)   ('inside': sums already carry w)
 *             dx = rstd[s]·w[c]·(g − S1[s]/n − x̂·S2[s]/n)   ('outside': stat group == channel, sums without w)
 *             dx = rstd[s]·w[c]·g                            ('fixed': statistics are constants, eval BatchNorm)
 */
/** Elements per invocation in the normalize / input-gradient pass. */
export const APPLY_RUN = 8;

export function normApplyShader(o: { backward: 'none' | 'inside' | 'outside' | 'fixed'; weighted: boolean; biased: boolean; workgroupSize: number }): string {
  const wg = o.workgroupSize;
  const names: string[] = o.backward === 'none' ? ['x', 'meanBuf', 'rstdBuf'] : ['x', 'g', 'meanBuf', 'rstdBuf'];
  if (o.weighted) names.push('w');
  if (o.backward === 'none' && o.biased) names.push('b');
  if (o.backward === 'inside' || o.backward === 'outside') names.push('sums');
  const bindings = names.map((n, i) => `@group(0) @binding(${i + 1}) var<storage, read> ${n}: array<f32>;`).join('\n');
  const wc = o.weighted ? 'w[u.wOffset + c]' : '1.0';
  let body: string;
  if (o.backward === 'none') body = `out[i] = (x[u.xOffset + i] - meanBuf[u.meanOffset + s]) * rstdBuf[u.rstdOffset + s] * ${wc}${o.biased ? ' + b[u.bOffset + c]' : ''};`;
  else if (o.backward === 'fixed') body = `out[i] = rstdBuf[u.rstdOffset + s] * ${wc} * g[u.gOffset + i];`;
  else {
    body = `let rstd = rstdBuf[u.rstdOffset + s];
  let xhat = (x[u.xOffset + i] - meanBuf[u.meanOffset + s]) * rstd;
  let s1 = sums[s * 2u] * u.invCount;
  let s2 = sums[s * 2u + 1u] * u.invCount;
  ${o.backward === 'inside' ? `out[i] = rstd * (g[u.gOffset + i] * ${wc} - s1 - xhat * s2);` : `out[i] = rstd * ${wc} * (g[u.gOffset + i] - s1 - xhat * s2);`}`;
  }
  return `struct Params { n: u32, xOffset: u32, gOffset: u32, meanOffset: u32, rstdOffset: u32, wOffset: u32, bOffset: u32, statDiv: u32, statMod: u32, chanDiv: u32, chanMod: u32, invCount: f32 };
@group(0) @binding(0) var<uniform> u: Params;
${bindings}
@group(0) @binding(${names.length + 1}) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  // ${APPLY_RUN} consecutive elements per invocation: the stat group and channel are divided out once and then
  // stepped (integer division is scalarized on CPU Vulkan and dominated this memory-bound pass).
  let first = (gid.x + gid.y * nwg.x * ${wg}u) * ${APPLY_RUN}u;
  if (first >= u.n) { return; }
  var rs = first % u.statDiv;
  var s = (first / u.statDiv) % u.statMod;
  var rc = first % u.chanDiv;
  var c = (first / u.chanDiv) % u.chanMod;
  for (var i = first; i < min(first + ${APPLY_RUN}u, u.n); i++) {
    ${body}
    rs++;
    if (rs == u.statDiv) { rs = 0u; s++; if (s == u.statMod) { s = 0u; } }
    rc++;
    if (rc == u.chanDiv) { rc = 0u; c++; if (c == u.chanMod) { c = 0u; } }
  }
}
`;
}

/**
 * Channel L2 normalization over dim 1 of [N, C, S] (one invocation per (n, s), coalesced over s):
 *   forward:  y = x / (‖x‖ + eps);   backward: dx = g/d − x·(Σ_c g·x)/(d²·‖x‖), d = ‖x‖ + eps.
 */
export function l2NormalizeShader(o: { backward: boolean; workgroupSize: number }): string {
  const wg = o.workgroupSize;
  const bindings = o.backward
    ? `@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;`
    : `@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;`;
  return `struct Params { N: u32, C: u32, S: u32, xOffset: u32, gOffset: u32, eps: f32 };
@group(0) @binding(0) var<uniform> u: Params;
${bindings}

@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * ${wg}u;
  if (t >= u.N * u.S) { return; }
  let base = (t / u.S) * u.C * u.S + t % u.S;
  var ss = 0.0;
  ${o.backward ? 'var gx = 0.0;' : ''}
  for (var c = 0u; c < u.C; c++) {
    let v = x[u.xOffset + base + c * u.S];
    ss += v * v;
    ${o.backward ? 'gx += v * g[u.gOffset + base + c * u.S];' : ''}
  }
  let norm = sqrt(ss);
  let d = norm + u.eps;
  ${o.backward
    ? `let k = gx / (d * d * norm);
  for (var c = 0u; c < u.C; c++) {
    let j = base + c * u.S;
    out[j] = g[u.gOffset + j] / d - x[u.xOffset + j] * k;
  }`
    : `for (var c = 0u; c < u.C; c++) {
    let j = base + c * u.S;
    out[j] = x[u.xOffset + j] / d;
  }`}
}
`;
}
