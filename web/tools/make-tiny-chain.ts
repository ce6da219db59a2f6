/**
 * Regenerates the page's bundled checkpoint, web/assets/tiny-chain/: trains the three stages on their tiny
 * presets with the Node CLI (phantom data), adds the VAE run's validation latents, and packs the runs
 * (manifest.json + byte-exact safetensors copies) with src/platform/chain.ts.
 *
 *   npx tsx web/tools/make-tiny-chain.ts [--work DIR] [--out web/assets/tiny-chain] [--seed 42] [--flow-steps 120]
 *   npx tsx web/tools/make-tiny-chain.ts --ecg-run A --vae-run B --flow-run C   # pack finished runs only
 *
 * Without --*-run flags it trains into --work (default /tmp/ecgflowcmr-tiny-chain; must not hold runs yet).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { joinPath } from '../../src/data/fs';
import { phantomId } from '../../src/data/phantom/subject';
import { Engine } from '../../src/engine/engine';
import { Generator } from '../../src/kernels/random';
import { readSafetensors, writeSafetensors } from '../../src/models/io/safetensors';
import { HostTensor } from '../../src/models/io/tensor';
import { VAE3d } from '../../src/models/vae3d';
import { packChain, type RunKind } from '../../src/platform/chain';
import type { CineGeometry } from '../../src/train/cine-data';
import { NodeTrainFileSystem } from '../../src/train/node-files';
import { readLatentFile, SubjectReader, VAE_RUN_FILES } from '../../src/train/stage-flow-data';
import { encodeSubjectModes, readRunConfig, vaeConfigOf } from '../../src/train/stage-flow';

const argv = process.argv.slice(2);
const flag = (name: string, fallback?: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const out = flag('--out', 'web/assets/tiny-chain')!;
const work = flag('--work', '/tmp/ecgflowcmr-tiny-chain')!;
const seed = Number(flag('--seed', '42'));
/**
 * The tiny flow preset's 16 steps (4 epochs of 16 latents) barely leave the initialisation; the bundled DiT
 * gets 120 (validated every 40). PA-MAE and VAE keep their presets (48 and 40 steps).
 */
const flowSteps = flag('--flow-steps', '120')!;
/** Validation subjects of the tiny flow preset: their latents are stored so no page has to render cines. */
const VAL_SUBJECTS = 8;

function trainStage(stage: RunKind, dir: string, extra: string[] = []): void {
  console.log(`training ${stage} → ${dir}`);
  const r = spawnSync('npx', ['tsx', 'src/cli/train.ts', '--stage', stage, '--config', 'tiny', '--seed', String(seed), '--out', dir, '--quiet', ...extra], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`training ${stage} failed (exit ${r.status})`);
}

/**
 * `val-latents.safetensors` of a VAE run: posterior modes of the validation subjects (the phantom indices
 * after the training ones), computed as stage flow would compute them when the file is absent.
 */
async function writeValidationLatents(engine: Engine, fs: NodeTrainFileSystem, vaeRun: string): Promise<void> {
  const run = await readRunConfig(fs, vaeRun, 'vae');
  const config = vaeConfigOf(run, vaeRun);
  const input = (run.input as CineGeometry | undefined) ?? { frames: config.tempRes, size: config.resolution };
  const train = await readLatentFile(fs, joinPath(vaeRun, VAE_RUN_FILES.latents), { seed: run.seed, data: run.data });
  const reader = new SubjectReader(fs);
  const subjects = await reader.validationSubjects(train.subjects, VAL_SUBJECTS);
  const vae = new VAE3d({ backend: engine.backend, gen: new Generator(0) }, config);
  vae.loadCheckpoint(readSafetensors(await fs.readFile(joinPath(vaeRun, VAE_RUN_FILES.weights))).tensors);
  const data = await encodeSubjectModes(engine, vae, reader, subjects, input, train.sampleShape.reduce((a, b) => a * b, 1));
  vae.dispose();
  const ids = subjects.map((s) => (s.kind === 'phantom' ? phantomId(s.seed, s.index) : `${s.dir}:${s.row}`));
  const tensors = new Map([['latents', new HostTensor('f32', [subjects.length, ...train.sampleShape], data)]]);
  await fs.writeFile(joinPath(vaeRun, VAE_RUN_FILES.valLatents), writeSafetensors(tensors, { ids: JSON.stringify(ids), split: 'val' }));
  console.log(`wrote ${joinPath(vaeRun, VAE_RUN_FILES.valLatents)} (${subjects.length} subjects)`);
}

async function main(): Promise<void> {
  const fs = new NodeTrainFileSystem();
  let runs: Record<RunKind, string>;
  const given = { ecg: flag('--ecg-run'), vae: flag('--vae-run'), flow: flag('--flow-run') };
  const engine = await Engine.webgpu();
  try {
    if (given.ecg && given.vae && given.flow) runs = given as Record<RunKind, string>;
    else {
      if (existsSync(work) && readdirSync(work).length) throw new Error(`${work} is not empty; remove it or pass --work`);
      mkdirSync(work, { recursive: true });
      runs = { ecg: join(work, 'ecg'), vae: join(work, 'vae'), flow: join(work, 'flow') };
      trainStage('ecg', runs.ecg);
      trainStage('vae', runs.vae);
      await writeValidationLatents(engine, fs, runs.vae);
      trainStage('flow', runs.flow, ['--vae-run', runs.vae, '--ecg-run', runs.ecg, '--steps', flowSteps, '--val-every', String(Math.max(1, Math.round(Number(flowSteps) / 3)))]);
    }
    if (!existsSync(joinPath(runs.vae, VAE_RUN_FILES.valLatents))) await writeValidationLatents(engine, fs, runs.vae);
  } finally {
    engine.destroy();
  }
  const summaries: Record<string, unknown> = {};
  for (const kind of ['ecg', 'vae', 'flow'] as const) {
    const path = joinPath(runs[kind], 'summary.json');
    if (await fs.exists(path)) {
      const s = JSON.parse(new TextDecoder().decode(await fs.readFile(path))) as { steps: number; firstLoss: number; lastLoss: number; best: unknown };
      summaries[kind] = { steps: s.steps, firstLoss: s.firstLoss, lastLoss: s.lastLoss, best: s.best };
    }
  }
  const runSeed = JSON.parse(new TextDecoder().decode(await fs.readFile(joinPath(runs.flow, 'config.json')))).seed as number;
  const { manifest, files } = await packChain(fs, runs, {
    description: `tiny presets trained on the phantom (seed ${runSeed})`,
    info: { seed: runSeed, training: summaries, tool: 'web/tools/make-tiny-chain.ts' },
  });
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  for (const [name, bytes] of files) writeFileSync(join(out, name), bytes);
  writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  const total = manifest.assets.reduce((a, x) => a + x.bytes, 0);
  console.log(`${out}: manifest.json + ${files.size} safetensors, ${(total / 1024).toFixed(0)} KiB`);
  if (total > 2 * 2 ** 20) throw new Error(`the chain is ${(total / 2 ** 20).toFixed(2)} MiB; the page's bundle should stay under 2 MiB`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
