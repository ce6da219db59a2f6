/**
 * Random-access batches over rows of subjects whose prepared samples (host-side preprocessing) may be
 * kept in memory: batch (epoch, index) depends only on (seed, epoch, index). The ECG and cine batches of
 * stages 1 and 2 build on it.
 */
import { epochOrder } from '../data/loader';
import type { StageBatches } from './stage';

export interface RowBatchesOptions {
  batchSize: number;
  /** Shuffle each epoch with epochOrder(seed, epoch) and drop the last partial batch (training). */
  shuffle: boolean;
  seed: number;
  /** Keep prepared samples in memory (fixed phantom sets are regenerated otherwise). */
  cache: boolean;
}

export abstract class RowBatches<S extends { readonly length: number }, O extends RowBatchesOptions, P, B> implements StageBatches<B> {
  readonly batchesPerEpoch: number;
  private readonly cache = new Map<number, Promise<P>>();

  constructor(readonly subjects: S, readonly options: O) {
    const n = subjects.length;
    if (options.shuffle && n < options.batchSize) throw new Error(`${n} training subjects are fewer than one batch of ${options.batchSize}`);
    this.batchesPerEpoch = options.shuffle ? Math.floor(n / options.batchSize) : Math.ceil(n / options.batchSize);
  }

  /** The prepared sample of source row `row` (uncached). */
  protected abstract prepare(row: number): Promise<P>;

  /** A batch of the given source rows, in that order. */
  abstract loadRows(rows: number[]): Promise<B>;

  protected prepared(row: number): Promise<P> {
    const hit = this.cache.get(row);
    if (hit) return hit;
    const promise = this.prepare(row);
    if (this.options.cache) this.cache.set(row, promise);
    return promise;
  }

  /** Source rows of batch `index` of `epoch`. */
  rows(epoch: number, index: number): number[] {
    const { batchSize, shuffle, seed } = this.options;
    const order = epochOrder(this.subjects.length, epoch, shuffle, seed);
    return order.slice(index * batchSize, (index + 1) * batchSize);
  }

  async load(epoch: number, index: number): Promise<B> {
    // Start the host work on a later turn of the event loop, so a prefetch issued right after a step's
    // submission does not delay the step's own bookkeeping.
    await new Promise((resolve) => setTimeout(resolve, 0));
    return this.loadRows(this.rows(epoch, index));
  }
}
