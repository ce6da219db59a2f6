/**
 * Host-side integrity pieces, no device: the content hash notices any single-word change, sealed files
 * verify and name what changed, the value checks (non-finite, negative second moment), the non-finite
 * refusal of state dicts, a version-1 checkpoint (no hashes) with a warning, the metrics log's
 * append-only resume and tolerant parsing.
 */
import { describe, expect, it } from 'vitest';
import { writeSafetensors, readSafetensors } from '../../src/models/io/safetensors';
import { assertFiniteWeights, findNonFinite, NonFiniteWeightsError } from '../../src/models/io/state-dict';
import { HostTensor } from '../../src/models/io/tensor';
import { checkpointPath, loadCheckpoint, MemoryTrainFileSystem, MetricsLog, parseMetricsDetailed, type CheckpointMeta, type MetricsRecord } from '../../src/train/index';
import { CheckpointIntegrityError, contentHash, sealTensors, stateProblem, verifySealed } from '../../src/train/integrity';
import { randomValues } from '../helpers/oracle';

const f32 = (values: ArrayLike<number>, shape = [values.length]) => new HostTensor('f32', shape, Float32Array.from(values));

describe('content hash', () => {
  it('changes with every single-bit flip of a random tensor, and with the length', () => {
    const data = Float32Array.from(randomValues(64, 3, -4, 4));
    const bytes = new Uint8Array(data.buffer);
    const base = contentHash(bytes);
    expect(base).toMatch(/^[0-9a-f]{16}$/);
    const seen = new Set([base]);
    for (let byte = 0; byte < bytes.length; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = Uint8Array.from(bytes);
        copy[byte] ^= 1 << bit;
        seen.add(contentHash(copy));
      }
    }
    expect(seen.size).toBe(1 + 8 * bytes.length);
    expect(contentHash(bytes.subarray(0, 255))).not.toBe(contentHash(bytes.subarray(0, 254)));
    expect(contentHash(new Uint8Array(0))).not.toBe(contentHash(new Uint8Array(4)));
  });

  it('a sealed file verifies; a changed, added or removed tensor is named', () => {
    const tensors = new Map([['a', f32(randomValues(10, 1))], ['b', f32(randomValues(6, 2), [2, 3])]]);
    const file = readSafetensors(writeSafetensors(tensors, { integrity: sealTensors(tensors) }));
    expect(verifySealed('f.safetensors', file.tensors, file.metadata)).toBe(true);
    expect(verifySealed('f.safetensors', file.tensors, {})).toBe(false);
    const changed = new Map(file.tensors).set('b', f32(Array.from(file.tensors.get('b')!.data as Float32Array, (v, i) => (i === 4 ? v * 2 : v)), [2, 3]));
    expect(() => verifySealed('f.safetensors', changed, file.metadata)).toThrow(/^f\.safetensors: tensor 'b': content hash [0-9a-f]{16} differs from the stored/);
    expect(() => verifySealed('f.safetensors', new Map(file.tensors).set('c', f32([1])), file.metadata)).toThrow(/tensor 'c': is not listed/);
    const fewer = new Map(file.tensors);
    fewer.delete('a');
    expect(() => verifySealed('f.safetensors', fewer, file.metadata)).toThrow(CheckpointIntegrityError);
  });
});

describe('value checks', () => {
  it('finds NaN and ±Inf (f32 and f16) and negative second moments', () => {
    expect(findNonFinite([['w', f32([1, 2, 3])]])).toBeNull();
    expect(findNonFinite([['w', f32([1, 2])], ['v', f32([0, Infinity, NaN, -Infinity])]])).toEqual({ key: 'v', count: 3, numel: 4, firstIndex: 1, firstValue: Infinity });
    const half = new HostTensor('f16', [3], Uint16Array.from([0x3c00, 0x7e00, 0x0000])); // 1, NaN, 0
    expect(findNonFinite([['h', half]])).toMatchObject({ key: 'h', count: 1, firstIndex: 1 });
    expect(findNonFinite([['n', new HostTensor('i64', [1], BigInt64Array.from([5n]))]])).toBeNull();
    expect(stateProblem(new Map([['optim.w.exp_avg_sq', f32([0, 1e-9, -0.25])]]))?.problem).toMatch(/AdamW second moment is negative \(-0\.25 at index 2\)/);
    expect(stateProblem(new Map([['optim.w.exp_avg', f32([-1])]]))).toBeNull();
    const error = (() => {
      try {
        assertFiniteWeights([['enc.w', f32([0, NaN])]], { source: 'weights.safetensors', optOut: '--allow-nonfinite-weights' });
      } catch (e) {
        return e as Error;
      }
      return null;
    })();
    expect(error).toBeInstanceOf(NonFiniteWeightsError);
    expect(error!.message).toBe(
      "weights.safetensors: tensor 'enc.w' holds 1 non-finite value(s) of 2 (first at index 1: NaN); the run that wrote it diverged. " +
        'Retrain (lower --lr, or --on-nonfinite stop keeps such weights from being saved) or pass --allow-nonfinite-weights to load it anyway',
    );
    expect(() => assertFiniteWeights([['enc.w', f32([NaN])]], { source: 's', allowNonFinite: true })).not.toThrow();
  });

  it('a version-1 checkpoint (no hashes) loads with a warning but its step counts are still checked', async () => {
    const fs = new MemoryTrainFileSystem();
    const meta = {
      format: 'ecgflowcmr-train-checkpoint', version: 1, stage: 'ecg', config: {}, step: 4, epoch: 1, batchInEpoch: 0, best: { score: 1, step: 4, name: 'recon' },
      elapsedSeconds: 1, stageState: { optimizer: { steps: [4, 4] } }, savedAt: 'then',
    } as unknown as CheckpointMeta;
    const tensors = new Map([['model.w', f32([1, 2])], ['optim.w.exp_avg_sq', f32([0.5, 0])]]);
    await fs.mkdir('/run/checkpoints');
    await fs.writeFile(checkpointPath('/run', 'last'), writeSafetensors(tensors, { checkpoint: JSON.stringify(meta) }));
    const loaded = await loadCheckpoint(fs, '/run', 'last');
    expect(loaded.warnings).toEqual(['/run/checkpoints/last.safetensors: written before content hashes (checkpoint version 1); only its values and step counts were checked']);
    await fs.writeFile(checkpointPath('/run', 'last'), writeSafetensors(tensors, { checkpoint: JSON.stringify({ ...meta, step: 7, epoch: 1, batchInEpoch: 3 }) }));
    await expect(loadCheckpoint(fs, '/run', 'last')).rejects.toThrow(/metadata step: is 7, but the optimizers have taken at most 4 steps and 0 were skipped/);
    await fs.writeFile(checkpointPath('/run', 'last'), writeSafetensors(tensors, { checkpoint: JSON.stringify({ ...meta, version: 2 }) }));
    await expect(loadCheckpoint(fs, '/run', 'last')).rejects.toThrow(/integrity: is missing from a version-2 checkpoint/);
  });
});

describe('metrics log', () => {
  const record = (step: number, loss: number): MetricsRecord => ({
    type: 'train', step, epoch: 0, lr: 1e-3, values: { loss }, time: step, stepsPerSecond: 1, memory: { liveMiB: 1, peakMiB: 1 },
  });

  it('skips one bad line with a warning and keeps the records before and after it', () => {
    const lines = [1, 2, 3, 4].map((s) => JSON.stringify(record(s, 10 - s)));
    lines.splice(2, 0, '{"type":"train","step":2.5,"values"', '[1, 2]', '{"type":"other","step":3}');
    const parsed = parseMetricsDetailed(lines.join('\n') + '\n', 'run/metrics.jsonl');
    expect(parsed.records.map((r) => r.step)).toEqual([1, 2, 3, 4]);
    expect(parsed.warnings).toEqual([
      'run/metrics.jsonl:3: skipped a line that is not JSON: {"type":"train","step":2.5,"values"',
      "run/metrics.jsonl:4: skipped a line without a string 'type' and an integer 'step'",
      "run/metrics.jsonl:5: skipped a record of unknown type 'other'",
    ]);
  });

  it('resume appends a resume line (never rewrites) that supersedes the later lines', async () => {
    const fs = new MemoryTrainFileSystem();
    const log = await MetricsLog.create(fs, '/m.jsonl');
    for (let s = 1; s <= 5; s++) await log.append(record(s, 10 - s));
    const before = new TextDecoder().decode(await fs.readFile('/m.jsonl'));
    const warnings: string[] = [];
    const resumed = await MetricsLog.resume(fs, '/m.jsonl', 2, 'best', (w) => warnings.push(w));
    expect(resumed.records.map((r) => r.step)).toEqual([1, 2]);
    expect(warnings).toEqual([]);
    await resumed.append(record(3, 0.5));
    const after = new TextDecoder().decode(await fs.readFile('/m.jsonl'));
    expect(after.startsWith(before)).toBe(true);
    const parsed = parseMetricsDetailed(after);
    expect(parsed.records.map((r) => [r.step, r.values.loss])).toEqual([[1, 9], [2, 8], [3, 0.5]]);
    expect(after).toMatch(/\{"type":"resume","step":2,"from":"best","time":"[^"]+"\}\n/);
  });
});
