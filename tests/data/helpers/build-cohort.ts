/** A small on-disk cohort for the build tests: phantom subjects as WFDB + NIfTI files plus broken entries. */
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeFileSystem } from '../../../src/data/node-fs';
import { writePhantomCohort } from '../../../src/data/build/phantom-files';
import { writeNifti } from '../../../src/data/writers/nifti';

export interface TestCohort {
  root: string;
  pairsCsv: string;
  goodIds: string[];
  brokenIds: string[];
}

/**
 * `good` phantom subjects (pairs.csv with class, ef, edv, esv) plus four broken ones: a missing ECG file, a
 * WFDB record whose .dat is cut short, a constant cine, and an empty CMR path. One good subject's files
 * sit in a folder whose name holds a comma, so its paths are quoted in pairs.csv.
 */
export async function makeTestCohort(good: number): Promise<TestCohort> {
  const root = mkdtempSync(join(tmpdir(), 'build-cohort-'));
  const goodIds = await writePhantomCohort(new NodeFileSystem(), root, { n: good, seed: 3 });
  const lines = readFileSync(join(root, 'pairs.csv'), 'utf8').trim().split('\n');
  // Move the first subject behind quoted paths.
  const odd = join(root, 'odd, "dir"');
  mkdirSync(odd);
  const first = goodIds[0];
  for (const f of [`ecg/${first}.hea`, `ecg/${first}.dat`, `cmr/${first}.nii`]) cpSync(join(root, f), join(odd, f.split('/')[1]));
  const cells = lines[1].split(',');
  lines[1] = [cells[0], `"odd, ""dir""/${first}.hea"`, `"odd, ""dir""/${first}.nii"`, ...cells.slice(3)].join(',');

  writeFileSync(join(root, 'ecg/cut.hea'), readFileSync(join(root, `ecg/${goodIds[1]}.hea`), 'utf8').replaceAll(goodIds[1], 'cut'));
  writeFileSync(join(root, 'ecg/cut.dat'), readFileSync(join(root, `ecg/${goodIds[1]}.dat`)).subarray(0, 5000));
  writeFileSync(join(root, 'cmr/flat.nii'), writeNifti(new Float32Array(50 * 32 * 32).fill(7), { frames: 50, height: 32, width: 32 }));
  lines.push(
    `bad-missing,ecg/does-not-exist.hea,cmr/${goodIds[1]}.nii,healthy,,,`,
    `bad-cut,ecg/cut.hea,cmr/${goodIds[1]}.nii,healthy,0.5,,`,
    `bad-flat,ecg/${goodIds[2]}.hea,cmr/flat.nii,dilated,0.2,,`,
    `bad-empty,ecg/${goodIds[2]}.hea,,dilated,,,`,
  );
  const pairsCsv = join(root, 'pairs.csv');
  writeFileSync(pairsCsv, lines.join('\n') + '\n');
  return { root, pairsCsv, goodIds, brokenIds: ['bad-missing', 'bad-cut', 'bad-flat', 'bad-empty'] };
}
