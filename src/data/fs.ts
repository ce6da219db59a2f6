/**
 * The only way the data layer touches storage. Readers, the dataset writer and the loader take a
 * DataFileSystem so the same code runs in Node (node-fs.ts) and, later, in the browser (an
 * implementation over fetch / File System Access). MemoryFileSystem serves tests and in-browser use.
 */
import { DataError } from './errors';
export interface DataFileSystem {
  readFile(path: string): Promise<Uint8Array>;
  /** Reads `length` bytes at `offset`; must throw if fewer bytes exist (never returns a short read). */
  readRange(path: string, offset: number, length: number): Promise<Uint8Array>;
  writeFile(path: string, data: Uint8Array | string): Promise<void>;
  /** Appends to a file, creating it if needed; lets the dataset writer stream arrays larger than memory. */
  appendFile(path: string, data: Uint8Array): Promise<void>;
  /** Names (not paths) of the entries of a directory, sorted. */
  listDir(path: string): Promise<string[]>;
  mkdir(path: string): Promise<void>;
  exists(path: string): Promise<boolean>;
  /** Byte size of a file. */
  fileSize(path: string): Promise<number>;
}

/**
 * Reads a whole input file for a reader: a missing path, a directory or an unreadable file is a DataError
 * that names the path (Node's EISDIR message, for one, does not).
 */
export async function readInputFile(fs: DataFileSystem, path: string): Promise<Uint8Array> {
  if (!(await fs.exists(path))) throw new DataError(path, 'file not found');
  try {
    return await fs.readFile(path);
  } catch (e) {
    if (e instanceof DataError) throw e;
    const code = (e as { code?: string }).code;
    if (code === 'EISDIR') throw new DataError(path, 'is a directory, not a file');
    throw new DataError(path, `cannot be read: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Joins path pieces with '/', collapsing duplicate separators (enough for our relative layouts). */
export function joinPath(...parts: string[]): string {
  const joined = parts.filter((p) => p.length > 0).join('/');
  return joined.replace(/\/{2,}/g, '/');
}

export function baseName(path: string): string {
  const parts = path.split(/[\\/]/);
  return parts[parts.length - 1];
}

export function dirName(path: string): string {
  const idx = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  return idx < 0 ? '.' : idx === 0 ? '/' : path.slice(0, idx);
}

export function decodeText(bytes: Uint8Array): string {
  return new TextDecoder('utf-8').decode(bytes);
}

export function encodeText(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** A file system held in memory: for tests, and for data that arrives as bytes (uploads, fetches). */
export class MemoryFileSystem implements DataFileSystem {
  private readonly files = new Map<string, Uint8Array>();
  private readonly dirs = new Set<string>(['.', '/']);

  private static normalize(path: string): string {
    // './x' is 'x' (a WFDB header in the current directory names its .dat as dirName + file = './x.dat').
    return path.replace(/\/{2,}/g, '/').replace(/^(\.\/)+(?=.)/, '').replace(/\/$/, '') || '/';
  }

  async readFile(path: string): Promise<Uint8Array> {
    const key = MemoryFileSystem.normalize(path);
    const data = this.files.get(key);
    if (!data) {
      if (this.dirs.has(key) || (await this.listDir(key)).length > 0) throw new DataError(path, 'is a directory, not a file');
      throw new Error(`${path}: no such file`);
    }
    return data.slice();
  }

  async readRange(path: string, offset: number, length: number): Promise<Uint8Array> {
    const data = this.files.get(MemoryFileSystem.normalize(path));
    if (!data) throw new Error(`${path}: no such file`);
    if (offset + length > data.length) {
      throw new Error(`${path}: read of ${length} bytes at offset ${offset} runs past the end (${data.length} bytes)`);
    }
    return data.slice(offset, offset + length);
  }

  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    this.files.set(MemoryFileSystem.normalize(path), typeof data === 'string' ? encodeText(data) : data.slice());
  }

  async appendFile(path: string, data: Uint8Array): Promise<void> {
    const key = MemoryFileSystem.normalize(path);
    const old = this.files.get(key) ?? new Uint8Array(0);
    const merged = new Uint8Array(old.length + data.length);
    merged.set(old, 0);
    merged.set(data, old.length);
    this.files.set(key, merged);
  }

  async listDir(path: string): Promise<string[]> {
    const prefix = MemoryFileSystem.normalize(path) + '/';
    const names = new Set<string>();
    for (const key of [...this.files.keys(), ...this.dirs]) {
      if (key.startsWith(prefix)) names.add(key.slice(prefix.length).split('/')[0]);
    }
    names.delete('');
    return [...names].sort();
  }

  async mkdir(path: string): Promise<void> {
    this.dirs.add(MemoryFileSystem.normalize(path));
  }

  async exists(path: string): Promise<boolean> {
    const key = MemoryFileSystem.normalize(path);
    if (this.files.has(key) || this.dirs.has(key)) return true;
    return (await this.listDir(key)).length > 0;
  }

  async fileSize(path: string): Promise<number> {
    const data = this.files.get(MemoryFileSystem.normalize(path));
    if (!data) throw new Error(`${path}: no such file`);
    return data.length;
  }
}
