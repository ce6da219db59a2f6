/** The folds by subject of the downstream experiment (random draws come from the data layer's seeded `Rng`). */
import { hashSeed, Rng } from '../data/random';

/**
 * k folds of subject ids: each id in exactly one fold; with `strata` (e.g. the class of each id) the ids
 * of each stratum are dealt round-robin after a seeded shuffle, so every fold keeps the class balance.
 * Folds depend only on (ids, strata, k, seed).
 */
export function subjectFolds(ids: readonly string[], k: number, seed: number, strata?: readonly (string | number)[]): number[][] {
  if (!Number.isInteger(k) || k < 2) throw new Error(`--folds must be an integer >= 2, got ${k}`);
  if (ids.length < k) throw new Error(`${ids.length} labelled subjects cannot make ${k} folds`);
  if (new Set(ids).size !== ids.length) throw new Error('subject ids repeat: folds are made by subject, so ids must be unique');
  const rng = new Rng(hashSeed(seed, 0xf01d));
  const groups = new Map<string, number[]>();
  ids.forEach((_, i) => {
    const key = String(strata?.[i] ?? '');
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(i);
  });
  const folds: number[][] = Array.from({ length: k }, () => []);
  let next = 0;
  for (const key of [...groups.keys()].sort()) {
    for (const i of rng.shuffle([...groups.get(key)!])) folds[next++ % k].push(i);
  }
  return folds.map((f) => f.sort((a, b) => a - b));
}
