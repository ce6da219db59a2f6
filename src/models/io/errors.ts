/**
 * One error class for every weight-file problem, so callers (CLI, model loaders) can tell a bad
 * checkpoint apart from a programming error and show the message as-is.
 */
export class WeightsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WeightsError';
  }
}

/** Prefixes an error message with the file name when we know it. */
export function withName(name: string | undefined, message: string): string {
  return name ? `${name}: ${message}` : message;
}
