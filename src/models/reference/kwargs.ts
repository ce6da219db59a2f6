/**
 * Reading the reference's constructor arguments (Python kwargs, or a YAML/JSON object holding them) with
 * Python's rules: unknown names are an error unless the reference swallows them (`**kwargs`), missing
 * arguments take the reference's default, and every value is type-checked with a message that names the
 * class and the argument.
 */

/** A constructor argument set that cannot describe an architecture we build. */
export class ReferenceConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReferenceConfigError';
  }
}

export type Kwargs = Record<string, unknown>;

export interface KwargSpec {
  /** Arguments the reference's signature names. */
  accepted: readonly string[];
  /** True when the reference takes `**kwargs`, so other names are ignored rather than refused. */
  swallowsOthers?: boolean;
}

export class KwargReader {
  /** Names given but without effect on the architecture (reported to the caller). */
  readonly ignored: string[] = [];

  constructor(private readonly where: string, private readonly kwargs: Kwargs, spec: KwargSpec) {
    if (kwargs === null || typeof kwargs !== 'object' || Array.isArray(kwargs)) throw new ReferenceConfigError(`${where}: arguments must be an object of name → value, got ${describe(kwargs)}`);
    for (const name of Object.keys(kwargs)) {
      if (spec.accepted.includes(name)) continue;
      if (spec.swallowsOthers) this.ignored.push(name);
      else throw new ReferenceConfigError(`${where}: unexpected argument '${name}' (the reference accepts ${spec.accepted.join(', ')})`);
    }
  }

  has(name: string): boolean {
    return this.kwargs[name] !== undefined && this.kwargs[name] !== null;
  }

  private value(name: string, fallback: unknown): unknown {
    const v = this.kwargs[name];
    if (v === undefined || v === null) {
      if (fallback === undefined) throw new ReferenceConfigError(`${this.where}: missing required argument '${name}'`);
      return fallback;
    }
    return v;
  }

  /** An integer ≥ `min` (Python ints; JSON/YAML numbers with no fraction). */
  int(name: string, fallback?: number, min = 1): number {
    const v = this.value(name, fallback);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new ReferenceConfigError(`${this.where}: '${name}' must be an integer >= ${min}, got ${describe(v)}`);
    return v;
  }

  number(name: string, fallback?: number): number {
    const v = this.value(name, fallback);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ReferenceConfigError(`${this.where}: '${name}' must be a finite number, got ${describe(v)}`);
    return v;
  }

  intList(name: string, fallback?: readonly number[], min = 1): number[] {
    const v = this.value(name, fallback);
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= min)) {
      throw new ReferenceConfigError(`${this.where}: '${name}' must be a non-empty list of integers >= ${min}, got ${describe(v)}`);
    }
    return [...v] as number[];
  }

  bool(name: string, fallback?: boolean): boolean {
    const v = this.value(name, fallback);
    if (typeof v !== 'boolean') throw new ReferenceConfigError(`${this.where}: '${name}' must be true or false, got ${describe(v)}`);
    return v;
  }

  string(name: string, fallback?: string): string {
    const v = this.value(name, fallback);
    if (typeof v !== 'string') throw new ReferenceConfigError(`${this.where}: '${name}' must be a string, got ${describe(v)}`);
    return v;
  }

  object(name: string, fallback?: Kwargs): Kwargs {
    const v = this.value(name, fallback);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ReferenceConfigError(`${this.where}: '${name}' must be an object (a dict), got ${describe(v)}`);
    return v as Kwargs;
  }

  /** Arguments only the value `supported` is implemented for (e.g. f_t = 0, use_actnorm = False). */
  only<T>(name: string, read: () => T, supported: T, why: string): void {
    const v = read();
    if (v !== supported) throw new ReferenceConfigError(`${this.where}: ${name} = ${JSON.stringify(v)} is not supported (${why}); only ${JSON.stringify(supported)} is`);
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return `'${v}'`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
