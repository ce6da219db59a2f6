/**
 * Deterministic placement of a subject: which split it lands in and which shard builds it.
 *
 * The split depends only on (seed, subject id, fractions), never on the order of pairs.csv, the worker
 * count or the sharding, so a cohort built on one machine and the same cohort built as n shards and
 * merged give the same dataset. Shards take pairs by position (pair index mod n), which balances them.
 */
import { hashSeed } from '../random';
import type { SplitName } from '../dataset';

/** FNV-1a over the UTF-8 bytes of a string, mixed with a seed through hashSeed (32-bit, stable). */
export function hashString(seed: number, text: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  return hashSeed(seed, h >>> 0, 0x5b117);
}

export type SplitFractions = [number, number, number];

export function parseSplitFractions(text: string): SplitFractions {
  const parts = text.split(',').map(Number);
  if (parts.length !== 3 || parts.some((x) => !Number.isFinite(x) || x < 0) || parts[0] + parts[1] + parts[2] <= 0) {
    throw new Error(`--split needs three non-negative numbers with a positive sum, e.g. 0.8,0.1,0.1; got '${text}'`);
  }
  return parts as SplitFractions;
}

/** The split of a subject: a uniform number in [0, 1) from hash(seed, id) against the cumulative fractions. */
export function splitForId(id: string, fractions: SplitFractions, seed: number): SplitName {
  const total = fractions[0] + fractions[1] + fractions[2];
  const u = hashString(seed, id) / 4294967296;
  if (u < fractions[0] / total) return 'train';
  if (u < (fractions[0] + fractions[1]) / total) return 'val';
  return 'test';
}

export interface ShardSpec {
  /** 0-based, like SLURM_ARRAY_TASK_ID with --array=0-(n-1) and JOB_COMPLETION_INDEX. */
  index: number;
  count: number;
}

export function parseShard(text: string): ShardSpec {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) throw new Error(`--shard must look like i/n (0-based i, e.g. 0/8), got '${text}'`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index >= count) throw new Error(`--shard ${text}: need 0 <= i < n`);
  return { index, count };
}

export function inShard(pairIndex: number, shard: ShardSpec): boolean {
  return pairIndex % shard.count === shard.index;
}
