/**
 * Test helper: rewrites elements of a real explicit-VR little-endian DICOM file (data set only, the
 * meta group is kept as is). Used to build UK-Biobank-like archives from real scanner bytes: several
 * series with other SeriesDescriptions, trigger times, orientations and pixel values.
 */

export interface DicomEdit {
  vr: string;
  /** A string (padded to even length with a space, or NUL for UI) or raw bytes. */
  value: string | Uint8Array;
}

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT']);

interface RawElement {
  tag: number;
  bytes: Uint8Array;
}

function encodeElement(tag: number, edit: DicomEdit): Uint8Array {
  let value = typeof edit.value === 'string' ? new TextEncoder().encode(edit.value) : edit.value;
  if (value.length % 2) {
    const padded = new Uint8Array(value.length + 1);
    padded.set(value);
    padded[value.length] = edit.vr === 'UI' || typeof edit.value !== 'string' ? 0 : 0x20;
    value = padded;
  }
  const long = LONG_VRS.has(edit.vr);
  const out = new Uint8Array((long ? 12 : 8) + value.length);
  const view = new DataView(out.buffer);
  view.setUint16(0, tag >>> 16, true);
  view.setUint16(2, tag & 0xffff, true);
  out[4] = edit.vr.charCodeAt(0);
  out[5] = edit.vr.charCodeAt(1);
  if (long) view.setUint32(8, value.length, true);
  else view.setUint16(6, value.length, true);
  out.set(value, long ? 12 : 8);
  return out;
}

/** `edits` keyed by tag as 0xGGGGEEEE; null removes the element. */
export function editDicom(bytes: Uint8Array, edits: Map<number, DicomEdit | null>): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 132;
  const elements: RawElement[] = [];
  while (pos < bytes.length) {
    const tag = (view.getUint16(pos, true) << 16) | view.getUint16(pos + 2, true);
    const vr = String.fromCharCode(bytes[pos + 4], bytes[pos + 5]);
    const long = LONG_VRS.has(vr);
    const length = long ? view.getUint32(pos + 8, true) : view.getUint16(pos + 6, true);
    if (length === 0xffffffff) throw new Error('editDicom: undefined-length elements are not handled');
    const end = pos + (long ? 12 : 8) + length;
    elements.push({ tag: tag >>> 0, bytes: bytes.subarray(pos, end) });
    pos = end;
  }
  const kept = elements.filter((e) => !edits.has(e.tag));
  for (const [tag, edit] of edits) if (edit) kept.push({ tag: tag >>> 0, bytes: encodeElement(tag, edit) });
  kept.sort((a, b) => a.tag - b.tag);
  const out = new Uint8Array(132 + kept.reduce((n, e) => n + e.bytes.length, 0));
  out.set(bytes.subarray(0, 132));
  let at = 132;
  for (const e of kept) {
    out.set(e.bytes, at);
    at += e.bytes.length;
  }
  return out;
}

export const TAG = {
  seriesDescription: 0x0008103e,
  triggerTime: 0x00181060,
  seriesUid: 0x0020000e,
  seriesNumber: 0x00200011,
  instanceNumber: 0x00200013,
  imagePosition: 0x00200032,
  imageOrientation: 0x00200037,
  sliceLocation: 0x00201041,
  pixelData: 0x7fe00010,
} as const;

export interface EncapsulatedSpec {
  syntax: string;
  rows: number;
  cols: number;
  bitsAllocated: 8 | 16;
  bitsStored?: number;
  signed?: boolean;
  photometric?: string;
  samplesPerPixel?: number;
  /** Compressed bytes of each frame. */
  frames: Uint8Array[];
  /** Split every frame into this many fragments (needs the offset table when frames > 1). */
  fragmentsPerFrame?: number;
  /** Write the Basic Offset Table (default true). */
  offsetTable?: boolean;
}

/** A minimal explicit-VR little-endian Part 10 file with encapsulated (compressed) multi-frame pixel data. */
export function encapsulatedDicom(spec: EncapsulatedSpec): Uint8Array {
  const parts: Uint8Array[] = [];
  const u16 = (v: number) => Uint8Array.of(v & 0xff, v >> 8);
  const u32 = (v: number) => Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
  const text = (s: string, pad = ' ') => new TextEncoder().encode(s.length % 2 ? s + pad : s);
  const element = (tag: number, vr: string, value: Uint8Array) => parts.push(encodeElement(tag, { vr, value }));
  const syntax = text(spec.syntax, '\0');
  parts.push(new Uint8Array(128), new TextEncoder().encode('DICM'));
  element(0x00020000, 'UL', u32(8 + syntax.length));
  element(0x00020010, 'UI', syntax);
  element(0x00280002, 'US', u16(spec.samplesPerPixel ?? 1));
  element(0x00280004, 'CS', text(spec.photometric ?? 'MONOCHROME2'));
  element(0x00280008, 'IS', text(String(spec.frames.length)));
  element(0x00280010, 'US', u16(spec.rows));
  element(0x00280011, 'US', u16(spec.cols));
  element(0x00280100, 'US', u16(spec.bitsAllocated));
  element(0x00280101, 'US', u16(spec.bitsStored ?? spec.bitsAllocated));
  element(0x00280102, 'US', u16((spec.bitsStored ?? spec.bitsAllocated) - 1));
  element(0x00280103, 'US', u16(spec.signed ? 1 : 0));
  // PixelData: OB, undefined length, offset-table item, fragment items, sequence delimiter.
  const item = (data: Uint8Array) => {
    const even = data.length % 2 ? Uint8Array.from([...data, 0]) : data;
    return [Uint8Array.of(0xfe, 0xff, 0x00, 0xe0), u32(even.length), even];
  };
  const fragments: Uint8Array[][] = spec.frames.map((frame) => {
    const n = spec.fragmentsPerFrame ?? 1;
    const size = Math.ceil(frame.length / n / 2) * 2;
    return Array.from({ length: n }, (_, k) => frame.subarray(k * size, Math.min(frame.length, (k + 1) * size)));
  });
  const offsets: number[] = [];
  let offset = 0;
  for (const list of fragments) {
    offsets.push(offset);
    for (const f of list) offset += 8 + f.length + (f.length % 2);
  }
  const table = spec.offsetTable === false ? new Uint8Array(0) : Uint8Array.from(offsets.flatMap((o) => [...u32(o)]));
  parts.push(Uint8Array.of(0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0), u32(0xffffffff));
  parts.push(...item(table));
  for (const list of fragments) for (const f of list) parts.push(...item(f));
  parts.push(Uint8Array.of(0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
