/** DataFileSystem over Node's fs module. The only Node-specific file of the data layer's core. */
import { promises as fsp } from 'node:fs';
import type { DataFileSystem } from './fs';
import { DataError } from './errors';

/** Node's EISDIR error does not name the path; this one does. */
function directoryError(path: string, e: unknown): unknown {
  return (e as { code?: string }).code === 'EISDIR' ? new DataError(path, 'is a directory, not a file') : e;
}

export class NodeFileSystem implements DataFileSystem {
  async readFile(path: string): Promise<Uint8Array> {
    let buf: Buffer;
    try {
      buf = await fsp.readFile(path);
    } catch (e) {
      throw directoryError(path, e);
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  async readRange(path: string, offset: number, length: number): Promise<Uint8Array> {
    const handle = await fsp.open(path, 'r');
    try {
      const out = new Uint8Array(length);
      let done = 0;
      // read() may return fewer bytes than asked; loop until filled or the file ends.
      while (done < length) {
        const { bytesRead } = await handle.read(out, done, length - done, offset + done).catch((e: unknown) => {
          throw directoryError(path, e);
        });
        if (bytesRead === 0) {
          throw new Error(`${path}: read of ${length} bytes at offset ${offset} runs past the end of the file`);
        }
        done += bytesRead;
      }
      return out;
    } finally {
      await handle.close();
    }
  }

  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    await fsp.writeFile(path, data);
  }

  async appendFile(path: string, data: Uint8Array): Promise<void> {
    await fsp.appendFile(path, data);
  }

  async listDir(path: string): Promise<string[]> {
    return (await fsp.readdir(path)).sort();
  }

  async mkdir(path: string): Promise<void> {
    await fsp.mkdir(path, { recursive: true });
  }

  async exists(path: string): Promise<boolean> {
    try {
      await fsp.stat(path);
      return true;
    } catch {
      return false;
    }
  }

  async fileSize(path: string): Promise<number> {
    return (await fsp.stat(path)).size;
  }
}
