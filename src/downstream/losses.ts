/**
 * Losses of the downstream models, composed from engine ops (autograd comes with them).
 *
 * - `ntXentLoss` (SimCLR, NT-Xent): z₁, z₂ [B, D] are two views of B clips; each of the 2B embeddings must
 *   pick its partner among the other 2B − 1 by cosine similarity / τ (cross-entropy; self-pairs masked).
 * - `softmaxCrossEntropy`: mean over rows of −log softmax(logits)[label].
 */
import type { Backend } from '../engine/backend';
import { fromArray } from '../engine/create';
import type { Tensor } from '../engine/tensor';
import { add, div, mul, mulScalar, neg, sqrt } from '../kernels/elementwise';
import { concat } from '../kernels/layout';
import { matmul } from '../kernels/matmul';
import { mean, sum } from '../kernels/reduce';
import { logSoftmax } from '../kernels/softmax';
import { transpose } from '../kernels/views';

/** One-hot rows [n, classes] as a constant tensor. */
export function oneHot(backend: Backend, labels: readonly number[], classes: number): Tensor {
  const values = new Float32Array(labels.length * classes);
  labels.forEach((c, i) => {
    if (!Number.isInteger(c) || c < 0 || c >= classes) throw new RangeError(`label ${c} outside 0..${classes - 1}`);
    values[i * classes + c] = 1;
  });
  return fromArray(backend, values, [labels.length, classes]);
}

export function softmaxCrossEntropy(logits: Tensor, labels: readonly number[]): Tensor {
  const target = oneHot(logits.backend, labels, logits.shape[1]);
  return neg(mean(sum(mul(logSoftmax(logits, 1), target), 1)));
}

function l2Normalize(z: Tensor): Tensor {
  return div(z, sqrt(add(sum(mul(z, z), 1, { keepdim: true }), 1e-12)));
}

export function ntXentLoss(z1: Tensor, z2: Tensor, temperature = 0.2): Tensor {
  const b = z1.shape[0];
  const z = l2Normalize(concat([z1, z2], 0));
  // Self-similarity is removed by a large negative bias on the diagonal (exp(−1e4) underflows to 0).
  const mask = new Float32Array(4 * b * b);
  for (let i = 0; i < 2 * b; i++) mask[i * 2 * b + i] = -1e4;
  const logits = add(mulScalar(matmul(z, transpose(z)), 1 / temperature), fromArray(z.backend, mask, [2 * b, 2 * b]));
  const partners = Array.from({ length: 2 * b }, (_, i) => (i < b ? i + b : i - b));
  return softmaxCrossEntropy(logits, partners);
}
