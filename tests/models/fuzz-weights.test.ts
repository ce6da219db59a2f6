/**
 * Seeded mutation fuzzing of the weight readers (tests/helpers/fuzz.ts): corrupted torch.save zips and pickles
 * (current and legacy formats, stored and deflated archives, big-endian storages) and safetensors files must
 * each either read or throw a WeightsError whose message starts with the file's name. Anything else — a
 * RangeError from a DataView, a SyntaxError from BigInt, a third-party message, an allocation the file cannot
 * justify — is listed with the mutant's name, so one failure is reproducible from the seed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { WeightsError } from '../../src/models/io/errors';
import { readPth } from '../../src/models/io/pth';
import { PyObject, type PyValue } from '../../src/models/io/pickle';
import { readSafetensors, writeSafetensors } from '../../src/models/io/safetensors';
import { HostTensor } from '../../src/models/io/tensor';
import { readSingleTensor } from '../../src/models/import/template';
import { importFlow } from '../../src/models/import/infer';
import { writeNpy } from '../../src/data/npy';
import { fuzzReader, mutants } from '../helpers/fuzz';
import { withoutCrc32 } from '../helpers/zip-rewrite';

const FIXTURES = join(__dirname, '..', 'fixtures', 'weights');
const bytesOf = (name: string) => new Uint8Array(readFileSync(join(FIXTURES, name)));

/** Walks everything a reader returned and decodes every tensor, so lazily wrong data cannot hide. */
function touch(value: PyValue, seen = new Set<unknown>()): number {
  if (value === null || typeof value !== 'object' || seen.has(value)) return 0;
  seen.add(value);
  if (value instanceof HostTensor) return value.toFloat32().length;
  let n = 0;
  if (value instanceof Map) for (const [k, v] of value) n += touch(k, seen) + touch(v, seen);
  else if (Array.isArray(value)) for (const v of value) n += touch(v, seen);
  else if (value instanceof PyObject) {
    n += touch(value.state, seen);
    for (const arg of value.args) n += touch(arg, seen);
  }
  return n;
}

/** Typed: a WeightsError that starts with the file name (the reader was told it). */
const namedWeightsError = (name: string) => (e: unknown) =>
  e instanceof WeightsError && e.message.startsWith(`${name}: `) && e.message.length > name.length + 10 && !e.message.includes('reader bug');

interface Target {
  file: string;
  read: (bytes: Uint8Array, name: string) => unknown;
  count: number;
  /** Bytes made here instead of read from the fixtures. */
  bytes?: () => Uint8Array;
}

const pth = (bytes: Uint8Array, name: string) => touch(readPth(bytes, { name }).root);
const TARGETS: Target[] = [
  { file: 'nested_checkpoint.pth', read: pth, count: 200 }, // OrderedDicts, optimizer state, argparse.Namespace, numpy scalar, big ints
  { file: 'dtypes.pth', read: pth, count: 150 }, // every storage type, empty and scalar tensors
  { file: 'views.pth', read: pth, count: 150 }, // shared storages, offsets, strides, stride-0 expand
  { file: 'big_endian.pth', read: pth, count: 150 }, // deflated entries, byteorder record
  // With CRC32s checked, nearly every mutant of an entry's data is refused as corrupt; copies without CRC32s
  // (as torch writes them when told not to compute them) let the mutants reach the pickle and tensor readers.
  { file: 'nested_checkpoint-no-crc32.pth', read: pth, count: 200, bytes: () => withoutCrc32(bytesOf('nested_checkpoint.pth')) },
  { file: 'views-no-crc32.pth', read: pth, count: 150, bytes: () => withoutCrc32(bytesOf('views.pth')) },
  { file: 'bare_tensor.pt', read: pth, count: 100 },
  { file: 'legacy.pth', read: pth, count: 60 }, // pre-1.6 format: refused with a clear message
  { file: 'import/anatomy_template.pt', read: (b, n) => readSingleTensor(b, n).numel, count: 100 },
  { file: 'reference.safetensors', read: (b, n) => touch(readSafetensors(b, { name: n }).tensors as unknown as PyValue), count: 300 },
  // The importer's readers: a template as .npy, and the inference over a whole reference flow checkpoint.
  { file: 'template.npy', read: (b, n) => readSingleTensor(b, n).numel, count: 100, bytes: () => writeNpy(Float32Array.from({ length: 48 }, (_, i) => Math.sin(i)), [1, 3, 1, 4, 4]) },
  { file: 'import/checkpoint_flow_best.pth', read: (b, n) => importFlow(readPth(b, { name: n }).root, n, { numHeads: 2 }).dit.size, count: 100 },
];

describe('fuzzed weight files: a WeightsError naming the file, or a valid result', () => {
  const totals = { mutants: 0, valid: 0, typed: 0 };
  for (const target of TARGETS) {
    it(`${target.file}: ${target.count} mutants`, async () => {
      const bytes = target.bytes ? target.bytes() : bytesOf(target.file);
      const name = target.file.split('/').pop()!;
      const list = [...mutants(bytes, 7, target.count / 2), ...mutants(bytes, 1234, target.count / 2, { headerBias: 4096 })];
      const started = performance.now();
      const result = await fuzzReader(list, (b) => target.read(b, name), namedWeightsError(name), 5_000);
      expect(result.failures, result.failures.slice(0, 12).join('\n')).toEqual([]);
      // A fuzz run that never breaks anything tests nothing: most mutants must be refused.
      expect(result.typed).toBeGreaterThan(list.length / 4);
      expect(performance.now() - started).toBeLessThan(20_000);
      totals.mutants += list.length;
      totals.valid += result.valid;
      totals.typed += result.typed;
    }, 60_000);
  }

  it('summary', () => {
    // Printed for the record (mutant counts per outcome); the per-file tests above do the asserting.
    console.log(`fuzz-weights: ${totals.mutants} mutants, ${totals.typed} WeightsErrors, ${totals.valid} read`);
    expect(totals.mutants).toBeGreaterThan(1300);
  });
});

describe('hand-made hostile inputs', () => {
  const name = 'evil.pth';
  const typed = namedWeightsError(name);
  const expectTyped = (fn: () => unknown, message: RegExp) => {
    let error: unknown;
    try {
      fn();
    } catch (e) {
      error = e;
    }
    expect(typed(error), String(error)).toBe(true);
    expect(String((error as Error).message)).toMatch(message);
  };

  /**
   * nested_checkpoint.pth with its data.pkl overwritten from the start by `pickle` (which ends in STOP; the
   * rest is never read), re-zipped so that the entry's CRC32 matches.
   */
  function withPickle(pickle: Uint8Array): Uint8Array {
    const files = unzipSync(bytesOf('nested_checkpoint.pth'));
    const edited = files['nested_checkpoint/data.pkl'].slice();
    edited.set(pickle);
    return zipSync({ ...files, 'nested_checkpoint/data.pkl': edited }, { level: 0 });
  }
  const latin1 = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));

  it('a text LONG that is not a number (the "Cannot convert … to a BigInt" case)', () => {
    expectTyped(() => readPth(withPickle(latin1('\x80\x02LongStorage\n.')), { name }), /pickle: LONG holds 'ongStorage', not an integer/);
  });

  it('an integer of millions of bytes is refused before the quadratic BigInt loop', () => {
    const p = new Uint8Array(32);
    p.set([0x80, 0x02, 0x8b, 0xff, 0xff, 0xff, 0x00]);
    expectTyped(() => readPth(withPickle(p), { name }), /integer|ends early/);
  });

  it('a stride-0 view of 2^40 elements over a 4-element storage is refused before allocating', () => {
    const enc = (t: string) => [...new TextEncoder().encode(t)];
    const str = (t: string) => [0x58, t.length, 0, 0, 0, ...enc(t)]; // BINUNICODE
    const p = Uint8Array.from([
      0x80, 0x02, 0x63, ...enc('torch._utils\n_rebuild_tensor_v2\n'), 0x28, // GLOBAL, MARK
      0x28, ...str('storage'), 0x63, ...enc('torch\nFloatStorage\n'), ...str('0'), ...str('cpu'), 0x4b, 4, 0x74, 0x51, // pid tuple, BINPERSID
      0x4b, 0, // offset
      0x28, 0x4a, 0, 0, 1, 0, 0x4a, 0, 0, 0, 1, 0x74, // size (65536, 16777216)
      0x28, 0x4b, 0, 0x4b, 0, 0x74, // stride (0, 0)
      0x89, 0x7d, 0x74, 0x52, 0x2e, // requires_grad, hooks, TUPLE, REDUCE, STOP
    ]);
    expectTyped(() => readPth(withPickle(p), { name }), /view .* elements|exceeds/);
  });

  it('safetensors: a header claiming 2^50 elements is refused without allocating', () => {
    const good = writeSafetensors(new Map([['w', new HostTensor('f32', [2], new Float32Array(2))]]));
    const text = new TextDecoder().decode(good.subarray(8, 8 + Number(new DataView(good.buffer).getBigUint64(0, true))));
    const evil = text.replace('"shape":[2]', '"shape":[1125899906842624]');
    const header = new TextEncoder().encode(evil.padEnd(Math.ceil(evil.length / 8) * 8, ' '));
    const out = new Uint8Array(8 + header.length + 8);
    new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
    out.set(header, 8);
    expect(() => readSafetensors(out, { name: 'evil.safetensors' })).toThrow(/evil\.safetensors: safetensors: tensor 'w' has 8 bytes but F32/);
  });
});
