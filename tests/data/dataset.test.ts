import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeFileSystem } from '../../src/data/node-fs';
import { MemoryFileSystem, NpyDatasetSource, PhantomSource, epochOrder, readNpy, splitCounts, writeSyntheticDataset, generateSubject, normalizeClip, type DataFileSystem } from '../../src/data';

describe('synthetic dataset + streaming loader', () => {
  it('writes manifest and NPY arrays, and the loader streams them back in order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ds-'));
    try {
      const fs = new NodeFileSystem();
      const manifest = await writeSyntheticDataset(fs, dir, { n: 10, seed: 4, split: [0.6, 0.2, 0.2] });
      expect(Object.values(manifest.splits).map((s) => s.count)).toEqual([6, 2, 2]);
      expect(manifest.subjects.length).toBe(10);
      const ecg = readNpy(new Uint8Array(readFileSync(join(dir, 'train/ecg.npy'))));
      expect(ecg.shape).toEqual([6, 12, 5000]);
      const cmr = readNpy(new Uint8Array(readFileSync(join(dir, 'train/cmr.npy'))));
      expect(cmr.shape).toEqual([6, 50, 96, 96]);

      const source = await NpyDatasetSource.open(fs, dir, 'train', { batchSize: 4, shuffle: false });
      const batches = [];
      for await (const b of source.batches(0)) batches.push(b);
      expect(batches.map((b) => b.size)).toEqual([4, 2]);
      expect(batches[0].ecg.length).toBe(4 * 12 * 5000);
      expect(batches[0].cmr.length).toBe(4 * 50 * 96 * 96);
      // Row 1 in the split equals the regenerated subject, normalized like the writer does.
      const info = manifest.subjects.find((s) => s.split === 'train' && s.row === 1)!;
      const index = Number(info.id.split('-').pop());
      const subject = generateSubject(4, index);
      expect(batches[0].ids[1]).toBe(info.id);
      expect(batches[0].ecg.subarray(60000, 120000)).toEqual(subject.ecg);
      expect(batches[0].cmr.subarray(460800, 921600)).toEqual(normalizeClip(subject.cine!));
      let lo = Infinity, hi = -Infinity;
      for (const v of batches[0].cmr) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      expect([lo, hi]).toEqual([-1, 1]);

      // Truncated file -> clear error on open.
      const cut = readFileSync(join(dir, 'val/cmr.npy'));
      writeFileSync(join(dir, 'val/cmr.npy'), cut.subarray(0, cut.length - 100));
      await expect(NpyDatasetSource.open(fs, dir, 'val', { batchSize: 1 })).rejects.toThrow(/val\/cmr.npy: truncated/);
      await expect(NpyDatasetSource.open(fs, join(dir, 'nope'), 'val', { batchSize: 1 })).rejects.toThrow(/no manifest/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('shuffles per epoch with a seed and bounds the prefetch queue', async () => {
    expect(epochOrder(10, 0, true, 1)).toEqual(epochOrder(10, 0, true, 1));
    expect(epochOrder(10, 0, true, 1)).not.toEqual(epochOrder(10, 1, true, 1));
    expect([...epochOrder(10, 3, true, 1)].sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
    expect(splitCounts(10, [0.8, 0.1, 0.1])).toEqual([8, 1, 1]);

    // A tiny fake dataset in memory, with a file system that counts reads in flight.
    const mem = new MemoryFileSystem();
    const n = 12;
    const { npyHeaderBytes } = await import('../../src/data');
    const ecg = new Float32Array(n * 60000).map((_, i) => Math.floor(i / 60000));
    const cmr = new Float32Array(n * 460800).map((_, i) => Math.floor(i / 460800));
    const join2 = (h: Uint8Array, d: Float32Array) => { const o = new Uint8Array(h.length + d.byteLength); o.set(h); o.set(new Uint8Array(d.buffer), h.length); return o; };
    await mem.writeFile('d/train/ecg.npy', join2(npyHeaderBytes('f4', [n, 12, 5000]), ecg));
    await mem.writeFile('d/train/cmr.npy', join2(npyHeaderBytes('f4', [n, 50, 96, 96]), cmr));
    await mem.writeFile('d/manifest.json', JSON.stringify({ splits: { train: { count: n, ecg: 'train/ecg.npy', cmr: 'train/cmr.npy' } }, subjects: [] }));
    let inFlight = 0, peak = 0, reads = 0;
    const counting: DataFileSystem = Object.assign(Object.create(mem), {
      readRange: async (p: string, o: number, l: number) => {
        inFlight++; reads++; peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 2));
        inFlight--;
        return mem.readRange(p, o, l);
      },
    });
    const source = await NpyDatasetSource.open(counting, 'd', 'train', { batchSize: 2, shuffle: true, seed: 5, prefetch: 1 });
    const seen: number[] = [];
    const readsAtStart = reads;
    for await (const b of source.batches(2)) {
      b.indices.forEach((row, k) => {
        expect(b.ecg[k * 60000 + 123]).toBe(row);
        expect(b.cmr[k * 460800 + 999]).toBe(row);
      });
      seen.push(...b.indices);
    }
    expect(seen).toEqual(epochOrder(n, 2, true, 5));
    expect(reads - readsAtStart).toBe(2 * n);
    // prefetch 1: current + 1 batch of 2 samples, 2 files each -> at most 8 reads at once.
    expect(peak).toBeLessThanOrEqual(8);
  });

  it('phantom source yields the same batch layout', async () => {
    const src = new PhantomSource({ batchSize: 2, length: 2, seed: 3 });
    const batches = [];
    for await (const b of src.batches(0)) batches.push(b);
    expect(batches.length).toBe(1);
    expect(batches[0].ecg.length).toBe(2 * 60000);
    expect(batches[0].cmr.length).toBe(2 * 460800);
    expect(batches[0].classes.length).toBe(2);
  }, 30_000);
});
