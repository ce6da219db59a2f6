/** Rewrites of small test archives into forms real writers produce but test fixtures lack. */

/**
 * Rewrites a small ZIP archive (no archive comment) in the form a writer uses past 4 GB: every entry's
 * sizes and local header offset moved into a ZIP64 extra field (the 32-bit fields set to 0xffffffff),
 * and the end of the archive given a ZIP64 end record and locator with the classic end record's fields
 * all set to their "see ZIP64" values. The entry data and local headers are kept as they are, so the
 * reader must take every size and offset from the ZIP64 records to read anything.
 */
export function asZip64(zip: Uint8Array): Uint8Array {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const endRecord = zip.length - 22;
  if (view.getUint32(endRecord, true) !== 0x06054b50) throw new Error('asZip64: expected an archive without a comment');
  const entryCount = view.getUint16(endRecord + 10, true);
  const directoryOffset = view.getUint32(endRecord + 16, true);

  const directory: Uint8Array[] = [];
  let pos = directoryOffset;
  for (let k = 0; k < entryCount; k++) {
    const nameLength = view.getUint16(pos + 28, true);
    const extraLength = view.getUint16(pos + 30, true);
    const commentLength = view.getUint16(pos + 32, true);
    const zip64ExtraAt = 46 + nameLength;
    const entry = new Uint8Array(zip64ExtraAt + 28 + extraLength + commentLength);
    entry.set(zip.subarray(pos, pos + zip64ExtraAt));
    entry.set(zip.subarray(pos + zip64ExtraAt, pos + zip64ExtraAt + extraLength + commentLength), zip64ExtraAt + 28);
    const out = new DataView(entry.buffer);
    const compressedSize = out.getUint32(20, true);
    const uncompressedSize = out.getUint32(24, true);
    const localHeaderOffset = out.getUint32(42, true);
    out.setUint32(20, 0xffffffff, true);
    out.setUint32(24, 0xffffffff, true);
    out.setUint32(42, 0xffffffff, true);
    out.setUint16(30, extraLength + 28, true);
    out.setUint16(zip64ExtraAt, 1, true); // ZIP64 extra field id
    out.setUint16(zip64ExtraAt + 2, 24, true);
    out.setBigUint64(zip64ExtraAt + 4, BigInt(uncompressedSize), true);
    out.setBigUint64(zip64ExtraAt + 12, BigInt(compressedSize), true);
    out.setBigUint64(zip64ExtraAt + 20, BigInt(localHeaderOffset), true);
    directory.push(entry);
    pos += 46 + nameLength + extraLength + commentLength;
  }
  const directorySize = directory.reduce((sum, e) => sum + e.length, 0);
  const zip64EndAt = directoryOffset + directorySize;

  const tail = new Uint8Array(56 + 20 + 22);
  const t = new DataView(tail.buffer);
  t.setUint32(0, 0x06064b50, true); // ZIP64 end of central directory record
  t.setBigUint64(4, 44n, true); // its size after this field
  t.setUint16(12, 45, true); // version made by
  t.setUint16(14, 45, true); // version needed
  t.setBigUint64(24, BigInt(entryCount), true);
  t.setBigUint64(32, BigInt(entryCount), true);
  t.setBigUint64(40, BigInt(directorySize), true);
  t.setBigUint64(48, BigInt(directoryOffset), true);
  t.setUint32(56, 0x07064b50, true); // ZIP64 end locator
  t.setBigUint64(64, BigInt(zip64EndAt), true);
  t.setUint32(72, 1, true); // total number of disks
  t.setUint32(76, 0x06054b50, true); // classic end record, every field pointing at the ZIP64 one
  t.setUint16(84, 0xffff, true);
  t.setUint16(86, 0xffff, true);
  t.setUint32(88, 0xffffffff, true);
  t.setUint32(92, 0xffffffff, true);

  const result = new Uint8Array(directoryOffset + directorySize + tail.length);
  result.set(zip.subarray(0, directoryOffset));
  let at = directoryOffset;
  for (const entry of directory) {
    result.set(entry, at);
    at += entry.length;
  }
  result.set(tail, at);
  return result;
}

/**
 * `zip` as torch.save writes it under torch.serialization.set_crc32_options(False): every CRC32 field,
 * in the local headers and the central directory, set to 0 (which means "not computed").
 */
export function withoutCrc32(zip: Uint8Array): Uint8Array {
  const out = zip.slice();
  const view = new DataView(out.buffer);
  const endRecord = out.length - 22;
  if (view.getUint32(endRecord, true) !== 0x06054b50) throw new Error('withoutCrc32: expected an archive without a comment');
  let pos = view.getUint32(endRecord + 16, true);
  for (let left = view.getUint16(endRecord + 10, true); left > 0; left--) {
    view.setUint32(view.getUint32(pos + 42, true) + 14, 0, true); // the entry's local header
    view.setUint32(pos + 16, 0, true);
    pos += 46 + view.getUint16(pos + 28, true) + view.getUint16(pos + 30, true) + view.getUint16(pos + 32, true);
  }
  return out;
}
