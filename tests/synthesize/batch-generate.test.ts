/**
 * Batched synthesis: a clip generated in a batch equals the one `FlowPipeline.generate` makes alone for the
 * same (seed, index), whatever B and batch-mates; conditional clips follow their ECG; non-finite weights
 * fail loudly instead of decoding to a black clip.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { generateSubject } from '../../src/data/phantom/subject';
import { NodeTrainFileSystem } from '../../src/train/node-files';
import { FlowPipeline, NonFiniteOutputError } from '../../src/train/pipeline';
import { generateBatch } from '../../src/synthesize/batch-generate';
import { gpuEngine } from '../helpers/oracle';
import { maxAbsDiff } from '../helpers/values';
import { CONTENDED_TIMEOUT, tempDirMaker, tinyFlowRun } from '../train/run-helpers';

const tempDir = tempDirMaker('synth-batch-');


describe('generateBatch (GPU, tiny chain)', () => {
  const fs = new NodeTrainFileSystem();
  let flowRun = '';

  beforeAll(async () => {
    const engine = await gpuEngine();
    const dir = tempDir();
    ({ flowRun } = await tinyFlowRun(engine, fs, dir, 7));
  }, CONTENDED_TIMEOUT);

  it('a clip in a batch equals the clip generated alone, for any batch size and batch-mates', async () => {
    const engine = await gpuEngine();
    const pipeline = await FlowPipeline.load(engine, fs, flowRun);
    try {
      const ecgs = [3, 8, 11].map((i) => generateSubject(42, i, { cine: false }).ecg);
      const options = { steps: 2, seed: 9, guidance: 2 };
      const alone = await Promise.all(ecgs.map(async (ecg, k) => pipeline.generate(ecg, { ...options, index: 100 + k })));
      const batched = await generateBatch(pipeline, ecgs.map((ecg, k) => ({ ecg, index: 100 + k })), options);
      // The same clip with other batch-mates and another batch size.
      const [second] = await generateBatch(pipeline, [{ ecg: ecgs[1], index: 101 }], options);
      const reordered = await generateBatch(pipeline, [{ ecg: ecgs[2], index: 102 }, { ecg: ecgs[1], index: 101 }], options);
      expect(batched).toHaveLength(3);
      for (let k = 0; k < 3; k++) {
        expect([batched[k].frames, batched[k].height, batched[k].width]).toEqual([alone[k].frames, alone[k].height, alone[k].width]);
        expect(maxAbsDiff(batched[k].clip, alone[k].clip)).toBeLessThan(1e-4);
        expect(maxAbsDiff(batched[k].latent, alone[k].latent)).toBeLessThan(1e-4);
      }
      expect(maxAbsDiff(second.clip, batched[1].clip)).toBeLessThan(1e-4);
      expect(maxAbsDiff(reordered[1].clip, batched[1].clip)).toBeLessThan(1e-4);
      // Different inputs give different clips (the batch rows are not copies of one another).
      expect(maxAbsDiff(batched[0].clip, batched[1].clip)).toBeGreaterThan(1e-3);
      // Unconditional: only the noise index matters.
      const u = await generateBatch(pipeline, [{ ecg: ecgs[0], index: 5 }, { ecg: ecgs[1], index: 5 }], { ...options, unconditional: true });
      expect(maxAbsDiff(u[0].clip, u[1].clip)).toBe(0);
    } finally {
      pipeline.dispose();
    }
  }, CONTENDED_TIMEOUT);

  it('non-finite weights give a NonFiniteOutputError naming the input, not a black clip', async () => {
    const engine = await gpuEngine();
    const pipeline = await FlowPipeline.load(engine, fs, flowRun);
    try {
      // Poison the template: every latent becomes NaN.
      const values = new Float32Array(pipeline.template.shape.reduce((a, b) => a * b, 1)).fill(NaN);
      const { assign } = await import('../../src/engine/create');
      assign(pipeline.template, values);
      const ecg = generateSubject(42, 3, { cine: false }).ecg;
      await expect(generateBatch(pipeline, [{ ecg, index: 4 }], { steps: 1 })).rejects.toThrow(NonFiniteOutputError);
      await expect(generateBatch(pipeline, [{ ecg, index: 4 }], { steps: 1 })).rejects.toThrow(/input index 4/);
    } finally {
      pipeline.dispose();
    }
  }, CONTENDED_TIMEOUT);
});
