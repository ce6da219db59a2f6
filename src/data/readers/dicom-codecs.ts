/**
 * Decoders for the compressed DICOM transfer syntaxes of a cine frame.
 *
 * JPEG baseline/extended 8-bit: libjpeg-turbo; JPEG-LS: CharLS; JPEG 2000: OpenJPEG (the Cornerstone
 * WASM builds, loaded on first use, in their asm.js "decode" flavour so that no .wasm file has to be
 * located at run time in Node or a browser); JPEG lossless (process 14): jpeg-lossless-decoder-js;
 * RLE Lossless: written here (PS3.5 annex G, PackBits per byte plane).
 *
 * Before a codec sees a frame its own header (JPEG SOF, JPEG 2000 SIZ) is checked against the DICOM
 * Rows/Columns/SamplesPerPixel/BitsAllocated: a damaged header could otherwise make a codec allocate
 * gigabytes or return a frame of another size. Codec failures (Emscripten throws bare numbers or
 * strings) become DataErrors that name the file, the frame and the transfer syntax.
 */
import { DataError } from '../errors';

export const TRANSFER_SYNTAXES: Record<string, string> = {
  '1.2.840.10008.1.2': 'Implicit VR Little Endian',
  '1.2.840.10008.1.2.1': 'Explicit VR Little Endian',
  '1.2.840.10008.1.2.1.99': 'Deflated Explicit VR Little Endian',
  '1.2.840.10008.1.2.2': 'Explicit VR Big Endian',
  '1.2.840.10008.1.2.5': 'RLE Lossless',
  '1.2.840.10008.1.2.4.50': 'JPEG Baseline (process 1)',
  '1.2.840.10008.1.2.4.51': 'JPEG Extended (process 2 & 4)',
  '1.2.840.10008.1.2.4.57': 'JPEG Lossless (process 14)',
  '1.2.840.10008.1.2.4.70': 'JPEG Lossless SV1 (process 14, selection value 1)',
  '1.2.840.10008.1.2.4.80': 'JPEG-LS Lossless',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS Near-Lossless',
  '1.2.840.10008.1.2.4.90': 'JPEG 2000 Lossless',
  '1.2.840.10008.1.2.4.91': 'JPEG 2000',
};

export type CodecKind = 'native' | 'rle' | 'jpeg' | 'jpeg-lossless' | 'jpeg-ls' | 'jpeg2000';

export function codecOf(syntax: string): CodecKind | null {
  if (syntax === '1.2.840.10008.1.2' || syntax === '1.2.840.10008.1.2.1' || syntax === '1.2.840.10008.1.2.2' || syntax === '1.2.840.10008.1.2.1.99') return 'native';
  if (syntax === '1.2.840.10008.1.2.5') return 'rle';
  if (syntax === '1.2.840.10008.1.2.4.50' || syntax === '1.2.840.10008.1.2.4.51') return 'jpeg';
  if (syntax === '1.2.840.10008.1.2.4.57' || syntax === '1.2.840.10008.1.2.4.70') return 'jpeg-lossless';
  if (syntax === '1.2.840.10008.1.2.4.80' || syntax === '1.2.840.10008.1.2.4.81') return 'jpeg-ls';
  if (syntax === '1.2.840.10008.1.2.4.90' || syntax === '1.2.840.10008.1.2.4.91') return 'jpeg2000';
  return null;
}

/** What a frame must decode to. */
export interface FrameGeometry {
  rows: number;
  cols: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  signed: boolean;
}

/** Decoded samples of one frame, interleaved when samplesPerPixel > 1 unless `planar`. */
export interface DecodedFrame {
  samples: ArrayLike<number>;
  planar: boolean;
  /** The codec already converted YCbCr to RGB (JPEG baseline, JPEG 2000 with a colour transform). */
  colourConverted: boolean;
}

// ---------------------------------------------------------------- RLE Lossless

/** PS3.5 G.3.2: PackBits; returns the number of bytes written (reads stop at the segment end). */
function unpackBits(src: Uint8Array, out: Uint8Array): number {
  let i = 0;
  let o = 0;
  while (i < src.length && o < out.length) {
    const n = (src[i++] << 24) >> 24;
    if (n >= 0) {
      const count = Math.min(n + 1, src.length - i, out.length - o);
      out.set(src.subarray(i, i + count), o);
      i += n + 1;
      o += count;
    } else if (n !== -128) {
      if (i >= src.length) break;
      const count = Math.min(1 - n, out.length - o);
      out.fill(src[i++], o, o + count);
      o += count;
    }
  }
  return o;
}

export function decodeRle(frame: Uint8Array, g: FrameGeometry, where: string): DecodedFrame {
  const bytesPerSample = g.bitsAllocated / 8;
  const segmentsWanted = g.samplesPerPixel * bytesPerSample;
  if (frame.length < 64) throw new DataError(where, `RLE frame has ${frame.length} bytes, less than its 64-byte segment table; the file is truncated`);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const segments = view.getUint32(0, true);
  if (segments !== segmentsWanted) {
    throw new DataError(where, `RLE frame has ${segments} segments, ${segmentsWanted} expected for ${g.samplesPerPixel} sample(s) of ${g.bitsAllocated} bits; the file is corrupt`);
  }
  const offsets = Array.from({ length: segments }, (_, k) => view.getUint32(4 + 4 * k, true));
  const plane = g.rows * g.cols;
  const samples = g.bitsAllocated === 32 ? new Uint32Array(plane * g.samplesPerPixel) : g.bitsAllocated === 16 ? new Uint16Array(plane * g.samplesPerPixel) : new Uint8Array(plane * g.samplesPerPixel);
  const bytes = new Uint8Array(plane);
  for (let k = 0; k < segments; k++) {
    const start = offsets[k];
    const end = k + 1 < segments ? offsets[k + 1] : frame.length;
    if (start < 64 || end > frame.length || end < start) throw new DataError(where, `RLE segment ${k + 1} offsets (${start}..${end}) are outside the ${frame.length}-byte frame; the file is corrupt`);
    const written = unpackBits(frame.subarray(start, end), bytes);
    if (written !== plane) throw new DataError(where, `RLE segment ${k + 1} decodes to ${written} bytes, ${plane} expected; the file is truncated or corrupt`);
    // Segments run sample by sample, most significant byte first (PS3.5 G.2).
    const sample = Math.floor(k / bytesPerSample);
    const shift = 8 * (bytesPerSample - 1 - (k % bytesPerSample));
    for (let p = 0; p < plane; p++) samples[sample * plane + p] += bytes[p] * 2 ** shift;
  }
  return { samples: g.signed ? toSigned(samples, g.bitsAllocated) : samples, planar: true, colourConverted: false };
}

function toSigned(samples: Uint8Array | Uint16Array | Uint32Array, bits: number): ArrayLike<number> {
  if (bits === 8) return new Int8Array(samples.buffer, samples.byteOffset, samples.length);
  if (bits === 16) return new Int16Array(samples.buffer, samples.byteOffset, samples.length);
  return new Int32Array(samples.buffer, samples.byteOffset, samples.length);
}

// ---------------------------------------------------------------- codestream header checks

interface CodestreamHeader {
  width: number;
  height: number;
  components: number;
  precision: number;
}

/** The SOF (JPEG, JPEG lossless) or SOF55 (JPEG-LS) frame header. */
function jpegFrameHeader(data: Uint8Array): CodestreamHeader | null {
  if (data.length < 4 || data[0] !== 0xff || data[1] !== 0xd8) return null;
  let pos = 2;
  while (pos + 4 <= data.length) {
    if (data[pos] !== 0xff) return null;
    const marker = data[pos + 1];
    if (marker === 0xff) {
      pos++;
      continue;
    }
    const length = (data[pos + 2] << 8) | data[pos + 3];
    const isSof = (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) || marker === 0xf7;
    if (isSof) {
      if (pos + 10 > data.length) return null;
      return { precision: data[pos + 4], height: (data[pos + 5] << 8) | data[pos + 6], width: (data[pos + 7] << 8) | data[pos + 8], components: data[pos + 9] };
    }
    if (marker === 0xda || length < 2) return null;
    pos += 2 + length;
  }
  return null;
}

/** The SIZ marker segment of a JPEG 2000 codestream (possibly inside a JP2 wrapper). */
function j2kSizHeader(data: Uint8Array): CodestreamHeader | null {
  for (let pos = 0; pos + 42 <= data.length && pos < 4096; pos++) {
    if (data[pos] !== 0xff || data[pos + 1] !== 0x4f || data[pos + 2] !== 0xff || data[pos + 3] !== 0x51) continue;
    const v = new DataView(data.buffer, data.byteOffset + pos + 4);
    const width = v.getUint32(4) - v.getUint32(12);
    const height = v.getUint32(8) - v.getUint32(16);
    const components = v.getUint16(36);
    // SIZ: Lsiz Rsiz Xsiz Ysiz XOsiz YOsiz XTsiz YTsiz XTOsiz YTOsiz Csiz, then Ssiz per component.
    if (pos + 42 + 3 * components > data.length) return null;
    return { width, height, components, precision: (data[pos + 42] & 0x7f) + 1 };
  }
  return null;
}

function checkHeader(kind: CodecKind, data: Uint8Array, g: FrameGeometry, where: string): CodestreamHeader {
  const h = kind === 'jpeg2000' ? j2kSizHeader(data) : jpegFrameHeader(data);
  const label = kind === 'jpeg2000' ? 'JPEG 2000 SIZ' : 'JPEG frame (SOF)';
  if (!h) throw new DataError(where, `compressed frame has no readable ${label} header; the pixel data is corrupt`);
  if (h.width !== g.cols || h.height !== g.rows || h.components !== g.samplesPerPixel) {
    throw new DataError(where, `compressed frame is ${h.width}x${h.height} with ${h.components} component(s), but the DICOM header says ${g.cols}x${g.rows} with ${g.samplesPerPixel}; the file is inconsistent`);
  }
  if (h.precision < 1 || h.precision > g.bitsAllocated) {
    throw new DataError(where, `compressed frame precision ${h.precision} bits does not fit BitsAllocated ${g.bitsAllocated}; the file is inconsistent`);
  }
  return h;
}

// ---------------------------------------------------------------- WASM codecs

interface EmscriptenDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getDecodedBuffer(): Uint8Array;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned?: boolean };
  delete?(): void;
}
type CodecModule = Record<string, new () => EmscriptenDecoder>;
type CodecFactory = (options: object) => Promise<CodecModule>;

const quiet = { print: () => {}, printErr: () => {} };
const modules = new Map<string, Promise<CodecModule>>();

/** Loads (once) the codec module; the dynamic import lets bundlers split the codecs out. */
function loadCodec(kind: 'jpeg' | 'jpeg-ls' | 'jpeg2000'): Promise<CodecModule> {
  let promise = modules.get(kind);
  if (!promise) {
    const imported: Promise<{ default: unknown }> =
      kind === 'jpeg' ? import('@cornerstonejs/codec-libjpeg-turbo-8bit/decode') : kind === 'jpeg-ls' ? import('@cornerstonejs/codec-charls/decode') : import('@cornerstonejs/codec-openjpeg/decode');
    promise = imported.then((m) => {
      const factory = ((m.default as { default?: unknown }).default ?? m.default) as CodecFactory;
      return factory({ ...quiet });
    });
    modules.set(kind, promise);
  }
  return promise;
}

const DECODER_CLASS = { jpeg: 'JPEGDecoder', 'jpeg-ls': 'JpegLSDecoder', jpeg2000: 'J2KDecoder' } as const;

function describeThrown(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'number') return `codec abort ${e}`;
  return String(e);
}

async function decodeWithWasm(kind: 'jpeg' | 'jpeg-ls' | 'jpeg2000', data: Uint8Array, g: FrameGeometry, where: string): Promise<DecodedFrame> {
  const module = await loadCodec(kind);
  const decoder = new module[DECODER_CLASS[kind]]();
  try {
    let decoded: Uint8Array;
    let info: ReturnType<EmscriptenDecoder['getFrameInfo']>;
    try {
      decoder.getEncodedBuffer(data.length).set(data);
      decoder.decode();
      info = decoder.getFrameInfo();
      decoded = decoder.getDecodedBuffer().slice();
    } catch (e) {
      throw new DataError(where, `compressed frame could not be decoded (${describeThrown(e)}); the pixel data is corrupt`);
    }
    const bytesPer = info.bitsPerSample > 8 ? 2 : 1;
    const expected = g.rows * g.cols * g.samplesPerPixel * bytesPer;
    if (info.width !== g.cols || info.height !== g.rows || info.componentCount !== g.samplesPerPixel || decoded.length !== expected) {
      throw new DataError(where, `decoder returned ${info.width}x${info.height}x${info.componentCount} (${decoded.length} bytes), ${g.cols}x${g.rows}x${g.samplesPerPixel} expected; the pixel data is corrupt`);
    }
    const signed = info.isSigned ?? g.signed;
    const samples = bytesPer === 1 ? (signed ? new Int8Array(decoded.buffer) : decoded) : signed ? new Int16Array(decoded.buffer) : new Uint16Array(decoded.buffer);
    return { samples, planar: false, colourConverted: kind !== 'jpeg-ls' && g.samplesPerPixel === 3 };
  } finally {
    decoder.delete?.();
  }
}

async function decodeJpegLossless(data: Uint8Array, g: FrameGeometry, where: string): Promise<DecodedFrame> {
  const lossless = await import('jpeg-lossless-decoder-js');
  const Decoder = (lossless.Decoder ?? (lossless as unknown as { default: typeof lossless }).default.Decoder) as unknown as new () => {
    decode(buffer: ArrayBuffer, offset: number, length: number): Uint8Array | Uint16Array;
  };
  let out: Uint8Array | Uint16Array;
  try {
    const copy = data.slice();
    out = new Decoder().decode(copy.buffer, 0, copy.length);
  } catch (e) {
    throw new DataError(where, `JPEG lossless frame could not be decoded (${describeThrown(e)}); the pixel data is corrupt`);
  }
  if (!out || out.length !== g.rows * g.cols * g.samplesPerPixel) {
    throw new DataError(where, `JPEG lossless decoder returned ${out?.length ?? 0} samples, ${g.rows * g.cols * g.samplesPerPixel} expected; the pixel data is corrupt`);
  }
  const signed = g.signed ? (out instanceof Uint8Array ? new Int8Array(out.buffer, out.byteOffset, out.length) : new Int16Array(out.buffer, out.byteOffset, out.length)) : out;
  return { samples: signed, planar: false, colourConverted: false };
}

/** Decodes one compressed frame (all fragments of the frame concatenated). */
export async function decodeCompressedFrame(kind: Exclude<CodecKind, 'native'>, data: Uint8Array, g: FrameGeometry, where: string): Promise<DecodedFrame> {
  if (kind === 'rle') return decodeRle(data, g, where);
  const header = checkHeader(kind, data, g, where);
  if (kind === 'jpeg' && header.precision > 8) {
    throw new DataError(where, `${header.precision}-bit JPEG Extended (process 4) is not supported (no 12-bit decoder); convert the series to uncompressed or lossless (e.g. dcmdjpeg or gdcmconv --raw)`);
  }
  if (kind === 'jpeg-lossless') return decodeJpegLossless(data, g, where);
  return decodeWithWasm(kind, data, g, where);
}
