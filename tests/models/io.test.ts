import { describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync, zipSync } from 'fflate';
import {
  HostTensor, PyObject, WeightsError, castTensor, extractEcgEncoderStateDict, extractStateDict, floatToBf16Bits,
  floatToHalfBits, halfBitsToFloat, bf16BitsToFloat, readPth, readSafetensors, stripPrefix, toFloat32StateDict, writeSafetensors,
  type HostDType, type PyValue,
} from '../../src/models/io/index';
import { runConvert } from '../../src/cli/convert';
import { asZip64, withoutCrc32 } from '../helpers/zip-rewrite';

const FIXTURES = join(__dirname, '..', 'fixtures', 'weights');
const fixture = (name: string) => new Uint8Array(readFileSync(join(FIXTURES, name)));
const expected = JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as { files: Record<string, Expected> };

type JsonNumber = number | 'inf' | '-inf' | 'nan';
interface TensorRecord { dtype: HostDType; shape: number[]; values?: JsonNumber[]; first?: JsonNumber[]; sum?: number }
type Expected =
  | { tensor: TensorRecord } | { dict: Record<string, Expected> } | { list: Expected[] } | { tuple: Expected[] }
  | { object: string; attributes: Record<string, Expected> } | { value: unknown };

const fromJson = (v: JsonNumber) => (v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v === 'nan' ? NaN : v);

function expectTensor(actual: PyValue, record: TensorRecord, path: string) {
  expect(actual, path).toBeInstanceOf(HostTensor);
  const t = actual as HostTensor;
  expect(t.dtype, path).toBe(record.dtype);
  expect(t.shape, path).toEqual(record.shape);
  // toNumbers keeps f64 and int32 exact; toFloat32 is what model code will call on float weights.
  const values = t.dtype === 'f32' || t.dtype === 'f16' || t.dtype === 'bf16' ? Array.from(t.toFloat32()) : t.toNumbers();
  if (record.values) expect(values, path).toEqual(record.values.map(fromJson));
  else {
    expect(values.slice(0, 8), path).toEqual(record.first!.map(fromJson));
    const sum = values.reduce((a, b) => a + b, 0);
    expect(Math.abs(sum - record.sum!), path).toBeLessThan(1e-4 * Math.max(1, Math.abs(record.sum!)));
  }
}

/** Walks the torch-side description and the TS-side value together. */
function expectMatches(actual: PyValue, want: Expected, path: string) {
  if ('tensor' in want) return expectTensor(actual, want.tensor, path);
  if ('dict' in want) {
    expect(actual, path).toBeInstanceOf(Map);
    const map = actual as Map<PyValue, PyValue>;
    expect([...map.keys()].map(String), path).toEqual(Object.keys(want.dict));
    for (const [k, v] of map) expectMatches(v, want.dict[String(k)], `${path}.${String(k)}`);
    return;
  }
  if ('object' in want) {
    expect(actual, path).toBeInstanceOf(PyObject);
    expect((actual as PyObject).className).toBe(want.object);
    expectMatches((actual as PyObject).attributes, { dict: want.attributes }, path);
    return;
  }
  if ('list' in want || 'tuple' in want) {
    const items = 'list' in want ? want.list : want.tuple;
    expect(Array.isArray(actual), path).toBe(true);
    expect(Object.isFrozen(actual), `${path} tuple-ness`).toBe('tuple' in want);
    expect((actual as PyValue[]).length, path).toBe(items.length);
    items.forEach((item, i) => expectMatches((actual as PyValue[])[i], item, `${path}[${i}]`));
    return;
  }
  expect(actual, path).toEqual(want.value);
}

const pthFixtures = Object.keys(expected.files).filter((n) => !n.endsWith('.safetensors'));

describe('readPth against torch 1.13 fixtures', () => {
  it.each(pthFixtures)('%s matches expected.json', (name) => {
    const pth = readPth(fixture(name), { name });
    expectMatches(pth.root, expected.files[name], name);
  });

  it('shares one storage between views and reads non-contiguous strides', () => {
    const pth = readPth(fixture('views.pth'));
    expect(pth.storageCount).toBe(3); // grid (+ its views), line (head/tail), expanded
    const sd = extractStateDict(pth);
    expect(Array.from(sd.get('transposed')!.data as ArrayLike<number>)).toEqual([0, 6, 12, 18, 1, 7, 13, 19, 2, 8, 14, 20, 3, 9, 15, 21, 4, 10, 16, 22, 5, 11, 17, 23]);
    expect(Array.from(sd.get('tail')!.data as ArrayLike<number>)).toEqual([4, 5, 6, 7, 8, 9]);
  });

  it('reads a deflated, big-endian archive with a byteorder record', () => {
    const pth = readPth(fixture('big_endian.pth'));
    expect(pth.byteOrder).toBe('big');
  });

  it('toFloat32StateDict gives engine loaders plain float32 values', () => {
    const sd = toFloat32StateDict(extractStateDict(readPth(fixture('dtypes.pth'))));
    expect(sd.get('i64')!.data).toBeInstanceOf(Float32Array);
    expect(Array.from(sd.get('f16')!.data)).toEqual(Array.from(extractStateDict(readPth(fixture('dtypes.pth'))).get('f16')!.toFloat32()));
    expect(Array.from(sd.get('bool')!.data)).toEqual([1, 0, 1, 1]);
  });

  it('keeps int64, bool and 0-d tensors', () => {
    const sd = extractStateDict(readPth(fixture('plain_state_dict.pth')));
    const tracked = sd.get('bn.num_batches_tracked')!;
    expect(tracked.dtype).toBe('i64');
    expect(tracked.shape).toEqual([]);
    expect(tracked.item()).toBe(1);
  });
});

describe('state-dict extraction', () => {
  const root = (name: string) => readPth(fixture(name)).root;

  it('uses the top level when it is a dict of tensors', () => {
    expect([...extractStateDict(root('plain_state_dict.pth')).keys()]).toHaveLength(8);
  });

  it('searches model_state_dict first in nested checkpoints', () => {
    const sd = extractStateDict(root('nested_checkpoint.pth'));
    expect(sd.has('conv.weight')).toBe(true);
    expect([...extractStateDict(root('flow_checkpoint.pth')).keys()]).toEqual(['x_embedder.weight', 'pos_embed']);
    expect([...extractStateDict(root('flow_checkpoint.pth'), { prefer: 'encoder_state_dict' }).keys()]).toEqual(['stem.0.weight', 'feature_proj.bias']);
  });

  it('explains what it found when no state dict fits', () => {
    expect(() => extractStateDict(root('bare_tensor.pt'))).toThrow(/no state dict found: the top level is a tensor/);
    expect(() => extractStateDict(root('nested_checkpoint.pth'), { prefer: 'missing' })).toThrow(/no key 'missing'.*epoch, model_state_dict/);
    expect(() => extractStateDict(root('nested_checkpoint.pth'), { prefer: 'optimizer_state_dict' })).toThrow(/\['state'\] is a dict/);
  });

  it('strips the encoder. prefix like the reference flow loader and refuses a flow checkpoint', () => {
    const encoder = extractEcgEncoderStateDict(root('pamae_checkpoint.pth'));
    expect([...encoder.keys()]).toEqual([
      'stem.0.weight', 'stem.1.weight', 'stem.1.bias', 'stem.1.running_mean', 'stem.1.running_var', 'stem.1.num_batches_tracked',
      'feature_proj.weight', 'feature_proj.bias', 'phase_head.2.weight',
    ]);
    expect(() => extractEcgEncoderStateDict(root('flow_checkpoint.pth'))).toThrow(/flow checkpoint: use source 'finetuned'/);
    expect(extractEcgEncoderStateDict(root('flow_checkpoint.pth'), { source: 'finetuned' }).size).toBe(2);
  });

  it('stripPrefix drops or keeps unprefixed keys', () => {
    const sd = extractStateDict(root('pamae_checkpoint.pth'));
    expect(stripPrefix(sd, 'decoder.').size).toBe(2);
    const kept = stripPrefix(sd, 'decoder.', { keepOthers: true });
    expect(kept.size).toBe(11);
    expect(kept.has('proj.weight') && kept.has('encoder.stem.0.weight')).toBe(true);
  });
});

describe('safetensors', () => {
  const allDtypes = (): Map<string, HostTensor> => new Map<string, HostTensor>([
    ['f32', new HostTensor('f32', [2, 2], Float32Array.of(1, -2.5, 3e-8, Infinity))],
    ['f16', new HostTensor('f16', [3], Uint16Array.of(0x3c00, 0xc000, 0x7bff))],
    ['bf16', new HostTensor('bf16', [2], Uint16Array.of(0x3f80, 0xc040))],
    ['f64', new HostTensor('f64', [1], Float64Array.of(Math.PI))],
    ['i64', new HostTensor('i64', [2], BigInt64Array.of(-(2n ** 62n), 7n))],
    ['i32', new HostTensor('i32', [2], Int32Array.of(-(2 ** 31), 5))],
    ['i16', new HostTensor('i16', [1], Int16Array.of(-300))],
    ['i8', new HostTensor('i8', [3], Int8Array.of(-128, 0, 127))],
    ['u8', new HostTensor('u8', [1, 1], Uint8Array.of(255))],
    ['bool', new HostTensor('bool', [2], Uint8Array.of(1, 0))],
    ['scalar', new HostTensor('f32', [], Float32Array.of(0.5))],
    ['empty', new HostTensor('f32', [0, 4], new Float32Array(0))],
  ]);

  it('round-trips every dtype, with metadata, 8-byte aligned', () => {
    const bytes = writeSafetensors(allDtypes(), { note: 'hi' });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const back = readSafetensors(bytes);
    expect(back.metadata).toEqual({ note: 'hi' });
    for (const [name, t] of allDtypes()) {
      const r = back.tensors.get(name)!;
      expect(r.dtype, name).toBe(t.dtype);
      expect(r.shape, name).toEqual(t.shape);
      expect(Array.from(r.data as ArrayLike<unknown>), name).toEqual(Array.from(t.data as ArrayLike<unknown>));
    }
  });

  it('writes the reference byte layout for a known small case', () => {
    const bytes = writeSafetensors(new Map([
      ['b', new HostTensor('f16', [1], Uint16Array.of(0x3c00))],
      ['a', new HostTensor('f32', [1], Float32Array.of(1))],
    ]));
    const json = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F16","shape":[1],"data_offsets":[4,6]}}';
    const padded = json + ' '.repeat((8 - (json.length % 8)) % 8);
    const want = new Uint8Array(8 + padded.length + 6);
    new DataView(want.buffer).setBigUint64(0, BigInt(padded.length), true);
    want.set(new TextEncoder().encode(padded), 8);
    want.set([0x00, 0x00, 0x80, 0x3f, 0x00, 0x3c], 8 + padded.length);
    expect(Array.from(bytes)).toEqual(Array.from(want));
  });

  it('reads the Python-written reference file and rewrites it byte for byte', () => {
    const ref = fixture('reference.safetensors');
    const file = readSafetensors(ref);
    const want = expected.files['reference.safetensors'] as { dict: Record<string, Expected> };
    // The file stores tensors in the writer's order (by dtype, then name); compare in torch's order.
    const inTorchOrder = new Map(Object.keys(want.dict).map((k) => [k, file.tensors.get(k) ?? null] as [string, PyValue]));
    expectMatches(inTorchOrder as PyValue, want, 'reference');
    expect(file.metadata).toEqual({ format: 'pt', source: 'make_io_fixtures' });
    expect(Array.from(writeSafetensors(file.tensors, file.metadata))).toEqual(Array.from(ref));
  });

  it('rejects malformed files with clear errors', () => {
    const good = writeSafetensors(new Map([['a', new HostTensor('f32', [2], Float32Array.of(1, 2))]]));
    const withHeader = (header: object, dataBytes = 8) => {
      const json = new TextEncoder().encode(JSON.stringify(header));
      const out = new Uint8Array(8 + json.length + dataBytes);
      new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
      out.set(json, 8);
      return out;
    };
    expect(() => readSafetensors(good.subarray(0, 5))).toThrow(/too short/);
    const huge = good.slice();
    new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
    expect(() => readSafetensors(huge)).toThrow(/exceeds/);
    expect(() => readSafetensors(good.subarray(0, 20))).toThrow(/runs past the end/);
    expect(() => readSafetensors(withHeader([1, 2]))).toThrow(/not a JSON object/);
    const notJson = good.slice();
    notJson[9] = 0x7b; // '{{' ...
    expect(() => readSafetensors(notJson)).toThrow(/not valid JSON/);
    expect(() => readSafetensors(withHeader({ a: { dtype: 'F8', shape: [2], data_offsets: [0, 8] } }))).toThrow(/unsupported dtype/);
    expect(() => readSafetensors(withHeader({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }))).toThrow(/out of range/);
    expect(() => readSafetensors(withHeader({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 8] } }))).toThrow(/has 8 bytes but F32 × \[1\] needs 4/);
    expect(() => readSafetensors(withHeader({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [2, 6] } }))).toThrow(/overlap/);
    expect(() => readSafetensors(withHeader({ __metadata__: { n: 1 } }))).toThrow(/not a string/);
  });
});

describe('half-precision conversions', () => {
  it('f16 bits → float → bits is the identity for every non-NaN pattern', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const f = halfBitsToFloat(bits);
      if (Number.isNaN(f)) continue;
      if (floatToHalfBits(f) !== bits) throw new Error(`f16 0x${bits.toString(16)} → ${f} → 0x${floatToHalfBits(f).toString(16)}`);
    }
  });

  it('bf16 bits round-trip and casting matches torch rounding', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const f = bf16BitsToFloat(bits);
      if (!Number.isNaN(f) && floatToBf16Bits(f) !== bits) throw new Error(`bf16 0x${bits.toString(16)} does not round-trip`);
    }
    const sd = extractStateDict(readPth(fixture('dtypes.pth')));
    const f64 = sd.get('f64')!; // exactly the f32 values torch rounded to f16 and bf16
    expect(Array.from(castTensor(f64, 'f16').data as ArrayLike<number>)).toEqual(Array.from(sd.get('f16')!.data as ArrayLike<number>));
    expect(Array.from(castTensor(f64, 'bf16').data as ArrayLike<number>)).toEqual(Array.from(sd.get('bf16')!.data as ArrayLike<number>));
  });
});

describe('readPth: the ZIP container', () => {
  it('reads a checkpoint saved without CRC32s (torch.serialization.set_crc32_options(False) writes 0)', () => {
    const bytes = fixture('plain_state_dict.pth');
    expect(readPth(withoutCrc32(bytes)).root).toEqual(readPth(bytes).root);
  });

  it('reads ZIP64 archives (torch writes them for checkpoints over 4 GB)', () => {
    for (const name of ['plain_state_dict.pth', 'big_endian.pth']) {
      const bytes = fixture(name);
      expect(readPth(asZip64(bytes)).root, name).toEqual(readPth(bytes).root);
    }
  });
});

describe('readPth errors', () => {
  it('names truncation, legacy files and non-zips', () => {
    const bytes = fixture('plain_state_dict.pth');
    expect(() => readPth(bytes.subarray(0, bytes.length - 30), { name: 'cut.pth' })).toThrow(/cut\.pth: ZIP end-of-central-directory record not found \(file truncated/);
    expect(() => readPth(fixture('legacy.pth'))).toThrow(/unsupported legacy .*re-save it with torch>=1\.6/);
    expect(() => readPth(new TextEncoder().encode('hello world'))).toThrow(WeightsError);
  });

  it('refuses a storage whose bytes no longer match their CRC32, naming the file and the entry', () => {
    const flipped = fixture('plain_state_dict.pth').slice();
    const localHeader = new TextDecoder('latin1').decode(flipped).indexOf('plain_state_dict/data/0') - 30;
    const view = new DataView(flipped.buffer);
    // The entry's data follows its local header, the name and the extra field.
    const dataAt = localHeader + 30 + view.getUint16(localHeader + 26, true) + view.getUint16(localHeader + 28, true);
    flipped[dataAt + 3] ^= 0x10;
    expect(() => readPth(flipped, { name: 'flip.pth' })).toThrow(/^flip\.pth: plain_state_dict\/data\/0: ZIP entry CRC32 mismatch \(stored 0x[0-9a-f]+, computed 0x[0-9a-f]+\)/);
  });

  it('names an unknown pickle opcode and its offset', () => {
    // Re-zipped so the entry's CRC32 matches the edited pickle (a byte flipped in place is refused as corrupt).
    const files = unzipSync(fixture('views.pth'));
    const pickle = files['views/data.pkl'].slice();
    pickle[2] = 0xff;
    expect(() => readPth(zipSync({ ...files, 'views/data.pkl': pickle }, { level: 0 }))).toThrow(/pickle: unknown or unsupported opcode 0xff \(at byte 2\)/);
  });

  it('reports a truncated pickle and a missing storage record', () => {
    const files = unzipSync(fixture('plain_state_dict.pth'));
    const cutPickle = { ...files, 'plain_state_dict/data.pkl': files['plain_state_dict/data.pkl'].subarray(0, 40) };
    expect(() => readPth(zipSync(cutPickle, { level: 0 }))).toThrow(/data ends early/);
    const withoutStorage = { ...files };
    delete withoutStorage['plain_state_dict/data/0'];
    expect(() => readPth(zipSync(withoutStorage, { level: 0 }))).toThrow(/missing storage record 'plain_state_dict\/data\/0'/);
  });
});

/** Tiny pickle assembler for cases torch 1.13 cannot produce (newer rebuild functions, bad globals). */
function pickleBytes(...parts: (string | number[])[]): Uint8Array {
  const out: number[] = [0x80, 0x02];
  for (const part of parts) {
    if (typeof part === 'string') {
      const text = [...new TextEncoder().encode(part)];
      out.push(0x8c, text.length, ...text); // SHORT_BINUNICODE
    } else out.push(...part);
  }
  out.push(0x2e); // STOP
  return Uint8Array.from(out);
}
const op = (text: string) => [...new TextEncoder().encode(text)];
const archive = (pickle: Uint8Array, storages: Record<string, Uint8Array> = {}) => {
  const files: Record<string, Uint8Array> = { 'x/data.pkl': pickle };
  for (const [k, v] of Object.entries(storages)) files[`x/data/${k}`] = v;
  return zipSync(files, { level: 0 });
};

describe('readPth with hand-built pickles', () => {
  it('rebuilds a torch 2.x _rebuild_tensor_v3 tensor over an untyped storage', () => {
    const pickle = pickleBytes(
      op('ctorch._utils\n_rebuild_tensor_v3\n('), op('('), 'storage', op('ctorch\nUntypedStorage\n'), '0', 'cpu', [0x4b, 8, 0x74, 0x51],
      [0x4b, 0, 0x4b, 2, 0x85, 0x4b, 1, 0x85, 0x89], op('ccollections\nOrderedDict\n)R'), op('ctorch\nfloat32\nt'), op('R'),
    );
    const root = readPth(archive(pickle, { '0': new Uint8Array(Float32Array.of(1.5, -2).buffer) })).root as HostTensor;
    expect(root.dtype).toBe('f32');
    expect(Array.from(root.toFloat32())).toEqual([1.5, -2]);
  });

  it('keeps unknown classes as records but refuses unsupported tensor globals', () => {
    const record = readPth(archive(pickleBytes(op('cmy.config\nSettings\n)R}'), 'depth', [0x4b, 4, 0x73, 0x62]))).root as PyObject;
    expect(record.className).toBe('my.config.Settings');
    expect(record.attributes.get('depth')).toBe(4);
    expect(() => readPth(archive(pickleBytes(op('ctorch._utils\n_rebuild_qtensor\n)R'))))).toThrow(/unsupported global torch\._utils\._rebuild_qtensor/);
    expect(() => readPth(archive(pickleBytes(op('(tQ'))))).toThrow(/unsupported persistent id tag/);
  });
});

describe('convert CLI', () => {
  it('converts .pth → safetensors (key, prefix, f16) and safetensors → f32', () => {
    const dir = mkdtempSync(join(tmpdir(), 'convert-'));
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      const half = join(dir, 'encoder.f16.safetensors');
      runConvert([join(FIXTURES, 'pamae_checkpoint.pth'), half, '--key', 'model_state_dict', '--strip-prefix', 'encoder.', '--dtype', 'f16']);
      const f16 = readSafetensors(new Uint8Array(readFileSync(half)));
      expect(f16.tensors.size).toBe(9);
      expect(f16.tensors.get('stem.0.weight')!.dtype).toBe('f16');
      expect(f16.tensors.get('stem.1.num_batches_tracked')!.dtype).toBe('i64');
      expect(f16.metadata).toMatchObject({ format: 'pt', source_key: 'model_state_dict', stripped_prefix: 'encoder.', dtype: 'f16' });
      expect(log.mock.calls.at(-1)![0]).toMatch(/9 tensors, 79 parameters/);

      const single = join(dir, 'encoder.f32.safetensors');
      runConvert([half, single, '--dtype', 'f32']);
      const f32 = readSafetensors(new Uint8Array(readFileSync(single))).tensors.get('feature_proj.bias')!;
      const original = extractEcgEncoderStateDict(readPth(fixture('pamae_checkpoint.pth'))).get('feature_proj.bias')!;
      expect(f32.dtype).toBe('f32');
      f32.toFloat32().forEach((v, i) => expect(Math.abs(v - original.toFloat32()[i])).toBeLessThan(2e-3 * Math.max(1, Math.abs(v))));

      log.mockClear();
      runConvert([join(FIXTURES, 'nested_checkpoint.pth'), '--list']);
      const printed = log.mock.calls.map((c) => String(c[0])).join('\n');
      expect(printed).toMatch(/args: object argparse\.Namespace/);
      expect(printed).toMatch(/bn\.num_batches_tracked\ti64\t\[\]/);
      expect(() => runConvert([join(FIXTURES, 'pamae_checkpoint.pth'), join(dir, 'x.safetensors'), '--strip-prefix', 'nope.'])).toThrow(/no key starts with 'nope\.'/);
      // Non-finite values (here the fixture's f16 ±Inf) are refused unless asked for; so is an f16 cast that overflows.
      expect(() => runConvert([join(FIXTURES, 'dtypes.pth'), join(dir, 'inf.safetensors')])).toThrow(/dtypes\.pth[\s\S]*f16_special[\s\S]*--allow-nonfinite-weights/);
      runConvert([join(FIXTURES, 'dtypes.pth'), join(dir, 'inf.safetensors'), '--allow-nonfinite-weights']);
      expect(readSafetensors(new Uint8Array(readFileSync(join(dir, 'inf.safetensors')))).tensors.get('f16_special')!.toFloat32()[4]).toBe(Infinity);
      const big = join(dir, 'big.safetensors');
      writeFileSync(big, writeSafetensors(new Map([['w', new HostTensor('f32', [2], Float32Array.of(1, 1e6))]])));
      expect(() => runConvert([big, join(dir, 'big16.safetensors'), '--dtype', 'f16'])).toThrow(/after the cast to f16/);
    } finally {
      log.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
