/**
 * Real files from Debian's python3-pydicom and python3-nibabel packages (scripts/fetch-test-files.sh).
 *
 * `realFile('pydicom', 'waveform_ecg.dcm')` returns the path, or null when the files were not fetched.
 * Under CI (CI=true) a missing file throws instead: a reader test that silently skips in CI would be a
 * test that cannot fail. Locally, `describeReal` skips with the command that fetches them.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe } from 'vitest';

export const REAL_FILES_DIR = resolve(__dirname, '../../.cache/debian-test-files');

export type RealFileSet = 'pydicom' | 'nibabel' | 'nibabel-nicom';

export function realFilesPresent(): boolean {
  return existsSync(join(REAL_FILES_DIR, '.complete'));
}

export function realFile(set: RealFileSet, name: string): string | null {
  const path = join(REAL_FILES_DIR, set, name);
  if (existsSync(path)) return path;
  if (process.env.CI) throw new Error(`real test file ${set}/${name} missing: CI must run scripts/fetch-test-files.sh first`);
  return null;
}

/** `describe` that runs when the real files are present, fails under CI when they are not, else skips. */
export function describeReal(name: string, fn: () => void): void {
  if (realFilesPresent() || process.env.CI) describe(name, fn);
  else describe.skip(`${name} (run: bash scripts/fetch-test-files.sh)`, fn);
}
