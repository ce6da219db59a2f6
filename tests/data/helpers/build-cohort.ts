/** A small on-disk cohort for the build tests: phantom subjects as WFDB + NIfTI files plus broken entries. */
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeFileSystem } from '../../../src/data/node-fs';
import { writePhantomCohort } from '../../../src/data/build/phantom-files';
import { writeNifti } from '../../../src/data/writers/nifti';
import { generateSubject } from '../../../src/data/phantom/subject';
import { LEAD_NAMES } from '../../../src/data/phantom/ecg';
import { dicomFile } from './writers';

export interface TestCohort {
  root: string;
  pairsCsv: string;
  goodIds: string[];
  brokenIds: string[];
}

/**
 * A subject in the other formats: a 250 Hz CSV ECG with a time column, and a folder of 25 uncompressed
 * DICOM frames of 40x48 pixels (so preprocessing resamples, crops and resizes).
 */
function writeCsvDicomSubject(root: string, id: string): string {
  const s = generateSubject(3, 100, { cine: true });
  const rows = ['t,' + LEAD_NAMES.join(',')];
  for (let i = 0; i < 5000; i += 2) rows.push([(i / 500).toFixed(3), ...LEAD_NAMES.map((_, l) => s.ecg[l * 5000 + i].toFixed(4))].join(','));
  writeFileSync(join(root, 'ecg', `${id}.csv`), rows.join('\n') + '\n');
  mkdirSync(join(root, 'cmr', id));
  for (let f = 0; f < 25; f++) {
    const pixels = new Uint16Array(40 * 48);
    for (let y = 0; y < 40; y++) for (let x = 0; x < 48; x++) pixels[y * 48 + x] = Math.round(1000 * s.cine![2 * f * 9216 + (y * 2 + 8) * 96 + x * 2]);
    writeFileSync(join(root, 'cmr', id, `im${String(f).padStart(3, '0')}.dcm`), dicomFile({ rows: 40, cols: 48, pixels, instance: f + 1 }));
  }
  return [id, `ecg/${id}.csv`, `cmr/${id}`, s.truth.cls, s.truth.efProxy.toFixed(4), '', ''].join(',');
}

/**
 * `good` phantom subjects as WFDB + NIfTI (pairs.csv with class, ef, edv, esv), one more as CSV ECG + DICOM
 * folder ('dcm-1', listed first), plus four broken ones: a missing ECG file, a
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
  lines.splice(1, 0, writeCsvDicomSubject(root, 'dcm-1'));

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
  return { root, pairsCsv, goodIds: [...goodIds, 'dcm-1'], brokenIds: ['bad-missing', 'bad-cut', 'bad-flat', 'bad-empty'] };
}
