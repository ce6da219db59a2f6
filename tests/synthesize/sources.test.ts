/** Synthesis sources: a data-build pairs file (cmr column ignored), a dataset folder and the phantom list. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writePhantomCohort } from '../../src/data/build/phantom-files';
import { writeSyntheticDataset } from '../../src/data/dataset';
import { DataError } from '../../src/data/errors';
import { NodeFileSystem } from '../../src/data/node-fs';
import { generateSubject } from '../../src/data/phantom/subject';
import { datasetSources, fileSources, phantomSources } from '../../src/synthesize/sources';

const dirs: string[] = [];
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), 'synth-sources-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const fs = new NodeFileSystem();

describe('synthesis sources', () => {
  it('read the ECGs of a pairs file with their labels, prepared like training data', async () => {
    const dir = temp();
    await writePhantomCohort(fs, dir, { n: 2, seed: 7 });
    const sources = await fileSources(fs, join(dir, 'pairs.csv'));
    expect(sources.map((s) => s.id)).toEqual(['sub-00000', 'sub-00001']);
    expect(sources[1].labels).toMatchObject({ class: generateSubject(7, 1).truth.cls });
    expect(typeof sources[1].labels.ef).toBe('number');
    expect(sources[0].labels).not.toHaveProperty('cmr');
    const { ecg } = await sources[1].load();
    expect(ecg.length).toBe(12 * 5000);
    // WFDB stores µV-resolution integers: the prepared ECG is the phantom's within the quantisation.
    const truth = generateSubject(7, 1, { cine: false }).ecg;
    let worst = 0;
    for (let i = 0; i < truth.length; i++) worst = Math.max(worst, Math.abs(truth[i] - ecg[i]));
    expect(worst).toBeLessThan(2e-3);
    await expect(fileSources(fs, join(dir, 'missing.csv'))).rejects.toThrow(DataError);
  });

  it('list the rows of a dataset folder and the phantom pool without reading them', async () => {
    const dir = temp();
    await writeSyntheticDataset(fs, dir, { n: 5, seed: 3, split: [0.6, 0.2, 0.2] });
    const all = await datasetSources(fs, dir, ['train', 'val', 'test']);
    expect(all).toHaveLength(5);
    expect(all[0].labels.cls).toMatch(/healthy|hypertrophic|dilated|regional/);
    const { ecg } = await all[2].load();
    expect(ecg.length).toBe(12 * 5000);
    await expect(datasetSources(fs, join(dir, 'nope'), ['train'])).rejects.toThrow(/manifest/);
    const pool = phantomSources(42, 10, 3);
    expect(pool.map((s) => s.origin)).toEqual(['phantom seed 42 index 10', 'phantom seed 42 index 11', 'phantom seed 42 index 12']);
    expect(pool[0].labels).toEqual({});
    await pool[0].load();
    expect(pool[0].labels.cls).toBe(generateSubject(42, 10).truth.cls);
  });
});
