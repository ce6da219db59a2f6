/**
 * Runs every benchmark suite (bench/<name>.bench.ts), prints a table and writes JSON to bench/results/.
 * Usage: npm run bench -- [--quick] [--suite core,conv,...] [--out FILE]
 * GPU-session suites (bench/gpu-session.bench.ts, run only when named in --suite): gpu-matmul, gpu-conv,
 * gpu-attention, gpu-vae, gpu-train, with [--smoke] (tiny shapes) [--sizes 4096,...] [--cases vae:paper,...]
 * [--emulate-subgroup-matrix]. --caps prints the device capabilities and exits; an --out FILE ending in
 * .jsonl gets one line appended instead of being overwritten.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Engine } from '../src/engine/engine';
import type { BenchRow } from './harness';
import * as core from './core.bench';
import * as conv from './conv.bench';
import * as attention from './attention.bench';
import * as norm from './norm.bench';
import * as optimizer from './optimizer.bench';
import * as matmulPrecision from './matmul.bench';
import * as gpuSession from './gpu-session.bench';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const suiteArg = args.indexOf('--suite');
const only = suiteArg >= 0 ? args[suiteArg + 1].split(',') : null;
const outArg = args.indexOf('--out');
const listArg = (flag: string) => (args.includes(flag) ? args[args.indexOf(flag) + 1].split(',') : undefined);
const suiteOptions: gpuSession.SuiteOptions = {
  quick,
  smoke: args.includes('--smoke'),
  sizes: listArg('--sizes')?.map(Number),
  cases: listArg('--cases'),
  emulateSubgroupMatrix: args.includes('--emulate-subgroup-matrix'),
};
/** Run only when named in --suite (sized for a GPU session, see bench/gpu-session.sh). */
const GPU_SESSION_SUITES = {
  'gpu-matmul': { run: gpuSession.runMatmul },
  'gpu-conv': { run: gpuSession.runConv },
  'gpu-attention': { run: gpuSession.runAttention },
  'gpu-vae': { run: gpuSession.runVae },
  'gpu-train': { run: gpuSession.runTrain },
};

// Static imports (not a directory scan) so `npm run build` bundles every suite into dist/bench.js.
const SUITES: Record<string, { run: (e: Engine, o: { quick: boolean }) => Promise<BenchRow[]> }> = { core, conv, attention, norm, optimizer, matmul: matmulPrecision };

function fmt(v: number | undefined, digits = 2): string {
  return v === undefined ? '' : v >= 100 ? v.toFixed(0) : v.toFixed(digits);
}

async function main(): Promise<void> {
  const engine = await Engine.webgpu();
  const caps = engine.caps!;
  const machine = `${caps.adapter.description || caps.adapter.device || caps.adapter.vendor} (${caps.adapter.architecture})`;
  if (args.includes('--caps')) {
    console.log(JSON.stringify(caps, null, 2));
    if (outArg >= 0) writeFileSync(args[outArg + 1], JSON.stringify({ machine, date: new Date().toISOString(), caps }, null, 2));
    engine.destroy();
    return;
  }
  console.log(`# benchmarks on ${machine}, ${new Date().toISOString()}${quick ? ' (quick)' : ''}, ${(process.versions as { deno?: string }).deno ? 'Deno/wgpu' : 'Node/Dawn'}`);
  const rows: BenchRow[] = [];
  for (const [suite, mod] of Object.entries({ ...SUITES, ...(only ? GPU_SESSION_SUITES : {}) }).filter(([name]) => !only || only.includes(name))) {
    try {
      const got = await mod.run(engine, suiteOptions);
      for (const r of got) {
        console.log(`${r.suite.padEnd(10)} ${r.name.padEnd(34)} ${r.shape.padEnd(26)} ${fmt(r.ms, 3).padStart(9)} ms ${r.gflops !== undefined ? `${fmt(r.gflops)} GFLOP/s` : ''}${r.gbps !== undefined ? ` ${fmt(r.gbps)} GB/s` : ''}${r.speedup !== undefined ? `  tfjs ${fmt(r.tfjsMs, 3)} ms → ×${fmt(r.speedup)}` : ''}`);
      }
      rows.push(...got);
    } catch (e) {
      console.error(`suite ${suite} failed: ${(e as Error).stack}`);
    }
  }
  const out = outArg >= 0 ? args[outArg + 1] : join(process.cwd(), 'bench', 'results', `${caps.adapter.architecture || 'gpu'}-${new Date().toISOString().slice(0, 10)}.json`);
  mkdirSync(dirname(out), { recursive: true });
  const versions = process.versions as Record<string, string | undefined>;
  // Which WebGPU implementation ran: Deno's is wgpu, Node's is Dawn (npm webgpu).
  const runtime = versions.deno ? `deno ${versions.deno} (wgpu)` : `node ${versions.node} (Dawn)`;
  const result = { machine, runtime, date: new Date().toISOString(), quick, args, adapter: caps.adapter, caps, rows };
  if (out.endsWith('.jsonl')) appendFileSync(out, JSON.stringify(result) + '\n');
  else writeFileSync(out, JSON.stringify(result, null, 2));
  console.log(`wrote ${out}`);
  console.log('\n| suite | op | shape | ms | GFLOP/s | GB/s | tfjs ms | speed-up vs tfjs |\n|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.suite} | ${r.name} | ${r.shape} | ${fmt(r.ms, 3)} | ${fmt(r.gflops)} | ${fmt(r.gbps)} | ${fmt(r.tfjsMs, 3)} | ${r.speedup !== undefined ? `×${fmt(r.speedup)}` : ''} |`);
  engine.destroy();
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
