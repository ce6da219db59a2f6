/**
 * File-level entry points: pick a reader from the path, read through a DataFileSystem.
 * ECG: .hea (WFDB), .csv/.tsv/.txt (CSV), .npy ((C, L) or (L, C) with C <= 15, or 1-D single lead; needs fs);
 * .xml (GE CardioSoft, GE MUSE, HL7 aECG: by root element), .dcm (DICOM ECG waveform), .edf/.bdf;
 * other names are sniffed by content (DICOM magic, EDF version field, XML root) in ecg-formats.ts.
 * CMR: .nii/.nii.gz (NIfTI), .npy ((T, H, W)), a DICOM file, a folder of DICOM files or a ZIP of them (series chosen by pattern).
 */
import { DataError } from '../errors';
import { type DataFileSystem, baseName, joinPath, decodeText, readInputFile } from '../fs';
import { readNpy, toFloat32 } from '../npy';
import type { EcgRecording } from '../preprocess/ecg';
import { assertPlausibleFs } from '../preprocess/ecg-checks';
import type { CineVolume } from '../preprocess/cmr';
import { readWfdb } from './wfdb';
import { parseEcgCsv, type CsvOptions } from './csv';
import { readNifti } from './nifti';
import { readDicomSeries } from './dicom';
import { detectEcgFormat, parseEcgFormat } from './ecg-formats';
import type { SeriesSelection } from './dicom-series-select';
import { isZip, listZipEntries, readZipArchive } from './zip-archive';

export interface EcgReadOptions extends CsvOptions {
  /** Sampling frequency of an NPY recording (the same as `fs`); NPY stores none, so one of them is required. */
  npyFs?: number;
}

const STANDARD = ['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'];

/**
 * An ECG from NPY bytes: 1-D = one lead; 2-D as (leads, samples), transposed when clearly (samples, leads).
 * NPY holds no sampling frequency, so `fs` is required (never assumed); 12 unnamed channels are taken in
 * the standard order with a warning.
 */
export function ecgFromNpy(bytes: Uint8Array, source: string, fs?: number, leadNames?: string[]): EcgRecording & { warnings: string[] } {
  if (fs === undefined) {
    throw new DataError(source, 'an NPY file stores no sampling frequency: give it (CLI: --fs HZ, e.g. --fs 500; API: readEcgFile(fs, path, { fs }))');
  }
  assertPlausibleFs(fs, source, 'given sampling frequency');
  const arr = readNpy(bytes, source);
  const warnings: string[] = [];
  let channels: number;
  let length: number;
  let transposed = false;
  if (arr.shape.length === 1) [channels, length] = [1, arr.shape[0]];
  else if (arr.shape.length === 2) {
    [channels, length] = arr.shape;
    if (channels > 15 && length <= 15) {
      [channels, length] = [length, channels];
      transposed = true;
      warnings.push(`${source}: shape (${arr.shape.join(', ')}) read as (samples, leads) and transposed`);
    }
  } else throw new DataError(source, `ECG array must be 1-D or 2-D, got shape (${arr.shape.join(', ')})`);
  if (channels > 15) throw new DataError(source, `ECG array shape (${arr.shape.join(', ')}) has no lead axis of size <= 15`);
  if (channels === 0 || length === 0) throw new DataError(source, `ECG array shape (${arr.shape.join(', ')}) holds no samples`);
  if (leadNames && leadNames.length !== channels) throw new DataError(source, `${leadNames.length} lead names given for ${channels} channels`);
  const data = toFloat32(arr.data);
  const signals = Array.from({ length: channels }, (_, c) => {
    const s = new Float32Array(length);
    for (let i = 0; i < length; i++) s[i] = transposed ? data[i * channels + c] : data[c * length + i];
    return s;
  });
  if (!leadNames && channels === 12) warnings.push(`${source}: 12 unnamed channels taken in the standard order I, II, III, aVR, aVL, aVF, V1-V6`);
  const names = leadNames ?? (channels === 12 ? STANDARD : channels === 1 ? ['lead'] : signals.map((_, i) => `lead${i + 1}`));
  return { signals, leadNames: names, fs, source, warnings };
}

export async function readEcgFile(fs: DataFileSystem, path: string, options: EcgReadOptions = {}): Promise<EcgRecording & { warnings: string[] }> {
  const lower = path.toLowerCase();
  if (lower.endsWith('.hea') || lower.endsWith('.dat')) {
    const record = await readWfdb(fs, path.replace(/\.dat$/i, '.hea'));
    const given = options.npyFs ?? options.fs;
    if (given !== undefined && given !== record.fs) record.warnings.push(`${record.source}: the given sampling frequency ${given} Hz is ignored; the header's ${record.fs} Hz is used`);
    return record;
  }
  if (/\.(csv|tsv|txt)$/.test(lower)) return parseEcgCsv(decodeText(await readInputFile(fs, path)), { ...options, source: path });
  if (lower.endsWith('.npy')) return ecgFromNpy(await readInputFile(fs, path), path, options.npyFs ?? options.fs, options.leadNames);
  if (!(await fs.exists(path))) throw new DataError(path, 'file not found');
  const bytes = await readInputFile(fs, path);
  const format = detectEcgFormat(bytes, path);
  if (format) return parseEcgFormat(bytes, path, format);
  throw new DataError(path, 'unknown ECG file type (expected .hea, .csv, .tsv, .txt, .npy, .xml, .dcm, .edf, .bdf, or DICOM/EDF/ECG-XML content)');
}

export interface CmrReadOptions {
  /** NIfTI 4-D: which z slice (default the middle one, warned). */
  slice?: number;
  /** DICOM: which slice location of the chosen series (SliceLocation / ImagePositionPatient text). */
  sliceLocation?: string;
  /** DICOM folder/zip: SeriesDescription pattern (default DEFAULT_SERIES_PATTERN, the LAX 4-chamber cine). */
  seriesPattern?: RegExp | string;
  /** DICOM folder/zip: exact SeriesInstanceUID (overrides seriesPattern). */
  seriesUid?: string;
}

export interface CmrFileResult extends CineVolume {
  warnings: string[];
  /** DICOM only: the series chosen, why, and every series found (for the dataset builder's report). */
  selection?: SeriesSelection;
}

/** Names that are never DICOM (UK Biobank zips carry a manifest.cvs next to the images). */
const NON_DICOM = /(^|\/)\.|\.(txt|csv|cvs|tsv|json|xml|html?|pdf|md|jpe?g|png|gif|zip|gz|nii|npy)$/i;

async function isDirectory(fs: DataFileSystem, path: string): Promise<boolean> {
  const children = await fs.listDir(path).catch(() => null);
  if (children === null) return false;
  if (children.length > 0) return true;
  return fs.fileSize(path).then(() => false, () => true);
}

/** Every file under `dir` (relative names), folders descended up to `depth` levels. */
async function listFilesRecursive(fs: DataFileSystem, dir: string, depth = 4, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of await fs.listDir(joinPath(dir, prefix))) {
    const rel = prefix ? `${prefix}/${name}` : name;
    if (depth > 0 && (await isDirectory(fs, joinPath(dir, rel)))) out.push(...(await listFilesRecursive(fs, dir, depth - 1, rel)));
    else out.push(rel);
  }
  return out;
}

function dicomFromFiles(files: { name: string; bytes: Uint8Array }[], path: string, options: CmrReadOptions, skipped: string[]): Promise<CmrFileResult> {
  if (!files.length) throw new DataError(path, `no DICOM files found${skipped.length ? ` (skipped ${skipped.join(', ')})` : ''}`);
  return readDicomSeries(files, { sliceLocation: options.sliceLocation, seriesPattern: options.seriesPattern, seriesUid: options.seriesUid, source: path }).then((r) => {
    if (skipped.length) r.warnings.unshift(`${path}: ${skipped.length} non-DICOM file(s) skipped (${skipped.slice(0, 3).join(', ')}${skipped.length > 3 ? ', ...' : ''})`);
    return r;
  });
}

/**
 * Reads a cine from a NIfTI (.nii, .nii.gz), NPY (T, H, W), DICOM file, folder of DICOM files (searched
 * recursively), or ZIP archive of DICOM files; in folders and archives one series is chosen by
 * `seriesPattern`/`seriesUid` and reported in `selection`.
 */
export async function readCmrFile(fs: DataFileSystem, path: string, options: CmrReadOptions = {}): Promise<CmrFileResult> {
  if (!(await fs.exists(path))) throw new DataError(path, 'file not found');
  const lower = path.toLowerCase();
  if (await isDirectory(fs, path)) {
    const names = await listFilesRecursive(fs, path);
    if (!names.length) throw new DataError(path, 'empty directory; expected DICOM files');
    const skipped = names.filter((n) => NON_DICOM.test(n));
    const wanted = names.filter((n) => !NON_DICOM.test(n));
    const files = await Promise.all(wanted.map(async (n) => ({ name: joinPath(path, n), bytes: await fs.readFile(joinPath(path, n)) })));
    return dicomFromFiles(files, path, options, skipped);
  }
  const bytes = await fs.readFile(path);
  if (lower.endsWith('.nii') || lower.endsWith('.nii.gz')) return readNifti(bytes, { slice: options.slice, source: path });
  if (lower.endsWith('.npy')) {
    const arr = readNpy(bytes, path);
    if (arr.shape.length !== 3) throw new DataError(path, `cine array must be (T, H, W), got shape (${arr.shape.join(', ')})`);
    const [frames, height, width] = arr.shape;
    return { data: toFloat32(arr.data), frames, height, width, warnings: [] };
  }
  if (lower.endsWith('.zip') || isZip(bytes)) {
    const entries = listZipEntries(bytes, path);
    const skipped = entries.filter((e) => NON_DICOM.test(e.name)).map((e) => e.name);
    const files = readZipArchive(bytes, path, { accept: (e) => !NON_DICOM.test(e.name) });
    return dicomFromFiles(files.map((f) => ({ name: `${path}!${f.name}`, bytes: f.bytes })), path, options, skipped);
  }
  return readDicomSeries([{ name: path, bytes }], { sliceLocation: options.sliceLocation, seriesPattern: options.seriesPattern, seriesUid: options.seriesUid, source: path });
}
