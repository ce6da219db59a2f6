/**
 * Resampling kernels.
 * Nearest (integer scales): tensors are [planes, D, H, W]; forward out[o] = x[o / s] per dim, backward sums
 * each input's s_D·s_H·s_W block of output gradients (gather, no atomics).
 * Linear along one axis of [outer, L, inner] → [outer, Lout, inner], PyTorch's align_corners = false rule:
 *   src = max(scale·(l + 0.5) − 0.5, 0), i0 = ⌊src⌋, i1 = min(i0 + 1, L − 1), λ = src − i0,
 *   out = (1 − λ)·x[i0] + λ·x[i1].
 * Its backward gathers, for each input i, from the outputs whose i0 is i − 1 or i (the last input also takes
 * every output clamped onto it).
 */
/** Consecutive W positions per invocation in the nearest kernels (indices are stepped, not divided). */
export const NEAREST_RUN = 8;

export function nearestShader(o: { backward: boolean; workgroupSize: number }): string {
  const wg = o.workgroupSize;
  const run = NEAREST_RUN;
  const head = `struct Params { planes: u32, D: u32, H: u32, W: u32, sD: u32, sH: u32, sW: u32, srcOffset: u32 };
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * ${wg}u;
  let oD = u.D * u.sD;
  let oH = u.H * u.sH;
  let oW = u.W * u.sW;`;
  if (!o.backward) {
    // One run of output columns [w0, w0 + run) of one output row (plane, od, oh).
    return `${head}
  let runs = (oW + ${run - 1}u) / ${run}u;
  if (t >= u.planes * oD * oH * runs) { return; }
  let row = t / runs;
  let w0 = (t % runs) * ${run}u;
  let oh = row % oH;
  let od = (row / oH) % oD;
  let plane = row / (oH * oD);
  let srcRow = u.srcOffset + ((plane * u.D + od / u.sD) * u.H + oh / u.sH) * u.W;
  var w = w0 / u.sW;
  var rw = w0 % u.sW;
  for (var ow = w0; ow < min(w0 + ${run}u, oW); ow++) {
    dst[row * oW + ow] = src[srcRow + w];
    rw++;
    if (rw == u.sW) { rw = 0u; w++; }
  }
}
`;
  }
  // One run of input columns of one input row (plane, d, h): each sums its sD × sH × sW block of gradients.
  return `${head}
  let runs = (u.W + ${run - 1}u) / ${run}u;
  if (t >= u.planes * u.D * u.H * runs) { return; }
  let row = t / runs;
  let w0 = (t % runs) * ${run}u;
  let h = row % u.H;
  let d = (row / u.H) % u.D;
  let plane = row / (u.H * u.D);
  for (var w = w0; w < min(w0 + ${run}u, u.W); w++) {
    var acc = 0.0;
    for (var a = 0u; a < u.sD; a++) {
      for (var b = 0u; b < u.sH; b++) {
        let base = u.srcOffset + ((plane * oD + d * u.sD + a) * oH + h * u.sH + b) * oW + w * u.sW;
        for (var c = 0u; c < u.sW; c++) { acc += src[base + c]; }
      }
    }
    dst[row * u.W + w] = acc;
  }
}
`;
}

export function linearShader(o: { backward: boolean; workgroupSize: number }): string {
  const wg = o.workgroupSize;
  const head = `struct Params { outer: u32, L: u32, inner: u32, Lout: u32, srcOffset: u32, scale: f32 };
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

struct Taps { i0: u32, i1: u32, lambda: f32 };
fn taps(l: u32) -> Taps {
  let real = max(u.scale * (f32(l) + 0.5) - 0.5, 0.0);
  let i0 = min(u32(real), u.L - 1u);
  let i1 = min(i0 + 1u, u.L - 1u);
  return Taps(i0, i1, clamp(real - f32(i0), 0.0, 1.0));
}

@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * ${wg}u;`;
  if (!o.backward) {
    return `${head}
  if (t >= u.outer * u.Lout * u.inner) { return; }
  let k = t % u.inner;
  let l = (t / u.inner) % u.Lout;
  let base = u.srcOffset + (t / (u.inner * u.Lout)) * u.L * u.inner + k;
  let p = taps(l);
  dst[t] = (1.0 - p.lambda) * src[base + p.i0 * u.inner] + p.lambda * src[base + p.i1 * u.inner];
}
`;
  }
  return `${head}
  if (t >= u.outer * u.L * u.inner) { return; }
  let k = t % u.inner;
  let i = (t / u.inner) % u.L;
  let base = u.srcOffset + (t / (u.inner * u.L)) * u.Lout * u.inner + k;
  // Candidate outputs: src(l) ∈ [i − 1, i + 1), widened by one on each side against rounding.
  let lo = u32(max(floor((f32(i) - 0.5) / u.scale - 0.5) - 1.0, 0.0));
  var hi = u32(clamp(ceil((f32(i) + 1.5) / u.scale - 0.5) + 2.0, 0.0, f32(u.Lout)));
  if (i + 1u == u.L) { hi = u.Lout; }
  var acc = 0.0;
  for (var l = lo; l < hi; l++) {
    let p = taps(l);
    var wgt = 0.0;
    if (p.i0 == i) { wgt += 1.0 - p.lambda; }
    if (p.i1 == i) { wgt += p.lambda; }
    acc += wgt * src[base + l * u.inner];
  }
  dst[t] = acc;
}
`;
}
