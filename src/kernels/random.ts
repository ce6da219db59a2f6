import type { Backend, CpuStorage, GpuStorage } from '../engine/backend';
import { empty } from '../engine/create';
import type { Shape } from '../engine/shape';
import type { Tensor } from '../engine/tensor';
import { UniformWriter } from '../engine/uniforms';
import { randomShader, type RandomKind } from '../../shaders/random.wgsl';
import { hash32, randomRef } from './reference/random';

const WORKGROUP = 256;

/** Serializable generator state (checkpoints store it to resume a run exactly). */
export interface GeneratorState {
  seed: number;
  counter: number;
}

/**
 * A seeded, counter-based generator: each draw consumes a range of counters, so the sequence of draws
 * is reproducible from the seed and independent of the device.
 */
export class Generator {
  private counter = 0;
  private keyA: number;
  private keyB: number;

  constructor(readonly seed: number) {
    this.keyA = hash32(seed >>> 0);
    this.keyB = hash32((this.keyA + 0x9e3779b9) >>> 0);
  }

  state(): GeneratorState {
    return { seed: this.seed, counter: this.counter };
  }

  static fromState(s: GeneratorState): Generator {
    const g = new Generator(s.seed);
    g.counter = s.counter;
    return g;
  }

  /** Reserves `n` counters and returns the first. */
  take(n: number): { counter: number; keyA: number; keyB: number } {
    const counter = this.counter;
    this.counter = (this.counter + n) >>> 0;
    return { counter, keyA: this.keyA, keyB: this.keyB };
  }
}

function draw(backend: Backend, shape: Shape, gen: Generator, kind: RandomKind, a: number, b: number): Tensor {
  const out = empty(backend, shape, 'f32');
  const total = out.size;
  const { counter, keyA, keyB } = gen.take(kind === 'normal' ? 2 * total : total);
  if (total === 0) return out;
  if (backend.kind === 'cpu') {
    (out.storage as CpuStorage).data.set(randomRef(kind, total, counter, keyA, keyB, a, b));
    return out;
  }
  const groups = Math.ceil(total / WORKGROUP);
  const maxX = backend.ctx.caps.limits.maxComputeWorkgroupsPerDimension;
  backend.ctx.dispatch(
    { key: `random:${kind}`, source: () => randomShader(kind, WORKGROUP), inputs: 0, outputs: 1 },
    {
      inputs: [],
      outputs: [(out.storage as GpuStorage).buffer],
      uniforms: new UniformWriter().u32(total, counter, keyA, keyB).f32(a, b).finish(),
      workgroups: [Math.min(groups, maxX), Math.ceil(groups / maxX)],
    },
  );
  return out;
}

/** Uniform samples in [low, high). */
export const rand = (backend: Backend, shape: Shape, gen: Generator, low = 0, high = 1) => draw(backend, shape, gen, 'uniform', low, high);
/** Normal samples N(mean, std²). */
export const randn = (backend: Backend, shape: Shape, gen: Generator, mean = 0, std = 1) => draw(backend, shape, gen, 'normal', mean, std);
/** 1 with probability p, else 0. */
export const bernoulli = (backend: Backend, shape: Shape, gen: Generator, p: number) => draw(backend, shape, gen, 'bernoulli', p, 0);
