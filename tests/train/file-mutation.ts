/**
 * Editing safetensors files the way damage or a careless hand would: a flipped bit inside one tensor's bytes,
 * a changed value, an edited `__metadata__` entry, with or without re-computing the integrity record (a
 * re-sealed file passes the hash check, so the value checks behind it get tested too).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { readSafetensors, writeSafetensors } from '../../src/models/io/safetensors';
import { HostTensor } from '../../src/models/io/tensor';
import { sealTensors } from '../../src/train/integrity';

interface Header {
  [name: string]: { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>;
}

function parseHeader(bytes: Uint8Array): { header: Header; dataStart: number } {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length))) as Header;
  return { header, dataStart: 8 + length };
}

/** Byte offset (in the file) of element `index` of f32 tensor `name`. */
export function f32Offset(bytes: Uint8Array, name: string, index = 0): number {
  const { header, dataStart } = parseHeader(bytes);
  const entry = header[name] as { dtype: string; data_offsets: [number, number] } | undefined;
  if (!entry || entry.dtype !== 'F32') throw new Error(`no F32 tensor '${name}' in the file`);
  return dataStart + entry.data_offsets[0] + 4 * index;
}

/** Flips bit `bit` (30 = the exponent's top bit) of element `index` of f32 tensor `name`, in place on disk. */
export function flipBit(path: string, name: string, index = 0, bit = 30): void {
  const bytes = new Uint8Array(readFileSync(path));
  const at = f32Offset(bytes, name, index) + (bit >> 3);
  bytes[at] ^= 1 << (bit & 7);
  writeFileSync(path, bytes);
}

/** Rewrites the file with edited tensors and metadata; `reseal` recomputes the integrity record. */
export function rewrite(
  path: string,
  edit: (tensors: Map<string, HostTensor>, metadata: Record<string, string>) => void,
  options: { reseal: boolean },
): void {
  const file = readSafetensors(new Uint8Array(readFileSync(path)));
  const tensors = new Map([...file.tensors].map(([k, t]) => [k, t]));
  const metadata = { ...file.metadata };
  edit(tensors, metadata);
  if (options.reseal) metadata.integrity = sealTensors(tensors, metadata.checkpoint);
  writeFileSync(path, writeSafetensors(tensors, metadata));
}

/** Sets element `index` of an f32 tensor (a copy, so the original data stays untouched). */
export function setValue(tensors: Map<string, HostTensor>, name: string, index: number, value: number): void {
  const t = tensors.get(name);
  if (!t) throw new Error(`no tensor '${name}'`);
  const data = Float32Array.from(t.data as Float32Array);
  data[index] = value;
  tensors.set(name, new HostTensor('f32', t.shape, data));
}
