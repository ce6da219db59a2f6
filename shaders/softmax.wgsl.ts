
/**
 * Row-wise softmax / log-softmax over contiguous rows of length L, and their backward:
 *   softmax:     dx = y ⊙ (g − Σ g⊙y)        log-softmax: dx = g − exp(y) ⊙ Σ g
 * `perThread`: one invocation per row (short rows); otherwise one workgroup per row with tree reductions.
 */
export function softmaxShader(o: { log: boolean; backward: boolean; perThread: boolean; workgroupSize: number }): string {
  const wg = o.workgroupSize;
  const fwdRow = (first: string, step: string, combineMax: string, combineSum: string) => `
  var m = -3.402823e38;
  for (var j = ${first}; j < u.len; j += ${step}) { m = max(m, x[u.offset0 + base + j]); }
  ${combineMax}
  var s = 0.0;
  for (var j = ${first}; j < u.len; j += ${step}) { s += exp(x[u.offset0 + base + j] - m); }
  ${combineSum}
  let logZ = m + log(s);
  for (var j = ${first}; j < u.len; j += ${step}) {
    ${o.log ? 'y[base + j] = x[u.offset0 + base + j] - logZ;' : 'y[base + j] = exp(x[u.offset0 + base + j] - logZ);'}
  }`;
  const bwdRow = (first: string, step: string, combineSum: string) => `
  var s = 0.0;
  for (var j = ${first}; j < u.len; j += ${step}) {
    ${o.log ? 's += g[u.offset0 + base + j];' : 's += g[u.offset0 + base + j] * y[u.offset1 + base + j];'}
  }
  ${combineSum}
  for (var j = ${first}; j < u.len; j += ${step}) {
    ${o.log ? 'dx[base + j] = g[u.offset0 + base + j] - exp(y[u.offset1 + base + j]) * s;' : 'dx[base + j] = y[u.offset1 + base + j] * (g[u.offset0 + base + j] - s);'}
  }`;
  const tree = (v: string, op: (a: string, b: string) => string) => `
  scratch[lid] = ${v};
  workgroupBarrier();
  for (var t = ${wg / 2}u; t > 0u; t = t >> 1u) {
    if (lid < t) { scratch[lid] = ${op('scratch[lid]', 'scratch[lid + t]')}; }
    workgroupBarrier();
  }
  ${v} = scratch[0];
  workgroupBarrier();`;
  const bindings = o.backward
    ? `@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;`
    : `@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;`;
  const header = `struct Params { rows: u32, len: u32, offset0: u32, offset1: u32 };
@group(0) @binding(0) var<uniform> u: Params;
${bindings}
`;
  if (o.perThread) {
    const body = o.backward ? bwdRow('0u', '1u', '') : fwdRow('0u', '1u', '', '');
    return `${header}
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.x + gid.y * nwg.x * ${wg}u;
  if (row >= u.rows) { return; }
  let base = row * u.len;
  ${body}
}
`;
  }
  const body = o.backward
    ? bwdRow('lid', `${wg}u`, tree('s', (a, b) => `${a} + ${b}`))
    : fwdRow('lid', `${wg}u`, tree('m', (a, b) => `max(${a}, ${b})`), tree('s', (a, b) => `${a} + ${b}`));
  return `${header}
var<workgroup> scratch: array<f32, ${wg}>;
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= u.rows) { return; }
  let base = row * u.len;
  ${body}
}
`;
}
