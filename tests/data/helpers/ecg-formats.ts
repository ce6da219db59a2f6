/**
 * Shared by the ECG format tests: fixture loading (tests/fixtures/ecg, written by
 * tools/make_ecg_fixtures.py with expected values computed in Python) and the comparison of a reader's
 * output with those expected values.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect } from 'vitest';
import { DataError } from '../../../src/data/errors';
import type { EcgRecording } from '../../../src/data/preprocess/ecg';

export const ECG_FIXTURES = resolve(__dirname, '../../fixtures/ecg');

export interface ExpectedLead {
  name: string;
  length: number;
  sum: number;
  sumSq: number;
  sampleIndex: number[];
  samples: number[];
}

export interface Expected {
  fs: number;
  leads: ExpectedLead[];
}

export function fixtureBytes(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(ECG_FIXTURES, name)));
}

export function fixtureText(name: string): string {
  return readFileSync(join(ECG_FIXTURES, name), 'latin1');
}

/** Text -> bytes as the XML fixtures are stored (their declaration says ISO-8859-1 or UTF-8; all ASCII). */
export function textBytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

export function expectedFor(name: string): Expected {
  return JSON.parse(readFileSync(join(ECG_FIXTURES, `${name}.expected.json`), 'utf8')) as Expected;
}

/**
 * Compares a recording with expected values lead by lead (in order): length, a sample every 97, sum and
 * sum of squares. Float32 output: samples to 1e-5 mV, sums relative 1e-5. `names` = the lead names the
 * reader must report (defaults to the expected names).
 */
export function expectRecording(rec: EcgRecording, expected: Expected, names = expected.leads.map((l) => l.name)): void {
  expect(rec.fs).toBeCloseTo(expected.fs, 9);
  expect(rec.leadNames).toEqual(names);
  expect(rec.signals.length).toBe(expected.leads.length);
  expected.leads.forEach((lead, i) => {
    const s = rec.signals[i];
    expect(s.length, `lead ${lead.name} length`).toBe(lead.length);
    lead.sampleIndex.forEach((k, j) => {
      expect(Math.abs(s[k] - lead.samples[j]), `lead ${lead.name} sample ${k}: ${s[k]} vs ${lead.samples[j]}`).toBeLessThan(1e-5);
    });
    let sum = 0;
    let sumSq = 0;
    for (const v of s) {
      sum += v;
      sumSq += v * v;
    }
    expect(Math.abs(sum - lead.sum), `lead ${lead.name} sum ${sum} vs ${lead.sum}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(lead.sum)) + 1e-4);
    expect(Math.abs(sumSq - lead.sumSq), `lead ${lead.name} sumSq`).toBeLessThan(1e-5 * Math.max(1, lead.sumSq));
  });
}

/** Runs `fn`, expects a DataError whose message contains every fragment; returns the message. */
export function expectDataError(fn: () => unknown, ...fragments: (string | RegExp)[]): string {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error, 'expected a DataError').toBeInstanceOf(DataError);
  const message = (error as DataError).message;
  for (const f of fragments) {
    if (typeof f === 'string') expect(message).toContain(f);
    else expect(message).toMatch(f);
  }
  return message;
}
