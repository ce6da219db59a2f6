/**
 * Synthesis throughput: clips/s of `generateBatch` for several batch sizes B on one flow run.
 * Usage: npx tsx bench/synthesis.ts --checkpoint FLOW_RUN [--clips 16] [--batches 1,2,4,8] [--steps 10] [--out FILE.json]
 * Each B first runs one untimed batch (shader compilation), then generates --clips phantom ECGs in batches of B
 * (guidance 2, so each DiT call is on 2B rows) and reports the wall time including the read-backs.
 */
import { writeFileSync } from 'node:fs';
import { generateSubject } from '../src/data/phantom/subject';
import { Engine } from '../src/engine/engine';
import { generateBatch } from '../src/synthesize/batch-generate';
import { NodeTrainFileSystem } from '../src/train/node-files';
import { FlowPipeline } from '../src/train/pipeline';

const argv = process.argv.slice(2);
const arg = (name: string, fallback: string) => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : fallback);
const checkpoint = arg('checkpoint', '');
if (!checkpoint) throw new Error('usage: npx tsx bench/synthesis.ts --checkpoint FLOW_RUN [--clips 16] [--batches 1,2,4,8] [--steps 10] [--out FILE]');
const clips = Number(arg('clips', '16'));
const batches = arg('batches', '1,2,4,8').split(',').map(Number);
const steps = Number(arg('steps', '10'));

const engine = await Engine.webgpu();
const pipeline = await FlowPipeline.load(engine, new NodeTrainFileSystem(), checkpoint);
const ecgs = Array.from({ length: clips }, (_, i) => generateSubject(42, 500000 + i, { cine: false }).ecg);
const c = pipeline.dit.config;
const rows: { batch: number; clips: number; seconds: number; clipsPerSecond: number }[] = [];
for (const b of batches) {
  await generateBatch(pipeline, ecgs.slice(0, b).map((ecg, i) => ({ ecg, index: i })), { steps });
  const t0 = performance.now();
  for (let start = 0; start < clips; start += b) {
    await generateBatch(pipeline, ecgs.slice(start, start + b).map((ecg, i) => ({ ecg, index: start + i })), { steps });
  }
  const seconds = (performance.now() - t0) / 1000;
  rows.push({ batch: b, clips, seconds, clipsPerSecond: clips / seconds });
  console.log(`B=${b}: ${clips} clips in ${seconds.toFixed(2)} s = ${(clips / seconds).toFixed(2)} clips/s`);
}
const adapter = engine.caps?.adapter;
const result = {
  date: new Date().toISOString().slice(0, 10), adapter: adapter?.description || adapter?.device || 'unknown',
  // The run's preset, not its path: results are committed, machine paths are not.
  checkpoint: `a flow run of the ${pipeline.config.preset ?? 'unknown'} preset`, steps, guidance: 2,
  geometry: { latent: [c.latentChannels, c.numFrames, ...c.latentSize], clip: pipeline.config.vaeInput }, rows,
};
if (argv.includes('--out')) writeFileSync(arg('out', ''), JSON.stringify(result, null, 1) + '\n');
pipeline.dispose();
engine.destroy();
