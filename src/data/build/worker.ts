/** Worker-thread entry of the build: reads and preprocesses one subject per message (see worker-pool.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { NodeFileSystem } from '../node-fs';
import { processPair, type SubjectOptions } from './subject';
import type { SubjectPair } from './pairs';

const fs = new NodeFileSystem();
const options = (workerData ?? {}) as SubjectOptions;

parentPort!.on('message', async (task: { id: number; pair: SubjectPair }) => {
  const outcome = await processPair(fs, task.pair, options).catch((e: unknown) => ({
    ok: false as const, stage: 'worker' as const, file: task.pair.ecg, reason: `unexpected ${e instanceof Error ? e.stack ?? e.message : String(e)}`,
  }));
  // Hand the two arrays over without copying them.
  const transfer = outcome.ok ? [outcome.ecg.buffer, outcome.cmr.buffer] : [];
  parentPort!.postMessage({ id: task.id, outcome }, transfer as ArrayBuffer[]);
});
