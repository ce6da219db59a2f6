/**
 * Checked, size-capped decompression for the CMR readers (gzip for .nii.gz, raw DEFLATE for ZIP entries).
 *
 * fflate's one-shot `gunzipSync` neither verifies the CRC32 (a flipped byte silently became a garbage
 * cine) nor bounds the output (a 1 MB bomb could expand to gigabytes before anything looked at it).
 * Here the stream is inflated in small pieces through fflate's streaming `Inflate`, the running output
 * size is checked against a limit after every piece, and the output is written into one buffer whose
 * size is known before it is allocated (gzip ISIZE / the ZIP entry's declared size). The CRC32 and the
 * length are compared with the trailer at the end. Every failure is a DataError naming the source.
 */
import { Inflate } from 'fflate';
import { DataError } from '../errors';

/** Absolute ceiling on any single decompressed CMR file (a 50-frame 512x512 float64 cine is 105 MB). */
export const MAX_DECOMPRESSED_BYTES = 1 << 30;

/**
 * Eight 256-entry tables for CRC-32 "slicing by 8": one table lookup per input byte but eight bytes per
 * step, several times faster than the byte-at-a-time loop; it matters because every storage of a
 * checkpoint (hundreds of MB) is checked against its ZIP CRC32 when read.
 */
let crcTables: Uint32Array | null = null;

function buildCrcTables(): Uint32Array {
  const tables = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    tables[n] = c >>> 0;
  }
  // Table k advances a byte's contribution by k further zero bytes.
  for (let k = 1; k < 8; k++) {
    for (let n = 0; n < 256; n++) {
      const previous = tables[(k - 1) * 256 + n];
      tables[k * 256 + n] = (previous >>> 8) ^ tables[previous & 0xff];
    }
  }
  return tables;
}

/** CRC-32 (IEEE 802.3, the polynomial gzip and ZIP use). */
export function crc32(bytes: Uint8Array, previous = 0): number {
  const t = (crcTables ??= buildCrcTables());
  let crc = ~previous;
  let i = 0;
  for (const stop = bytes.length - 8; i <= stop; i += 8) {
    const low = crc ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    crc = t[1792 + (low & 0xff)] ^ t[1536 + ((low >>> 8) & 0xff)] ^ t[1280 + ((low >>> 16) & 0xff)] ^ t[1024 + (low >>> 24)]
      ^ t[768 + bytes[i + 4]] ^ t[512 + bytes[i + 5]] ^ t[256 + bytes[i + 6]] ^ t[bytes[i + 7]];
  }
  for (; i < bytes.length; i++) crc = t[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return ~crc >>> 0;
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Input bytes fed to the inflater per step: bounds the transient output of one step to ~1032x this. */
const INFLATE_STEP = 16 * 1024;

/**
 * Inflates raw DEFLATE `data` into exactly `expectedSize` bytes; anything else (more, fewer, a corrupt
 * stream) is a DataError. `what` names the stream in messages ("gzip stream", "ZIP entry a.dcm").
 */
export function inflateExactly(data: Uint8Array, expectedSize: number, source: string, what: string): Uint8Array {
  const out = new Uint8Array(expectedSize);
  let written = 0;
  let overflow = false;
  const inflater = new Inflate((chunk) => {
    if (overflow) return;
    if (written + chunk.length > expectedSize) {
      overflow = true;
      return;
    }
    out.set(chunk, written);
    written += chunk.length;
  });
  try {
    for (let pos = 0; pos < data.length && !overflow; pos += INFLATE_STEP) {
      const end = Math.min(data.length, pos + INFLATE_STEP);
      inflater.push(data.subarray(pos, end), end === data.length);
    }
    if (data.length === 0) inflater.push(new Uint8Array(0), true);
  } catch (e) {
    if (!overflow) throw new DataError(source, `${what} is corrupt (DEFLATE data: ${describeFflateError(e)}); the file is damaged or truncated, re-export or re-download it`);
  }
  if (overflow) throw new DataError(source, `${what} expands beyond its declared size of ${expectedSize} bytes; the file is corrupt`);
  if (written !== expectedSize) throw new DataError(source, `${what} holds ${written} bytes, its header declares ${expectedSize}; the file is truncated or corrupt`);
  return out;
}

function describeFflateError(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.replace(/\s+/g, ' ').trim() || 'invalid stream';
}

export interface GunzipOptions {
  /** Hard limit on the decompressed size (default MAX_DECOMPRESSED_BYTES). */
  maxBytes?: number;
  /**
   * Called with the first `prefixBytes` decompressed bytes (or all of them when shorter) and the size
   * the trailer declares, before the full output is allocated: lets a format check that its own header
   * agrees with the declared size (NIfTI: dims x bitpix) and refuse early.
   */
  checkPrefix?: (prefix: Uint8Array, declaredSize: number) => void;
  prefixBytes?: number;
}

interface GzipMember {
  deflate: Uint8Array;
  expectedCrc: number;
  declaredSize: number;
}

function gzipMember(bytes: Uint8Array, source: string): GzipMember {
  if (bytes.length < 18 || !isGzip(bytes)) throw new DataError(source, `not a gzip file or shorter than a gzip header and trailer (${bytes.length} bytes)`);
  if (bytes[2] !== 8) throw new DataError(source, `gzip compression method ${bytes[2]} is not DEFLATE (8); the file is corrupt`);
  const flags = bytes[3];
  if (flags & 0xe0) throw new DataError(source, `gzip header has reserved flag bits set (0x${flags.toString(16)}); the file is corrupt`);
  let pos = 10;
  const need = (n: number, field: string) => {
    if (pos + n > bytes.length - 8) throw new DataError(source, `gzip header field ${field} runs past the end of the file; the file is truncated`);
  };
  if (flags & 4) {
    need(2, 'FEXTRA length');
    const extraLength = bytes[pos] | (bytes[pos + 1] << 8);
    pos += 2;
    need(extraLength, 'FEXTRA');
    pos += extraLength;
  }
  for (const [bit, field] of [[8, 'FNAME'], [16, 'FCOMMENT']] as const) {
    if (!(flags & bit)) continue;
    while (pos < bytes.length - 8 && bytes[pos] !== 0) pos++;
    need(1, field);
    pos++;
  }
  if (flags & 2) {
    need(2, 'FHCRC');
    pos += 2;
  }
  const trailer = new DataView(bytes.buffer, bytes.byteOffset + bytes.length - 8, 8);
  return { deflate: bytes.subarray(pos, bytes.length - 8), expectedCrc: trailer.getUint32(0, true), declaredSize: trailer.getUint32(4, true) };
}

/** The first `count` decompressed bytes (fewer if the stream is shorter or breaks off early). */
function inflatePrefix(data: Uint8Array, count: number): Uint8Array {
  const out = new Uint8Array(count);
  let written = 0;
  const inflater = new Inflate((chunk) => {
    const take = Math.min(chunk.length, count - written);
    out.set(chunk.subarray(0, take), written);
    written += take;
  });
  try {
    for (let pos = 0; pos < data.length && written < count; pos += 1024) {
      const end = Math.min(data.length, pos + 1024);
      inflater.push(data.subarray(pos, end), end === data.length);
    }
  } catch {
    // A broken stream is reported by the full inflation that follows; the prefix is just shorter.
  }
  return out.subarray(0, written);
}

/**
 * Decompresses a single-member gzip file after checking its header; verifies CRC32 and ISIZE. The
 * output buffer is sized from ISIZE (the size modulo 2^32 the writer recorded), refused above `maxBytes`.
 */
export function gunzipChecked(bytes: Uint8Array, source: string, options: GunzipOptions = {}): Uint8Array {
  const maxBytes = options.maxBytes ?? MAX_DECOMPRESSED_BYTES;
  const { deflate, expectedCrc, declaredSize } = gzipMember(bytes, source);
  if (declaredSize > maxBytes) {
    throw new DataError(source, `gzip trailer declares ${declaredSize} decompressed bytes, above the ${maxBytes}-byte limit; the file is corrupt or not a single cine`);
  }
  if (options.checkPrefix) options.checkPrefix(inflatePrefix(deflate, Math.min(declaredSize, options.prefixBytes ?? 1024)), declaredSize);
  const out = inflateExactly(deflate, declaredSize, source, 'gzip stream');
  const actualCrc = crc32(out);
  if (actualCrc !== expectedCrc) {
    throw new DataError(source, `gzip CRC32 mismatch (stored 0x${expectedCrc.toString(16)}, computed 0x${actualCrc.toString(16)}); the file is corrupt, re-download or re-export it`);
  }
  return out;
}

/**
 * Inflates raw DEFLATE data of unknown size (deflated DICOM), refusing more than `maxBytes`; the pieces
 * are collected and joined once, so memory stays within about twice the (capped) output.
 */
export function inflateCapped(data: Uint8Array, maxBytes: number, source: string, what: string): Uint8Array {
  const pieces: Uint8Array[] = [];
  let total = 0;
  let overflow = false;
  const inflater = new Inflate((chunk) => {
    if (overflow) return;
    if (total + chunk.length > maxBytes) {
      overflow = true;
      return;
    }
    pieces.push(chunk.slice());
    total += chunk.length;
  });
  try {
    for (let pos = 0; pos < data.length && !overflow; pos += INFLATE_STEP) {
      const end = Math.min(data.length, pos + INFLATE_STEP);
      inflater.push(data.subarray(pos, end), end === data.length);
    }
  } catch (e) {
    if (!overflow) throw new DataError(source, `${what} is corrupt (DEFLATE data: ${describeFflateError(e)}); the file is damaged or truncated`);
  }
  if (overflow) throw new DataError(source, `${what} expands beyond the ${maxBytes}-byte limit; the file is corrupt or not a single image`);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
