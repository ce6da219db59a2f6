/** Minimal writers used only by the tests to build WFDB, NIfTI and DICOM inputs. */

export function wfdbHeader(record: string, fs: number, n: number, specs: { file: string; format: number; gain: number; baseline: number; units: string; name: string; checksum?: number }[]): string {
  const lines = [`${record} ${specs.length} ${fs} ${n}`];
  for (const s of specs) lines.push(`${s.file} ${s.format} ${s.gain}(${s.baseline})/${s.units} 12 0 0 ${s.checksum ?? 0} 0 ${s.name}`);
  return lines.join('\n') + '\n';
}

/** Interleaves integer samples of k signals into format 16 or 212 bytes. */
export function wfdbDat(signals: Int32Array[], format: 16 | 212): Uint8Array {
  const k = signals.length;
  const n = signals[0].length;
  const flat: number[] = [];
  for (let i = 0; i < n; i++) for (let s = 0; s < k; s++) flat.push(signals[s][i]);
  if (format === 16) {
    const out = new Uint8Array(flat.length * 2);
    flat.forEach((v, j) => {
      out[2 * j] = v & 0xff;
      out[2 * j + 1] = (v >> 8) & 0xff;
    });
    return out;
  }
  const out = new Uint8Array(Math.ceil((flat.length * 3) / 2));
  for (let j = 0; j < flat.length; j += 2) {
    const a = flat[j] & 0xfff;
    const b = (flat[j + 1] ?? 0) & 0xfff;
    const p = (j / 2) * 3;
    out[p] = a & 0xff;
    out[p + 1] = ((a >> 8) & 0x0f) | ((b >> 8) << 4);
    out[p + 2] = b & 0xff;
  }
  return out;
}

/** NIfTI-1 single file (.nii) with a 348-byte header, 4 bytes extension flag, data at 352. */
export function niftiFile(dims: number[], datatype: 2 | 4 | 16 | 64, values: ArrayLike<number>, sclSlope = 0, sclInter = 0): Uint8Array {
  const bytesPer = { 2: 1, 4: 2, 16: 4, 64: 8 }[datatype];
  const out = new Uint8Array(352 + values.length * bytesPer);
  const v = new DataView(out.buffer);
  v.setInt32(0, 348, true);
  v.setInt16(40, dims.length, true);
  dims.forEach((d, i) => v.setInt16(42 + 2 * i, d, true));
  for (let i = dims.length; i < 7; i++) v.setInt16(42 + 2 * i, 1, true);
  v.setInt16(70, datatype, true);
  v.setInt16(72, bytesPer * 8, true);
  for (let i = 0; i < 8; i++) v.setFloat32(76 + 4 * i, 1, true);
  v.setFloat32(108, 352, true);
  v.setFloat32(112, sclSlope, true);
  v.setFloat32(116, sclInter, true);
  out.set([0x6e, 0x2b, 0x31, 0x00], 344); // "n+1\0"
  for (let i = 0; i < values.length; i++) {
    const o = 352 + i * bytesPer;
    if (datatype === 2) v.setUint8(o, values[i]);
    else if (datatype === 4) v.setInt16(o, values[i], true);
    else if (datatype === 16) v.setFloat32(o, values[i], true);
    else v.setFloat64(o, values[i], true);
  }
  return out;
}

/** Explicit-VR little-endian DICOM writer for a tiny MR image. */
export function dicomFile(opts: { rows: number; cols: number; pixels: Uint16Array | Int16Array; instance: number; trigger?: number; series?: string; slope?: number; intercept?: number; signed?: boolean; photometric?: string; syntax?: string; location?: string }): Uint8Array {
  const chunks: number[] = [];
  const pushU16 = (x: number) => chunks.push(x & 0xff, (x >> 8) & 0xff);
  const pushU32 = (x: number) => { pushU16(x & 0xffff); pushU16((x >>> 16) & 0xffff); };
  const element = (group: number, elem: number, vr: string, value: Uint8Array) => {
    pushU16(group); pushU16(elem);
    chunks.push(vr.charCodeAt(0), vr.charCodeAt(1));
    if (['OB', 'OW', 'SQ', 'UN', 'UT'].includes(vr)) { pushU16(0); pushU32(value.length); } else pushU16(value.length);
    chunks.push(...value);
  };
  const str = (s: string, pad = ' ') => {
    const t = s.length % 2 ? s + pad : s;
    return new TextEncoder().encode(t);
  };
  const u16 = (x: number) => new Uint8Array([x & 0xff, (x >> 8) & 0xff]);
  for (let i = 0; i < 128; i++) chunks.push(0);
  chunks.push(0x44, 0x49, 0x43, 0x4d);
  const syntax = str(opts.syntax ?? '1.2.840.10008.1.2.1', '\0');
  element(0x0002, 0x0000, 'UL', new Uint8Array([8 + syntax.length, 0, 0, 0]));
  element(0x0002, 0x0010, 'UI', syntax);
  element(0x0018, 0x1060, 'DS', str(String(opts.trigger ?? opts.instance * 20)));
  element(0x0020, 0x000e, 'UI', str(opts.series ?? '1.2.3.4', '\0'));
  element(0x0020, 0x0013, 'IS', str(String(opts.instance)));
  if (opts.location) element(0x0020, 0x1041, 'DS', str(opts.location));
  element(0x0028, 0x0002, 'US', u16(1));
  element(0x0028, 0x0004, 'CS', str(opts.photometric ?? 'MONOCHROME2'));
  element(0x0028, 0x0010, 'US', u16(opts.rows));
  element(0x0028, 0x0011, 'US', u16(opts.cols));
  element(0x0028, 0x0100, 'US', u16(16));
  element(0x0028, 0x0101, 'US', u16(16));
  element(0x0028, 0x0103, 'US', u16(opts.signed ? 1 : 0));
  element(0x0028, 0x1052, 'DS', str(String(opts.intercept ?? 0)));
  element(0x0028, 0x1053, 'DS', str(String(opts.slope ?? 1)));
  element(0x7fe0, 0x0010, 'OW', new Uint8Array(opts.pixels.buffer, opts.pixels.byteOffset, opts.pixels.byteLength));
  return Uint8Array.from(chunks);
}
