/**
 * The Euler sampler's time grid (CPU reference backend): `mid` evaluates at (k + 0.5)/N (infer_flow.py,
 * the default), `start` at k/N (ECG_DiT.sample). `start` reproduces a float64 re-statement of the reference
 * loop on a field that depends on both x and t, where the two grids give different endpoints.
 */
import { describe, expect, it } from 'vitest';
import { keep } from '../../src/engine/scope';
import type { Tensor } from '../../src/engine/tensor';
import { assign } from '../../src/engine/create';
import { add, mul, mulScalar } from '../../src/kernels/elementwise';
import { Generator, randn } from '../../src/kernels/random';
import { reshape } from '../../src/kernels/views';
import { DIT_CONFIGS, EcgDiT } from '../../src/models/dit';
import { evaluationTimes, integrateFlow, sampleLatents, SAMPLE_DEFAULTS, type TimeGrid } from '../../src/train/sampler';
import { cpu, randomValues } from '../helpers/oracle';

const values = async (t: Tensor) => Array.from(await t.data());

/** v(x, t) = a ⊙ x ⊙ t + b ⊙ t², per element; rows of x are batch entries. */
function referenceSample(x0: Float64Array, a: Float64Array, b: Float64Array, steps: number): { x: Float64Array; times: number[] } {
  // ECG_DiT.sample: dt = 1 / steps; for i in range(steps): t = i / steps (a float32 tensor); x = x + v(x, t) * dt.
  const x = Float64Array.from(x0);
  const dt = 1 / steps;
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = Math.fround(i / steps);
    times.push(t);
    const v = x.map((xi, j) => a[j] * xi * t + b[j] * t * t);
    for (let j = 0; j < x.length; j++) x[j] = x[j] + v[j] * dt;
  }
  return { x, times };
}

describe('sampler time grid', () => {
  it('offers start and mid; mid is the default; the times are exact', () => {
    expect(SAMPLE_DEFAULTS.timeGrid).toBe('mid');
    for (const n of [1, 3, 10, 7]) {
      expect(evaluationTimes('euler', n, 'start')).toEqual(Array.from({ length: n }, (_, k) => k / n));
      expect(evaluationTimes('euler', n, 'mid')).toEqual(Array.from({ length: n }, (_, k) => (k + 0.5) / n));
      expect(evaluationTimes('euler', n)).toEqual(evaluationTimes('euler', n, 'mid'));
      // Heun uses both ends of every step whatever the grid.
      expect(evaluationTimes('heun', n, 'start')).toEqual(evaluationTimes('heun', n, 'mid'));
    }
    expect(evaluationTimes('euler', 10, 'start')[3]).toBe(0.3);
    expect(() => evaluationTimes('euler', 4, 'end' as TimeGrid)).toThrow(/time grid must be one of start, mid/);
  });

  it('start reproduces the reference loop in float64; mid lands elsewhere', async () => {
    const rows = 2;
    const cols = 5;
    const n = rows * cols;
    const x0 = randomValues(n, 11, -2, 2);
    const a = randomValues(n, 12, -1.5, 1.5);
    const b = randomValues(n, 13, -3, 3);
    const steps = 10;
    const reference = referenceSample(x0, a, b, steps);
    const run = async (timeGrid: TimeGrid) => {
      const x = cpu.tensor(x0, [rows, cols]);
      const at = cpu.tensor(a, [rows, cols]);
      const bt = cpu.tensor(b, [rows, cols]);
      const seen: Tensor[] = [];
      const field = (xx: Tensor, t: Tensor) => {
        seen.push(keep(reshape(t, [rows])));
        const tc = reshape(t, [rows, 1]);
        return add(mul(mul(at, xx), tc), mul(bt, mul(tc, tc)));
      };
      const out = integrateFlow(x, field, { steps, method: 'euler', timeGrid });
      const result = { x: await values(out), times: await Promise.all(seen.map(values)) };
      for (const t of [x, at, bt, out, ...seen]) t.dispose();
      return result;
    };
    const start = await run('start');
    expect(start.times).toEqual(reference.times.map((t) => [t, t]));
    // The engine stores f32 tensors (rounded on the reference backend too): agreement to f32 precision.
    start.x.forEach((v, i) => expect(Math.abs(v - reference.x[i])).toBeLessThan(1e-5 * (1 + Math.abs(reference.x[i]))));
    const mid = await run('mid');
    expect(mid.times).toEqual(evaluationTimes('euler', steps, 'mid').map((t) => [Math.fround(t), Math.fround(t)]));
    const gap = Math.max(...mid.x.map((v, i) => Math.abs(v - reference.x[i])));
    expect(gap).toBeGreaterThan(1e-2);
  });

  it('sampleLatents (what FlowPipeline.generate and the CLI call) passes the grid to the integrator', async () => {
    const gen = new Generator(21);
    const dit = new EcgDiT({ backend: cpu.backend, gen }, DIT_CONFIGS.tiny);
    // Non-zero adaLN outputs, so the velocity depends on t (they start zero-initialised).
    let k = 0;
    for (const [name, p] of dit.namedParameters()) if (name.includes('adaLN_modulation')) assign(p, Array.from({ length: p.size }, () => 0.2 * Math.sin(1.3 * ++k)));
    const tokens = randn(cpu.backend, [1, 6, 24], gen);
    const template = cpu.tensor(new Array(4 * 12).fill(0.1), [1, 4, 1, 3, 4]);
    const options = { steps: 3, guidance: 1, alpha: 0.6, seed: 4 };
    const manual = async (timeGrid: TimeGrid) => {
      const start = add(template, mulScalar(randn(cpu.backend, [1, 4, 5, 3, 4], new Generator(4)), 0.6));
      return values(integrateFlow(start, (x, t) => dit.forward(x, t, tokens), { steps: 3, method: 'euler', timeGrid }));
    };
    const start = await values(sampleLatents(dit, tokens, template, { ...options, timeGrid: 'start' }));
    const mid = await values(sampleLatents(dit, tokens, template, options));
    expect(start).toEqual(await manual('start'));
    expect(mid).toEqual(await manual('mid'));
    expect(Math.max(...start.map((v, i) => Math.abs(v - mid[i])))).toBeGreaterThan(1e-4);
    dit.dispose();
  });
});
