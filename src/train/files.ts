/**
 * File access for training runs. Everything goes through the data layer's DataFileSystem so the loop can
 * run in a browser later; checkpoints additionally need an atomic replace (write a temporary name, then
 * rename), which DataFileSystem lacks, so runs take a TrainFileSystem = DataFileSystem + rename/remove.
 */
import { MemoryFileSystem, type DataFileSystem } from '../data/fs';

export interface TrainFileSystem extends DataFileSystem {
  /** Replaces `to` with `from` in one step (POSIX rename semantics: readers see the old or the new file). */
  rename(from: string, to: string): Promise<void>;
  /** Deletes a file if it exists. */
  remove(path: string): Promise<void>;
}

let tempCounter = 0;

/**
 * Writes `data` to `path` so that a crash at any moment leaves either the previous file or the complete
 * new one, never a partial file: the bytes go to a sibling temporary name which is then renamed over
 * `path`. A killed writer leaves at most a stray `*.tmp-*` file, which nothing reads.
 */
export async function writeFileAtomic(fs: TrainFileSystem, path: string, data: Uint8Array | string): Promise<void> {
  const temp = `${path}.tmp-${Date.now().toString(36)}-${(tempCounter++).toString(36)}`;
  await fs.writeFile(temp, data);
  await fs.rename(temp, path);
}

/** An in-memory TrainFileSystem (tests, and a browser session that keeps the run in memory). */
export class MemoryTrainFileSystem extends MemoryFileSystem implements TrainFileSystem {
  private readonly removed = new Set<string>();

  async rename(from: string, to: string): Promise<void> {
    const data = await super.readFile(from);
    await super.writeFile(to, data);
    this.removed.delete(to);
    await this.remove(from);
  }

  async remove(path: string): Promise<void> {
    // MemoryFileSystem cannot delete; hide the entry instead (an empty tombstone that reads as missing).
    if (await super.exists(path)) {
      await super.writeFile(path, new Uint8Array(0));
      this.removed.add(path);
    }
  }

  override async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    this.removed.delete(path);
    await super.writeFile(path, data);
  }

  override async appendFile(path: string, data: Uint8Array): Promise<void> {
    if (this.removed.has(path)) {
      this.removed.delete(path);
      await super.writeFile(path, data);
      return;
    }
    await super.appendFile(path, data);
  }

  override async exists(path: string): Promise<boolean> {
    return !this.removed.has(path) && super.exists(path);
  }

  override async readFile(path: string): Promise<Uint8Array> {
    if (this.removed.has(path)) throw new Error(`${path}: no such file`);
    return super.readFile(path);
  }

  override async listDir(path: string): Promise<string[]> {
    const names = await super.listDir(path);
    const prefix = path.replace(/\/$/, '') + '/';
    return names.filter((n) => !this.removed.has(prefix + n));
  }
}
