/**
 * Clips for the downstream models: the cines of a dataset directory (real from `data synth|build`, or
 * synthetic from `npm run synthesize`), brought to the downstream geometry (T × S × S, per-clip min-max to
 * [-1, 1]) with the same `resizeCine` the VAE stage uses, and their labels from the manifest.
 * Memory: n · T · S² floats (1,000 clips at 16 × 32 × 32: 64 MB).
 */
import { PHANTOM_PHENOTYPES, type SplitName } from '../data/dataset';
import { DataError } from '../data/errors';
import { type DataFileSystem, decodeText, joinPath } from '../data/fs';
import { readNpyFileHeader } from '../data/loader';
import { resizeCine, type CineGeometry } from '../train/cine-data';

export type LabelCell = string | number | null;

export interface ClipSet {
  /** Subject ids, one per clip. */
  ids: string[];
  /** n × frames × size × size. */
  clips: Float32Array;
  geometry: CineGeometry;
  /** Per label name, one value per clip (null when the subject has none). */
  labels: Record<string, LabelCell[]>;
  /** Where the clips came from (for the report). */
  source: string;
}

const CLIP_VALUES = 50 * 96 * 96;
/** Phenotype fields that phantom manifests keep at the subject's top level. */
const TOP_LEVEL_LABELS = ['cls', ...PHANTOM_PHENOTYPES];

interface ManifestSubject {
  id: string;
  split: SplitName;
  row: number;
  labels?: Record<string, LabelCell>;
  [key: string]: unknown;
}

export function clipSize(g: CineGeometry): number {
  return g.frames * g.size * g.size;
}

/** One clip of a set (a view, no copy). */
export function clipAt(set: ClipSet, i: number): Float32Array {
  const n = clipSize(set.geometry);
  return set.clips.subarray(i * n, (i + 1) * n);
}

/** The clips of `splits` of a dataset directory, in split then row order (at most `limit`). */
export async function loadClipSet(fs: DataFileSystem, dir: string, splits: SplitName[], geometry: CineGeometry, options: { limit?: number; onProgress?: (done: number, total: number) => void } = {}): Promise<ClipSet> {
  const manifestPath = joinPath(dir, 'manifest.json');
  if (!(await fs.exists(manifestPath))) throw new DataError(manifestPath, 'not found: expected a dataset directory (npm run data -- synth | build, or npm run synthesize)');
  let manifest: { splits?: Record<string, { count: number; cmr: string }>; subjects?: ManifestSubject[] };
  try {
    manifest = JSON.parse(decodeText(await fs.readFile(manifestPath)));
  } catch (e) {
    throw new DataError(manifestPath, `is not valid JSON (${(e as Error).message})`);
  }
  const rows: { split: SplitName; row: number; cmrPath: string; subject: ManifestSubject | undefined }[] = [];
  for (const split of splits) {
    const info = manifest.splits?.[split];
    if (!info) throw new DataError(manifestPath, `has no split '${split}'`);
    const bySplit = (manifest.subjects ?? []).filter((s) => s.split === split);
    const byRow = new Map(bySplit.map((s) => [s.row, s]));
    for (let row = 0; row < info.count; row++) rows.push({ split, row, cmrPath: joinPath(dir, info.cmr), subject: byRow.get(row) });
  }
  const chosen = rows.slice(0, options.limit ?? rows.length);
  const headers = new Map<string, number>();
  for (const path of new Set(chosen.map((r) => r.cmrPath))) {
    const h = await readNpyFileHeader(fs, path);
    const size = await fs.fileSize(path);
    if (h.dtype !== 'f4' || h.shape.length !== 4 || h.shape[1] !== 50 || h.shape[2] !== 96 || h.shape[3] !== 96) {
      throw new DataError(path, `expected float32 (N, 50, 96, 96) cines, got ${h.dtype} (${h.shape.join(', ')})`);
    }
    const rowsHere = chosen.filter((r) => r.cmrPath === path).length;
    if (size < h.dataOffset + rowsHere * CLIP_VALUES * 4) throw new DataError(path, `truncated: ${size} bytes for ${rowsHere} clips`);
    headers.set(path, h.dataOffset);
  }
  const n = clipSize(geometry);
  const clips = new Float32Array(chosen.length * n);
  const labels: Record<string, LabelCell[]> = {};
  const names = new Set<string>();
  for (const r of chosen) {
    for (const key of TOP_LEVEL_LABELS) if (r.subject && r.subject[key] !== undefined) names.add(key);
    for (const key of Object.keys(r.subject?.labels ?? {})) names.add(key);
  }
  for (const name of names) labels[name] = [];
  for (const [i, r] of chosen.entries()) {
    const bytes = await fs.readRange(r.cmrPath, headers.get(r.cmrPath)! + r.row * CLIP_VALUES * 4, CLIP_VALUES * 4);
    const clip = new Float32Array(bytes.slice().buffer);
    for (let k = 0; k < clip.length; k += 997) {
      if (!Number.isFinite(clip[k])) throw new DataError(r.cmrPath, `row ${r.row} holds non-finite values`);
    }
    clips.set(resizeCine(clip, geometry), i * n);
    for (const name of names) {
      const v = (r.subject?.labels?.[name] ?? r.subject?.[name] ?? null) as LabelCell;
      labels[name].push(v === '' ? null : v);
    }
    options.onProgress?.(i + 1, chosen.length);
  }
  return { ids: chosen.map((r) => r.subject?.id ?? `${r.split}-${r.row}`), clips, geometry, labels, source: `${dir} (${splits.join(',')})` };
}
