/**
 * The run's metrics log: one JSON object per line (JSONL), appended as values arrive. Training lines carry
 * `type: "train"`, validation lines `type: "val"`; both carry `step` (optimizer steps completed).
 *
 * The file is append-only: nothing ever rewrites it. A resumed run appends a `type: "resume"` line with the
 * step of its checkpoint; readers (parseMetrics) then drop the earlier lines past that step, which the
 * interrupted process wrote after its last checkpoint, so the log reads as if the run had never stopped.
 * A line that does not parse (a torn write, a hand edit) is skipped with a warning; the rest is kept.
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

/** Appended when a run resumes from the checkpoint at `step`: later lines before it are superseded. */
export interface ResumeRecord {
  type: 'resume';
  step: number;
  /** The checkpoint resumed from ('last', or 'best' when 'last' was unreadable). */
  from: string;
  time: string;
}

export interface ParsedMetrics {
  records: MetricsRecord[];
  /** One per skipped line: its 1-based line number and why. */
  warnings: string[];
}

const isRecord = (v: unknown): v is { type: string; step: number } =>
  typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string' && Number.isInteger((v as { step?: unknown }).step);

/**
 * Parses a JSONL metrics text: train and val lines in order, resume lines applied (earlier lines past the
 * resume step dropped), and every line that is not a record skipped with a warning naming it.
 */
export function parseMetricsDetailed(text: string, source = 'metrics.jsonl'): ParsedMetrics {
  let records: MetricsRecord[] = [];
  const warnings: string[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      const torn = i === lines.length - 1 ? ' (torn last line: the writer was killed mid-append)' : '';
      warnings.push(`${source}:${i + 1}: skipped a line that is not JSON${torn}: ${line.slice(0, 60)}`);
      return;
    }
    if (!isRecord(value)) {
      warnings.push(`${source}:${i + 1}: skipped a line without a string 'type' and an integer 'step'`);
      return;
    }
    if (value.type === 'resume') records = records.filter((r) => r.step <= value.step);
    else if (value.type === 'train' || value.type === 'val') records.push(value as MetricsRecord);
    else warnings.push(`${source}:${i + 1}: skipped a record of unknown type '${value.type}'`);
  });
  return { records, warnings };
}

/** The records of a JSONL metrics text (parseMetricsDetailed without the warnings). */
export function parseMetrics(text: string): MetricsRecord[] {
  return parseMetricsDetailed(text).records;
}

export async function readMetrics(fs: DataFileSystem, path: string): Promise<MetricsRecord[]> {
  if (!(await fs.exists(path))) return [];
  return parseMetricsDetailed(decodeText(await fs.readFile(path)), path).records;
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
   * Reopens the log of a run resumed after `step` steps (from checkpoint `from`): appends a resume line, so
   * lines written after that checkpoint by the interrupted process no longer count; unreadable lines are
   * reported through `warn` and skipped. A torn last line is closed with a newline first.
   */
  static async resume(fs: TrainFileSystem, path: string, step: number, from = 'last', warn: (message: string) => void = () => undefined): Promise<MetricsLog> {
    let text = '';
    if (await fs.exists(path)) text = decodeText(await fs.readFile(path));
    else await writeFileAtomic(fs, path, '');
    const parsed = parseMetricsDetailed(text, path);
    parsed.warnings.forEach(warn);
    const kept = parsed.records.filter((r) => r.step <= step);
    const resume: ResumeRecord = { type: 'resume', step, from, time: new Date().toISOString() };
    const prefix = text.length && !text.endsWith('\n') ? '\n' : '';
    await fs.appendFile(path, new TextEncoder().encode(prefix + JSON.stringify(resume) + '\n'));
    return new MetricsLog(fs, path, kept);
  }

  async append(record: MetricsRecord): Promise<void> {
    this.records.push(record);
    await this.fs.appendFile(this.path, new TextEncoder().encode(JSON.stringify(record) + '\n'));
  }
}
