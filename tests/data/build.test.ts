import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync, existsSync, appendFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { NodeBuildFileSystem } from '../../src/data/build/build-fs';
import { readPairsCsv, pairFolders } from '../../src/data/build/pairs';
import { buildDataset } from '../../src/data/build/builder';
import { InlineRunner } from '../../src/data/build/worker-pool';
import { mergeShards } from '../../src/data/build/merge';
import { parseCsvRows } from '../../src/data/build/pairs';
import type { BuiltDatasetManifest } from '../../src/data/build/store';
import { NpyDatasetSource } from '../../src/data/loader';
import { readEcgFile, readCmrFile } from '../../src/data/readers/index';
import { prepareEcg } from '../../src/data/preprocess/ecg';
import { prepareCine } from '../../src/data/preprocess/cmr';
import { makeTestCohort, type TestCohort } from './helpers/build-cohort';

const fs = new NodeBuildFileSystem();
const PHANTOMS = 6;
/** The phantoms plus the CSV + DICOM subject. */
const GOOD = PHANTOMS + 1;
let cohort: TestCohort;
const DATASET_FILES = ['manifest.json', 'rejected.csv', ...['train', 'val', 'test'].flatMap((s) => [`${s}/ecg.npy`, `${s}/cmr.npy`, `${s}/meta.json`])];

function expectSameDataset(a: string, b: string) {
  for (const f of DATASET_FILES) expect(readFileSync(join(b, f)).equals(readFileSync(join(a, f))), `${f} differs between ${a} and ${b}`).toBe(true);
}

beforeAll(async () => {
  cohort = await makeTestCohort(PHANTOMS);
}, 60_000);

afterAll(() => {
  if (cohort) rmSync(cohort.root, { recursive: true, force: true });
});

describe('data build', () => {
  it('1 worker, 2 workers and 2 merged shards write byte-identical datasets; failures land in rejected.csv', async () => {
    const pairs = await readPairsCsv(fs, cohort.pairsCsv);
    const out = (name: string) => join(cohort.root, name);
    const one = await buildDataset(fs, { out: out('one'), pairs, workers: 1 });
    const two = await buildDataset(fs, { out: out('two'), pairs, workers: 2 });
    await buildDataset(fs, { out: out('shard0'), pairs, workers: 0, shard: { index: 0, count: 2 } });
    await buildDataset(fs, { out: out('shard1'), pairs, workers: 1, shard: { index: 1, count: 2 } });
    await expect(mergeShards(fs, [out('shard1')], out('bad-merge'))).rejects.toThrow(/missing shard\(s\) 0\/2/);
    await mergeShards(fs, [out('shard1'), out('shard0')], out('merged'));
    expect([one.accepted, one.rejected, two.accepted, two.rejected]).toEqual([GOOD, 4, GOOD, 4]);
    expectSameDataset(out('one'), out('two'));
    expectSameDataset(out('one'), out('merged'));
    const shard0 = JSON.parse(readFileSync(join(out('shard0'), 'manifest.json'), 'utf8')) as BuiltDatasetManifest;
    expect(shard0.subjects.every((s) => s.pairIndex % 2 === 0)).toBe(true);
    expect(shard0.subjects.length).toBeLessThan(GOOD);

    // rejected.csv: every broken subject, its file and the reason, in pair order.
    const rejected = parseCsvRows(readFileSync(join(out('one'), 'rejected.csv'), 'utf8'), 'rejected.csv');
    expect(rejected[0].cells).toEqual(['subject_id', 'pair_index', 'stage', 'file', 'reason']);
    const byId = Object.fromEntries(rejected.slice(1).map((r) => [r.cells[0], r.cells]));
    expect(Object.keys(byId)).toEqual(cohort.brokenIds);
    expect(byId['bad-missing'][2]).toBe('ecg');
    expect(byId['bad-missing'][3]).toMatch(/does-not-exist\.hea$/);
    expect(byId['bad-missing'][4]).toMatch(/not found|no such/i);
    expect(byId['bad-cut'][2]).toBe('ecg');
    expect(byId['bad-cut'][3]).toMatch(/ecg\/cut\.hea/);
    expect(byId['bad-cut'][4]).toMatch(/truncat|short|bytes|samples/i);
    expect(byId['bad-flat'].slice(2, 4)).toEqual(['cmr', join(cohort.root, 'cmr/flat.nii')]);
    expect(byId['bad-flat'][4]).toMatch(/constant/);
    expect(byId['bad-empty'][2]).toBe('pair');
    expect(byId['bad-empty'][4]).toMatch(/no CMR path/);

    // Manifest: labels typed, class column as cls, sources, split counts; the loader opens every split.
    const manifest = one.manifest;
    expect(manifest.build.labelColumns).toEqual([{ name: 'class', type: 'string' }, { name: 'ef', type: 'number' }, { name: 'edv', type: 'number' }, { name: 'esv', type: 'number' }]);
    expect(manifest.subjects.map((s) => s.id).sort()).toEqual([...cohort.goodIds].sort());
    const first = manifest.subjects.find((s) => s.id === cohort.goodIds[0])!;
    expect(first.sources.ecg).toContain('odd, "dir"');
    expect(typeof first.labels.ef).toBe('number');
    expect(first.cls).toBe(first.labels.class);
    const counts = (['train', 'val', 'test'] as const).map((s) => manifest.splits[s].count);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(GOOD);
    for (const s of manifest.subjects) {
      expect(s.heartRateBpm).toBeGreaterThan(45);
      expect(s.heartRateBpm).toBeLessThan(115);
      expect(s.amplitudeMv).toBeGreaterThan(0.3);
    }
    const split = counts[0] > 0 ? 'train' : 'val';
    const source = await NpyDatasetSource.open(fs, out('one'), split, { batchSize: 2, shuffle: false });
    expect(source.length).toBe(manifest.splits[split].count);
    const row0 = manifest.subjects.find((s) => s.split === split && s.row === 0)!;
    const batch = (await source.batches(0).next()).value!;
    expect(batch.ids[0]).toBe(row0.id);
    const pair = pairs.pairs[row0.pairIndex];
    const ecg = prepareEcg(await readEcgFile(fs, pair.ecg)).data;
    const cine = prepareCine(await readCmrFile(fs, pair.cmr), { source: pair.cmr }).data;
    expect(batch.ecg.subarray(0, 60000)).toEqual(ecg);
    expect(batch.cmr.subarray(0, 50 * 96 * 96)).toEqual(cine);

    // QC report: counts, rejection reasons, histograms, strips with the R peaks, cine thumbnails.
    const qc = readFileSync(join(out('one'), 'qc.md'), 'utf8');
    expect(qc).toContain(`**${GOOD} accepted**, **4 rejected**`);
    expect(qc).toMatch(/\| cmr \| cine is constant.*\| 1 \| bad-flat/);
    expect(qc).toContain(`| class | string | ${GOOD}/${GOOD} |`);
    expect(readFileSync(join(out('one'), 'qc.md'), 'utf8')).toBe(readFileSync(join(out('merged'), 'qc.md'), 'utf8'));
    const hr = readFileSync(join(out('one'), 'qc/heart-rate.svg'), 'utf8');
    const barCounts = [...hr.matchAll(/bpm: (\d+)<\/title>/g)].map((m) => Number(m[1]));
    expect(barCounts.reduce((a, b) => a + b, 0)).toBe(GOOD);
    const strips = readFileSync(join(out('one'), 'qc/ecg-strips.svg'), 'utf8');
    const meta = ['train', 'val', 'test'].flatMap((s) => JSON.parse(readFileSync(join(out('one'), s, 'meta.json'), 'utf8')).subjects as { rPeaks: number[] }[]);
    expect((strips.match(/<circle/g) ?? []).length).toBe(meta.reduce((a, s) => a + s.rPeaks.length, 0));
    const pngs = [...qc.matchAll(/qc\/(cine-[a-z]+-\d+\.png)/g)].map((m) => m[1]);
    expect(pngs.length).toBe(GOOD);
    const png = PNG.sync.read(readFileSync(join(out('one'), 'qc', pngs[0])));
    expect([png.width, png.height]).toEqual([5 * 96 + 4 * 2, 100]);
  }, 120_000);

  it('resumes after a kill mid-append: the partial row and journal line are cut, the result matches a clean build', async () => {
    const pairs = await readPairsCsv(fs, cohort.pairsCsv);
    const reference = join(cohort.root, 'reference');
    const dir = join(cohort.root, 'killed');
    await buildDataset(fs, { out: reference, pairs, workers: 0, qc: false });
    const kill = new Error('simulated kill');
    await expect(buildDataset(fs, {
      out: dir, pairs, workers: 0, qc: false,
      onProgress: (p) => { if (p.doneThisRun === 6) throw kill; },
    })).rejects.toBe(kill);
    // The kill hit while the 7th subject was being appended: half a row in train, half a journal line.
    const trainEcg = join(dir, 'train/ecg.npy');
    const before = statSync(trainEcg).size;
    appendFileSync(trainEcg, new Uint8Array(12345).fill(9));
    appendFileSync(join(dir, 'build-journal.jsonl'), '{"kind":"subject","subject":{"id":"half');
    expect(existsSync(join(dir, 'manifest.json'))).toBe(false);
    await expect(buildDataset(fs, { out: dir, pairs, workers: 0 })).rejects.toThrow(/pass --resume/);
    await expect(buildDataset(fs, { out: dir, pairs, workers: 0, resume: true, seed: 5 })).rejects.toThrow(/different build \(seed was 42, now 5\)/);
    expect(statSync(trainEcg).size).toBe(before + 12345);
    const resumed = await buildDataset(fs, { out: dir, pairs, workers: 2, resume: true, qc: false });
    expect(resumed.processedThisRun).toBe(pairs.pairs.length - 6);
    expectSameDataset(reference, dir);
    // Worker threads that die (here: a 4 MB heap) reject their subjects with stage 'worker', then stop the build
    // with one error; --resume retries those subjects, so nothing stays lost.
    const starved = join(cohort.root, 'starved');
    await expect(buildDataset(fs, { out: starved, pairs, workers: 1, workerMemoryMb: 4, qc: false })).rejects.toThrow(/worker threads keep failing .*memory/);
    const journal = readFileSync(join(starved, 'build-journal.jsonl'), 'utf8');
    expect(journal).toMatch(/"stage":"worker"/);
    const retried = await buildDataset(fs, { out: starved, pairs, workers: 0, resume: true, qc: false });
    expect(retried.processedThisRun).toBe(pairs.pairs.length);
    expectSameDataset(reference, starved);
    // A retried worker failure lands after the rows written meanwhile: the manifest follows the rows, and the
    // loader returns each id's own data.
    const late = join(cohort.root, 'late');
    const inline = new InlineRunner(fs, {});
    const flaky = {
      concurrency: 1,
      run: (pair: (typeof pairs.pairs)[number]) => (pair.index === 0 ? Promise.resolve({ ok: false as const, stage: 'worker' as const, file: pair.ecg, reason: 'worker thread exited with code 1' }) : inline.run(pair)),
      close: async () => {},
    };
    await buildDataset(fs, { out: late, pairs, workers: 0, runner: flaky, qc: false });
    expect(readFileSync(join(late, 'rejected.csv'), 'utf8')).toContain('worker thread exited with code 1');
    const fixed = await buildDataset(fs, { out: late, pairs, workers: 0, resume: true, qc: false });
    expect([fixed.processedThisRun, fixed.accepted, fixed.rejected]).toEqual([1, GOOD, 4]);
    const retriedSubject = fixed.manifest.subjects.find((s) => s.pairIndex === 0)!;
    expect(retriedSubject.row).toBe(fixed.manifest.splits[retriedSubject.split].count - 1);
    for (const split of ['train', 'val', 'test'] as const) {
      if (!fixed.manifest.splits[split].count) continue;
      const loader = await NpyDatasetSource.open(fs, late, split, { batchSize: 1, shuffle: false });
      for (let row = 0; row < loader.length; row++) {
        const pair = pairs.pairs.find((p) => p.id === loader.ids[row])!;
        expect((await loader.readSample(row)).ecg).toEqual(prepareEcg(await readEcgFile(fs, pair.ecg)).data);
      }
    }
    // Resuming a finished build does nothing and leaves it intact.
    const again = await buildDataset(fs, { out: dir, pairs, workers: 0, resume: true, qc: false });
    expect(again.processedThisRun).toBe(0);
    expectSameDataset(reference, dir);
  }, 120_000);

  it('folder mode pairs by the id in file names; one-sided ids are rejected; rows match the pairs.csv build', async () => {
    const fs2 = fs;
    const byCsv = join(cohort.root, 'by-csv');
    const byFolder = join(cohort.root, 'by-folder');
    await buildDataset(fs2, { out: byCsv, pairs: await readPairsCsv(fs2, cohort.pairsCsv), workers: 0, qc: false });
    writeFileSync(join(cohort.root, 'labels.csv'), `subject_id,EF\n${cohort.goodIds[3]},0.42\n`);
    const folders = await pairFolders(fs2, { ecgDir: join(cohort.root, 'ecg'), cmrDir: join(cohort.root, 'cmr'), labelsCsv: join(cohort.root, 'labels.csv') });
    expect(folders.pairs.map((p) => p.id)).toEqual(['cut', 'dcm-1', 'flat', ...cohort.goodIds.filter((id) => id.startsWith('sub-'))]);
    const result = await buildDataset(fs2, { out: byFolder, pairs: folders, workers: 0, qc: false });
    expect([result.accepted, result.rejected]).toEqual([GOOD, 2]);
    const rejected = readFileSync(join(byFolder, 'rejected.csv'), 'utf8');
    expect(rejected).toMatch(/^cut,0,pair,.*ecg\/cut\.hea,no CMR entry in .*cmr matches subject id 'cut'$/m);
    expect(rejected).toMatch(/^flat,2,pair,.*cmr\/flat\.nii,no ECG entry in .*ecg matches subject id 'flat'$/m);
    expect(result.manifest.subjects.find((s) => s.id === cohort.goodIds[3])!.labels).toEqual({ EF: 0.42 });
    const dcm = result.manifest.subjects.find((s) => s.id === 'dcm-1')!;
    expect(dcm.sources.cmr).toMatch(/cmr\/dcm-1$/);
    expect(dcm.warnings.join(' ')).toMatch(/centre-cropped 40x48/);
    for (const split of ['train', 'val', 'test']) {
      for (const kind of ['ecg', 'cmr']) {
        expect(readFileSync(join(byFolder, split, `${kind}.npy`)).equals(readFileSync(join(byCsv, split, `${kind}.npy`)))).toBe(true);
      }
    }
    const narrow = await pairFolders(fs2, { ecgDir: join(cohort.root, 'ecg'), cmrDir: join(cohort.root, 'cmr'), idPattern: '^(?<id>sub-\\d+)' });
    expect(narrow.pairs.map((p) => p.id)).toEqual(cohort.goodIds.filter((id) => id.startsWith('sub-')));
  }, 120_000);
});
