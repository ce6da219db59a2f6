/**
 * safetensors: an 8-byte little-endian header length, a JSON header mapping names to
 * {dtype, shape, data_offsets} (offsets relative to the byte buffer after the header) plus an
 * optional `__metadata__` string map, then the raw little-endian tensor bytes.
 * The writer follows the reference implementation's layout: tensors ordered by dtype alignment
 * (largest first) then name, compact JSON, `__metadata__` first, header padded with spaces to a
 * multiple of 8 so every tensor starts 8-byte aligned.
 */
import { WeightsError } from './errors';
import { HostTensor, dtypeByteSize, shapeNumel, typedBytes, typedFromBytes, type HostDType } from './tensor';

const TO_SAFETENSORS: Record<HostDType, string> = {
  f32: 'F32', f16: 'F16', bf16: 'BF16', f64: 'F64', i64: 'I64', i32: 'I32', i16: 'I16', i8: 'I8', u8: 'U8', bool: 'BOOL',
};
const FROM_SAFETENSORS: Record<string, HostDType> = Object.fromEntries(
  Object.entries(TO_SAFETENSORS).map(([ours, theirs]) => [theirs, ours as HostDType]),
);

/** The reference reader refuses headers above 100 MB; so do we, to fail fast on garbage lengths. */
const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsFile {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

export type TensorSource = Map<string, HostTensor> | Record<string, HostTensor>;

function entriesOf(tensors: TensorSource): [string, HostTensor][] {
  return tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
}

export function readSafetensors(bytes: Uint8Array, options: { name?: string } = {}): SafetensorsFile {
  try {
    return readSafetensorsUnchecked(bytes, options);
  } catch (e) {
    // Every failure leaves as a WeightsError that names the file; anything else is a bug of this reader.
    if (e instanceof WeightsError) throw e;
    throw new WeightsError(`${options.name ? `${options.name}: ` : ''}safetensors: reader bug: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
}

function readSafetensorsUnchecked(bytes: Uint8Array, options: { name?: string }): SafetensorsFile {
  const fail = (message: string): never => {
    throw new WeightsError(`${options.name ? `${options.name}: ` : ''}safetensors: ${message}`);
  };
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, too short for the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength64 = dv.getBigUint64(0, true);
  if (headerLength64 > BigInt(MAX_HEADER_BYTES)) fail(`header length ${headerLength64} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt file?)`);
  const headerLength = Number(headerLength64);
  if (8 + headerLength > bytes.length) fail(`header length ${headerLength} runs past the end of the ${bytes.length}-byte file (truncated?)`);
  const headerText = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(8, 8 + headerLength));
  if (!headerText.startsWith('{')) fail('header is not a JSON object');
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (err) {
    return fail(`header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return fail('header is not a JSON object');

  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const spans: { name: string; begin: number; end: number }[] = [];
  const tensors = new Map<string, HostTensor>();
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ value for '${k}' is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info !== 'object' || info === null) fail(`entry '${name}' is not an object`);
    const dtype = typeof info.dtype === 'string' ? FROM_SAFETENSORS[info.dtype] : undefined;
    if (!dtype) fail(`tensor '${name}' has unsupported dtype ${JSON.stringify(info.dtype)}`);
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`tensor '${name}' has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) fail(`tensor '${name}' has data_offsets [${begin}, ${end}] with begin > end`);
    if (end > dataLength) fail(`tensor '${name}' data_offsets [${begin}, ${end}] out of range: the data section has ${dataLength} bytes (truncated?)`);
    const numel = shapeNumel(shape as number[]);
    const expected = numel * dtypeByteSize(dtype!);
    if (end - begin !== expected) fail(`tensor '${name}' has ${end - begin} bytes but ${info.dtype} × [${(shape as number[]).join(', ')}] needs ${expected}`);
    spans.push({ name, begin, end });
    const data = typedFromBytes(dtype!, bytes.subarray(dataStart + begin, dataStart + end), numel);
    tensors.set(name, new HostTensor(dtype!, shape as number[], data));
  }
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < spans.length; i++) {
    const previous = spans[i - 1];
    if (spans[i].begin < previous.end) fail(`tensors '${previous.name}' and '${spans[i].name}' overlap`);
  }
  return { tensors, metadata };
}

/**
 * The reference writer sorts by its Dtype enum in descending declaration order
 * (BOOL < U8 < I8 < I16 < F16 < BF16 < I32 < F32 < F64 < I64), then by name. That order is also
 * descending element size, which keeps every tensor aligned to its element size.
 */
const REFERENCE_DTYPE_RANK: Record<HostDType, number> = {
  bool: 0, u8: 1, i8: 2, i16: 3, f16: 4, bf16: 5, i32: 6, f32: 7, f64: 8, i64: 9,
};

function writeOrder(entries: [string, HostTensor][]): [string, HostTensor][] {
  return [...entries].sort(([an, a], [bn, b]) =>
    REFERENCE_DTYPE_RANK[b.dtype] - REFERENCE_DTYPE_RANK[a.dtype] || (an < bn ? -1 : an > bn ? 1 : 0));
}

export function writeSafetensors(tensors: TensorSource, metadata?: Record<string, string>): Uint8Array {
  const ordered = writeOrder(entriesOf(tensors));
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new WeightsError(`safetensors: metadata value for '${k}' must be a string`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const [name, tensor] of ordered) {
    if (name === '__metadata__') throw new WeightsError("safetensors: '__metadata__' is reserved and cannot name a tensor");
    header[name] = { dtype: TO_SAFETENSORS[tensor.dtype], shape: tensor.shape, data_offsets: [offset, offset + tensor.byteLength] };
    offset += tensor.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padding = (8 - (json.length % 8)) % 8;
  const headerLength = json.length + padding;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let cursor = 8 + headerLength;
  for (const [, tensor] of ordered) {
    out.set(typedBytes(tensor.data), cursor);
    cursor += tensor.byteLength;
  }
  return out;
}
