/**
 * The run's metrics log: one JSON object per line (JSONL), appended as values arrive. Training lines carry
 * `type: "train"`, validation lines `type: "val"`; both carry `step` (optimizer steps completed) so a
 * resumed run can cut the log back to its checkpoint and append from there.
 */
import { decodeText, type DataFileSystem } from '../data/fs';
import { writeFileAtomic, type TrainFileSystem } from './files';

export interface TrainRecord {
  type: 'train';
  step: number;
  epoch: number;
  lr: number;
  /** Loss parts read back from the device (loss, recon, phase, gradNorm, …). */
  values: Record<string, number>;
  /** Seconds since the run (or the resumed part of it) started. */
  time: number;
  stepsPerSecond: number;
  memory: { liveMiB: number; peakMiB: number };
}

export interface ValRecord {
  type: 'val';
  step: number;
  epoch: number;
  values: Record<string, number>;
  score: number;
  scoreName: string;
  best: boolean;
  time: number;
}

export type MetricsRecord = TrainRecord | ValRecord;

/** Parses a JSONL text, skipping a torn last line (a process killed mid-append). */
export function parseMetrics(text: string): MetricsRecord[] {
  const out: MetricsRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as MetricsRecord);
    } catch {
      // Only the tail can be torn; anything after it was never written.
      break;
    }
  }
  return out;
}

export async function readMetrics(fs: DataFileSystem, path: string): Promise<MetricsRecord[]> {
  if (!(await fs.exists(path))) return [];
  return parseMetrics(decodeText(await fs.readFile(path)));
}

export class MetricsLog {
  readonly records: MetricsRecord[];
  private constructor(private readonly fs: TrainFileSystem, readonly path: string, records: MetricsRecord[]) {
    this.records = records;
  }

  /** A fresh log (an existing file is replaced). */
  static async create(fs: TrainFileSystem, path: string): Promise<MetricsLog> {
    await writeFileAtomic(fs, path, '');
    return new MetricsLog(fs, path, []);
  }

  /**
   * Reopens the log of a run resumed after `step` steps: lines written after that checkpoint (by the
   * interrupted process) are dropped, so the log reads as if the run had never stopped.
   */
  static async resume(fs: TrainFileSystem, path: string, step: number): Promise<MetricsLog> {
    const kept = (await readMetrics(fs, path)).filter((r) => r.step <= step);
    await writeFileAtomic(fs, path, kept.map((r) => JSON.stringify(r) + '\n').join(''));
    return new MetricsLog(fs, path, kept);
  }

  async append(record: MetricsRecord): Promise<void> {
    this.records.push(record);
    await this.fs.appendFile(this.path, new TextEncoder().encode(JSON.stringify(record) + '\n'));
  }
}
