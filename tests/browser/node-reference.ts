/**
 * The Node side of `npm run test:browser`: the same chain, pipeline and trainer code the page runs, on
 * Dawn (lavapipe here), for the values the page must reproduce. Writes one JSON file:
 *   { generate: { clip, frames, height, width, windowSamples, stepwiseEqualsPipeline }, flow: { loss, gradNorm }, adapter }
 *
 *   npx tsx tests/browser/node-reference.ts --out FILE --phantom-seed 42 --phantom-index 3 --steps 10 --guidance 2 --alpha 0.6 --seed 42 --flow-steps 3 --flow-seed 7
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSubject } from '../../src/data/phantom/subject';
import { Engine } from '../../src/engine/engine';
import { installChain, parseChainManifest } from '../../src/platform/chain';
import { generateStepwise } from '../../src/platform/generate';
import { flowTrainingProbe } from '../../src/platform/train';
import { MemoryTrainFileSystem } from '../../src/train/files';
import { FlowPipeline } from '../../src/train/pipeline';

const argv = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
};
const num = (name: string, fallback: number) => Number(arg(name, String(fallback)));

async function main(): Promise<void> {
  const assets = arg('assets', 'web/assets/tiny-chain');
  const manifest = parseChainManifest(readFileSync(join(assets, 'manifest.json'), 'utf8'));
  const fs = new MemoryTrainFileSystem();
  // The page installs the bundled chain at /bundled too; the same paths keep every config string equal.
  const chain = await installChain(fs, manifest, async (name) => new Uint8Array(readFileSync(join(assets, name))), '/bundled');
  const engine = await Engine.webgpu();
  try {
    const pipeline = await FlowPipeline.load(engine, fs, chain.runs.flow);
    const ecg = generateSubject(num('phantom-seed', 42), num('phantom-index', 3), { cine: false }).ecg;
    const options = { steps: num('steps', 10), guidance: num('guidance', 2), alpha: num('alpha', 0.6), seed: num('seed', 42), method: 'euler' as const };
    const reference = await pipeline.generate(ecg, options);
    // The page's stepwise loop must be the pipeline's arithmetic: on one device, bit for bit.
    const stepwise = await generateStepwise(engine, pipeline, ecg, options);
    let stepwiseEqualsPipeline = stepwise.clip.length === reference.clip.length;
    for (let i = 0; stepwiseEqualsPipeline && i < reference.clip.length; i++) stepwiseEqualsPipeline = Object.is(stepwise.clip[i], reference.clip[i]);
    pipeline.dispose();
    const flow = await flowTrainingProbe(engine, fs, chain.runs, num('flow-steps', 3), num('flow-seed', 7));
    const result = {
      adapter: engine.caps?.adapter ?? null,
      generate: { clip: Array.from(reference.clip), frames: reference.frames, height: reference.height, width: reference.width, windowSamples: stepwise.windowSamples, stepwiseEqualsPipeline },
      flow,
    };
    writeFileSync(arg('out', 'node-reference.json'), JSON.stringify(result));
  } finally {
    engine.destroy();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`node reference: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
