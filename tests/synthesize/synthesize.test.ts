/**
 * `runSynthesis`: a phantom ECG pool → a synthetic dataset that the training loader opens, with provenance;
 * the same rows whatever the batch size, the sharding (merged with `data merge`) or an interruption (resume).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { NodeBuildFileSystem } from '../../src/data/build/build-fs';
import { mergeShards } from '../../src/data/build/merge';
import { NpyDatasetSource } from '../../src/data/loader';
import { readNpy } from '../../src/data/npy';
import { NodeTrainFileSystem } from '../../src/train/node-files';
import { FlowPipeline } from '../../src/train/pipeline';
import { runSynthesis, type SynthesisOptions } from '../../src/synthesize/job';
import { phantomSources, type SynthesisSource } from '../../src/synthesize/sources';
import { gpuEngine } from '../helpers/oracle';
import { maxAbsDiff } from '../helpers/values';
import { CONTENDED_TIMEOUT, tempDirMaker, tinyFlowRun } from '../train/run-helpers';

const tempDir = tempDirMaker('synthesize-');
const repoRoot = join(__dirname, '../..');
const LABELS: SynthesisOptions['labelColumns'] = [{ name: 'cls', type: 'string' }, { name: 'efProxy', type: 'number' }];

const cmrRows = (dir: string, split = 'train') => readNpy(new Uint8Array(readFileSync(join(dir, split, 'cmr.npy'))), 'cmr');
const manifestOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));


describe('runSynthesis (GPU, tiny chain)', () => {
  const trainFs = new NodeTrainFileSystem();
  const fs = new NodeBuildFileSystem();
  let pipeline: FlowPipeline;
  let flowRun = '';
  const base = (out: string, sources: SynthesisSource[]): SynthesisOptions => ({
    out, sources, labelColumns: LABELS, sourceKind: 'phantom', checkpoint: flowRun, checkpointSha256: 'test', batch: 2, sample: { steps: 2, seed: 3 },
  });

  beforeAll(async () => {
    const engine = await gpuEngine();
    const dir = tempDir();
    ({ flowRun } = await tinyFlowRun(engine, trainFs, dir, 7));
    pipeline = await FlowPipeline.load(engine, trainFs, flowRun);
    return () => pipeline.dispose();
  }, CONTENDED_TIMEOUT);

  it('writes a dataset the loader opens, with labels and provenance; batch size does not change the clips', async () => {
    const dir = tempDir();
    const a = join(dir, 'b2');
    const progress: number[] = [];
    const warnings: string[] = [];
    const result = await runSynthesis(fs, pipeline, { ...base(a, phantomSources(42, 0, 5)), onProgress: (done) => progress.push(done), onWarning: (w) => warnings.push(w) });
    expect(result.generated).toBe(5);
    // The tiny chain's 4-frame clips are resampled to the dataset's 50 frames: said once, not once per clip.
    expect(warnings).toEqual([expect.stringMatching(/^syn-phantom-\S+: resampled 4 frames to 50 \(cyclic linear\) \(so is every generated clip; said once\)$/)]);
    expect(progress.at(-1)).toBe(5);
    const source = await NpyDatasetSource.open(fs, a, 'train', { batchSize: 2, shuffle: false });
    expect(source.length).toBe(5);
    const { cmr, ecg } = await source.readSample(4);
    expect(ecg.length).toBe(12 * 5000);
    expect(cmr.reduce((m, v) => Math.min(m, v), Infinity)).toBeCloseTo(-1, 5);
    expect(cmr.reduce((m, v) => Math.max(m, v), -Infinity)).toBeCloseTo(1, 5);
    const manifest = manifestOf(a);
    expect(manifest.createdBy).toBe('npm run synthesize');
    expect(manifest.synthesis.sampler).toMatchObject({ steps: 2, seed: 3 });
    expect(manifest.subjects.map((s: { id: string }) => s.id)).toEqual(phantomSources(42, 0, 5).map((s) => `syn-${s.id}`));
    expect(['healthy', 'hypertrophic', 'dilated', 'regional']).toContain(manifest.subjects[0].labels.cls);
    expect(typeof manifest.subjects[0].labels.efProxy).toBe('number');
    // Batch 3 instead of 2: the same clips.
    const b = join(dir, 'b3');
    await runSynthesis(fs, pipeline, { ...base(b, phantomSources(42, 0, 5)), batch: 3 });
    expect(maxAbsDiff(cmrRows(a).data as Float32Array, cmrRows(b).data as Float32Array)).toBeLessThan(1e-3);
  }, CONTENDED_TIMEOUT);

  it('two shards merged equal one run; an interrupted run resumes to the same rows', async () => {
    const dir = tempDir();
    const whole = join(dir, 'whole');
    await runSynthesis(fs, pipeline, base(whole, phantomSources(42, 0, 5)));
    const shards = [0, 1].map((i) => join(dir, `shard-${i}`));
    for (const [i, out] of shards.entries()) await runSynthesis(fs, pipeline, { ...base(out, phantomSources(42, 0, 5)), shard: { index: i, count: 2 } });
    const merged = join(dir, 'merged');
    await mergeShards(fs, shards, merged, { qc: false });
    expect(manifestOf(merged).synthesis).toEqual(manifestOf(whole).synthesis);
    expect(manifestOf(merged).subjects.map((s: { id: string }) => s.id)).toEqual(manifestOf(whole).subjects.map((s: { id: string }) => s.id));
    expect(maxAbsDiff(cmrRows(merged).data as Float32Array, cmrRows(whole).data as Float32Array)).toBeLessThan(1e-3);

    // A source that fails mid-run stands in for a kill: the rows before it are journalled.
    const resumed = join(dir, 'resumed');
    const failing = phantomSources(42, 0, 5);
    const good = failing[3].load;
    failing[3].load = async () => {
      throw new Error('killed');
    };
    await expect(runSynthesis(fs, pipeline, base(resumed, failing))).rejects.toThrow('killed');
    await expect(runSynthesis(fs, pipeline, base(resumed, phantomSources(42, 0, 5)))).rejects.toThrow(/--resume/);
    failing[3].load = good;
    const result = await runSynthesis(fs, pipeline, { ...base(resumed, failing), resume: true });
    expect(result.skipped).toBe(2);
    expect(result.generated).toBe(3);
    expect(maxAbsDiff(cmrRows(resumed).data as Float32Array, cmrRows(whole).data as Float32Array)).toBeLessThan(1e-3);
    // Other sampler settings are another run: resuming with them is refused.
    await expect(runSynthesis(fs, pipeline, { ...base(resumed, phantomSources(42, 0, 5)), sample: { steps: 3, seed: 3 }, resume: true })).rejects.toThrow(/different build/);
  }, CONTENDED_TIMEOUT);

  it('npm run synthesize writes the dataset with the weights hash, and refuses a bad source', () => {
    const out = join(tempDir(), 'cli');
    const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/synthesize.ts', ...args], { cwd: repoRoot, encoding: 'utf8' });
    const ok = cli(['--checkpoint', flowRun, '--out', out, '--phantom', '3', '--batch', '2', '--steps', '1', '--unconditional']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/3 clip\(s\) generated/);
    const manifest = manifestOf(out);
    expect(manifest.synthesis.checkpointSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.synthesis.sampler.unconditional).toBe(true);
    const bad = cli(['--checkpoint', flowRun, '--out', join(tempDir(), 'x'), '--ecg-data', join(out, 'nope')]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/manifest\.json/);
    const usage = cli(['--checkpoint', flowRun, '--out', out]);
    expect(usage.status).toBe(2);
  }, CONTENDED_TIMEOUT);
});
