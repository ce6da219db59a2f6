/**
 * Progress on stderr: a redrawn bar on a terminal, plain lines every `logEvery` steps otherwise (CI logs,
 * pipes, test children). Takes a writer so a browser page can route it elsewhere.
 */
import { formatDuration } from '../data/build/progress';

export interface ProgressSink {
  write(text: string): void;
  /** True when the sink is an interactive terminal (the bar is redrawn in place with \r). */
  readonly isTTY: boolean;
  readonly columns?: number;
}

export interface ProgressUpdate {
  step: number;
  totalSteps: number;
  epoch: number;
  values: Record<string, number>;
  stepsPerSecond: number;
}

export { formatDuration };

const formatValue = (v: number) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toPrecision(4));

export class Progress {
  private drawn = false;
  constructor(private readonly sink: ProgressSink | null, private readonly logEvery: number) {}

  update(u: ProgressUpdate): void {
    if (!this.sink) return;
    const eta = u.stepsPerSecond > 0 ? (u.totalSteps - u.step) / u.stepsPerSecond : NaN;
    const values = Object.entries(u.values)
      .map(([k, v]) => `${k} ${formatValue(v)}`)
      .join('  ');
    const stats = `${u.stepsPerSecond.toFixed(2)} steps/s  ETA ${formatDuration(eta)}`;
    if (this.sink.isTTY) {
      const width = 24;
      const filled = Math.round((width * u.step) / u.totalSteps);
      const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
      let line = `${bar} ${u.step}/${u.totalSteps} ep ${u.epoch}  ${values}  ${stats}`;
      const columns = this.sink.columns ?? 120;
      if (line.length > columns - 1) line = line.slice(0, columns - 1);
      this.sink.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else if (u.step % this.logEvery === 0 || u.step === u.totalSteps || u.step === 1) {
      this.sink.write(`step ${u.step}/${u.totalSteps} epoch ${u.epoch}  ${values}  ${stats}\n`);
    }
  }

  /** A full line (validation results, checkpoint notes) that must not be overwritten by the bar. */
  note(text: string): void {
    if (!this.sink) return;
    if (this.drawn) this.sink.write('\r\x1b[2K');
    this.sink.write(text + '\n');
    this.drawn = false;
  }

  finish(): void {
    if (this.sink?.isTTY && this.drawn) this.sink.write('\n');
    this.drawn = false;
  }
}
