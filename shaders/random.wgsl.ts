/**
 * Counter-based random numbers: element i of a draw gets bits = H(H(H(counter + i) + keyA) ^ keyB), where H
 * is a 32-bit avalanche hash (Wellons' lowbias32). No state lives on the GPU, so a draw is reproducible
 * from (seed, counter) alone and the CPU reference reproduces it bit for bit.
 */
export const RANDOM_HASH = /* wgsl */ `
fn hash32(v: u32) -> u32 {
  var x = v;
  x ^= x >> 16u; x *= 0x7feb352du;
  x ^= x >> 15u; x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}
fn randomBits(i: u32) -> u32 { return hash32(hash32(hash32(u.counter + i) + u.keyA) ^ u.keyB); }
// 24 random bits → [0, 1), exactly representable in f32.
fn unit(bits: u32) -> f32 { return f32(bits >> 8u) * 5.9604644775390625e-8; }
`;

export type RandomKind = 'uniform' | 'normal' | 'bernoulli';

export function randomShader(kind: RandomKind, workgroupSize: number): string {
  const value = {
    uniform: 'u.a + (u.b - u.a) * unit(randomBits(i))',
    // Box–Muller on counters 2i and 2i+1; the first factor is in (0, 1] so log() is finite.
    normal: 'u.a + u.b * sqrt(-2.0 * log(unit(randomBits(2u * i)) + 5.9604644775390625e-8)) * cos(6.283185307179586 * unit(randomBits(2u * i + 1u)))',
    bernoulli: 'select(0.0, 1.0, unit(randomBits(i)) < u.a)',
  }[kind];
  return `struct Params { total: u32, counter: u32, keyA: u32, keyB: u32, a: f32, b: f32 };
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${RANDOM_HASH}
@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${workgroupSize}u;
  if (i >= u.total) { return; }
  out[i] = ${value};
}
`;
}
