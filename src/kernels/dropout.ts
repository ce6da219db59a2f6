import { record } from '../engine/autograd';
import type { Tensor } from '../engine/tensor';
import { mapOp, zerosLike } from './elementwise';
import { bernoulli, type Generator } from './random';

/**
 * Inverted dropout: in training each element is kept with probability 1 − p and scaled by 1/(1 − p), so
 * the expectation is unchanged; in eval (training = false) it is the identity. The mask comes from the
 * counter-based `gen` (reproducible per seed, identical on the GPU and the float64 reference), and the
 * backward multiplies by the very same scaled mask. p = 0 is the identity (no draw), p = 1 gives zeros.
 * Composite of the existing random and elementwise kernels (mask draw, mask scaling, product).
 */
export function dropout(x: Tensor, p: number, gen: Generator, training = true): Tensor {
  x.assertAlive();
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout probability must be in [0, 1], got ${p}`);
  if (!training || p === 0) {
    const out = x.share();
    return record('dropout', [x], out, [], (g) => [g.share()]);
  }
  if (p === 1) {
    const out = zerosLike(x);
    return record('dropout', [x], out, [], (g) => [zerosLike(g)]);
  }
  const keep = bernoulli(x.backend, x.shape, gen, 1 - p);
  const scaledMask = mapOp('mul_scalar', [keep], [1 / (1 - p)]);
  keep.dispose();
  const y = mapOp('mul', [x, scaledMask]);
  const out = record('dropout', [x], y, [scaledMask], (g, [mask]) => [mapOp('mul', [g, mask])]);
  scaledMask.dispose();
  return out;
}
