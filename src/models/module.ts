import type { Backend } from '../engine/backend';
import { assign, empty } from '../engine/create';
import type { DType } from '../engine/dtype';
import { ShapeError } from '../engine/errors';
import { formatShape, shapesEqual, type Shape } from '../engine/shape';
import { keep } from '../engine/scope';
import type { Tensor } from '../engine/tensor';

/**
 * A tensor on the host, as weight files hold them. Readers that keep raw f16/bf16 bits or int64 data
 * provide `toFloat32()`, which loading uses for every dtype other than f32/f64.
 */
export interface LoadableTensor {
  shape: readonly number[];
  data: ArrayLike<number> | BigInt64Array;
  dtype?: string;
  toFloat32?: () => Float32Array;
}

/** The name model code used first; same type. */
export type HostTensor = LoadableTensor;

function hostValues(src: LoadableTensor, key: string): ArrayLike<number> {
  const plain = src.dtype === undefined || src.dtype === 'f32' || src.dtype === 'f64';
  if (!plain && src.toFloat32) return src.toFloat32();
  if (src.data instanceof BigInt64Array) return Float64Array.from(src.data, (v) => Number(v));
  if (!plain) throw new ShapeError(`loadStateDict: ${key} has dtype ${src.dtype} and no conversion to float32`);
  return src.data as ArrayLike<number>;
}

export interface LoadOptions {
  /** Every model key must be present and every file key used (default true). */
  strict?: boolean;
  /** File keys that may be left unused even in strict mode (e.g. the VAE's unused temb_proj). */
  ignoreUnexpected?: (key: string) => boolean;
}

export interface LoadReport {
  missing: string[];
  unexpected: string[];
  loaded: number;
}

/**
 * PyTorch-style module: parameters, buffers and children with dotted state-dict names in registration
 * order, train/eval mode, state dicts. Parameters and buffers are kept alive outside tidy() scopes and
 * freed by dispose().
 */
export class Module {
  training = true;
  private readonly params = new Map<string, Tensor | null>();
  private readonly buffers = new Map<string, { tensor: Tensor; persistent: boolean }>();
  private readonly children = new Map<string, Module>();

  constructor(readonly backend: Backend) {}

  protected registerParameter(name: string, t: Tensor | null): Tensor {
    if (t) {
      keep(t);
      t.requiresGrad = true;
      t.name = name;
    }
    this.params.set(name, t);
    return t as Tensor;
  }

  /** A float32 parameter of `shape`, initialized by `init`. */
  protected parameter(name: string, shape: Shape, init: (t: Tensor) => void, dtype: DType = 'f32'): Tensor {
    const t = empty(this.backend, shape, dtype);
    init(t);
    return this.registerParameter(name, t);
  }

  protected registerBuffer(name: string, t: Tensor, persistent = true): Tensor {
    keep(t);
    t.name = name;
    this.buffers.set(name, { tensor: t, persistent });
    return t;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  /** Parameters with dotted names, depth-first in registration order (PyTorch's order). */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this.params) if (t) out.push([prefix + n, t]);
    for (const [n, c] of this.children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(prefix = '', persistentOnly = false): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, b] of this.buffers) if (!persistentOnly || b.persistent) out.push([prefix + n, b.tensor]);
    for (const [n, c] of this.children) out.push(...c.namedBuffers(`${prefix}${n}.`, persistentOnly));
    return out;
  }

  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix.replace(/\.$/, ''), this]];
    for (const [n, c] of this.children) out.push(...c.namedModules(`${prefix}${n}.`));
    return out;
  }

  /** Parameters and persistent buffers, in PyTorch's state-dict order per module. */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    const visit = (m: Module, prefix: string) => {
      for (const [n, t] of m.params) if (t) out.set(prefix + n, t);
      for (const [n, b] of m.buffers) if (b.persistent) out.set(prefix + n, b.tensor);
      for (const [n, c] of m.children) visit(c, `${prefix}${n}.`);
    };
    visit(this, '');
    return out;
  }

  /** Copies values into parameters and buffers; shapes must match exactly. */
  loadStateDict(source: Map<string, LoadableTensor> | Record<string, LoadableTensor>, options: LoadOptions = {}): LoadReport {
    const strict = options.strict ?? true;
    const entries = source instanceof Map ? source : new Map(Object.entries(source));
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !entries.has(k));
    const unexpected = [...entries.keys()].filter((k) => !own.has(k) && !(options.ignoreUnexpected?.(k) ?? false));
    if (strict && (missing.length || unexpected.length)) {
      throw new ShapeError(
        `loadStateDict: ${missing.length} missing key(s)${missing.length ? ` (${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', …' : ''})` : ''}, ` +
          `${unexpected.length} unexpected key(s)${unexpected.length ? ` (${unexpected.slice(0, 8).join(', ')}${unexpected.length > 8 ? ', …' : ''})` : ''}`,
      );
    }
    let loaded = 0;
    for (const [key, t] of own) {
      const src = entries.get(key);
      if (!src) continue;
      const shape = src.shape.length === 0 && t.rank === 0 ? [] : src.shape;
      if (!shapesEqual(shape, t.shape)) throw new ShapeError(`loadStateDict: ${key} has shape ${formatShape(src.shape)} in the file, ${formatShape(t.shape)} in the model`);
      assign(t, hostValues(src, key));
      loaded++;
    }
    return { missing, unexpected, loaded };
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Number of parameter elements (all, or only those that require grad). */
  numParameters(trainableOnly = false): number {
    return this.namedParameters()
      .filter(([, t]) => !trainableOnly || t.requiresGrad)
      .reduce((a, [, t]) => a + t.size, 0);
  }

  /** Frees every parameter and buffer of this module and its children. */
  dispose(): void {
    for (const [, t] of this.namedParameters()) t.dispose();
    for (const [, t] of this.namedBuffers()) t.dispose();
  }
}
