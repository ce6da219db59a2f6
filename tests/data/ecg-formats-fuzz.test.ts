/**
 * Seeded mutation fuzzing of the ECG format readers: every mutant of every fixture must either read
 * into a consistent recording or raise a DataError that names the file. An internal RangeError,
 * TypeError, a library's own exception or a recording with non-finite values fails the test, and the
 * failure lists each offending mutant by seed and edit, so it can be reproduced.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors';
import { parseEcgBytes } from '../../src/data/readers/ecg-formats';
import type { EcgRecording } from '../../src/data/preprocess/ecg';
import { fuzzReader, mutants } from '../helpers/fuzz';
import { realFile } from '../helpers/real-files';
import { fixtureBytes } from './helpers/ecg-formats';

/** A DataError that names the file it came from. */
const isTyped = (source: string) => (e: unknown) => e instanceof DataError && e.message.startsWith(`${source}: `);

/** What a reader may return: consistent lengths, names, a finite rate and finite samples. */
function checkConsistent(rec: EcgRecording): void {
  if (!rec.signals.length || rec.signals.length !== rec.leadNames.length) throw new Error('signals and names disagree');
  if (!(Number.isFinite(rec.fs) && rec.fs > 0)) throw new Error(`bad fs ${rec.fs}`);
  const n = rec.signals[0].length;
  for (const s of rec.signals) {
    if (s.length !== n || n === 0) throw new Error('signals of different or zero length');
    for (const v of s) if (!Number.isFinite(v)) throw new Error('non-finite sample returned');
  }
}

const CASES: { fixture: string; source: string; count: number; headerBias?: number }[] = [
  { fixture: 'cardiosoft-rest.xml', source: 'fuzz.xml', count: 60, headerBias: 2000 },
  { fixture: 'cardiosoft-fulldisclosure.xml', source: 'fuzz.xml', count: 60 },
  { fixture: 'muse-rest.xml', source: 'fuzz.xml', count: 60, headerBias: 2000 },
  { fixture: 'hl7-aecg.xml', source: 'fuzz.xml', count: 60, headerBias: 2000 },
  { fixture: 'dicom-ecg-mv.dcm', source: 'fuzz.dcm', count: 200, headerBias: 2500 },
  { fixture: 'ecg.edf', source: 'fuzz.edf', count: 200, headerBias: 1536 },
];

describe('ECG format readers under seeded mutation', () => {
  for (const c of CASES) {
    it(`${c.fixture}: every mutant reads consistently or raises a DataError naming the file`, async () => {
      const bytes = fixtureBytes(c.fixture);
      const list = [1, 2].flatMap((seed) => mutants(bytes, seed, c.count / 2, { headerBias: c.headerBias }));
      const result = await fuzzReader(list, (m) => checkConsistent(parseEcgBytes(m, c.source)), isTyped(c.source));
      expect(result.failures).toEqual([]);
      // Both outcomes must occur, or the mutants are not reaching the reader's checks.
      expect(result.typed).toBeGreaterThan(0);
      expect(result.valid).toBeGreaterThan(0);
    });
  }

  it('waveform_ecg.dcm (real file): every mutant reads consistently or raises a DataError', async () => {
    const path = realFile('pydicom', 'waveform_ecg.dcm');
    if (!path) return; // not fetched locally (under CI realFile throws instead)
    const list = mutants(new Uint8Array(readFileSync(path)), 3, 100, { headerBias: 3000 });
    const result = await fuzzReader(list, (m) => checkConsistent(parseEcgBytes(m, 'real.dcm')), isTyped('real.dcm'));
    expect(result.failures).toEqual([]);
  });
});
