/**
 * Minimal, defensive ZIP reader for CMR archives (UK Biobank ships one zip of DICOM series per subject).
 *
 * Only what such archives use: the central directory, stored (0) and DEFLATE (8) entries, no encryption,
 * no ZIP64. Every offset and size is checked against the archive before it is used, every entry's
 * decompressed size is capped (and its buffer sized from the directory before allocation), and the
 * CRC32 of every entry read is verified — fflate's unzipSync does neither, so a damaged archive could
 * yield a silently wrong slice.
 */
import { DataError } from '../errors';
import { crc32, inflateExactly, MAX_DECOMPRESSED_BYTES } from './gzip';

export interface ZipEntry {
  /** Path inside the archive, '/'-separated. */
  name: string;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const EOCD_SIGNATURE = 0x06054b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 3 || bytes[2] === 5) && (bytes[3] === 4 || bytes[3] === 6);
}

function decodeName(raw: Uint8Array, utf8: boolean): string {
  if (utf8) return new TextDecoder('utf-8').decode(raw);
  // CP437 for the printable ASCII range is ASCII; anything else is kept as a visible replacement.
  return String.fromCharCode(...raw).replace(/[^\x20-\x7e]/g, '?');
}

/** The file entries of the central directory (directories and macOS resource forks left out). */
export function listZipEntries(bytes: Uint8Array, source: string): ZipEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (view.getUint32(i, true) === EOCD_SIGNATURE) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new DataError(source, 'not a ZIP archive or truncated (no end-of-central-directory record); re-download the archive');
  const count = view.getUint16(eocd + 10, true);
  const dirSize = view.getUint32(eocd + 12, true);
  const dirOffset = view.getUint32(eocd + 16, true);
  if (count === 0xffff || dirOffset === 0xffffffff) throw new DataError(source, 'ZIP64 archives are not supported; repack it as a plain ZIP (under 4 GB)');
  if (dirOffset + dirSize > eocd) throw new DataError(source, `ZIP central directory (offset ${dirOffset}, ${dirSize} bytes) lies outside the archive; the file is truncated or corrupt`);
  const entries: ZipEntry[] = [];
  let pos = dirOffset;
  for (let k = 0; k < count; k++) {
    if (pos + 46 > eocd || view.getUint32(pos, true) !== CENTRAL_SIGNATURE) {
      throw new DataError(source, `ZIP central directory entry ${k + 1} of ${count} is damaged; the archive is corrupt`);
    }
    const flags = view.getUint16(pos + 8, true);
    const method = view.getUint16(pos + 10, true);
    const crc = view.getUint32(pos + 16, true);
    const compressedSize = view.getUint32(pos + 20, true);
    const size = view.getUint32(pos + 24, true);
    const nameLength = view.getUint16(pos + 28, true);
    const extraLength = view.getUint16(pos + 30, true);
    const commentLength = view.getUint16(pos + 32, true);
    const localHeaderOffset = view.getUint32(pos + 42, true);
    const end = pos + 46 + nameLength + extraLength + commentLength;
    if (end > eocd) throw new DataError(source, `ZIP central directory entry ${k + 1} runs past the directory; the archive is corrupt`);
    const name = decodeName(bytes.subarray(pos + 46, pos + 46 + nameLength), (flags & 0x800) !== 0);
    pos = end;
    if (name.endsWith('/') || name.startsWith('__MACOSX/')) continue;
    if (flags & 1) throw new DataError(source, `ZIP entry ${name} is encrypted; decrypt the archive first`);
    if (compressedSize === 0xffffffff || size === 0xffffffff || localHeaderOffset === 0xffffffff) {
      throw new DataError(source, `ZIP entry ${name} uses ZIP64 sizes, which are not supported; repack the archive`);
    }
    entries.push({ name, method, crc, compressedSize, size, localHeaderOffset });
  }
  return entries;
}

/** Decompresses one entry (size capped by `maxBytes`), verifying its CRC32 and declared size. */
export function readZipEntry(bytes: Uint8Array, entry: ZipEntry, source: string, maxBytes = MAX_DECOMPRESSED_BYTES): Uint8Array {
  const where = `${source}!${entry.name}`;
  if (entry.method !== 0 && entry.method !== 8) {
    throw new DataError(where, `ZIP compression method ${entry.method} is not supported (only stored and DEFLATE); repack the archive`);
  }
  if (entry.size > maxBytes) throw new DataError(where, `ZIP entry declares ${entry.size} bytes, above the ${maxBytes}-byte limit for one file`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const local = entry.localHeaderOffset;
  if (local + 30 > bytes.length || view.getUint32(local, true) !== LOCAL_SIGNATURE) {
    throw new DataError(where, `ZIP local header at offset ${local} is missing or damaged; the archive is corrupt`);
  }
  const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
  const end = start + entry.compressedSize;
  if (end > bytes.length) throw new DataError(where, `ZIP entry data (${entry.compressedSize} bytes at ${start}) runs past the end of the archive; it is truncated`);
  const raw = bytes.subarray(start, end);
  let data: Uint8Array;
  if (entry.method === 0) {
    if (entry.compressedSize !== entry.size) throw new DataError(where, `stored ZIP entry has compressed size ${entry.compressedSize} but size ${entry.size}; the archive is corrupt`);
    data = raw.slice();
  } else {
    data = inflateExactly(raw, entry.size, where, 'ZIP entry');
  }
  const actual = crc32(data);
  if (actual !== entry.crc) {
    throw new DataError(where, `ZIP entry CRC32 mismatch (stored 0x${entry.crc.toString(16)}, computed 0x${actual.toString(16)}); the archive is corrupt, re-download it`);
  }
  return data;
}

export interface ZipReadOptions {
  /** Which entries to read (default all). */
  accept?: (entry: ZipEntry) => boolean;
  /** Cap on the sum of the accepted entries' sizes (default MAX_DECOMPRESSED_BYTES). */
  maxTotalBytes?: number;
}

/** Reads the accepted entries; the total declared size is checked before anything is decompressed. */
export function readZipArchive(bytes: Uint8Array, source: string, options: ZipReadOptions = {}): { name: string; bytes: Uint8Array }[] {
  const entries = listZipEntries(bytes, source).filter(options.accept ?? (() => true));
  const total = entries.reduce((sum, e) => sum + e.size, 0);
  const maxTotal = options.maxTotalBytes ?? MAX_DECOMPRESSED_BYTES;
  if (total > maxTotal) throw new DataError(source, `ZIP archive expands to ${total} bytes, above the ${maxTotal}-byte limit; extract the wanted series and read that folder`);
  return entries.map((e) => ({ name: e.name, bytes: readZipEntry(bytes, e, source) }));
}
