/**
 * The list of subjects to build: from a pairs CSV (`subject_id, ecg, cmr[, label columns...]`) or from two
 * folders paired by the subject id found in the file names.
 *
 * Label columns are typed once over the whole file (so every shard agrees): a column whose non-empty cells
 * all parse as finite numbers is numeric (EF, EDV, LV mass...), any other column holds strings (classes);
 * empty cells are null. A `split` column (train/val/test) overrides the hashed split of its subject.
 */
import { DataError } from '../errors';
import { type DataFileSystem, joinPath, dirName, decodeText } from '../fs';
import { SPLIT_NAMES, type SplitName } from '../dataset';
import { hashString } from './split';

export type LabelValue = number | string | null;
export interface LabelColumn {
  name: string;
  type: 'number' | 'string';
}

export interface SubjectPair {
  /** Position in the pairs list: fixes the row order of every split and the shard (index mod n). */
  index: number;
  id: string;
  /** Paths as the readers get them ('' = missing, which rejects the subject). */
  ecg: string;
  cmr: string;
  /** Why a path is missing (folder mode), for rejected.csv. */
  missing?: string;
  labels: Record<string, LabelValue>;
  split?: SplitName;
  /** Where the pair came from, for messages ('pairs.csv line 7'). */
  origin: string;
}

export interface PairList {
  pairs: SubjectPair[];
  labelColumns: LabelColumn[];
  /** Identifies the list (ids, paths, labels): shards and resumed builds must share it. */
  digest: string;
}

/** RFC 4180 CSV: quoted fields may hold the delimiter, doubled quotes and line breaks. Returns rows of cells with their line number. */
export function parseCsvRows(text: string, source: string): { cells: string[]; line: number }[] {
  const rows: { cells: string[]; line: number }[] = [];
  const firstLine = text.split(/\r?\n/, 1)[0];
  const delimiter = firstLine.includes('\t') ? '\t' : firstLine.includes(',') ? ',' : firstLine.includes(';') ? ';' : ',';
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  let wasQuoted = false;
  const endCell = () => {
    cells.push(wasQuoted ? cell : cell.trim());
    cell = '';
    wasQuoted = false;
  };
  const endRow = () => {
    endCell();
    if (cells.some((c) => c.length > 0) && !cells[0].startsWith('#')) rows.push({ cells, line: rowLine });
    cells = [];
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else {
        if (ch === '\n') line++;
        cell += ch;
      }
    } else if (ch === '"' && cell.trim() === '') {
      quoted = true;
      wasQuoted = true;
      cell = '';
    } else if (ch === delimiter) endCell();
    else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      endRow();
      line++;
      rowLine = line;
    } else cell += ch;
  }
  if (quoted) throw new DataError(source, `line ${rowLine}: a quoted field is never closed (missing '"')`);
  endRow();
  return rows;
}

const ID_NAMES = ['subject_id', 'subject', 'id', 'eid'];

function isAbsolute(path: string): boolean {
  return path.startsWith('/') || path.startsWith('\\') || /^[A-Za-z]:[\\/]/.test(path);
}

/** A path from a list file: absolute as is, relative to the list file's folder otherwise. */
export function resolveListedPath(listFile: string, path: string): string {
  if (!path || isAbsolute(path)) return path;
  const base = dirName(listFile);
  return base === '.' ? path : joinPath(base, path);
}

/** Types the label columns over all rows and converts the cells. */
function typeLabels(names: string[], rows: string[][]): { columns: LabelColumn[]; values: Record<string, LabelValue>[] } {
  const columns = names.map((name, c) => {
    const cells = rows.map((r) => r[c] ?? '').filter((v) => v !== '');
    const numeric = cells.length > 0 && cells.every((v) => Number.isFinite(Number(v)));
    return { name, type: numeric ? 'number' : 'string' } as LabelColumn;
  });
  const values = rows.map((r) => {
    const out: Record<string, LabelValue> = {};
    columns.forEach((col, c) => {
      const v = r[c] ?? '';
      out[col.name] = v === '' ? null : col.type === 'number' ? Number(v) : v;
    });
    return out;
  });
  return { columns, values };
}

/** 64 bits (two seeded 32-bit string hashes) in hex: what identifies a build's inputs across shards and resumes. */
export function textDigest(text: string): string {
  return [hashString(1, text), hashString(2, text)].map((h) => h.toString(16).padStart(8, '0')).join('');
}

export function pairsDigest(pairs: SubjectPair[]): string {
  return textDigest(JSON.stringify(pairs.map((p) => [p.id, p.ecg, p.cmr, p.missing ?? '', p.labels, p.split ?? ''])));
}

/** A table with a subject id column; returns the id column index, the header and the data rows. */
function readTable(text: string, source: string, what: string) {
  const rows = parseCsvRows(text, source);
  if (!rows.length) throw new DataError(source, `empty ${what}; expected a header row 'subject_id,...'`);
  const header = rows[0].cells.map((h) => h.trim());
  const idCol = header.findIndex((h) => ID_NAMES.includes(h.toLowerCase()));
  if (idCol < 0) throw new DataError(source, `header '${header.join(',')}' has no subject id column; name one of ${ID_NAMES.join(', ')}`);
  const seen = new Map<string, number>();
  for (const r of rows.slice(1)) {
    const id = r.cells[idCol] ?? '';
    if (!id) throw new DataError(source, `line ${r.line}: empty subject id`);
    if (seen.has(id)) throw new DataError(source, `line ${r.line}: subject id '${id}' repeats line ${seen.get(id)}; ids must be unique`);
    seen.set(id, r.line);
    if (r.cells.length > header.length) throw new DataError(source, `line ${r.line}: ${r.cells.length} cells but the header has ${header.length} columns (quote paths that hold '${text.includes('\t') ? '\\t' : ','}')`);
  }
  return { header, idCol, rows: rows.slice(1) };
}

function parseSplitCell(value: string, source: string, line: number): SplitName | undefined {
  if (value === '') return undefined;
  if (!(SPLIT_NAMES as readonly string[]).includes(value)) throw new DataError(source, `line ${line}: split '${value}' is not one of ${SPLIT_NAMES.join(', ')}`);
  return value as SplitName;
}

/** Reads `subject_id, ecg, cmr[, split][, labels...]`; relative paths are taken from the CSV's folder. */
export async function readPairsCsv(fs: DataFileSystem, path: string): Promise<PairList> {
  if (!(await fs.exists(path))) throw new DataError(path, 'file not found (--pairs)');
  const { header, idCol, rows } = readTable(decodeText(await fs.readFile(path)), path, 'pairs file');
  const lower = header.map((h) => h.toLowerCase());
  const ecgCol = lower.indexOf('ecg');
  const cmrCol = lower.indexOf('cmr');
  if (ecgCol < 0 || cmrCol < 0) throw new DataError(path, `header '${header.join(',')}' needs columns 'ecg' and 'cmr' (paths to files, folders or zip archives)`);
  const splitCol = lower.indexOf('split');
  const labelCols = header.map((_, c) => c).filter((c) => c !== idCol && c !== ecgCol && c !== cmrCol && c !== splitCol);
  const typed = typeLabels(labelCols.map((c) => header[c]), rows.map((r) => labelCols.map((c) => r.cells[c] ?? '')));
  const pairs = rows.map((r, index): SubjectPair => ({
    index,
    id: r.cells[idCol],
    ecg: resolveListedPath(path, r.cells[ecgCol] ?? ''),
    cmr: resolveListedPath(path, r.cells[cmrCol] ?? ''),
    labels: typed.values[index],
    split: splitCol >= 0 ? parseSplitCell(r.cells[splitCol] ?? '', path, r.line) : undefined,
    origin: `pairs line ${r.line}`,
  }));
  return { pairs, labelColumns: typed.columns, digest: pairsDigest(pairs) };
}

export interface FolderPairing {
  ecgDir: string;
  cmrDir: string;
  /** Regular expression applied to each entry name; the named group `id` or else group 1 is the subject id. */
  idPattern?: string;
  /** A CSV `subject_id, labels...` joined by id (optional). */
  labelsCsv?: string;
}

/** Default: the name up to its first '.' or '_' (sub01.hea, sub01_cine.nii.gz -> sub01). */
export const DEFAULT_ID_PATTERN = '^([^._]+)';

function idOf(name: string, pattern: RegExp): string | null {
  const m = pattern.exec(name);
  if (!m) return null;
  return m.groups?.id ?? m[1] ?? m[0];
}

/** Entries of a folder by subject id. A WFDB .dat next to its .hea is the same record, so only the .hea counts. */
async function entriesById(fs: DataFileSystem, dir: string, pattern: RegExp): Promise<Map<string, string[]>> {
  if (!(await fs.exists(dir))) throw new DataError(dir, 'folder not found');
  const names = (await fs.listDir(dir)).filter((n) => !n.startsWith('.'));
  const heaStems = new Set(names.filter((n) => /\.hea$/i.test(n)).map((n) => n.slice(0, -4)));
  const byId = new Map<string, string[]>();
  for (const name of names) {
    if (/\.dat$/i.test(name) && heaStems.has(name.slice(0, -4))) continue;
    const id = idOf(name, pattern);
    if (!id) continue;
    byId.set(id, [...(byId.get(id) ?? []), name]);
  }
  return byId;
}

/** Pairs the entries of two folders by subject id; ids sorted; a side with no or several matches is a rejection reason. */
export async function pairFolders(fs: DataFileSystem, options: FolderPairing): Promise<PairList> {
  let pattern: RegExp;
  try {
    pattern = new RegExp(options.idPattern ?? DEFAULT_ID_PATTERN);
  } catch (e) {
    throw new Error(`--id-pattern '${options.idPattern}' is not a valid regular expression: ${(e as Error).message}`);
  }
  const ecg = await entriesById(fs, options.ecgDir, pattern);
  const cmr = await entriesById(fs, options.cmrDir, pattern);
  let labelTable: { header: string[]; idCol: number; rows: { cells: string[]; line: number }[] } | null = null;
  if (options.labelsCsv) {
    if (!(await fs.exists(options.labelsCsv))) throw new DataError(options.labelsCsv, 'file not found (--labels)');
    labelTable = readTable(decodeText(await fs.readFile(options.labelsCsv)), options.labelsCsv, 'labels file');
  }
  const ids = [...new Set([...ecg.keys(), ...cmr.keys()])].sort();
  const labelCols = labelTable ? labelTable.header.map((_, c) => c).filter((c) => c !== labelTable!.idCol) : [];
  const labelRows = new Map(labelTable?.rows.map((r) => [r.cells[labelTable!.idCol], r.cells]) ?? []);
  const typed = typeLabels(labelCols.map((c) => labelTable!.header[c]), ids.map((id) => labelCols.map((c) => labelRows.get(id)?.[c] ?? '')));
  const pick = (side: string, dir: string, id: string, names: string[] | undefined): { path: string; missing?: string } => {
    if (!names) return { path: '', missing: `no ${side} entry in ${dir} matches subject id '${id}'` };
    if (names.length > 1) return { path: '', missing: `several ${side} entries in ${dir} match subject id '${id}': ${names.join(', ')}; narrow --id-pattern` };
    return { path: joinPath(dir, names[0]) };
  };
  const pairs = ids.map((id, index): SubjectPair => {
    const e = pick('ECG', options.ecgDir, id, ecg.get(id));
    const c = pick('CMR', options.cmrDir, id, cmr.get(id));
    const missing = [e.missing, c.missing].filter(Boolean).join('; ');
    return { index, id, ecg: e.path, cmr: c.path, missing: missing || undefined, labels: typed.values[index], origin: `folders, id ${id}` };
  });
  return { pairs, labelColumns: typed.columns, digest: pairsDigest(pairs) };
}
