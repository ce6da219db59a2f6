/**
 * Locating evaluation inputs through a DataFileSystem (so it runs in Node and in a browser):
 *   - an NPY file (N, 1, T, H, W), (N, T, H, W) or (T, H, W);
 *   - a directory of per-subject `<id>.npy` files (the generator's layout), sorted by name;
 *   - a synthetic dataset directory (manifest.json): `<split>/cmr.npy` with ids from `<split>/meta.json`.
 * Ground-truth metadata: a split's meta.json ({split, subjects}), a manifest.json (every split's meta) or
 * a dataset directory.
 */
import { type DataFileSystem, baseName, decodeText, dirName, joinPath } from '../data/fs';
import { readNpy, toFloat32 } from '../data/npy';
import { clipLayout, clipSetFromArray, type ClipSet, type ValueRange } from './inputs';
import type { SubjectMeta } from './report';

export interface LoadedSource {
  set: ClipSet;
  /** Metadata found along the way (a dataset directory's meta.json), by row. */
  meta: SubjectMeta[] | null;
  description: string;
}

/** Node's listDir throws on a file; the memory file system lists nothing for a file and has no size for a directory. */
async function isDirectory(fs: DataFileSystem, path: string): Promise<boolean> {
  try {
    if ((await fs.listDir(path)).length) return true;
  } catch {
    return false;
  }
  try {
    await fs.fileSize(path);
    return false;
  } catch {
    return fs.exists(path);
  }
}

async function readJson(fs: DataFileSystem, path: string): Promise<unknown> {
  try {
    return JSON.parse(decodeText(await fs.readFile(path)));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

export async function loadClipSource(fs: DataFileSystem, path: string, options: { split?: string; range?: ValueRange | 'auto' } = {}): Promise<LoadedSource> {
  const range = options.range ?? 'auto';
  if (!(await fs.exists(path))) throw new Error(`${path}: no such file or directory`);
  if (!(await isDirectory(fs, path))) {
    const array = readNpy(await fs.readFile(path), path);
    return { set: clipSetFromArray(array.data, array.shape, path, range), meta: null, description: `${path} (${array.shape.join('x')})` };
  }
  if (await fs.exists(joinPath(path, 'manifest.json'))) {
    const split = options.split ?? 'test';
    const cmrPath = joinPath(path, split, 'cmr.npy');
    if (!(await fs.exists(cmrPath))) throw new Error(`${path}: dataset has no ${split}/cmr.npy`);
    const meta = await loadSubjectMeta(fs, joinPath(path, split, 'meta.json'));
    const array = readNpy(await fs.readFile(cmrPath), cmrPath);
    const layout = clipLayout(array.shape, cmrPath);
    const ids = meta.length === layout.count ? meta.map((m) => m.id) : undefined;
    return { set: clipSetFromArray(array.data, array.shape, cmrPath, range, ids), meta: ids ? meta : null, description: `dataset ${path}, split ${split} (${layout.count} clips)` };
  }
  const names = (await fs.listDir(path)).filter((n) => n.toLowerCase().endsWith('.npy'));
  if (!names.length) throw new Error(`${path}: directory holds no .npy files`);
  // Per-subject files are concatenated raw, then the range is detected once over everything.
  const parts: Float32Array[] = [];
  const ids: string[] = [];
  let layout: { frames: number; height: number; width: number } | null = null;
  for (const name of names) {
    const file = joinPath(path, name);
    const array = readNpy(await fs.readFile(file), file);
    const shape = array.shape.filter((d, i) => !(d === 1 && i < array.shape.length - 3));
    const l = clipLayout(shape, file);
    if (l.count !== 1) throw new Error(`${file}: a per-subject file must hold one clip, got shape (${array.shape.join(', ')})`);
    if (layout && (l.frames !== layout.frames || l.height !== layout.height || l.width !== layout.width)) {
      throw new Error(`${file}: clip is ${l.frames}x${l.height}x${l.width}, earlier files are ${layout.frames}x${layout.height}x${layout.width}`);
    }
    layout = l;
    parts.push(toFloat32(array.data));
    ids.push(name.replace(/\.npy$/i, ''));
  }
  const size = layout!.frames * layout!.height * layout!.width;
  const all = new Float32Array(parts.length * size);
  parts.forEach((p, k) => all.set(p, k * size));
  return {
    set: clipSetFromArray(all, [parts.length, layout!.frames, layout!.height, layout!.width], path, range, ids),
    meta: null,
    description: `${path} (${parts.length} per-subject files)`,
  };
}

function subjectsOf(json: unknown, source: string): SubjectMeta[] {
  const subjects = (json as { subjects?: unknown })?.subjects;
  if (!Array.isArray(subjects)) throw new Error(`${source}: no 'subjects' array`);
  return subjects.map((s, k) => {
    const o = s as Record<string, unknown>;
    if (typeof o.id !== 'string') throw new Error(`${source}: subject ${k} has no id`);
    return { id: o.id, cls: typeof o.cls === 'string' ? o.cls : undefined, params: o.params as SubjectMeta['params'], truth: o.truth as SubjectMeta['truth'] };
  });
}

/** Subject metadata from a meta.json, a manifest.json (all splits) or a dataset directory. */
export async function loadSubjectMeta(fs: DataFileSystem, path: string): Promise<SubjectMeta[]> {
  let file = path;
  if (await isDirectory(fs, path)) file = joinPath(path, 'manifest.json');
  const json = (await readJson(fs, file)) as { splits?: Record<string, { meta?: string }> };
  if (json && typeof json === 'object' && json.splits && baseName(file) === 'manifest.json') {
    const out: SubjectMeta[] = [];
    for (const split of Object.values(json.splits)) {
      if (split.meta) out.push(...subjectsOf(await readJson(fs, joinPath(dirName(file), split.meta)), split.meta));
    }
    return out;
  }
  return subjectsOf(json, file);
}
