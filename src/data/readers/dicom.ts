/**
 * DICOM cine reader (headers by dicom-parser; pixels decoded here and in dicom-codecs.ts).
 *
 * Input: the files of a folder or archive, or one multi-frame file. Files are grouped into series and
 * one is chosen (dicom-series-select.ts); its frames are ordered by TriggerTime, then InstanceNumber.
 * Transfer syntaxes: implicit/explicit VR little endian, explicit big endian, deflated, RLE, JPEG
 * baseline/extended 8-bit, JPEG lossless, JPEG-LS, JPEG 2000; files without the Part 10 preamble are read
 * with a guessed syntax. Pixels: 8/16/32-bit, signed or not, BitsStored masking with sign extension,
 * RescaleSlope/Intercept; MONOCHROME1 inverted over the whole series; colour (RGB, YBR_*) converted to
 * grey by BT.601 luma (Y = 0.299 R + 0.587 G + 0.114 B) with a warning, because a colour CMR file is a
 * rendered screenshot rather than scanner data. Anything damaged or unsupported is a DataError.
 */
import * as dicomParserNs from 'dicom-parser';
import { DataError, assertFinite } from '../errors';
import type { CineVolume } from '../preprocess/cmr';
import { TRANSFER_SYNTAXES, codecOf, decodeCompressedFrame, type DecodedFrame, type FrameGeometry } from './dicom-codecs';
import { selectSeries, type SeriesMember, type SeriesSelection, type SeriesSelectOptions } from './dicom-series-select';
import { inflateCapped, MAX_DECOMPRESSED_BYTES } from './gzip';

// dicom-parser is a CommonJS bundle: under Node's ESM loader its API sits on the default export.
const dicomParser = ((dicomParserNs as unknown as { default?: typeof dicomParserNs }).default ?? dicomParserNs) as typeof dicomParserNs;

/** Largest image accepted, in samples (a 50-frame 512x512 cine is 13 M; 2^27 float32 = 512 MB). */
const MAX_SAMPLES = 1 << 27;
const MAX_FRAMES = 10_000;
const BIG_ENDIAN = '1.2.840.10008.1.2.2';

/** One parsed file: header fields needed for selection and decoding; pixels are decoded later. */
export interface DicomInstance extends SeriesMember {
  name: string;
  bytes: Uint8Array;
  dataSet: dicomParserNs.DataSet;
  syntax: string;
  instance: number;
  trigger: number | null;
  rows: number;
  cols: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  bitsStored: number;
  signed: boolean;
  photometric: string;
  planar: boolean;
  slope: number;
  intercept: number;
  pixel: dicomParserNs.Element;
}

function hasPart10Preamble(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
}

/** Transfer syntax of a file without the Part 10 header, from its first element (group 0008 usually). */
function guessSyntax(bytes: Uint8Array): string {
  const upper = (b: number) => b >= 0x41 && b <= 0x5a;
  const explicit = bytes.length >= 6 && upper(bytes[4]) && upper(bytes[5]);
  const bigEndian = bytes.length >= 2 && bytes[0] === 0 && bytes[1] !== 0;
  if (explicit) return bigEndian ? BIG_ENDIAN : '1.2.840.10008.1.2.1';
  return '1.2.840.10008.1.2';
}

function thrownMessage(e: unknown): string {
  // dicom-parser throws Errors, strings, or {exception, dataSet} objects for truncated data sets.
  const inner = e && typeof e === 'object' && 'exception' in e ? (e as { exception: unknown }).exception : e;
  const message = inner instanceof Error ? inner.message : String(inner);
  return message.replace(/^dicomParser\.\w+:\s*/, '').slice(0, 200);
}

/** An integer string field (IS); null when absent, DataError when present but not an integer. */
function intField(ds: dicomParserNs.DataSet, tag: string, name: string, field: string): number | null {
  const text = ds.string(tag);
  if (text === undefined || text.trim() === '') return null;
  const value = Number(text.trim());
  if (!Number.isInteger(value)) throw new DataError(name, `${field} is '${text}', not an integer; the header is corrupt`);
  return value;
}

function floatField(ds: dicomParserNs.DataSet, tag: string, name: string, field: string): number | null {
  const text = ds.string(tag);
  if (text === undefined || text.trim() === '') return null;
  const value = Number(text.split('\\')[0].trim());
  if (!Number.isFinite(value)) throw new DataError(name, `${field} is '${text}', not a number; the header is corrupt`);
  return value;
}

/** Parses one file's header (no pixel decoding); null when it holds no image (DICOMDIR, reports). */
export function parseDicomInstance(name: string, bytes: Uint8Array): DicomInstance | null {
  const part10 = hasPart10Preamble(bytes);
  const guessed = part10 ? undefined : guessSyntax(bytes);
  let ds: dicomParserNs.DataSet;
  try {
    ds = dicomParser.parseDicom(bytes, {
      TransferSyntaxUID: guessed,
      inflater: (array: Uint8Array, position: number) => {
        const inflated = inflateCapped(array.subarray(position), MAX_DECOMPRESSED_BYTES, name, 'deflated data set');
        const full = new Uint8Array(position + inflated.length);
        full.set(array.subarray(0, position));
        full.set(inflated, position);
        return full;
      },
    } as dicomParserNs.ParseDicomOptions);
  } catch (e) {
    if (e instanceof DataError) throw e;
    const kind = part10 ? 'DICOM file is damaged' : 'not a DICOM file (no DICM preamble) or damaged';
    throw new DataError(name, `${kind}: the header could not be parsed (${thrownMessage(e)})`);
  }
  if (!part10 && !Object.keys(ds.elements).some((tag) => /^x00(08|10|18|20|28)/.test(tag))) {
    throw new DataError(name, 'not a DICOM file (no DICM preamble and no recognisable DICOM elements)');
  }
  try {
    return instanceFromDataSet(name, bytes, ds, guessed);
  } catch (e) {
    // dicom-parser reads values lazily: a damaged length surfaces here as its own error.
    if (e instanceof DataError) throw e;
    throw new DataError(name, `DICOM header field unreadable (${thrownMessage(e)}); the file is damaged`);
  }
}

function instanceFromDataSet(name: string, bytes: Uint8Array, ds: dicomParserNs.DataSet, guessed: string | undefined): DicomInstance | null {
  const syntax = (guessed ?? ds.string('x00020010') ?? '1.2.840.10008.1.2').replace(/\0/g, '').trim();
  const pixel = ds.elements['x7fe00010'];
  if (!pixel) return null;
  if (!codecOf(syntax)) throw new DataError(name, `unsupported transfer syntax ${syntax}; convert the file to an uncompressed or a standard compressed syntax`);
  const rows = ds.uint16('x00280010') ?? 0;
  const cols = ds.uint16('x00280011') ?? 0;
  if (!rows || !cols) throw new DataError(name, `Rows/Columns missing or zero (${rows}x${cols}); the header is corrupt`);
  const samplesPerPixel = ds.uint16('x00280002') ?? 1;
  if (samplesPerPixel !== 1 && samplesPerPixel !== 3) throw new DataError(name, `SamplesPerPixel ${samplesPerPixel} is not supported (1 grey or 3 colour)`);
  const bitsAllocated = ds.uint16('x00280100') ?? 0;
  if (bitsAllocated !== 8 && bitsAllocated !== 16 && bitsAllocated !== 32) {
    throw new DataError(name, `BitsAllocated ${bitsAllocated} is not supported (8, 16 or 32)${bitsAllocated === 1 ? '; a 1-bit file is a segmentation, not a cine' : ''}`);
  }
  const bitsStored = ds.uint16('x00280101') ?? bitsAllocated;
  if (bitsStored < 1 || bitsStored > bitsAllocated) throw new DataError(name, `BitsStored ${bitsStored} must be 1..BitsAllocated (${bitsAllocated}); the header is corrupt`);
  const frames = intField(ds, 'x00280008', name, 'NumberOfFrames') ?? 1;
  if (frames < 1 || frames > MAX_FRAMES) throw new DataError(name, `NumberOfFrames ${frames} is outside 1..${MAX_FRAMES}; the header is corrupt`);
  if (rows * cols * samplesPerPixel * frames > MAX_SAMPLES) throw new DataError(name, `${frames} frame(s) of ${rows}x${cols}x${samplesPerPixel} is too large for a cine; the header is corrupt`);
  const photometric = (ds.string('x00280004') ?? (samplesPerPixel === 3 ? 'RGB' : 'MONOCHROME2')).trim().toUpperCase();
  const grey = photometric === 'MONOCHROME1' || photometric === 'MONOCHROME2';
  if (grey !== (samplesPerPixel === 1)) throw new DataError(name, `PhotometricInterpretation ${photometric} does not fit SamplesPerPixel ${samplesPerPixel}`);
  if (!grey && !['RGB', 'YBR_FULL', 'YBR_FULL_422', 'YBR_RCT', 'YBR_ICT', 'YBR_PARTIAL_420'].includes(photometric)) {
    throw new DataError(name, `PhotometricInterpretation ${photometric} is not supported (MONOCHROME1/2, RGB, YBR_*)`);
  }
  const orientationText = ds.string('x00200037');
  const orientation = orientationText ? orientationText.split('\\').map(Number) : null;
  const trigger = floatField(ds, 'x00181060', name, 'TriggerTime');
  return {
    name,
    // A deflated data set is parsed from the inflated copy, and the pixel offsets point into it.
    bytes: (ds as unknown as { byteArray?: Uint8Array }).byteArray ?? bytes,
    dataSet: ds,
    syntax,
    seriesUid: (ds.string('x0020000e') ?? '').replace(/\0/g, '').trim(),
    seriesNumber: intField(ds, 'x00200011', name, 'SeriesNumber'),
    description: (ds.string('x0008103e') ?? ds.string('x00181030') ?? '').trim(),
    frames,
    location: (ds.string('x00201041') ?? ds.string('x00200032') ?? '').trim(),
    orientation,
    instance: intField(ds, 'x00200013', name, 'InstanceNumber') ?? 0,
    trigger,
    rows,
    cols,
    samplesPerPixel,
    bitsAllocated,
    bitsStored,
    signed: ds.uint16('x00280103') === 1,
    photometric,
    planar: samplesPerPixel === 3 && ds.uint16('x00280006') === 1,
    slope: floatField(ds, 'x00281053', name, 'RescaleSlope') ?? 1,
    intercept: floatField(ds, 'x00281052', name, 'RescaleIntercept') ?? 0,
    pixel,
  };
}

/** Native (uncompressed) frames: byte order, OW byte swapping, 8/16/32-bit. */
function nativeFrames(inst: DicomInstance): DecodedFrame[] {
  const { rows, cols, samplesPerPixel, bitsAllocated, frames, pixel, bytes, name } = inst;
  const bytesPer = bitsAllocated / 8;
  // Uncompressed YBR_FULL_422 stores two bytes per pixel (Y Y Cb Cr per pair of pixels).
  const frameSamples = inst.photometric === 'YBR_FULL_422' ? rows * cols * 2 : rows * cols * samplesPerPixel;
  const needed = frames * frameSamples * bytesPer;
  if (pixel.encapsulatedPixelData) throw new DataError(name, `PixelData is encapsulated (compressed) but the transfer syntax ${inst.syntax} is not; the file is inconsistent`);
  const available = Math.min(pixel.length, bytes.length - pixel.dataOffset);
  if (!(available >= needed)) {
    throw new DataError(name, `truncated PixelData: ${Math.max(0, available)} bytes for ${frames} frame(s) of ${rows}x${cols}x${samplesPerPixel}x${bitsAllocated} bit (${needed} needed); the file is incomplete`);
  }
  const bigEndian = inst.syntax === BIG_ENDIAN;
  // Big-endian 8-bit data in an OW element is stored as byte-swapped 16-bit words (PS3.5 8.1.1).
  const swapBytePairs = bigEndian && bitsAllocated === 8 && pixel.vr === 'OW';
  const view = new DataView(bytes.buffer, bytes.byteOffset + pixel.dataOffset, needed + (swapBytePairs && needed % 2 ? 1 : 0));
  const out: DecodedFrame[] = [];
  for (let f = 0; f < frames; f++) {
    const samples = new Float64Array(frameSamples);
    const base = f * frameSamples * bytesPer;
    for (let i = 0; i < frameSamples; i++) {
      const o = base + i * bytesPer;
      if (bitsAllocated === 8) samples[i] = view.getUint8(swapBytePairs ? o ^ 1 : o);
      else if (bitsAllocated === 16) samples[i] = view.getUint16(o, !bigEndian);
      else samples[i] = view.getUint32(o, !bigEndian);
    }
    out.push({ samples, planar: inst.planar, colourConverted: false });
  }
  return out;
}

/** The compressed bytes of each frame, from the fragments and the Basic Offset Table. */
function encapsulatedFrames(inst: DicomInstance): Uint8Array[] {
  const { pixel, bytes, frames, name } = inst;
  const fragments = pixel.fragments ?? [];
  if (!pixel.encapsulatedPixelData || !fragments.length) throw new DataError(name, `PixelData of compressed syntax ${inst.syntax} holds no fragments; the file is corrupt`);
  for (const f of fragments) {
    if (!(f.position >= 0 && f.length >= 0 && f.position + f.length <= bytes.length)) throw new DataError(name, 'a PixelData fragment runs past the end of the file; the file is truncated');
  }
  const join = (list: typeof fragments) => {
    const out = new Uint8Array(list.reduce((n, f) => n + f.length, 0));
    let at = 0;
    for (const f of list) {
      out.set(bytes.subarray(f.position, f.position + f.length), at);
      at += f.length;
    }
    return out;
  };
  if (frames === 1) return [join(fragments)];
  const table = pixel.basicOffsetTable ?? [];
  if (table.length === frames) {
    return table.map((start, k) => {
      const end = k + 1 < frames ? table[k + 1] : Infinity;
      const list = fragments.filter((f) => f.offset >= start && f.offset < end);
      if (!list.length) throw new DataError(name, `frame ${k + 1}: the Basic Offset Table points at no fragment; the file is corrupt`);
      return join(list);
    });
  }
  if (fragments.length === frames) return fragments.map((f) => join([f]));
  throw new DataError(name, `${frames} frames in ${fragments.length} fragments without a usable Basic Offset Table; cannot tell the frames apart`);
}

async function decodeInstance(inst: DicomInstance): Promise<DecodedFrame[]> {
  try {
    return await decodeInstanceFrames(inst);
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(inst.name, `pixel data could not be decoded (${thrownMessage(e)}); the file is damaged`);
  }
}

async function decodeInstanceFrames(inst: DicomInstance): Promise<DecodedFrame[]> {
  const kind = codecOf(inst.syntax)!;
  if (kind === 'native') return nativeFrames(inst);
  const geometry: FrameGeometry = { rows: inst.rows, cols: inst.cols, samplesPerPixel: inst.samplesPerPixel, bitsAllocated: inst.bitsAllocated, signed: inst.signed };
  const pieces = encapsulatedFrames(inst);
  const out: DecodedFrame[] = [];
  for (let k = 0; k < pieces.length; k++) {
    const where = `${inst.name} (frame ${k + 1}, ${TRANSFER_SYNTAXES[inst.syntax]})`;
    out.push(await decodeCompressedFrame(kind, pieces[k], geometry, where));
  }
  return out;
}

/** Stored value -> modality value: BitsStored mask, sign extension, then grey conversion and rescale. */
function toGrey(inst: DicomInstance, frame: DecodedFrame): Float32Array {
  const plane = inst.rows * inst.cols;
  const mask = inst.bitsStored >= 32 ? 0xffffffff : 2 ** inst.bitsStored - 1;
  const half = 2 ** (inst.bitsStored - 1);
  const value = (v: number) => {
    let u = v < 0 ? v + 2 ** inst.bitsAllocated : v;
    u = inst.bitsStored < 32 ? u % (mask + 1) : u;
    return inst.signed && u >= half ? u - 2 * half : u;
  };
  const out = new Float32Array(plane);
  const s = frame.samples;
  if (inst.samplesPerPixel === 1) {
    for (let i = 0; i < plane; i++) out[i] = value(s[i]) * inst.slope + inst.intercept;
    return out;
  }
  const at = (i: number, c: number) => value(frame.planar ? s[c * plane + i] : s[i * 3 + c]);
  const lumaStored = !frame.colourConverted && inst.photometric.startsWith('YBR');
  if (lumaStored && inst.photometric === 'YBR_FULL_422' && codecOf(inst.syntax) === 'native') {
    // Uncompressed 4:2:2 stores Y Y Cb Cr per pixel pair (PS3.3 C.7.6.3.1.2).
    for (let i = 0; i < plane; i++) out[i] = value(s[Math.floor(i / 2) * 4 + (i % 2)]);
    return out;
  }
  for (let i = 0; i < plane; i++) out[i] = lumaStored ? at(i, 0) : 0.299 * at(i, 0) + 0.587 * at(i, 1) + 0.114 * at(i, 2);
  return out;
}

export interface DicomOptions extends SeriesSelectOptions {
  /** Which slice location to keep when the chosen series holds several (SliceLocation or ImagePositionPatient text). */
  sliceLocation?: string;
  source?: string;
}

export interface DicomCine extends CineVolume {
  warnings: string[];
  selection: SeriesSelection;
}

/** Reads a cine from DICOM files given as (name, bytes) pairs (a folder, an archive, or one multi-frame file). */
export async function readDicomSeries(files: { name: string; bytes: Uint8Array }[], options: DicomOptions = {}): Promise<DicomCine> {
  const source = options.source ?? 'dicom';
  if (!files.length) throw new DataError(source, 'no DICOM files');
  const warnings: string[] = [];
  const instances: DicomInstance[] = [];
  const noImage: string[] = [];
  for (const f of files) {
    const inst = parseDicomInstance(f.name, f.bytes);
    if (inst) instances.push(inst);
    else noImage.push(f.name);
  }
  if (!instances.length) {
    throw new DataError(source, `none of the ${files.length} DICOM file(s) holds an image (no PixelData: ${noImage.slice(0, 3).join(', ')}${noImage.length > 3 ? ', ...' : ''})`);
  }
  if (noImage.length) warnings.push(`${source}: ${noImage.length} file(s) without PixelData skipped (${noImage.slice(0, 3).join(', ')}${noImage.length > 3 ? ', ...' : ''})`);
  const { members, selection } = selectSeries(instances, options, source);
  let sets = members;
  const locations = [...new Set(sets.map((s) => s.location))];
  if (locations.length > 1) {
    if (options.sliceLocation === undefined) throw new DataError(source, `series holds ${locations.length} slice locations (${locations.join(' | ')}); choose one with sliceLocation`);
    sets = sets.filter((s) => s.location === options.sliceLocation);
    if (!sets.length) throw new DataError(source, `no file at slice location '${options.sliceLocation}'; locations: ${locations.join(' | ')}`);
  }
  const { rows, cols } = sets[0];
  const odd = sets.find((s) => s.rows !== rows || s.cols !== cols);
  if (odd) throw new DataError(odd.name, `image size ${odd.rows}x${odd.cols} differs from ${rows}x${cols} in the same series`);
  const useTrigger = sets.every((s) => s.trigger !== null);
  sets = [...sets].sort((a, b) => (useTrigger ? a.trigger! - b.trigger! : 0) || a.instance - b.instance);
  if (!useTrigger && sets.length > 1) warnings.push(`${source}: no TriggerTime on every file; ordered by InstanceNumber`);
  const frames: Float32Array[] = [];
  for (const inst of sets) for (const frame of await decodeInstance(inst)) frames.push(toGrey(inst, frame));
  const colour = sets.find((s) => s.samplesPerPixel === 3);
  if (colour) warnings.push(`${colour.name}: colour image (${colour.photometric}) converted to grey by BT.601 luma; a colour cine is usually a rendered screenshot, check it is the scanner data`);
  const plane = rows * cols;
  const data = new Float32Array(frames.length * plane);
  frames.forEach((f, i) => data.set(f, i * plane));
  if (sets.some((s) => s.photometric === 'MONOCHROME1')) {
    // MONOCHROME1 is inverted over the whole series (per-frame inversion would make frames disagree).
    let min = Infinity;
    let max = -Infinity;
    for (const v of data) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    for (let i = 0; i < data.length; i++) data[i] = max + min - data[i];
  }
  assertFinite(data, source, 'image');
  return { data, frames: frames.length, height: rows, width: cols, warnings, selection };
}
