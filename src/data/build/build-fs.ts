/**
 * Storage for a resumable build: the DataFileSystem plus the two operations resume and finalisation need,
 * cutting a file back to its last complete row and rewriting an NPY header in place.
 */
import { promises as fsp } from 'node:fs';
import type { DataFileSystem } from '../fs';
import { NodeFileSystem } from '../node-fs';

export interface BuildFileSystem extends DataFileSystem {
  truncate(path: string, size: number): Promise<void>;
  /** Overwrites bytes at `offset` without changing the rest of the file. */
  writeAt(path: string, offset: number, data: Uint8Array): Promise<void>;
}

export class NodeBuildFileSystem extends NodeFileSystem implements BuildFileSystem {
  async truncate(path: string, size: number): Promise<void> {
    await fsp.truncate(path, size);
  }

  async writeAt(path: string, offset: number, data: Uint8Array): Promise<void> {
    const handle = await fsp.open(path, 'r+');
    try {
      let done = 0;
      while (done < data.length) done += (await handle.write(data, done, data.length - done, offset + done)).bytesWritten;
    } finally {
      await handle.close();
    }
  }
}
