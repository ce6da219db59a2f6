/**
 * Where the ECGs of a synthesis run come from. Each source lists its recordings by position (the noise
 * index of the clip and the shard key), with an id, the labels it carries into the synthetic dataset, and
 * a lazy loader of the 12 × 5000 recording, so a cohort of any size is listed without being read.
 *
 *  - phantom: subjects `start … start+n−1` of the phantom's seed (ECG only; the class and the phenotype
 *    proxies become labels, so a downstream run can check what the synthetic clips carry);
 *  - dataset: every row of one or more splits of a dataset directory (`npm run data -- synth|build`), with
 *    the manifest's class and labels;
 *  - files: a CSV with `subject_id,ecg[,label columns…]` (the `data build` pairs file works: its cmr column
 *    is ignored), read with the project's ECG readers and prepared like training data.
 */
import { DataError } from '../data/errors';
import { type DataFileSystem, decodeText, joinPath } from '../data/fs';
import { readNpyFileHeader } from '../data/loader';
import { generateSubject, phantomId } from '../data/phantom/subject';
import { prepareEcg } from '../data/preprocess/ecg';
import { readEcgFile } from '../data/readers/index';
import { parseCsvRows, resolveListedPath } from '../data/build/pairs';
import { PHANTOM_PHENOTYPES, type SplitName } from '../data/dataset';

export type SourceLabel = string | number | null;

export interface SynthesisSource {
  /** Id of the source recording (the synthetic subject's id is derived from it). */
  id: string;
  /** Labels of the source subject, copied into the synthetic dataset's manifest. */
  labels: Record<string, SourceLabel>;
  /** A description of where the ECG came from, for provenance. */
  origin: string;
  /** The recording, 12 × 5000 at 500 Hz, mV. */
  load(): Promise<{ ecg: Float32Array; warnings: string[] }>;
}

const ECG_VALUES = 12 * 5000;

export function phantomSources(seed: number, start: number, count: number): SynthesisSource[] {
  if (!Number.isInteger(start) || start < 0 || !Number.isInteger(count) || count < 1) {
    throw new DataError('--phantom', `needs a positive subject count and a start index >= 0, got ${count} from ${start}`);
  }
  return Array.from({ length: count }, (_, k) => {
    const index = start + k;
    return {
      id: phantomId(seed, index),
      labels: {},
      origin: `phantom seed ${seed} index ${index}`,
      async load() {
        const subject = generateSubject(seed, index, { cine: false });
        const t = subject.truth;
        // The truth is known only after generation; labels are filled in here (listing stays cheap).
        Object.assign(this.labels, { cls: t.cls, ...Object.fromEntries(PHANTOM_PHENOTYPES.map((key) => [key, t[key]])) });
        return { ecg: subject.ecg, warnings: [] };
      },
    };
  });
}

interface ManifestLike {
  splits?: Partial<Record<SplitName, { count: number; ecg: string }>>;
  subjects?: { id: string; split: SplitName; row: number; cls?: string; labels?: Record<string, SourceLabel>; [k: string]: unknown }[];
}

/** Every row of the given splits of a dataset directory, in split order then row order. */
export async function datasetSources(fs: DataFileSystem, dir: string, splits: SplitName[]): Promise<SynthesisSource[]> {
  const manifestPath = joinPath(dir, 'manifest.json');
  if (!(await fs.exists(manifestPath))) throw new DataError(manifestPath, 'no manifest.json: --ecg-data needs a dataset directory (npm run data -- synth | build)');
  let manifest: ManifestLike;
  try {
    manifest = JSON.parse(decodeText(await fs.readFile(manifestPath))) as ManifestLike;
  } catch (e) {
    throw new DataError(manifestPath, `is not valid JSON (${(e as Error).message})`);
  }
  const out: SynthesisSource[] = [];
  for (const split of splits) {
    const info = manifest.splits?.[split];
    if (!info) throw new DataError(manifestPath, `has no split '${split}' (it has ${Object.keys(manifest.splits ?? {}).join(', ') || 'none'})`);
    const ecgPath = joinPath(dir, info.ecg);
    const header = await readNpyFileHeader(fs, ecgPath);
    if (header.dtype !== 'f4' || header.shape.length !== 3 || header.shape[1] !== 12 || header.shape[2] !== 5000) {
      throw new DataError(ecgPath, `expected float32 (N, 12, 5000), got ${header.dtype} (${header.shape.join(', ')})`);
    }
    if (header.shape[0] !== info.count) throw new DataError(ecgPath, `manifest says ${info.count} rows, the file holds ${header.shape[0]}`);
    const subjects = (manifest.subjects ?? []).filter((s) => s.split === split).sort((a, b) => a.row - b.row);
    for (let row = 0; row < info.count; row++) {
      const s = subjects[row];
      const labels: Record<string, SourceLabel> = { ...(s?.labels ?? {}) };
      if (s?.cls !== undefined && s.cls !== '') labels.cls = s.cls;
      for (const key of PHANTOM_PHENOTYPES) {
        if (typeof s?.[key] === 'number') labels[key] = s[key] as number;
      }
      out.push({
        id: s?.id ?? `${split}-${row}`,
        labels,
        origin: `${info.ecg} row ${row}`,
        async load() {
          const bytes = await fs.readRange(ecgPath, header.dataOffset + row * ECG_VALUES * 4, ECG_VALUES * 4);
          return { ecg: new Float32Array(bytes.slice().buffer), warnings: [] };
        },
      });
    }
  }
  return out;
}

/**
 * A CSV of ECG files: header `subject_id,ecg[,…]` (the `data build` pairs format; a `cmr` or `split` column is
 * ignored); relative paths resolve against the CSV's folder; numeric label cells become numbers.
 */
export async function fileSources(fs: DataFileSystem, csvPath: string, options: { fs?: number } = {}): Promise<SynthesisSource[]> {
  if (!(await fs.exists(csvPath))) throw new DataError(csvPath, 'file not found (--pairs)');
  const rows = parseCsvRows(decodeText(await fs.readFile(csvPath)), csvPath);
  if (rows.length < 2) throw new DataError(csvPath, 'needs a header line (subject_id,ecg[,labels…]) and at least one row');
  const header = rows[0].cells.map((h) => h.trim().toLowerCase());
  const idCol = header.indexOf('subject_id');
  const ecgCol = header.indexOf('ecg');
  if (idCol < 0 || ecgCol < 0) throw new DataError(csvPath, `header must name 'subject_id' and 'ecg' columns, got: ${rows[0].cells.join(',')}`);
  const seen = new Map<string, number>();
  return rows.slice(1).map(({ cells, line }) => {
    const id = cells[idCol] ?? '';
    if (!id) throw new DataError(csvPath, `line ${line}: empty subject_id`);
    if (seen.has(id)) throw new DataError(csvPath, `line ${line}: subject_id '${id}' repeats line ${seen.get(id)}`);
    seen.set(id, line);
    const file = resolveListedPath(csvPath, cells[ecgCol] ?? '');
    if (!file) throw new DataError(csvPath, `line ${line}: empty ecg path`);
    const labels: Record<string, SourceLabel> = {};
    header.forEach((name, c) => {
      if (c === idCol || c === ecgCol || name === 'cmr' || name === 'split') return;
      const raw = cells[c] ?? '';
      labels[rows[0].cells[c].trim()] = raw === '' ? null : Number.isFinite(Number(raw)) ? Number(raw) : raw;
    });
    return {
      id,
      labels,
      origin: file,
      async load() {
        const recording = await readEcgFile(fs, file, options.fs !== undefined ? { fs: options.fs } : {});
        const prepared = prepareEcg(recording);
        return { ecg: prepared.data, warnings: [...recording.warnings, ...prepared.warnings] };
      },
    };
  });
}
