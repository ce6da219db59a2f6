/**
 * Progress of a long build: done/total, subjects/s over this run (resume-aware), ETA and rejections.
 * On a terminal the line is redrawn in place; in a log file (Slurm, Kubernetes) a line is printed every
 * `logEverySeconds`, so the log stays readable.
 */
export interface ProgressState {
  done: number;
  total: number;
  rejected: number;
  /** Subjects done by this run (excludes those found done on resume). */
  doneThisRun: number;
  elapsedSeconds: number;
}

/** 42s, 3m07s, 2h05m; '?' when unknown (no rate yet) or negative. Shared with training's progress lines. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function progressLine(p: ProgressState, width = 24): string {
  const fraction = p.total ? p.done / p.total : 1;
  const filled = Math.round(fraction * width);
  const rate = p.elapsedSeconds > 0 ? p.doneThisRun / p.elapsedSeconds : 0;
  const eta = rate > 0 ? (p.total - p.done) / rate : Infinity;
  const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
  return `[${bar}] ${p.done}/${p.total} ${(100 * fraction).toFixed(1)}% ${rate.toFixed(2)} subj/s ETA ${p.done === p.total ? '0s' : formatDuration(eta)} rejected ${p.rejected}`;
}

export class ProgressPrinter {
  private lastLog = -Infinity;
  constructor(private readonly stream: { write(text: string): unknown; isTTY?: boolean }, private readonly label = '', private readonly logEverySeconds = 10) {}

  update(p: ProgressState): void {
    const line = (this.label ? `${this.label} ` : '') + progressLine(p);
    if (this.stream.isTTY) this.stream.write(`\r${line}`);
    else if (p.done === p.total || p.elapsedSeconds - this.lastLog >= this.logEverySeconds) {
      this.lastLog = p.elapsedSeconds;
      this.stream.write(`${line}\n`);
    }
  }

  end(): void {
    if (this.stream.isTTY) this.stream.write('\n');
  }
}
