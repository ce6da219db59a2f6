/**
 * A fixed pool of worker threads running processPair. Tasks queue in submission order; each worker holds
 * one task at a time. A worker that dies (out of memory, a native crash) turns its task into a rejection
 * ('worker' stage, the error as reason; `--resume` retries those) and is replaced, so a build never loses
 * a subject silently. When workers keep dying without finishing anything (they cannot even start), the
 * pool fails every queued task with one error instead of rejecting the whole cohort subject by subject.
 */
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { processPair, type SubjectOptions, type SubjectOutcome } from './subject';
import type { SubjectPair } from './pairs';
import type { DataFileSystem } from '../fs';

export interface SubjectRunner {
  readonly concurrency: number;
  run(pair: SubjectPair): Promise<SubjectOutcome>;
  close(): Promise<void>;
}

/** Runs subjects on the calling thread (workers = 0): for tests, the browser and debugging. */
export class InlineRunner implements SubjectRunner {
  readonly concurrency = 1;
  constructor(private readonly fs: DataFileSystem, private readonly options: SubjectOptions) {}
  run(pair: SubjectPair): Promise<SubjectOutcome> {
    return processPair(this.fs, pair, this.options);
  }
  async close(): Promise<void> {}
}

interface Task {
  id: number;
  pair: SubjectPair;
  resolve: (outcome: SubjectOutcome) => void;
  reject: (error: Error) => void;
}

/** Under tsx (and vitest) the worker is TypeScript: register tsx's loader inside the worker first. */
function spawn(options: SubjectOptions, resourceLimits?: ResourceLimits): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const url = new URL('./worker.ts', here).href;
    const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(url)}); });`;
    return new Worker(boot, { eval: true, workerData: options, resourceLimits });
  }
  return new Worker(new URL('./worker.js', here), { workerData: options, resourceLimits });
}

export class WorkerPool implements SubjectRunner {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Task>();
  private readonly queue: Task[] = [];
  private nextId = 0;
  private closed = false;
  private fatal: Error | null = null;
  /** Worker failures since the last finished task: a worker that cannot even start must not respawn forever. */
  private failuresInARow = 0;

  /** `resourceLimits` caps each worker's heap, so one huge input costs that subject, not the whole build. */
  constructor(readonly concurrency: number, private readonly options: SubjectOptions, private readonly resourceLimits?: ResourceLimits) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`--workers must be a positive integer, got ${concurrency}`);
    for (let i = 0; i < concurrency; i++) this.idle.push(this.start());
  }

  private start(): Worker {
    const worker = spawn(this.options, this.resourceLimits);
    worker.on('message', (msg: { id: number; outcome: SubjectOutcome }) => {
      const task = this.busy.get(worker);
      this.busy.delete(worker);
      this.idle.push(worker);
      this.failuresInARow = 0;
      task?.resolve(msg.outcome);
      this.pump();
    });
    const fail = (reason: string) => {
      const task = this.busy.get(worker);
      this.busy.delete(worker);
      const at = this.idle.indexOf(worker);
      if (at >= 0) this.idle.splice(at, 1);
      if (++this.failuresInARow > 2 * this.concurrency + 2) {
        // Workers keep dying before finishing anything (e.g. the entry cannot load): fail loudly, not in a loop.
        this.closed = true;
        this.fatal = new Error(`worker threads keep failing (${this.failuresInARow} in a row, none finished a subject): ${reason}; fix the cause and rerun with --resume`);
        for (const t of [...(task ? [task] : []), ...this.queue.splice(0), ...this.busy.values()]) t.reject(this.fatal);
        this.busy.clear();
        return;
      }
      task?.resolve({ ok: false, stage: 'worker', file: task.pair.ecg, reason });
      if (!this.closed) {
        this.idle.push(this.start());
        this.pump();
      }
    };
    worker.on('error', (e) => fail(`worker thread failed: ${e.message}`));
    worker.on('exit', (code) => {
      if (!this.closed && (this.busy.has(worker) || this.idle.includes(worker))) fail(`worker thread exited with code ${code}`);
    });
    return worker;
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) {
      const worker = this.idle.pop()!;
      const task = this.queue.shift()!;
      this.busy.set(worker, task);
      worker.postMessage({ id: task.id, pair: task.pair });
    }
  }

  run(pair: SubjectPair): Promise<SubjectOutcome> {
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.closed) return Promise.reject(new Error('the worker pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, pair, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.idle, ...this.busy.keys()].map((w) => w.terminate()));
  }
}
