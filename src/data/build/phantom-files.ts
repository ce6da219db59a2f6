/**
 * A cohort of phantom subjects written as ordinary files, the way a hospital export looks: per subject a
 * WFDB record (format 16, 1 uV per unit) and a NIfTI cine (raw intensities), plus a pairs.csv with label
 * columns (class, EF, EDV, ESV proxies). It lets `data build` be tried, tested and timed without patient data.
 */
import { joinPath } from '../fs';
import type { DataFileSystem } from '../fs';
import { generateSubject } from '../phantom/subject';
import { LEAD_NAMES } from '../phantom/ecg';
import { writeNifti } from '../writers/nifti';

/** A WFDB header + format-16 signal file for a (12, n) ECG in mV at `fs` Hz, `gain` ADC units per mV. */
export function wfdbRecord(record: string, ecg: Float32Array, fs = 500, gain = 1000): { header: string; dat: Uint8Array } {
  const n = ecg.length / 12;
  const dat = new Uint8Array(n * 12 * 2);
  const view = new DataView(dat.buffer);
  const checksums = new Array(12).fill(0);
  for (let i = 0; i < n; i++) {
    for (let l = 0; l < 12; l++) {
      const adc = Math.max(-32767, Math.min(32767, Math.round(ecg[l * n + i] * gain)));
      view.setInt16((i * 12 + l) * 2, adc, true);
      checksums[l] = (checksums[l] + adc) & 0xffff;
    }
  }
  const lines = [`${record} 12 ${fs} ${n}`];
  LEAD_NAMES.forEach((name, l) => {
    const checksum = checksums[l] >= 0x8000 ? checksums[l] - 0x10000 : checksums[l];
    lines.push(`${record}.dat 16 ${gain}(0)/mV 16 0 0 ${checksum} 0 ${name}`);
  });
  return { header: lines.join('\n') + '\n', dat };
}

export interface PhantomCohortOptions {
  n: number;
  seed?: number;
  /** First phantom index (default 0). */
  offset?: number;
  /** gzip the NIfTI files (default false: faster to write and read). */
  gzip?: boolean;
}

/** Writes DIR/ecg/<id>.hea+.dat, DIR/cmr/<id>.nii[.gz] and DIR/pairs.csv (paths relative to DIR). */
export async function writePhantomCohort(fs: DataFileSystem, dir: string, options: PhantomCohortOptions): Promise<string[]> {
  const seed = options.seed ?? 7;
  const ext = options.gzip ? 'nii.gz' : 'nii';
  await fs.mkdir(joinPath(dir, 'ecg'));
  await fs.mkdir(joinPath(dir, 'cmr'));
  const lines = ['subject_id,ecg,cmr,class,ef,edv,esv'];
  const ids: string[] = [];
  for (let k = 0; k < options.n; k++) {
    const index = (options.offset ?? 0) + k;
    const s = generateSubject(seed, index, { cine: true });
    const id = `sub-${String(index).padStart(5, '0')}`;
    const { header, dat } = wfdbRecord(id, s.ecg);
    await fs.writeFile(joinPath(dir, 'ecg', `${id}.hea`), header);
    await fs.writeFile(joinPath(dir, 'ecg', `${id}.dat`), dat);
    // Raw intensities (not normalised), so the build's own normalisation is exercised.
    await fs.writeFile(joinPath(dir, 'cmr', `${id}.${ext}`), writeNifti(s.cine!, { frames: 50, height: 96, width: 96 }, { gzip: options.gzip }));
    const t = s.truth;
    lines.push([id, `ecg/${id}.hea`, `cmr/${id}.${ext}`, t.cls, t.efProxy.toFixed(4), t.edvProxy.toFixed(1), t.esvProxy.toFixed(1)].join(','));
    ids.push(id);
  }
  await fs.writeFile(joinPath(dir, 'pairs.csv'), lines.join('\n') + '\n');
  return ids;
}
