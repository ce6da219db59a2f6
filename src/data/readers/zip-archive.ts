/**
 * The project's one ZIP reader, for CMR subject archives (UK Biobank ships one zip of DICOM series per
 * subject; ./index.ts) and torch.save checkpoints (src/models/io/pth.ts). It lives in the data layer
 * because src/data may not import from src/models, while src/models may import from here.
 *
 * Only what those archives use: the central directory (with ZIP64, which torch writes past 4 GB), stored
 * and DEFLATE entries, no encryption. fflate's unzipSync neither bounds its allocations nor verifies
 * CRC32s, so a damaged archive could yield a silently wrong slice or weight. Here every offset and size is
 * checked before use, a declared size DEFLATE cannot produce is refused before allocating it, callers cap
 * entry sizes, and every entry read is checked against its CRC32. Problems are ZipFormatErrors, which
 * each layer turns into its own error naming the file (DataError below, WeightsError in pth.ts).
 */
import { DataError } from '../errors';
import { crc32, inflateExactly, MAX_DECOMPRESSED_BYTES } from './gzip';

/** `problem` leaves out the archive's name (callers add it); `entryName` is absent for the archive as a whole. */
export class ZipFormatError extends Error {
  constructor(readonly problem: string, readonly entryName?: string) {
    super(entryName ? `${entryName}: ${problem}` : problem);
    this.name = 'ZipFormatError';
  }
}

export interface ZipEntry {
  /** Path inside the archive, '/'-separated. */
  name: string;
  /** 0 stored, 8 DEFLATE; anything else is refused when the entry is read. */
  method: number;
  encrypted: boolean;
  crc: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
}

/** Signature and fixed size of each record: local header, central directory entry, end record and its ZIP64 forms. */
const SIGNATURE = { local: 0x04034b50, entry: 0x02014b50, end: 0x06054b50, zip64End: 0x06064b50, zip64Locator: 0x07064b50 };
const SIZE = { local: 30, entry: 46, end: 22, zip64End: 56, zip64Locator: 20 };
const MAX_COMMENT_LENGTH = 0xffff;
/** A 16- or 32-bit field holding all ones means "see the ZIP64 record". */
const ZIP64_MARKER_16 = 0xffff;
const ZIP64_MARKER_32 = 0xffffffff;
const ZIP64_EXTRA_FIELD_ID = 1;
const FLAG_ENCRYPTED = 0x1;
const FLAG_UTF8_NAME = 0x800;
const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;
/** DEFLATE expands at most ~1032:1, so a larger declared size is corruption, not a reason to allocate it. */
const MAX_DEFLATE_RATIO = 1032;
/** Largest entry inflated into one typed array (V8 caps ArrayBuffers near this). */
const MAX_INFLATED_ENTRY_BYTES = 2 ** 32;

/** The signature of a local file header (any non-empty archive) or of an empty archive's end record. */
export function isZip(bytes: Uint8Array): boolean {
  if (bytes.length < 4 || bytes[0] !== 0x50 || bytes[1] !== 0x4b) return false;
  return (bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6);
}

/** A 64-bit ZIP64 field as a number; values past 2^53 cannot be offsets into any array we hold. */
function readUint64(view: DataView, offset: number, field: string): number {
  const value = Number(view.getBigUint64(offset, true));
  if (!Number.isSafeInteger(value)) throw new ZipFormatError(`ZIP64 ${field} (${value}) is impossibly large; the archive is corrupt`);
  return value;
}

const utf8 = new TextDecoder('utf-8');
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Entry names without the UTF-8 flag are CP437 by the spec, but writers such as Info-ZIP on Linux store
 * UTF-8 without setting it; valid UTF-8 is taken as such, anything else keeps its printable ASCII and
 * shows other bytes as '?'.
 */
function decodeName(raw: Uint8Array, flaggedUtf8: boolean): string {
  if (flaggedUtf8) return utf8.decode(raw);
  try { return strictUtf8.decode(raw); } catch { return String.fromCharCode(...raw).replace(/[^\x20-\x7e]/g, '?'); }
}

/** `end`: where the end records start; the directory must lie before it. */
interface DirectoryLocation { entryCount: number; offset: number; size: number; end: number }

function locateDirectory(view: DataView): DirectoryLocation {
  let endRecord = view.byteLength - SIZE.end;
  const lowest = Math.max(0, endRecord - MAX_COMMENT_LENGTH);
  while (endRecord >= lowest && view.getUint32(endRecord, true) !== SIGNATURE.end) endRecord--;
  if (endRecord < lowest) throw new ZipFormatError('ZIP end-of-central-directory record not found (file truncated or not a ZIP archive); re-download it');
  const entryCount = view.getUint16(endRecord + 10, true);
  const size = view.getUint32(endRecord + 12, true);
  const offset = view.getUint32(endRecord + 16, true);
  if (entryCount !== ZIP64_MARKER_16 && size !== ZIP64_MARKER_32 && offset !== ZIP64_MARKER_32) {
    return { entryCount, offset, size, end: endRecord };
  }
  const locator = endRecord - SIZE.zip64Locator;
  if (locator < 0 || view.getUint32(locator, true) !== SIGNATURE.zip64Locator) {
    throw new ZipFormatError('ZIP64 end-of-central-directory locator missing; the archive is truncated or corrupt');
  }
  const zip64End = readUint64(view, locator + 8, 'end record offset');
  if (zip64End + SIZE.zip64End > locator || view.getUint32(zip64End, true) !== SIGNATURE.zip64End) {
    throw new ZipFormatError('ZIP64 end-of-central-directory record missing; the archive is truncated or corrupt');
  }
  return {
    entryCount: readUint64(view, zip64End + 32, 'entry count'),
    size: readUint64(view, zip64End + 40, 'central directory size'),
    offset: readUint64(view, zip64End + 48, 'central directory offset'),
    end: zip64End,
  };
}

/** Every entry of the central directory, in directory order (directories included). */
export function readCentralDirectory(bytes: Uint8Array): ZipEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const directory = locateDirectory(view);
  if (directory.offset + directory.size > directory.end) {
    throw new ZipFormatError(`ZIP central directory (offset ${directory.offset}, ${directory.size} bytes) lies outside the archive; the file is truncated or corrupt`);
  }
  const entries: ZipEntry[] = [];
  let pos = directory.offset;
  for (let k = 0; k < directory.entryCount; k++) {
    const which = `ZIP central directory entry ${k + 1} of ${directory.entryCount}`;
    if (pos + SIZE.entry > directory.end || view.getUint32(pos, true) !== SIGNATURE.entry) {
      throw new ZipFormatError(`${which} is damaged; the archive is corrupt`);
    }
    const flags = view.getUint16(pos + 8, true);
    const nameStart = pos + SIZE.entry;
    const extraStart = nameStart + view.getUint16(pos + 28, true);
    const extraEnd = extraStart + view.getUint16(pos + 30, true);
    const commentLength = view.getUint16(pos + 32, true);
    if (extraEnd + commentLength > directory.end) throw new ZipFormatError(`${which} runs past the directory; the archive is corrupt`);
    const entry: ZipEntry = {
      name: decodeName(bytes.subarray(nameStart, extraStart), (flags & FLAG_UTF8_NAME) !== 0),
      method: view.getUint16(pos + 10, true),
      encrypted: (flags & FLAG_ENCRYPTED) !== 0,
      crc: view.getUint32(pos + 16, true),
      compressedSize: view.getUint32(pos + 20, true),
      uncompressedSize: view.getUint32(pos + 24, true),
      localHeaderOffset: view.getUint32(pos + 42, true),
    };
    applyZip64Extra(view, extraStart, extraEnd, entry);
    entries.push(entry);
    pos = extraEnd + commentLength;
  }
  return entries;
}

/** The ZIP64 extra field holds, in this order, only those of the three values whose 32-bit field overflowed. */
function applyZip64Extra(view: DataView, start: number, end: number, entry: ZipEntry): void {
  for (let field = start; field + 4 <= end; ) {
    const id = view.getUint16(field, true);
    const dataStart = field + 4;
    const dataEnd = dataStart + view.getUint16(field + 2, true);
    if (dataEnd > end) throw new ZipFormatError('ZIP extra field runs past its directory entry; the archive is corrupt', entry.name);
    if (id === ZIP64_EXTRA_FIELD_ID) {
      let at = dataStart;
      const next = (what: string): number => {
        if (at + 8 > dataEnd) throw new ZipFormatError(`ZIP64 extra field is too short to hold the ${what}; the archive is corrupt`, entry.name);
        const value = readUint64(view, at, what);
        at += 8;
        return value;
      };
      if (entry.uncompressedSize === ZIP64_MARKER_32) entry.uncompressedSize = next('uncompressed size');
      if (entry.compressedSize === ZIP64_MARKER_32) entry.compressedSize = next('compressed size');
      if (entry.localHeaderOffset === ZIP64_MARKER_32) entry.localHeaderOffset = next('local header offset');
    }
    field = dataEnd;
  }
}

export interface ExtractOptions {
  /** Refuse entries declaring more bytes than this (default: no cap beyond what can be inflated at all). */
  maxBytes?: number;
  /**
   * Take a stored CRC32 of 0 to mean "not computed" and skip the check: torch.save writes 0 when
   * torch.serialization.set_crc32_options(False) is in effect, and torch.load reads such files.
   */
  zeroCrcMeansUnchecked?: boolean;
}

/**
 * One entry's contents, checked against its declared size and CRC32. Stored entries come back as a view
 * into `bytes` (torch stores checkpoints uncompressed, and copying hundreds of MB would be wasted);
 * DEFLATE entries as a fresh array.
 */
export function extractZipEntry(bytes: Uint8Array, entry: ZipEntry, options: ExtractOptions = {}): Uint8Array {
  const fail = (problem: string): never => { throw new ZipFormatError(problem, entry.name); };
  if (entry.encrypted) fail('ZIP entry is encrypted; decrypt the archive first');
  if (entry.method !== METHOD_STORED && entry.method !== METHOD_DEFLATE) {
    fail(`ZIP compression method ${entry.method} is not supported (only stored and DEFLATE); repack the archive`);
  }
  const { maxBytes = Number.POSITIVE_INFINITY } = options;
  if (entry.uncompressedSize > maxBytes) fail(`ZIP entry declares ${entry.uncompressedSize} bytes, above the ${maxBytes}-byte limit for one file`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const local = entry.localHeaderOffset;
  if (local + SIZE.local > bytes.length || view.getUint32(local, true) !== SIGNATURE.local) {
    fail(`ZIP local header at offset ${local} is missing or damaged; the archive is truncated or corrupt`);
  }
  // The local name and extra field may differ in length from the central ones (torch pads the local extra field for alignment).
  const start = local + SIZE.local + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
  const end = start + entry.compressedSize;
  if (end > bytes.length) fail(`ZIP entry data (${entry.compressedSize} bytes at ${start}) runs past the end of the archive (${bytes.length} bytes); it is truncated`);
  const raw = bytes.subarray(start, end);
  let data: Uint8Array;
  if (entry.method === METHOD_STORED) {
    if (entry.compressedSize !== entry.uncompressedSize) fail(`stored ZIP entry has compressed size ${entry.compressedSize} but size ${entry.uncompressedSize}; the archive is corrupt`);
    data = raw;
  } else {
    const possible = Math.min(raw.length * MAX_DEFLATE_RATIO + 1024, MAX_INFLATED_ENTRY_BYTES);
    if (entry.uncompressedSize > possible) fail(`ZIP entry declares ${entry.uncompressedSize} bytes from ${raw.length} deflated bytes, more than DEFLATE can produce; the archive is corrupt`);
    try {
      data = inflateExactly(raw, entry.uncompressedSize, '', 'ZIP entry');
    } catch (e) {
      // inflateExactly speaks DataError; keep its problem text, this reader's callers add the file name.
      if (e instanceof DataError) return fail(e.problem);
      throw e;
    }
  }
  if (options.zeroCrcMeansUnchecked && entry.crc === 0) return data;
  const actual = crc32(data);
  if (actual !== entry.crc) fail(`ZIP entry CRC32 mismatch (stored 0x${entry.crc.toString(16)}, computed 0x${actual.toString(16)}); the archive is corrupt, re-download it`);
  return data;
}

// ---- CMR archives: problems become DataErrors naming `archive.zip` or `archive.zip!entry` ----

function asDataError<T>(source: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof ZipFormatError) throw new DataError(e.entryName ? `${source}!${e.entryName}` : source, e.problem);
    throw e;
  }
}

/** The file entries of a CMR archive (directories and macOS resource forks left out). */
export function listZipEntries(bytes: Uint8Array, source: string): ZipEntry[] {
  const entries = asDataError(source, () => readCentralDirectory(bytes));
  return entries.filter((e) => !e.name.endsWith('/') && !e.name.startsWith('__MACOSX/'));
}

export interface ZipReadOptions {
  /** Which entries to read (default all). */
  accept?: (entry: ZipEntry) => boolean;
  /** Cap on the sum of the accepted entries' sizes (default MAX_DECOMPRESSED_BYTES). */
  maxTotalBytes?: number;
}

/**
 * Reads the accepted entries of a CMR archive, each capped at MAX_DECOMPRESSED_BYTES; the total declared
 * size is checked before anything is decompressed. Every result is its own copy, never a view into the
 * archive, so keeping one image does not keep the whole archive alive.
 */
export function readZipArchive(bytes: Uint8Array, source: string, options: ZipReadOptions = {}): { name: string; bytes: Uint8Array }[] {
  const entries = listZipEntries(bytes, source).filter(options.accept ?? (() => true));
  const total = entries.reduce((sum, e) => sum + e.uncompressedSize, 0);
  const maxTotal = options.maxTotalBytes ?? MAX_DECOMPRESSED_BYTES;
  if (total > maxTotal) throw new DataError(source, `ZIP archive expands to ${total} bytes, above the ${maxTotal}-byte limit; extract the wanted series and read that folder`);
  return entries.map((entry) => {
    const data = asDataError(source, () => extractZipEntry(bytes, entry, { maxBytes: MAX_DECOMPRESSED_BYTES }));
    return { name: entry.name, bytes: entry.method === METHOD_STORED ? data.slice() : data };
  });
}
