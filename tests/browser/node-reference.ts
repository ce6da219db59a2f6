/**
 * The Node side of `npm run test:browser`: the same chain, pipeline and trainer code the page runs, on
 * Dawn (lavapipe here), for the values the page must reproduce. Writes one JSON file:
 *   { generate: { clip, frames, height, width, windowSamples, stepwiseEqualsPipeline }, flow: { loss, gradNorm }, adapter,
 *     ecgFiles: { csv|npy|wfdb: { files, fingerprint } } (with --files-dir DIR: the phantom ECG written as those files) }
 *
 *   npx tsx tests/browser/node-reference.ts --out FILE --phantom-seed 42 --phantom-index 3 --steps 10 --guidance 2 --alpha 0.6 --seed 42 --flow-steps 3 --flow-seed 7
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryFileSystem } from '../../src/data/fs';
import { writeNpy } from '../../src/data/npy';
import { generateSubject } from '../../src/data/phantom/subject';
import { prepareEcg } from '../../src/data/preprocess/ecg';
import { readEcgFile } from '../../src/data/readers/index';
import { Engine } from '../../src/engine/engine';
import { installChain, parseChainManifest } from '../../src/platform/chain';
import { generateStepwise } from '../../src/platform/generate';
import { flowTrainingProbe } from '../../src/platform/train';
import { MemoryTrainFileSystem } from '../../src/train/files';
import { FlowPipeline } from '../../src/train/pipeline';
import { wfdbDat, wfdbHeader } from '../data/helpers/writers';

const LEADS = ['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'];

/** Sums that identify a prepared recording (the page reports the same for what it loaded). */
export function ecgFingerprint(ecg: Float32Array): { sum: number; absSum: number; length: number } {
  let sum = 0;
  let absSum = 0;
  for (const v of ecg) {
    sum += v;
    absSum += Math.abs(v);
  }
  return { sum, absSum, length: ecg.length };
}

/**
 * One recording as the three file types the page accepts (CSV with a time column, a WFDB format-16 pair at
 * 1 µV per unit, NPY (12, 5000)), written to `dir`; returns, per type, the files and the fingerprint of the
 * data layer's reading of them, which the page must reproduce.
 */
async function writeEcgFiles(dir: string, ecg: Float32Array): Promise<Record<string, { files: string[]; fingerprint: ReturnType<typeof ecgFingerprint> }>> {
  mkdirSync(dir, { recursive: true });
  const n = 5000;
  const rows = [['time', ...LEADS].join(',')];
  for (let i = 0; i < n; i++) rows.push([(i / 500).toFixed(4), ...LEADS.map((_, c) => ecg[c * n + i].toFixed(5))].join(','));
  const files: Record<string, Record<string, Uint8Array | string>> = {
    csv: { 'phantom-csv.csv': rows.join('\n') + '\n' },
    npy: { 'phantom-npy.npy': writeNpy(ecg, [12, n]) },
    wfdb: {
      'rec.hea': wfdbHeader('rec', 500, n, LEADS.map((name) => ({ file: 'rec.dat', format: 16, gain: 1000, baseline: 0, units: 'mV', name }))),
      'rec.dat': wfdbDat(LEADS.map((_, c) => Int32Array.from(ecg.subarray(c * n, (c + 1) * n), (v) => Math.round(v * 1000))), 16),
    },
  };
  const out: Record<string, { files: string[]; fingerprint: ReturnType<typeof ecgFingerprint> }> = {};
  for (const [kind, set] of Object.entries(files)) {
    const memory = new MemoryFileSystem();
    for (const [name, data] of Object.entries(set)) {
      writeFileSync(join(dir, name), data);
      await memory.writeFile(`/upload/${name}`, data);
    }
    const main = Object.keys(set).find((f) => !f.endsWith('.dat'))!;
    const prepared = prepareEcg(await readEcgFile(memory, `/upload/${main}`, kind === 'npy' ? { fs: 500 } : {}));
    out[kind] = { files: Object.keys(set).map((f) => join(dir, f)), fingerprint: ecgFingerprint(prepared.data) };
  }
  return out;
}

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
    const filesDir = arg('files-dir', '');
    const result = {
      adapter: engine.caps?.adapter ?? null,
      ecgFiles: filesDir ? await writeEcgFiles(filesDir, ecg) : null,
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
