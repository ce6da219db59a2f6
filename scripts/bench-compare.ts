/**
 * Side-by-side table of two `npm run bench` result files, e.g. the same --quick run under Node (Dawn) and
 * under Deno (wgpu) on one adapter: `npx tsx scripts/bench-compare.ts DAWN.json WGPU.json [--labels Dawn,wgpu]`.
 * Prints a markdown table: each row's time on both, and the ratio (> 1: the second is slower).
 */
import { readFileSync } from 'node:fs';
import type { BenchRow } from '../bench/harness';

interface BenchResult {
  machine: string;
  runtime?: string;
  date: string;
  quick: boolean;
  rows: BenchRow[];
}

const args = process.argv.slice(2);
const labelsAt = args.indexOf('--labels');
const labels = labelsAt >= 0 ? args.splice(labelsAt, 2)[1].split(',') : ['Dawn', 'wgpu'];
if (args.length !== 2) {
  console.error('usage: bench-compare FIRST.json SECOND.json [--labels A,B]');
  process.exit(2);
}
const [first, second] = args.map((path) => JSON.parse(readFileSync(path, 'utf8')) as BenchResult);
const key = (r: BenchRow) => `${r.suite}|${r.name}|${r.shape}`;
const secondRows = new Map(second.rows.map((r) => [key(r), r]));
const ms = (v: number | undefined) => (v === undefined ? '–' : v >= 100 ? v.toFixed(0) : v.toPrecision(3));

const about = (r: BenchResult) => `${r.runtime ?? ''} on ${r.machine}, ${r.date}`;
console.log(`${labels[0]}: ${about(first)}; ${labels[1]}: ${about(second)}${first.quick ? ' (--quick)' : ''}\n`);
console.log(`| suite | op | shape | ${labels[0]} ms | ${labels[1]} ms | ${labels[1]} / ${labels[0]} |`);
console.log('|---|---|---|---|---|---|');
for (const r of first.rows) {
  const other = secondRows.get(key(r));
  const ratio = other ? `${(other.ms / r.ms).toFixed(2)}×` : '–';
  console.log(`| ${r.suite} | ${r.name} | ${r.shape} | ${ms(r.ms)} | ${ms(other?.ms)} | ${ratio} |`);
}
for (const r of second.rows) if (!first.rows.some((f) => key(f) === key(r))) console.log(`| ${r.suite} | ${r.name} | ${r.shape} | – | ${ms(r.ms)} | – |`);
