/**
 * Max / average pooling over up to three spatial dims. Every tensor is [planes, D, H, W] (lower ranks pad
 * with size-1 dims, kernel 1, stride 1, padding 0). Padding positions never win a max (PyTorch pads with
 * −inf) and count in the average's divisor (count_include_pad = true).
 *   forward:  one invocation per output; max also writes the flat in-plane index of the first maximum (i32).
 *   backward: one invocation per input element gathers from the outputs whose windows cover it (no atomics).
 */
const PARAMS = `struct Params {
  planes: u32, D: u32, H: u32, W: u32,
  oD: u32, oH: u32, oW: u32, kD: u32,
  kH: u32, kW: u32, sD: u32, sH: u32,
  sW: u32, pD: u32, pH: u32, pW: u32,
  xOffset: u32, gOffset: u32, iOffset: u32,
};
@group(0) @binding(0) var<uniform> u: Params;`;

/** Coordinates of a flat in-plane index over [D, H, W]; dims absent at this spatial rank are 0 (no division). */
function coords(index: string, names: [string, string, string], dims: [string, string, string], rank: number, cast: (v: string) => string): string {
  const [d, h, w] = names;
  const [D, H, W] = dims;
  const exprs = [
    rank >= 3 ? `${index} / (${H} * ${W})` : '0u',
    rank >= 2 ? (rank >= 3 ? `(${index} / ${W}) % ${H}` : `${index} / ${W}`) : '0u',
    rank >= 2 ? `${index} % ${W}` : index,
  ];
  return [d, h, w].map((n, i) => `let ${n} = ${cast(exprs[i])};`).join('\n  ');
}

export function poolForwardShader(o: { op: 'max' | 'avg'; spatialRank: number; workgroupSize: number }): string {
  const wg = o.workgroupSize;
  const max = o.op === 'max';
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${max ? '@group(0) @binding(3) var<storage, read_write> argmax: array<i32>;' : ''}

@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * ${wg}u;
  let outPlane = u.oD * u.oH * u.oW;
  if (t >= u.planes * outPlane) { return; }
  let plane = t / outPlane;
  let r = t % outPlane;
  ${coords('r', ['od', 'oh', 'ow'], ['u.oD', 'u.oH', 'u.oW'], o.spatialRank, (v) => `i32(${v})`)}
  let base = u.xOffset + plane * u.D * u.H * u.W;
  var best = ${max ? '-3.402823e38' : '0.0'};
  ${max ? 'var bestIndex = -1;' : ''}
  for (var kd = 0; kd < i32(u.kD); kd++) {
    let id = od * i32(u.sD) - i32(u.pD) + kd;
    if (id < 0 || id >= i32(u.D)) { continue; }
    for (var kh = 0; kh < i32(u.kH); kh++) {
      let ih = oh * i32(u.sH) - i32(u.pH) + kh;
      if (ih < 0 || ih >= i32(u.H)) { continue; }
      for (var kw = 0; kw < i32(u.kW); kw++) {
        let iw = ow * i32(u.sW) - i32(u.pW) + kw;
        if (iw < 0 || iw >= i32(u.W)) { continue; }
        let index = (id * i32(u.H) + ih) * i32(u.W) + iw;
        let v = x[base + u32(index)];
        ${max
          ? `// Strictly greater keeps the first maximum; NaN propagates as in PyTorch.
        if (bestIndex < 0 || v > best || v != v) { best = v; bestIndex = index; }`
          : 'best += v;'}
      }
    }
  }
  ${max ? 'y[t] = best;\n  argmax[t] = bestIndex;' : 'y[t] = best / f32(u.kD * u.kH * u.kW);'}
}
`;
}

/** Consecutive W positions per invocation in the backward pass (window ranges are stepped, not divided). */
export const POOL_BACKWARD_RUN = 8;

export function poolBackwardShader(o: { op: 'max' | 'avg'; spatialRank: number; workgroupSize: number }): string {
  const wg = o.workgroupSize;
  const max = o.op === 'max';
  const run = POOL_BACKWARD_RUN;
  // Outputs o whose window [o·s − p, o·s − p + k) covers input i: ⌈(i + p − k + 1)/s⌉ ≤ o ≤ ⌊(i + p)/s⌋.
  // The lower bound is computed as ⌊(i + p − k + s + k·s)/s⌋ − k so the numerator is never negative.
  const range = (dim: string, i: string, present: boolean) => !present ? `
  let ${dim}Lo = 0u;
  let ${dim}Hi = 1u;` : `
  let ${dim}Lo = u32(max(0, i32((${i} + u.p${dim} + u.s${dim} + u.k${dim} * u.s${dim} - u.k${dim}) / u.s${dim}) - i32(u.k${dim})));
  let ${dim}Hi = min((${i} + u.p${dim}) / u.s${dim} + 1u, u.o${dim});`;
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> g: array<f32>;
${max ? '@group(0) @binding(2) var<storage, read> argmax: array<i32>;' : ''}
@group(0) @binding(${max ? 3 : 2}) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  // One run of ${run} input columns of one input row (plane, id, ih).
  let t = gid.x + gid.y * nwg.x * ${wg}u;
  let runs = (u.W + ${run - 1}u) / ${run}u;
  if (t >= u.planes * u.D * u.H * runs) { return; }
  let row = t / runs;
  let w0 = (t % runs) * ${run}u;
  let plane = row / (u.D * u.H);
  let id = ${o.spatialRank >= 3 ? '(row / u.H) % u.D' : '0u'};
  let ih = ${o.spatialRank >= 2 ? 'row % u.H' : '0u'};
  ${range('D', 'id', o.spatialRank >= 3)}
  ${range('H', 'ih', o.spatialRank >= 2)}
  let outBase = plane * u.oD * u.oH * u.oW;
  // Window bounds along W as quotient/remainder pairs, advanced by one input column per step.
  let loNumer = w0 + u.pW + u.sW + u.kW * u.sW - u.kW;
  var loQ = loNumer / u.sW;
  var loR = loNumer % u.sW;
  var hiQ = (w0 + u.pW) / u.sW;
  var hiR = (w0 + u.pW) % u.sW;
  for (var iw = w0; iw < min(w0 + ${run}u, u.W); iw++) {
    let WLo = u32(max(0, i32(loQ) - i32(u.kW)));
    let WHi = min(hiQ + 1u, u.oW);
    let index = (id * u.H + ih) * u.W + iw;
    var acc = 0.0;
    for (var od = DLo; od < DHi; od++) {
      for (var oh = HLo; oh < HHi; oh++) {
        for (var ow = WLo; ow < WHi; ow++) {
          let j = outBase + (od * u.oH + oh) * u.oW + ow;
          ${max ? 'acc += select(0.0, g[u.gOffset + j], argmax[u.iOffset + j] == i32(index)); // branch-free: faster on lavapipe' : 'acc += g[u.gOffset + j];'}
        }
      }
    }
    dx[plane * u.D * u.H * u.W + index] = ${max ? 'acc' : 'acc / f32(u.kD * u.kH * u.kW)'};
    loR++;
    if (loR == u.sW) { loR = 0u; loQ++; }
    hiR++;
    if (hiR == u.sW) { hiR = 0u; hiQ++; }
  }
}
`;
}
