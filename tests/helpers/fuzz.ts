/**
 * Seeded mutation fuzzing for file readers.
 *
 * `mutants(bytes, seed, count)` derives `count` corrupted copies of a valid file: single bit flips,
 * bytes forced to 0x00 / 0xff / 0x80, truncations, deleted or duplicated chunks, and 1/2/4-byte
 * little-endian fields overwritten with extreme integers (0, -1, 0x7fffffff, 0x80000000, ...), which is
 * what turns a header's size or count into a RangeError deep inside a reader. Text formats get digit
 * swaps and line deletions too. The same seed always gives the same mutants, so a failure is
 * reproducible from the mutant's name alone.
 *
 * `expectTypedOrValid(fn, isTyped)` runs one read and classifies it: 'valid' (returned), 'typed' (threw
 * an error the predicate accepts). Anything else — an internal RangeError/TypeError/SyntaxError, a
 * third-party library's message, a hang past the time limit — is returned as 'internal' with the
 * message, so the test can list every offending mutant at once.
 */

export interface Mutant {
  name: string;
  bytes: Uint8Array;
}

/** A small deterministic PRNG (mulberry32): fuzz tests must not depend on Math.random. */
export function fuzzRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const EXTREME_INTS = [0, 1, -1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff];

function looksLikeText(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, 512);
  for (let i = 0; i < n; i++) {
    const b = bytes[i];
    if (b !== 9 && b !== 10 && b !== 13 && (b < 32 || b > 126)) return false;
  }
  return n > 0;
}

type Mutator = (src: Uint8Array, rnd: () => number) => { what: string; bytes: Uint8Array };

const pick = (n: number, rnd: () => number) => Math.floor(rnd() * n);

/**
 * Where to mutate: most real-format bugs sit in the header, so half of the positions fall in the
 * first `headerBias` bytes (or the whole file when it is smaller).
 */
function position(src: Uint8Array, rnd: () => number, headerBias: number): number {
  if (src.length === 0) return 0;
  return rnd() < 0.5 ? pick(Math.min(src.length, headerBias), rnd) : pick(src.length, rnd);
}

function binaryMutators(headerBias: number): Mutator[] {
  return [
    (src, rnd) => {
      const out = src.slice();
      const i = position(src, rnd, headerBias);
      const bit = pick(8, rnd);
      if (out.length) out[i] ^= 1 << bit;
      return { what: `bit ${bit} of byte ${i} flipped`, bytes: out };
    },
    (src, rnd) => {
      const out = src.slice();
      const i = position(src, rnd, headerBias);
      const v = [0x00, 0xff, 0x80, 0x7f][pick(4, rnd)];
      if (out.length) out[i] = v;
      return { what: `byte ${i} set to 0x${v.toString(16)}`, bytes: out };
    },
    (src, rnd) => {
      const keep = pick(Math.max(1, src.length), rnd);
      return { what: `truncated to ${keep} bytes`, bytes: src.slice(0, keep) };
    },
    (src, rnd) => {
      const i = position(src, rnd, headerBias);
      const len = 1 + pick(Math.min(64, Math.max(1, src.length - i)), rnd);
      const out = new Uint8Array(src.length - Math.min(len, src.length - i));
      out.set(src.subarray(0, i));
      out.set(src.subarray(i + len), i);
      return { what: `${len} bytes deleted at ${i}`, bytes: out };
    },
    (src, rnd) => {
      const i = position(src, rnd, headerBias);
      const len = 1 + pick(Math.min(64, Math.max(1, src.length - i)), rnd);
      const chunk = src.subarray(i, i + len);
      const out = new Uint8Array(src.length + chunk.length);
      out.set(src.subarray(0, i + chunk.length));
      out.set(chunk, i + chunk.length);
      out.set(src.subarray(i + chunk.length), i + 2 * chunk.length);
      return { what: `${chunk.length} bytes duplicated at ${i}`, bytes: out };
    },
    (src, rnd) => {
      const out = src.slice();
      const width = [1, 2, 4][pick(3, rnd)];
      const i = Math.min(position(src, rnd, headerBias), Math.max(0, out.length - width));
      const v = EXTREME_INTS[pick(EXTREME_INTS.length, rnd)];
      for (let k = 0; k < width && i + k < out.length; k++) out[i + k] = (v >>> (8 * k)) & 0xff;
      return { what: `${width}-byte field at ${i} set to ${v}`, bytes: out };
    },
  ];
}

const textMutators: Mutator[] = [
  (src, rnd) => {
    const text = new TextDecoder().decode(src);
    const digits = [...text.matchAll(/\d+/g)];
    if (!digits.length) return { what: 'no digits to change', bytes: src.slice() };
    const m = digits[pick(digits.length, rnd)];
    const repl = ['0', '-1', '99999999999', '1e308', 'NaN', '', '-0', '3.5'][pick(8, rnd)];
    const out = text.slice(0, m.index!) + repl + text.slice(m.index! + m[0].length);
    return { what: `number '${m[0]}' at ${m.index} replaced by '${repl}'`, bytes: new TextEncoder().encode(out) };
  },
  (src, rnd) => {
    const lines = new TextDecoder().decode(src).split('\n');
    const i = pick(lines.length, rnd);
    lines.splice(i, 1);
    return { what: `line ${i + 1} deleted`, bytes: new TextEncoder().encode(lines.join('\n')) };
  },
  (src, rnd) => {
    const text = new TextDecoder().decode(src);
    const i = pick(Math.max(1, text.length), rnd);
    const junk = ['<', '"', ',', '\t', '\u0000', '>', '&', ' '][pick(8, rnd)];
    return { what: `'${JSON.stringify(junk)}' inserted at ${i}`, bytes: new TextEncoder().encode(text.slice(0, i) + junk + text.slice(i)) };
  },
];

export interface MutantOptions {
  /** Bytes counted as "header" (half the positions fall there). Default 512. */
  headerBias?: number;
  /** Add the text mutators (default: detected from the first bytes). */
  text?: boolean;
}

/** `count` seeded mutants of `bytes`; names say exactly what was changed. */
export function mutants(bytes: Uint8Array, seed: number, count: number, options: MutantOptions = {}): Mutant[] {
  const rnd = fuzzRandom(seed);
  const ops = [...binaryMutators(options.headerBias ?? 512), ...((options.text ?? looksLikeText(bytes)) ? textMutators : [])];
  const out: Mutant[] = [];
  for (let k = 0; k < count; k++) {
    const { what, bytes: mutated } = ops[pick(ops.length, rnd)](bytes, rnd);
    out.push({ name: `seed ${seed} #${k}: ${what}`, bytes: mutated });
  }
  return out;
}

export type FuzzOutcome = { kind: 'valid' } | { kind: 'typed'; message: string } | { kind: 'internal'; message: string };

/** Runs one read; classifies its outcome (see the file comment). `timeoutMs` catches async hangs. */
export async function expectTypedOrValid(
  fn: () => unknown | Promise<unknown>,
  isTyped: (e: unknown) => boolean,
  timeoutMs = 10_000,
): Promise<FuzzOutcome> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const hang = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`hang: no result after ${timeoutMs} ms`)), timeoutMs);
    });
    await Promise.race([Promise.resolve().then(fn), hang]);
    return { kind: 'valid' };
  } catch (e) {
    const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return isTyped(e) ? { kind: 'typed', message } : { kind: 'internal', message };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/**
 * Runs every mutant through `read` and returns the offending ones as readable lines
 * ("seed 3 #17: byte 40 set to 0xff -> RangeError: ..."); a test asserts the list is empty.
 */
export async function fuzzReader(
  list: Mutant[],
  read: (bytes: Uint8Array) => unknown | Promise<unknown>,
  isTyped: (e: unknown) => boolean,
  timeoutMs = 10_000,
): Promise<{ failures: string[]; valid: number; typed: number }> {
  const failures: string[] = [];
  let valid = 0;
  let typed = 0;
  for (const m of list) {
    const outcome = await expectTypedOrValid(() => read(m.bytes), isTyped, timeoutMs);
    if (outcome.kind === 'valid') valid++;
    else if (outcome.kind === 'typed') typed++;
    else failures.push(`${m.name} -> ${outcome.message}`);
  }
  return { failures, valid, typed };
}
