/** TrainFileSystem over Node's fs: the data layer's NodeFileSystem plus rename and remove. */
import { promises as fsp } from 'node:fs';
import { NodeFileSystem } from '../data/node-fs';
import type { TrainFileSystem } from './files';

export class NodeTrainFileSystem extends NodeFileSystem implements TrainFileSystem {
  async rename(from: string, to: string): Promise<void> {
    await fsp.rename(from, to);
  }

  async remove(path: string): Promise<void> {
    await fsp.rm(path, { force: true });
  }
}
