/**
 * Errors and warnings of the data layer.
 *
 * Every problem with an input (truncated file, wrong shape, NaN, flat line, unsupported format) is
 * raised as a DataError that names the file (or source) and the problem, so a user can fix the input
 * instead of training on silently repaired data. Recoverable oddities (a missing lead filled with
 * zeros, a recording cropped to 10 s) are reported as plain strings in a `warnings` array.
 */
export class DataError extends Error {
  /** The file or logical source the problem was found in ('' when unknown). */
  readonly source: string;
  /** The problem itself, without the source prefix. */
  readonly problem: string;

  constructor(source: string, problem: string) {
    super(source ? `${source}: ${problem}` : problem);
    this.name = 'DataError';
    this.source = source;
    this.problem = problem;
  }
}

/** Throws a DataError unless every value is finite; reports how many and the first bad index. */
export function assertFinite(values: ArrayLike<number>, source: string, what: string): void {
  let bad = 0;
  let first = -1;
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      if (first < 0) first = i;
      bad++;
    }
  }
  if (bad > 0) {
    throw new DataError(source, `${what} holds ${bad} non-finite value(s) (NaN/Inf), first at index ${first}`);
  }
}
