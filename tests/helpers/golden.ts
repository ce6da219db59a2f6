/** Golden files of the torch oracle (tools/torch_oracle): NPY arrays and .pth state dicts as Float32 host tensors, and their comparison. */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { Generator, type Engine } from '../../src/index';
import { readNpy, toFloat32 } from '../../src/data/npy';
import { extractStateDict, readPth } from '../../src/models/io';

/** The VAE-stage goldens (VAE, PatchGAN, LPIPS). */
export const VAE_GOLDEN = new URL('../fixtures/golden/vae/', import.meta.url);

/** `<name>.npy` of `dir` as Float32 values and its shape. */
export function goldenNpy(dir: URL, name: string): { data: Float32Array; shape: number[] } {
  const a = readNpy(new Uint8Array(readFileSync(new URL(`${name}.npy`, dir))), name);
  return { data: toFloat32(a.data), shape: [...a.shape] };
}

/** Float32 copies of the state dict in `dir`/`name` (num_batches_tracked is int64 in the file). */
export function goldenStateDict(dir: URL, name: string): Map<string, { shape: number[]; data: Float32Array }> {
  const sd = extractStateDict(readPth(new Uint8Array(readFileSync(new URL(name, dir))), { name }));
  return new Map([...sd].map(([k, t]) => [k, { shape: t.shape, data: t.toFloat32() }]));
}

/** A model init context on `e` with a fresh generator. */
export const initContext = (e: Engine, seed = 1) => ({ backend: e.backend, gen: new Generator(seed) });

/**
 * max |a − b| relative to the largest reference magnitude, with a floor on that magnitude for tensors that
 * are (nearly) zero in theory; below `tol`, and the lengths equal.
 */
export function expectRelativeNear(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string, floor: number) {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst / Math.max(scale, floor), `${what}: max error ${worst.toExponential(2)} vs scale ${scale.toExponential(2)}`).toBeLessThan(tol);
}
