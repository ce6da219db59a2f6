import { copyInto, full } from '../kernels/elementwise';
import { rand, randn, type Generator } from '../kernels/random';
import { noGrad } from '../engine/autograd';
import type { Tensor } from '../engine/tensor';

/** Initializers matching torch.nn.init; each fills a tensor in place from a seeded generator. */
export type Init = (t: Tensor) => void;

function fill(t: Tensor, make: () => Tensor): void {
  noGrad(() => {
    const v = make();
    copyInto(t.backend, v, t);
    v.dispose();
  });
}

/** fan_in and fan_out as torch computes them: dim 1 and dim 0 times the receptive field. */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: (shape[1] ?? 1) * receptive, fanOut: shape[0] * receptive };
}

export const uniform = (gen: Generator, low: number, high: number): Init => (t) => fill(t, () => rand(t.backend, t.shape, gen, low, high));
export const normal = (gen: Generator, mean: number, std: number): Init => (t) => fill(t, () => randn(t.backend, t.shape, gen, mean, std));
export const constant = (value: number): Init => (t) => fill(t, () => full(t.backend, t.shape, value));
export const zerosInit: Init = constant(0);
export const onesInit: Init = constant(1);

/** PyTorch's default Linear/Conv weight init: kaiming_uniform(a=√5) = U(±1/√fan_in). */
export const defaultWeightInit = (gen: Generator): Init => (t) => {
  const b = 1 / Math.sqrt(fans(t.shape).fanIn);
  uniform(gen, -b, b)(t);
};

/** PyTorch's default Linear/Conv bias init: U(±1/√fan_in) of the layer's weight. */
export const defaultBiasInit = (gen: Generator, weightShape: readonly number[]): Init => {
  const b = 1 / Math.sqrt(fans(weightShape).fanIn);
  return uniform(gen, -b, b);
};

export const xavierUniform = (gen: Generator, gain = 1): Init => (t) => {
  const { fanIn, fanOut } = fans(t.shape);
  const b = gain * Math.sqrt(6 / (fanIn + fanOut));
  uniform(gen, -b, b)(t);
};
