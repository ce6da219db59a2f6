// The conformance harness must fail when the GPU differs from the reference: each check here plants a difference.
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine';
import { add, mulScalar } from '../../src/kernels/elementwise';
import { detach } from '../../src/kernels/views';
import type { Tensor } from '../../src/engine/tensor';
import { assertClose, runConformance, type ConformanceCase, type ConformanceContext } from './harness';

let gpu: Engine | null = null;
const context = async (): Promise<ConformanceContext> => ({ gpu: (gpu ??= await Engine.webgpu()), cpu: Engine.cpu() });
afterAll(() => gpu?.destroy());

const onGpu = (x: Tensor) => x.backend.kind === 'webgpu';

describe('conformance harness', () => {
  it('assertClose rejects NaN, a value outside rtol/atol and a length mismatch; accepts equal values', () => {
    expect(() => assertClose([NaN], [1], 1, 1, 'nan')).toThrow(/element 0 is NaN/);
    expect(() => assertClose([1.01], [1], 1e-3, 1e-3, 'off')).toThrow(/element 0 is 1.01/);
    expect(() => assertClose([1, 2], [1], 0, 0, 'short')).toThrow(/length 2, expected 1/);
    expect(() => assertClose([1, 2], [1, 2], 0, 0, 'same')).not.toThrow();
  });

  it('counts a planted forward difference, a missing GPU gradient and a thrown error as failures', async () => {
    const cases: ConformanceCase[] = [
      { name: 'same op', op: (x) => mulScalar(x, 2), inputs: [{ shape: [3, 4] }] },
      { name: 'forward off by 0.1 %', op: (x) => mulScalar(x, onGpu(x) ? 1.001 : 1), inputs: [{ shape: [3, 4] }] },
      { name: 'gradient of x cut on the GPU', op: (x, y) => add(onGpu(x) ? detach(x) : x, y), inputs: [{ shape: [5] }, { shape: [5] }] },
      {
        name: 'throws',
        run: async () => {
          throw new Error('planted');
        },
      },
    ];
    const report = await runConformance(cases, await context());
    expect([report.passed, report.failed]).toEqual([1, 3]);
    expect(report.results.map((r) => r.message ?? '')).toEqual([
      '',
      expect.stringMatching(/forward: element \d+/),
      expect.stringMatching(/gradient of input 0: absent on the GPU/),
      'Error: planted',
    ]);
  });

  it('a variant is switched off again after its case, also when the case fails', async () => {
    let on = false;
    const variant = () => {
      on = true;
      return () => {
        on = false;
      };
    };
    const report = await runConformance([{ name: 'fails under a variant', op: (x) => mulScalar(x, onGpu(x) ? 3 : 1), inputs: [{ shape: [2] }], variant }], await context());
    expect(report.failed).toBe(1);
    expect(on).toBe(false);
  });
});
