/**
 * Non-finite losses and gradients as a first-class training event (docs/TRAINING.md § Non-finite values).
 *
 * Detection costs no extra readback: every stage gates its optimizer step on a device-side Inf/NaN test of
 * the gradients (StageAmp), and the step's scalars (loss parts, gradient norm, the gate's `skipped` flag)
 * already come back to the host one step late for the log. The monitor looks at those values: a step is
 * non-finite when its update was skipped on the device or any logged scalar is NaN/±Inf.
 *
 * Policy (`--on-nonfinite`):
 * - `stop` (default): skipped steps change nothing; after `limit` consecutive non-finite steps (default 3;
 *   25 with --amp, where a few loss-scale back-offs in a row are normal) the run stops with
 *   NonFiniteTrainingError (the CLI exits with code 3), naming the step and the tensors.
 * - `skip`: such steps are skipped and counted (`nonfinite.skippedSteps` in metrics.jsonl), never fatal.
 * Under both, a checkpoint is never written from a state with NaN/Inf values (that stops the run), and a
 * non-finite validation score never becomes `best` (with `stop` it stops the run).
 */
import type { NonFiniteReport } from '../models/io/state-dict';

export const NON_FINITE_ACTIONS = ['stop', 'skip'] as const;
export type NonFiniteAction = (typeof NON_FINITE_ACTIONS)[number];

export interface NonFinitePolicy {
  action: NonFiniteAction;
  /** Consecutive non-finite steps before `stop` stops the run (default: 3, or 25 with AMP). */
  limit?: number;
}

export const DEFAULT_NON_FINITE_LIMIT = 3;
export const DEFAULT_NON_FINITE_LIMIT_AMP = 25;

/** Exit code of `npm run train` when the run stopped on non-finite values. */
export const NON_FINITE_EXIT_CODE = 3;

/** The run stopped because of NaN/Inf values; `step` is the optimizer step (1-based) where it was seen. */
export class NonFiniteTrainingError extends Error {
  constructor(
    readonly step: number,
    /** What was non-finite: scalar names (`loss`, `gradNorm`), `gradients`, a state tensor, a validation metric. */
    readonly tensors: string[],
    message: string,
  ) {
    super(message);
    this.name = 'NonFiniteTrainingError';
  }
}

export interface NonFiniteCounts {
  /** Non-finite steps in a row, up to the last observed step. */
  consecutive: number;
  /** Non-finite steps over the whole run. */
  total: number;
}

/** What one step's readback said. */
export interface StepEvent {
  step: number;
  /** Names of the non-finite logged scalars. */
  scalars: string[];
  /** The device gate skipped the optimizer update. */
  skipped: boolean;
}

const describeValues = (values: Record<string, number>, names: string[]) => names.map((n) => `${n} = ${values[n]}`).join(', ');

export class NonFiniteMonitor {
  readonly action: NonFiniteAction;
  readonly limit: number;
  private counts: NonFiniteCounts;

  constructor(policy: NonFinitePolicy | undefined, amp: boolean, counts: NonFiniteCounts = { consecutive: 0, total: 0 }) {
    this.action = policy?.action ?? 'stop';
    this.limit = policy?.limit ?? (amp ? DEFAULT_NON_FINITE_LIMIT_AMP : DEFAULT_NON_FINITE_LIMIT);
    if (!Number.isInteger(this.limit) || this.limit < 1) throw new RangeError(`non-finite step limit must be an integer >= 1, got ${this.limit}`);
    this.counts = { ...counts };
  }

  get state(): NonFiniteCounts {
    return { ...this.counts };
  }

  /**
   * Looks at one step's read-back scalars (`skippedFlag`: the gate's 0/1, absent when not logged). Returns
   * a warning line for a non-finite step (null for a clean one); throws NonFiniteTrainingError when the
   * policy says stop.
   */
  observe(step: number, values: Record<string, number>, skippedFlag: number | undefined): string | null {
    const scalars = Object.keys(values).filter((n) => !Number.isFinite(values[n]));
    const skipped = skippedFlag !== undefined && skippedFlag !== 0;
    if (!scalars.length && !skipped) {
      this.counts.consecutive = 0;
      return null;
    }
    this.counts.consecutive++;
    this.counts.total++;
    const what = [...scalars, ...(skipped ? ['gradients'] : [])];
    const detail = [
      scalars.length ? `non-finite ${describeValues(values, scalars)}` : '',
      skipped ? 'Inf/NaN gradients: the update was skipped on the device (weights, moments and step counts unchanged)' : 'the update was applied (its gradients were finite)',
    ].filter(Boolean).join('; ');
    if (this.action === 'stop' && this.counts.consecutive >= this.limit) {
      throw new NonFiniteTrainingError(
        step,
        what,
        `training stopped at step ${step}: ${this.counts.consecutive} consecutive non-finite step(s) (--on-nonfinite stop, limit ${this.limit}); ` +
          `step ${step}: ${detail}. The run diverged: lower --lr (or check the data), then start again or resume from the last good checkpoint`,
      );
    }
    return `step ${step}: ${detail} (${this.counts.consecutive} in a row, ${this.counts.total} in this run; --on-nonfinite ${this.action}${this.action === 'stop' ? `, limit ${this.limit}` : ''})`;
  }

  /** A non-finite validation score: never best; stops the run under `stop`. Returns the warning otherwise. */
  observeValidation(step: number, metrics: Record<string, number>, scoreName: string): string {
    const bad = Object.keys(metrics).filter((n) => !Number.isFinite(metrics[n]));
    const names = bad.length ? bad : [scoreName];
    const message = `validation at step ${step}: non-finite ${describeValues(metrics, names)}; not taken as best`;
    if (this.action === 'stop') {
      throw new NonFiniteTrainingError(step, names.map((n) => `val.${n}`), `training stopped: ${message} (--on-nonfinite stop). The model diverged: lower --lr and start again`);
    }
    return message;
  }
}

/** The stop error for a state that cannot be saved: it names the tensor. */
export function nonFiniteStateError(step: number, what: string, report: NonFiniteReport): NonFiniteTrainingError {
  return new NonFiniteTrainingError(
    step,
    [report.key],
    `training stopped at step ${step}: the ${what} holds non-finite values in tensor '${report.key}' (${report.count} of ${report.numel}, first at index ${report.firstIndex}: ${report.firstValue}); ` +
      'nothing was saved from this state, the checkpoints on disk are the last good ones. The run diverged: lower --lr and start again',
  );
}
