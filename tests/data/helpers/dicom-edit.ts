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
