/**
 * The tiny chain on this runtime's WebGPU, in one process: the three training stages (PA-MAE, 3-D VAE,
 * flow DiT; tiny preset, a few steps each, through the trainer `npm start` uses) on an in-memory file
 * system, then generation of a held-out phantom ECG through FlowPipeline. Checks every loss is finite and
 * the clip has the flow config's shape with values in [0, 1]; exits non-zero otherwise.
 *   Node/Dawn: npx tsx scripts/tiny-chain.ts [--steps N]
 *   Deno/wgpu: npx deno run -A --sloppy-imports scripts/tiny-chain.ts [--steps N]
 */
import process from 'node:process';
import { generateSubject } from '../src/data/phantom/subject';
import { Engine } from '../src/engine/engine';
import { runStage, trainingLosses, type StageName } from '../src/platform/train';
import { MemoryTrainFileSystem } from '../src/train/files';
import { FlowPipeline } from '../src/train/pipeline';

const argv = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const at = argv.indexOf(`--${name}`);
  return at >= 0 ? Number(argv[at + 1]) : fallback;
};
const steps = option('steps', 3);
const seed = option('seed', 42);

const problems: string[] = [];
const check = (ok: boolean, what: string) => {
  if (!ok) problems.push(what);
};

const versions = process.versions as Record<string, string | undefined>;
const runtime = versions.deno ? `Deno ${versions.deno} (wgpu)` : `Node ${versions.node} (Dawn)`;
const engine = await Engine.webgpu();
const adapter = engine.caps!.adapter;
console.log(`${runtime} on ${adapter.description || adapter.device}: tiny chain, ${steps} steps per stage`);
const fs = new MemoryTrainFileSystem();
const runs: Record<StageName, string> = { ecg: '/chain/ecg', vae: '/chain/vae', flow: '/chain/flow' };
const started = performance.now();
try {
  for (const stage of ['ecg', 'vae', 'flow'] as const) {
    const t0 = performance.now();
    // Validation and checkpoint at the last step: stage flow needs the earlier runs' best weights and latents.
    const overrides = { steps, seed, valEvery: steps, checkpointEvery: steps, logEvery: 1 };
    const summary = await runStage(engine, fs, { stage, runDir: runs[stage], overrides, vaeRun: runs.vae, ecgRun: runs.ecg });
    const losses = await trainingLosses(fs, runs[stage]);
    check(summary.completed && summary.steps === steps, `${stage}: ${summary.steps}/${summary.totalSteps} steps, completed ${summary.completed}`);
    check(losses.length === steps && losses.every(Number.isFinite), `${stage}: training losses ${losses.join(', ')}`);
    console.log(`${stage.padEnd(5)} ${summary.steps} steps in ${((performance.now() - t0) / 1000).toFixed(1)} s, loss ${losses.map((l) => l.toPrecision(7)).join(' → ')}`);
  }

  const t0 = performance.now();
  const pipeline = await FlowPipeline.load(engine, fs, runs.flow);
  // Index 100 000 is beyond the tiny presets' subjects: an ECG no stage trained on.
  const ecg = generateSubject(seed, 100_000, { cine: false }).ecg;
  const clip = await pipeline.generate(ecg, { steps: 4, seed, index: 100_000 });
  const { latentChannels, numFrames, latentSize } = pipeline.dit.config;
  pipeline.dispose();
  check(clip.frames === numFrames, `clip has ${clip.frames} frames, the flow config ${numFrames}`);
  check(clip.height > latentSize[0] && clip.width > latentSize[1], `clip ${clip.height}×${clip.width} is not larger than the latent ${latentSize}`);
  check(clip.clip.length === clip.frames * clip.height * clip.width, `clip holds ${clip.clip.length} values for ${clip.frames}×${clip.height}×${clip.width}`);
  check(clip.latent.length === latentChannels * numFrames * latentSize[0] * latentSize[1], `latent holds ${clip.latent.length} values`);
  check(clip.latent.every(Number.isFinite), 'latent has non-finite values');
  check(clip.clip.every((v) => v >= 0 && v <= 1), 'clip has values outside [0, 1] (or NaN)');
  let sum = 0;
  for (const v of clip.clip) sum += v;
  // Full-precision sums: runs on two WebGPU implementations can be compared digit by digit.
  console.log(`generate ${clip.frames}×${clip.height}×${clip.width} clip (sum ${sum.toPrecision(9)}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
} catch (err) {
  problems.push(err instanceof Error ? (err.stack ?? err.message) : String(err));
} finally {
  engine.destroy();
}
for (const p of problems) console.log(`FAIL ${p}`);
console.log(`tiny chain ${problems.length === 0 ? 'passed' : 'failed'} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
process.exit(problems.length === 0 ? 0 : 1);
