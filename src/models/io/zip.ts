/**
 * Minimal zip reader for torch.save archives. torch writes entries uncompressed (stored) and
 * 64-byte aligned, so returning views into the input avoids copying multi-hundred-MB
 * checkpoints; deflated entries (e.g. an archive re-zipped by hand) go through fflate.
 * Zip64 is supported because checkpoints over 4 GB use it.
 */
import { inflateSync } from 'fflate';
import { WeightsError, withName } from './errors';

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_EOCD_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const CENTRAL_ENTRY_SIGNATURE = 0x02014b50;
const LOCAL_HEADER_SIGNATURE = 0x04034b50;
const EOCD_MIN_SIZE = 22;
const MAX_COMMENT = 0xffff;
const MAX_DEFLATE_RATIO = 1032;
/** Largest entry we inflate (one typed array; V8 caps ArrayBuffers near this). */
const MAX_ENTRY_BYTES = 2 ** 32;

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
}

export class ZipArchive {
  readonly entries = new Map<string, ZipEntry>();

  constructor(private readonly bytes: Uint8Array, private readonly fileName?: string) {
    this.readCentralDirectory();
  }

  private fail(message: string): never {
    throw new WeightsError(withName(this.fileName, message));
  }

  private view(): DataView {
    return new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }

  private readCentralDirectory(): void {
    const { bytes } = this;
    const dv = this.view();
    let eocd = -1;
    const lowest = Math.max(0, bytes.length - EOCD_MIN_SIZE - MAX_COMMENT);
    for (let i = bytes.length - EOCD_MIN_SIZE; i >= lowest; i--) {
      if (dv.getUint32(i, true) === EOCD_SIGNATURE) { eocd = i; break; }
    }
    if (eocd < 0) this.fail('zip end-of-central-directory record not found (file truncated or not a zip archive)');

    let entryCount = dv.getUint16(eocd + 10, true);
    let directorySize = dv.getUint32(eocd + 12, true);
    let directoryOffset = dv.getUint32(eocd + 16, true);
    if (entryCount === 0xffff || directorySize === 0xffffffff || directoryOffset === 0xffffffff) {
      const locator = eocd - 20;
      if (locator < 0 || dv.getUint32(locator, true) !== ZIP64_EOCD_LOCATOR_SIGNATURE) this.fail('zip64 locator missing');
      const zip64Eocd = Number(dv.getBigUint64(locator + 8, true));
      if (!Number.isSafeInteger(zip64Eocd) || zip64Eocd + 56 > bytes.length || dv.getUint32(zip64Eocd, true) !== ZIP64_EOCD_SIGNATURE) this.fail('zip64 end record missing');
      entryCount = Number(dv.getBigUint64(zip64Eocd + 32, true));
      directorySize = Number(dv.getBigUint64(zip64Eocd + 40, true));
      directoryOffset = Number(dv.getBigUint64(zip64Eocd + 48, true));
    }
    if (directoryOffset + directorySize > bytes.length) this.fail('zip central directory lies past the end of the file (truncated)');

    const decoder = new TextDecoder();
    let p = directoryOffset;
    for (let i = 0; i < entryCount; i++) {
      if (p + 46 > bytes.length || dv.getUint32(p, true) !== CENTRAL_ENTRY_SIGNATURE) this.fail(`zip central directory entry ${i} is corrupt`);
      const method = dv.getUint16(p + 10, true);
      let compressedSize = dv.getUint32(p + 20, true);
      let uncompressedSize = dv.getUint32(p + 24, true);
      const nameLength = dv.getUint16(p + 28, true);
      const extraLength = dv.getUint16(p + 30, true);
      const commentLength = dv.getUint16(p + 32, true);
      let localHeaderOffset = dv.getUint32(p + 42, true);
      if (p + 46 + nameLength + extraLength + commentLength > bytes.length) this.fail(`zip central directory entry ${i} runs past the end of the file (truncated?)`);
      const name = decoder.decode(bytes.subarray(p + 46, p + 46 + nameLength));
      // Zip64 extra field (id 1) carries, in this order, only the sizes/offsets that overflowed.
      let e = p + 46 + nameLength;
      const extraEnd = e + extraLength;
      while (e + 4 <= extraEnd) {
        const id = dv.getUint16(e, true);
        const size = dv.getUint16(e + 2, true);
        if (e + 4 + size > extraEnd) this.fail(`zip extra field of '${name}' runs past its entry (corrupt central directory)`);
        if (id === 1) {
          let q = e + 4;
          const next = (): number => {
            if (q + 8 > e + 4 + size) this.fail(`zip64 extra field of '${name}' is too short`);
            const v = Number(dv.getBigUint64(q, true));
            q += 8;
            return v;
          };
          if (uncompressedSize === 0xffffffff) uncompressedSize = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = next();
        }
        e += 4 + size;
      }
      this.entries.set(name, { name, method, compressedSize, uncompressedSize, localHeaderOffset });
      p = extraEnd + commentLength;
    }
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** Entry contents: a view into the input for stored entries, a fresh array for deflated ones. */
  read(name: string): Uint8Array {
    const entry = this.entries.get(name);
    if (!entry) this.fail(`zip entry '${name}' not found`);
    const dv = this.view();
    const h = entry.localHeaderOffset;
    if (h + 30 > this.bytes.length || dv.getUint32(h, true) !== LOCAL_HEADER_SIGNATURE) {
      this.fail(`zip local header of '${name}' is missing or corrupt (file truncated?)`);
    }
    // The local extra field may differ from the central one (torch pads it for alignment).
    const start = h + 30 + dv.getUint16(h + 26, true) + dv.getUint16(h + 28, true);
    const end = start + entry.compressedSize;
    if (end > this.bytes.length) this.fail(`zip entry '${name}' runs past the end of the file (truncated: needs ${end} bytes, file has ${this.bytes.length})`);
    const raw = this.bytes.subarray(start, end);
    if (entry.method === 0) return raw;
    if (entry.method === 8) {
      // Deflate expands at most ~1032:1; a larger claimed size is corruption, not a reason to allocate it.
      const limit = Math.min(raw.length * MAX_DEFLATE_RATIO + 1024, MAX_ENTRY_BYTES);
      if (entry.uncompressedSize > limit) this.fail(`zip entry '${name}' claims ${entry.uncompressedSize} bytes from ${raw.length} deflated bytes (more than deflate can produce: corrupt)`);
      let out: Uint8Array;
      try {
        out = inflateSync(raw, { out: new Uint8Array(entry.uncompressedSize) });
      } catch (e) {
        return this.fail(`zip entry '${name}' does not inflate (${(e as Error).message || 'corrupt deflate stream'})`);
      }
      if (out.length !== entry.uncompressedSize) this.fail(`zip entry '${name}' inflated to ${out.length} bytes, expected ${entry.uncompressedSize}`);
      return out;
    }
    this.fail(`zip entry '${name}' uses unsupported compression method ${entry.method}`);
  }
}

export function looksLikeZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}
