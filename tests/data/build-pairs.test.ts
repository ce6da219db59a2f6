import { describe, expect, it } from 'vitest';
import { MemoryFileSystem } from '../../src/data/fs';
import { DataError } from '../../src/data/errors';
import { parseCsvRows, readPairsCsv, pairFolders, resolveListedPath } from '../../src/data/build/pairs';
import { splitForId, parseShard, inShard, hashString, parseSplitFractions } from '../../src/data/build/split';
import { progressLine } from '../../src/data/build/progress';
import { reasonKind } from '../../src/data/build/qc';
import { rejectedCsv } from '../../src/data/build/store';
import { chosenSeries } from '../../src/data/build/subject';

describe('pairs.csv', () => {
  it('reads quoted paths (commas, quotes, line breaks) and types label columns', async () => {
    const fs = new MemoryFileSystem();
    await fs.writeFile('/cohort/pairs.csv', [
      'subject_id,ecg,cmr,EF,LV mass,diagnosis',
      'a1,ecg/a1.hea,"cmr/dir, with comma/a1.nii",0.55,120.5,healthy',
      '"a2","/abs/ecg ""2"".csv",cmr/a2.zip,,98,"DCM, severe"',
      '# a comment line',
      'a3,ecg/a3.hea,"cmr/multi',
      'line.nii",0.31,,HCM',
      '',
    ].join('\n'));
    const list = await readPairsCsv(fs, '/cohort/pairs.csv');
    expect(list.pairs.map((p) => p.id)).toEqual(['a1', 'a2', 'a3']);
    expect(list.pairs[0].cmr).toBe('/cohort/cmr/dir, with comma/a1.nii');
    expect(list.pairs[1].ecg).toBe('/abs/ecg "2".csv');
    expect(list.pairs[2].cmr).toBe('/cohort/cmr/multi\nline.nii');
    expect(list.labelColumns).toEqual([{ name: 'EF', type: 'number' }, { name: 'LV mass', type: 'number' }, { name: 'diagnosis', type: 'string' }]);
    expect(list.pairs[0].labels).toEqual({ EF: 0.55, 'LV mass': 120.5, diagnosis: 'healthy' });
    expect(list.pairs[1].labels).toEqual({ EF: null, 'LV mass': 98, diagnosis: 'DCM, severe' });
    expect(list.pairs[2].origin).toBe('pairs line 5');
    // The digest follows the content.
    await fs.writeFile('/cohort/pairs.csv', decodeFirst(await fs.readFile('/cohort/pairs.csv')).replace('0.55', '0.56'));
    expect((await readPairsCsv(fs, '/cohort/pairs.csv')).digest).not.toBe(list.digest);
  });

  it('honours a split column and rejects bad headers, duplicate ids and bad split names with the line', async () => {
    const fs = new MemoryFileSystem();
    await fs.writeFile('p.csv', 'id,ecg,cmr,split\nx,e.csv,c.nii,test\ny,e2.csv,c2.nii,\n');
    const list = await readPairsCsv(fs, 'p.csv');
    expect(list.pairs.map((p) => p.split)).toEqual(['test', undefined]);
    expect(list.labelColumns).toEqual([]);
    expect(list.pairs[0].ecg).toBe('e.csv');
    await fs.writeFile('p.csv', 'id,ecg,cmr,split\nx,e.csv,c.nii,holdout\n');
    await expect(readPairsCsv(fs, 'p.csv')).rejects.toThrow(/line 2: split 'holdout'/);
    await fs.writeFile('p.csv', 'subject_id,ecg,cmr\nx,a,b\nx,c,d\n');
    await expect(readPairsCsv(fs, 'p.csv')).rejects.toThrow(/line 3: subject id 'x' repeats line 2/);
    await fs.writeFile('p.csv', 'subject_id,ecg,image\nx,a,b\n');
    await expect(readPairsCsv(fs, 'p.csv')).rejects.toThrow(DataError);
    await fs.writeFile('p.csv', 'subject_id,ecg,cmr\nx,a,b,c\n');
    await expect(readPairsCsv(fs, 'p.csv')).rejects.toThrow(/line 2: 4 cells but the header has 3/);
    await fs.writeFile('p.csv', 'subject_id,ecg,cmr\nx,"a,b\n');
    await expect(readPairsCsv(fs, 'p.csv')).rejects.toThrow(/never closed/);
    await expect(readPairsCsv(fs, 'nope.csv')).rejects.toThrow(/nope.csv: file not found/);
  });

  it('parses semicolon and tab delimited rows', () => {
    expect(parseCsvRows('a;b;c\n1;"x;y";3\n', 's').map((r) => r.cells)).toEqual([['a', 'b', 'c'], ['1', 'x;y', '3']]);
    expect(parseCsvRows('a\tb\r\n1\t2\r\n', 's').map((r) => r.cells)).toEqual([['a', 'b'], ['1', '2']]);
    expect(resolveListedPath('list.csv', 'x/y')).toBe('x/y');
    expect(resolveListedPath('d/list.csv', 'C:\\data\\x')).toBe('C:\\data\\x');
  });
});

function decodeFirst(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

describe('folder mode', () => {
  it('pairs by the id in file names, counts a WFDB .dat with its .hea, and names what is missing or ambiguous', async () => {
    const fs = new MemoryFileSystem();
    for (const name of ['P001_rest.hea', 'P001_rest.dat', 'P002_rest.csv', 'P003_rest.hea', 'P003_rest.dat', 'P004_a.csv', 'P004_b.csv', 'notes.txt']) await fs.writeFile(`/e/${name}`, 'x');
    for (const name of ['cine_P001.nii.gz', 'cine_P002.nii', 'cine_P004.nii', 'cine_P005.nii']) await fs.writeFile(`/c/${name}`, 'x');
    await fs.mkdir('/c/cine_P003_dicom');
    await fs.writeFile('/c/cine_P003_dicom/1.dcm', 'x');
    await fs.writeFile('/labels.csv', 'subject_id,EF,group\nP001,0.6,ctrl\nP003,0.4,case\n');
    const list = await pairFolders(fs, { ecgDir: '/e', cmrDir: '/c', idPattern: '(?<id>P\\d{3})', labelsCsv: '/labels.csv' });
    expect(list.pairs.map((p) => p.id)).toEqual(['P001', 'P002', 'P003', 'P004', 'P005']);
    const byId = Object.fromEntries(list.pairs.map((p) => [p.id, p]));
    expect(byId.P001).toMatchObject({ ecg: '/e/P001_rest.hea', cmr: '/c/cine_P001.nii.gz', labels: { EF: 0.6, group: 'ctrl' } });
    expect(byId.P002.labels).toEqual({ EF: null, group: null });
    expect(byId.P003.cmr).toBe('/c/cine_P003_dicom');
    expect(byId.P004.missing).toMatch(/several ECG entries in \/e match subject id 'P004': P004_a.csv, P004_b.csv/);
    expect(byId.P005.missing).toMatch(/no ECG entry in \/e matches subject id 'P005'/);
    expect(list.labelColumns).toEqual([{ name: 'EF', type: 'number' }, { name: 'group', type: 'string' }]);
    await expect(pairFolders(fs, { ecgDir: '/e', cmrDir: '/c', idPattern: '(' })).rejects.toThrow(/not a valid regular expression/);
    await expect(pairFolders(fs, { ecgDir: '/nothing', cmrDir: '/c' })).rejects.toThrow(/\/nothing: folder not found/);
  });
});

describe('split and shard assignment', () => {
  it('is a seeded hash of the id: stable, close to the fractions, order-free', () => {
    const ids = Array.from({ length: 4000 }, (_, i) => `subject-${i}`);
    const splits = ids.map((id) => splitForId(id, [0.7, 0.2, 0.1], 42));
    const share = (s: string) => splits.filter((x) => x === s).length / ids.length;
    expect(share('train')).toBeGreaterThan(0.67);
    expect(share('train')).toBeLessThan(0.73);
    expect(share('val')).toBeGreaterThan(0.18);
    expect(share('test')).toBeGreaterThan(0.08);
    expect([...ids].reverse().map((id) => splitForId(id, [0.7, 0.2, 0.1], 42)).reverse()).toEqual(splits);
    expect(ids.map((id) => splitForId(id, [0.7, 0.2, 0.1], 43))).not.toEqual(splits);
    expect(splitForId('x', [0, 0, 1], 1)).toBe('test');
    expect(hashString(1, 'é')).not.toBe(hashString(1, 'e'));
    expect(() => parseSplitFractions('0.8,0.2')).toThrow(/three/);
  });

  it('parses i/n and deals pairs round-robin', () => {
    expect(parseShard('2/5')).toEqual({ index: 2, count: 5 });
    expect(() => parseShard('5/5')).toThrow(/0 <= i < n/);
    expect(() => parseShard('1-4')).toThrow(/i\/n/);
    const owners = Array.from({ length: 10 }, (_, i) => [0, 1, 2].filter((s) => inShard(i, { index: s, count: 3 })));
    expect(owners.every((o) => o.length === 1)).toBe(true);
  });
});

describe('report helpers', () => {
  it('progress line shows rate and ETA; reasons group by kind; rejected.csv quotes', () => {
    expect(progressLine({ done: 30, total: 100, rejected: 2, doneThisRun: 20, elapsedSeconds: 10 }, 10)).toBe('[###-------] 30/100 30.0% 2.00 subj/s ETA 35s rejected 2');
    expect(reasonKind("recording is 1.50 s long; at least 2 s needed")).toBe(reasonKind('recording is 0.20 s long; at least 2 s needed'));
    expect(reasonKind("lead 'V3' is flat")).toBe(reasonKind("lead 'I' is flat"));
    expect(rejectedCsv([{ id: 'a', pairIndex: 3, stage: 'cmr', file: 'x, y.nii', reason: 'said "no"' }])).toBe('subject_id,pair_index,stage,file,reason\na,3,cmr,"x, y.nii","said ""no"""\n');
  });

  it('keeps the chosen CMR series, its reason and the number of series a reader reports', () => {
    const volume = { data: new Float32Array(1), frames: 1, height: 1, width: 1, warnings: [], selection: { chosen: { uid: '1.2', description: 'cine 4ch' }, reason: 'pattern /4ch/', series: [{}, {}, {}] } };
    expect(chosenSeries(volume)).toEqual({ chosen: { uid: '1.2', description: 'cine 4ch' }, reason: 'pattern /4ch/', seriesFound: 3 });
    expect(chosenSeries({ data: new Float32Array(1) })).toBeUndefined();
  });
});
