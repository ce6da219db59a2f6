import type { Tensor } from './tensor';

/**
 * Scopes free intermediates deterministically: every tensor created inside `tidy(fn)` is disposed when
 * fn returns, except the tensors it returns (found in arrays and plain objects), which move to the
 * enclosing scope.
 */
const scopes: Set<Tensor>[] = [];

export function trackTensor(t: Tensor): void {
  const top = scopes[scopes.length - 1];
  if (top) top.add(t);
}

/** Removes a tensor from every open scope: it now outlives them (parameters, gradients, saved state). */
export function untrackTensor(t: Tensor): void {
  for (const s of scopes) s.delete(t);
}

function collectTensors(value: unknown, out: Set<Tensor>, isTensor: (v: unknown) => v is Tensor): void {
  if (isTensor(value)) out.add(value);
  else if (Array.isArray(value)) for (const v of value) collectTensors(v, out, isTensor);
  else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, out, isTensor);
  }
}

let tensorCheck: ((v: unknown) => v is Tensor) | null = null;
export function setTensorCheck(check: (v: unknown) => v is Tensor): void {
  tensorCheck = check;
}

export function tidy<T>(fn: () => T): T {
  if (!tensorCheck) throw new Error('tensor module not loaded');
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  if (result instanceof Promise) {
    scopes.pop();
    throw new Error('tidy() takes a synchronous function; await outside it');
  }
  scopes.pop();
  const kept = new Set<Tensor>();
  collectTensors(result, kept, tensorCheck);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (kept.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/** Keeps a tensor alive past the enclosing tidy() scopes. */
export function keep<T extends Tensor>(t: T): T {
  untrackTensor(t);
  return t;
}
