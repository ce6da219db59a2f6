/** Host-side pieces of the trainer: options, files, metrics log, SVG, ECG preparation. No device needed. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSubject } from '../../src/data/phantom/subject';
import { referenceRPeaks } from '../../src/data/ecg-phase';
import { writeSafetensors } from '../../src/models/io/safetensors';
import { HostTensor } from '../../src/models/io/tensor';
import {
  MemoryTrainFileSystem, MetricsLog, Progress, UsageError, formatDuration, checkpointPath, defaultRunDir, ecgStage, loadCheckpoint, lossCurveSvg, parseMetrics,
  parseRunArgs, prepareEcg, resampleArea, saveCheckpoint, writeFileAtomic, type CheckpointMeta, type MetricsRecord,
} from '../../src/train/index';
import { NodeTrainFileSystem } from '../../src/train/node-files';

const tempDirs: string[] = [];
afterAll(() => tempDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'train-fw-'));
  tempDirs.push(d);
  return d;
};

describe('run options', () => {
  it('parses flags, presets and overrides', () => {
    const o = parseRunArgs(['--stage', 'ecg', '--config=small', '--steps', '20', '--lr', '3e-4', '--seed=0', '--data', 'd', '--out', 'o', '--val-every', '5', '--quiet']);
    expect(o).toMatchObject({ stage: 'ecg', preset: 'small', data: 'd', out: 'o', quiet: true, overrides: { steps: 20, lr: 3e-4, seed: 0, valEvery: 5 } });
    expect(() => parseRunArgs(['--stage', 'ecg', '--steps', '0'])).toThrow(UsageError);
    expect(() => parseRunArgs(['--stage', 'ecg', '--config', 'huge'])).toThrow(/tiny, cpu, small, paper/);
    expect(() => parseRunArgs(['--stage', 'ecg', '--bogus'])).toThrow(/unknown argument/);
    expect(() => parseRunArgs(['--steps', '3'])).toThrow(/--stage is required/);
    // A resumed run keeps its arithmetic; output-only intervals may change, anything else is refused.
    expect(parseRunArgs(['--resume', 'runs/x', '--log-every', '16', '--plot-every', '50']).overrides).toEqual({ logEvery: 16, plotEvery: 50 });
    expect(() => parseRunArgs(['--resume', 'runs/x', '--steps', '9'])).toThrow(/drop --steps/);
    expect(defaultRunDir('ecg', new Date(2026, 0, 2, 3, 4, 5))).toBe('runs/ecg-20260102-030405');
  });

  it('ecg presets follow the reference optimisation', () => {
    const paper = ecgStage.resolveConfig(parseRunArgs(['--stage', 'ecg', '--config', 'paper']));
    expect(paper).toMatchObject({ lr: 1e-4, minLr: 1e-6, betas: [0.9, 0.95], weightDecay: 0.05, clipNorm: 3, batchSize: 32, epochs: 100 });
    expect(paper.totalSteps).toBe(100 * paper.stepsPerEpoch);
    const tiny = ecgStage.resolveConfig(parseRunArgs(['--stage', 'ecg', '--steps', '7', '--batch', '2']));
    expect(tiny).toMatchObject({ totalSteps: 7, batchSize: 2, valEvery: 48, model: { ecgLength: 400 } });
  });
});

describe('files and checkpoints', () => {
  it('writeFileAtomic replaces a file and leaves no temporary behind', async () => {
    const dir = tempDir();
    const fs = new NodeTrainFileSystem();
    await writeFileAtomic(fs, join(dir, 'a.json'), 'one');
    await writeFileAtomic(fs, join(dir, 'a.json'), 'two');
    expect(new TextDecoder().decode(await fs.readFile(join(dir, 'a.json')))).toBe('two');
    expect(await fs.listDir(dir)).toEqual(['a.json']);
  });

  it('a checkpoint round-trips tensors and metadata (memory file system too)', async () => {
    for (const fs of [new NodeTrainFileSystem(), new MemoryTrainFileSystem()]) {
      const dir = fs instanceof MemoryTrainFileSystem ? '/run' : tempDir();
      const meta = { format: 'ecgflowcmr-train-checkpoint', version: 1, stage: 'ecg', config: { a: 1 }, step: 3, epoch: 0, batchInEpoch: 3, best: { score: 0.5, step: 2, name: 'recon' }, elapsedSeconds: 1, stageState: { g: { seed: 1, counter: 9 } }, savedAt: 'now' } as CheckpointMeta;
      const tensors = new Map([['model.w', new HostTensor('f32', [2, 2], new Float32Array([1, 2, 3, 4]))], ['model.s', new HostTensor('f32', [], new Float32Array([7]))]]);
      await saveCheckpoint(fs, dir, 'last', meta, tensors);
      const back = await loadCheckpoint(fs, dir, 'last');
      expect(back.meta).toEqual(meta);
      expect([...back.tensors.get('model.w')!.data]).toEqual([1, 2, 3, 4]);
      expect(back.tensors.get('model.s')!.shape).toEqual([]);
      expect((await fs.listDir(`${dir}/checkpoints`)).sort()).toEqual(['last.json', 'last.safetensors']);
      // A safetensors file without the checkpoint metadata is refused with its name.
      await fs.writeFile(checkpointPath(dir, 'best'), writeSafetensors(tensors));
      await expect(loadCheckpoint(fs, dir, 'best')).rejects.toThrow(/not a training checkpoint/);
    }
  });
});

describe('metrics log and loss curve', () => {
  const record = (step: number, loss: number): MetricsRecord => ({
    type: 'train', step, epoch: 0, lr: 1e-3, values: { loss, recon: loss / 200, gradNorm: 3 }, time: step, stepsPerSecond: 1, memory: { liveMiB: 1, peakMiB: 2 },
  });

  it('resume cuts the log back to the checkpoint step and ignores a torn last line', async () => {
    const fs = new MemoryTrainFileSystem();
    const log = await MetricsLog.create(fs, '/m.jsonl');
    for (let s = 1; s <= 5; s++) await log.append(record(s, 10 - s));
    await fs.appendFile('/m.jsonl', new TextEncoder().encode('{"type":"train","step":6,"va'));
    const resumed = await MetricsLog.resume(fs, '/m.jsonl', 3);
    expect(resumed.records.map((r) => r.step)).toEqual([1, 2, 3]);
    await resumed.append(record(4, 1));
    const text = new TextDecoder().decode(await fs.readFile('/m.jsonl'));
    expect(parseMetrics(text).map((r) => [r.step, r.values.loss])).toEqual([[1, 9], [2, 8], [3, 7], [4, 1]]);
  });

  it('draws every training scalar except grad norm and the validation points as SVG', () => {
    const records: MetricsRecord[] = [1, 2, 3, 4, 5].map((s) => record(s, 20 / s));
    records.push({ type: 'val', step: 5, epoch: 0, values: { recon: 0.02 }, score: 0.02, scoreName: 'recon', best: true, time: 5 });
    const svg = lossCurveSvg(records, 'a & b');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.endsWith('</svg>')).toBe(true);
    expect(svg).toContain('a &amp; b');
    expect(svg).toContain('loss (smoothed)');
    expect(svg).toContain('val recon');
    expect(svg).not.toContain('gradNorm');
    expect(svg).not.toMatch(/NaN|Infinity/);
    expect(lossCurveSvg([])).toContain('no data yet');
  });
});

describe('ECG preparation', () => {
  it('area resampling keeps means and passes equal lengths through', () => {
    const x = Float32Array.from({ length: 2 * 10 }, (_, i) => i);
    const y = resampleArea(x, 2, 10, 4);
    expect([...y].map((v) => +v.toFixed(4))).toEqual([0.8, 3.2, 5.8, 8.2, 10.8, 13.2, 15.8, 18.2]);
    expect(resampleArea(x, 2, 10, 10)).toEqual(x);
  });

  it('phase targets come from the reference detector on lead II, one per feature step', () => {
    const subject = generateSubject(42, 0, { cine: false });
    const full = prepareEcg(subject.ecg, 5000, 625);
    const tiny = prepareEcg(subject.ecg, 400, 50);
    expect(full.ecg).toEqual(subject.ecg);
    expect(tiny.ecg.length).toBe(12 * 400);
    expect([full.phase.length, tiny.phase.length]).toEqual([1250, 100]);
    // The reference detector also fires on tall T waves (spec §2.5); φ wraps once per detected interval.
    const peaks = referenceRPeaks(subject.ecg.subarray(5000, 10000), 500);
    expect(peaks.length).toBeGreaterThanOrEqual(subject.truth.rPeaks.length);
    const angle = Array.from({ length: 625 }, (_, s) => Math.atan2(full.phase[s], full.phase[625 + s]));
    expect(angle.slice(1).filter((a, i) => a - angle[i] < -3).length).toBe(peaks.length - 1);
    // The 50-step grid samples the same φ at every 100th sample (= every 12.5th step of the 625 grid).
    for (let s = 0; s < 50; s += 2) {
      expect(tiny.phase[s]).toBe(full.phase[12.5 * s]);
      expect(tiny.phase[50 + s]).toBe(full.phase[625 + 12.5 * s]);
    }
  });
});

describe('progress', () => {
  const update = (step: number) => ({ step, totalSteps: 20, epoch: 0, values: { loss: 1.5 }, stepsPerSecond: 2 });

  it('prints plain lines every logEvery steps when not a terminal', () => {
    let text = '';
    const progress = new Progress({ write: (t) => (text += t), isTTY: false }, 10);
    for (let s = 1; s <= 20; s++) progress.update(update(s));
    progress.note('validation');
    expect(text.trim().split('\n')).toEqual([
      'step 1/20 epoch 0  loss 1.500  2.00 steps/s  ETA 10s',
      'step 10/20 epoch 0  loss 1.500  2.00 steps/s  ETA 5s',
      'step 20/20 epoch 0  loss 1.500  2.00 steps/s  ETA 0s',
      'validation',
    ]);
  });

  it('redraws one bar in place on a terminal', () => {
    let text = '';
    const progress = new Progress({ write: (t) => (text += t), isTTY: true, columns: 200 }, 10);
    progress.update(update(5));
    progress.update(update(6));
    progress.finish();
    expect(text.split('\r\x1b[2K')).toHaveLength(3);
    expect(text).toContain('[#######.................] 6/20');
    expect(text.endsWith('\n')).toBe(true);
    expect([formatDuration(59), formatDuration(61), formatDuration(7300)]).toEqual(['59s', '1m01s', '2h01m']);
  });
});
