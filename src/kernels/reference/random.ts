import type { RandomKind } from '../../../shaders/random.wgsl';

/** Bit-exact CPU twin of shaders/random.wgsl.ts. */
export function hash32(v: number): number {
  let x = v >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

export function randomBitsRef(counter: number, keyA: number, keyB: number, i: number): number {
  return hash32((hash32((hash32((counter + i) >>> 0) + keyA) >>> 0) ^ keyB) >>> 0);
}

const unit = (bits: number) => (bits >>> 8) * 2 ** -24;

export function randomRef(kind: RandomKind, total: number, counter: number, keyA: number, keyB: number, a: number, b: number): Float64Array {
  const out = new Float64Array(total);
  const bits = (i: number) => randomBitsRef(counter, keyA, keyB, i);
  for (let i = 0; i < total; i++) {
    if (kind === 'uniform') out[i] = a + (b - a) * unit(bits(i));
    else if (kind === 'bernoulli') out[i] = unit(bits(i)) < a ? 1 : 0;
    else out[i] = a + b * Math.sqrt(-2 * Math.log(unit(bits(2 * i)) + 2 ** -24)) * Math.cos(2 * Math.PI * unit(bits(2 * i + 1)));
  }
  return out;
}
