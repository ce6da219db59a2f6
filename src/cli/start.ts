/**
 * `npm start`: the out-of-the-box run. On the WebGPU device (lavapipe without a GPU) it trains the three
 * stages briefly on tiny configs with phantom data — PA-MAE, 3-D VAE, flow — then generates a cine from a
 * held-out phantom ECG and says where everything was written. Each step is the same command a user runs
 * (`npm run train`, `npm run generate`), started as a child process.
 * Options: --out DIR (default runs/start-<time>), --seed S (default 42).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../engine/engine';
import { defaultRunDir } from '../train/options';

function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** Runs another CLI of this project with the same runtime and loader as this process (Node + tsx, or Deno). */
function runCli(title: string, script: string, args: string[]): number {
  process.stderr.write(`\n== ${title}\n`);
  const t0 = performance.now();
  const runtimeArgs = (process.versions as { deno?: string }).deno ? ['run', '-A', '--sloppy-imports'] : process.execArgv;
  const r = spawnSync(process.execPath, [...runtimeArgs, script, ...args], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${title} failed (exit ${r.status ?? r.signal}); command: npm run ${script.includes('generate') ? 'generate' : 'train'} -- ${args.join(' ')}`);
  return (performance.now() - t0) / 1000;
}

async function deviceReport(): Promise<void> {
  const engine = await Engine.webgpu();
  const caps = engine.caps!;
  console.log(`WebGPU device: ${caps.adapter.description || caps.adapter.device} (${caps.adapter.vendor}, ${caps.adapter.architecture})`);
  console.log(`  f16: ${caps.f16}  subgroups: ${caps.subgroups}  subgroup matrices: ${caps.subgroupMatrix}  timestamps: ${caps.timestampQuery}`);
  console.log(`  max storage binding: ${(caps.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB, workgroup memory: ${caps.limits.maxComputeWorkgroupStorageSize / 1024} KiB`);
  engine.destroy();
}

function summaryLine(runDir: string): string {
  const file = join(runDir, 'summary.json');
  if (!existsSync(file)) return '';
  const s = JSON.parse(readFileSync(file, 'utf8')) as { firstLoss: number | null; lastLoss: number | null; stepsPerSecond: number; best: { name: string | null; score: number | null } };
  const f = (v: number | null) => (v === null ? '-' : v.toPrecision(3));
  return `loss ${f(s.firstLoss)} → ${f(s.lastLoss)}, best ${s.best.name ?? 'score'} ${f(s.best.score)}, ${s.stepsPerSecond.toFixed(2)} steps/s`;
}

async function main(argv: string[]): Promise<void> {
  const out = flag(argv, '--out') ?? defaultRunDir('start');
  const seed = flag(argv, '--seed') ?? '42';
  await deviceReport();
  const dirs = { ecg: join(out, 'ecg'), vae: join(out, 'vae'), flow: join(out, 'flow'), generated: join(out, 'generated') };
  const common = ['--config', 'tiny', '--seed', seed];
  const times: Record<string, number> = {};
  times.ecg = runCli('stage 1/3: PA-MAE ECG encoder (npm run train -- --stage ecg)', 'src/cli/train.ts', ['--stage', 'ecg', ...common, '--out', dirs.ecg]);
  times.vae = runCli('stage 2/3: 3-D VAE (npm run train -- --stage vae)', 'src/cli/train.ts', ['--stage', 'vae', ...common, '--out', dirs.vae]);
  times.flow = runCli('stage 3/3: flow DiT with the fine-tuned ECG encoder (npm run train -- --stage flow)', 'src/cli/train.ts', [
    '--stage', 'flow', ...common, '--vae-run', dirs.vae, '--ecg-run', dirs.ecg, '--out', dirs.flow,
  ]);
  // Index 100 000 is far beyond the tiny presets' training and validation subjects: a held-out ECG.
  times.generate = runCli('generation from a held-out phantom ECG (npm run generate)', 'src/cli/generate.ts', [
    '--checkpoint', dirs.flow, '--phantom-index', '100000', '--phantom-seed', seed, '--phantom-gt', '--out', dirs.generated,
  ]);
  console.log('\n== summary');
  for (const stage of ['ecg', 'vae', 'flow'] as const) console.log(`${stage.padEnd(5)} ${dirs[stage].padEnd(32)} ${times[stage].toFixed(0).padStart(4)} s  ${summaryLine(dirs[stage])}`);
  console.log(`cine  ${dirs.generated}/phantom-s${seed}-100000.gif (and -vs-gt.gif, .nii.gz, .npy), ${times.generate.toFixed(0)} s`);
  console.log('Each run directory holds config.json, metrics.jsonl, loss.svg and checkpoints/ (see docs/TRAINING.md).');
  console.log(`Next: npm run evaluate -- --pred ${dirs.generated} --gt <ground truth>; or larger presets with --config small.`);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
