/**
 * DICOM cine series reader (dicom-parser). Accepts several single-frame files of one series (sorted by
 * TriggerTime, then InstanceNumber) or one multi-frame file. Supports uncompressed little-endian transfer
 * syntaxes, MONOCHROME2 (and MONOCHROME1, inverted), 8/16-bit signed/unsigned pixels, and applies
 * RescaleSlope / RescaleIntercept. Several slice locations: `sliceLocation` picks one, else the error lists them.
 */
import * as dicomParserNs from 'dicom-parser';
import { DataError } from '../errors';
import type { CineVolume } from '../preprocess/cmr';

// dicom-parser is a CommonJS bundle: under Node's ESM loader its API sits on the default export.
const dicomParser = ((dicomParserNs as unknown as { default?: typeof dicomParserNs }).default ?? dicomParserNs) as typeof dicomParserNs;

const UNCOMPRESSED = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1']);

interface DicomFrameSet {
  name: string;
  series: string;
  instance: number;
  trigger: number | null;
  location: string;
  frames: Float32Array[];
  rows: number;
  cols: number;
}

function parseOne(name: string, bytes: Uint8Array): DicomFrameSet {
  let ds: dicomParserNs.DataSet;
  try {
    ds = dicomParser.parseDicom(bytes);
  } catch (e) {
    throw new DataError(name, `not a readable DICOM file (${(e as Error).message ?? e})`);
  }
  const syntax = ds.string('x00020010') ?? '1.2.840.10008.1.2';
  if (!UNCOMPRESSED.has(syntax)) throw new DataError(name, `unsupported transfer syntax ${syntax} (only uncompressed little-endian)`);
  const photometric = (ds.string('x00280004') ?? 'MONOCHROME2').trim();
  if (photometric !== 'MONOCHROME2' && photometric !== 'MONOCHROME1') throw new DataError(name, `unsupported photometric interpretation ${photometric}`);
  const rows = ds.uint16('x00280010');
  const cols = ds.uint16('x00280011');
  const bits = ds.uint16('x00280100');
  const signed = ds.uint16('x00280103') === 1;
  if (!rows || !cols) throw new DataError(name, 'missing Rows/Columns');
  if (bits !== 16 && bits !== 8) throw new DataError(name, `unsupported BitsAllocated ${bits} (8 or 16)`);
  if ((ds.uint16('x00280002') ?? 1) !== 1) throw new DataError(name, 'only single-sample (grey) pixels are supported');
  const pixel = ds.elements['x7fe00010'];
  if (!pixel) throw new DataError(name, 'no PixelData element');
  const nFrames = Number(ds.string('x00280008') ?? '1') || 1;
  const plane = rows * cols;
  const bytesPer = bits / 8;
  if (pixel.length < nFrames * plane * bytesPer || pixel.dataOffset + nFrames * plane * bytesPer > bytes.length) {
    throw new DataError(name, `truncated PixelData: ${pixel.length} bytes for ${nFrames} frame(s) of ${rows}x${cols}x${bits} bit`);
  }
  const slope = ds.floatString('x00281053') ?? 1;
  const intercept = ds.floatString('x00281052') ?? 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset + pixel.dataOffset, nFrames * plane * bytesPer);
  const frames: Float32Array[] = [];
  for (let f = 0; f < nFrames; f++) {
    const out = new Float32Array(plane);
    for (let i = 0; i < plane; i++) {
      const o = (f * plane + i) * bytesPer;
      const v = bits === 16 ? (signed ? view.getInt16(o, true) : view.getUint16(o, true)) : signed ? view.getInt8(o) : view.getUint8(o);
      out[i] = v * slope + intercept;
    }
    if (photometric === 'MONOCHROME1') {
      let max = -Infinity;
      for (const v of out) max = Math.max(max, v);
      for (let i = 0; i < plane; i++) out[i] = max - out[i];
    }
    frames.push(out);
  }
  const trigger = ds.floatString('x00181060');
  return {
    name,
    series: ds.string('x0020000e') ?? '',
    instance: ds.intString('x00200013') ?? 0,
    trigger: trigger === undefined ? null : trigger,
    location: (ds.string('x00201041') ?? ds.string('x00200032') ?? '').trim(),
    frames,
    rows,
    cols,
  };
}

export interface DicomOptions {
  sliceLocation?: string;
  source?: string;
}

/** Reads a cine from DICOM files given as (name, bytes) pairs. */
export function readDicomSeries(files: { name: string; bytes: Uint8Array }[], options: DicomOptions = {}): CineVolume & { warnings: string[] } {
  const source = options.source ?? 'dicom';
  if (!files.length) throw new DataError(source, 'no DICOM files');
  let sets = files.map((f) => parseOne(f.name, f.bytes));
  const warnings: string[] = [];
  const seriesIds = [...new Set(sets.map((s) => s.series))];
  if (seriesIds.length > 1) throw new DataError(source, `files belong to ${seriesIds.length} series (${seriesIds.join(', ')}); give one series`);
  const locations = [...new Set(sets.map((s) => s.location))];
  if (locations.length > 1) {
    if (options.sliceLocation === undefined) throw new DataError(source, `series holds ${locations.length} slice locations (${locations.join(' | ')}); choose one with sliceLocation`);
    sets = sets.filter((s) => s.location === options.sliceLocation);
    if (!sets.length) throw new DataError(source, `no file at slice location '${options.sliceLocation}'`);
  }
  const { rows, cols } = sets[0];
  const odd = sets.find((s) => s.rows !== rows || s.cols !== cols);
  if (odd) throw new DataError(odd.name, `image size ${odd.rows}x${odd.cols} differs from ${rows}x${cols}`);
  const useTrigger = sets.every((s) => s.trigger !== null);
  sets.sort((a, b) => (useTrigger ? a.trigger! - b.trigger! : 0) || a.instance - b.instance);
  if (!useTrigger && sets.length > 1) warnings.push(`${source}: no TriggerTime on every file; ordered by InstanceNumber`);
  const frames = sets.flatMap((s) => s.frames);
  const data = new Float32Array(frames.length * rows * cols);
  frames.forEach((f, i) => data.set(f, i * rows * cols));
  return { data, frames: frames.length, height: rows, width: cols, warnings };
}
