// The conformance harness must fail when the GPU differs from the reference: each check here plants a difference.
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine';
import { record } from '../../src/engine/autograd';
import { fromArray } from '../../src/engine/create';
import { add, copyInto, mulScalar } from '../../src/kernels/elementwise';
import { detach } from '../../src/kernels/views';
import type { Tensor } from '../../src/engine/tensor';
import { assertClose, runConformance, type ConformanceCase, type ConformanceContext } from './harness';
import { operandViewCase } from './operand-views';

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

  it('an operand-view case fails exactly in the layouts where the GPU differs: offset views, a strided upstream gradient, a write beside an in-place view', async () => {
    const scaleOnGpuIf = (x: Tensor, wrong: boolean) => mulScalar(x, onGpu(x) && wrong ? 1.001 : 1);
    const cases = [
      // Reads the view's first element wrong when it starts past element 0: every view layout has an offset.
      operandViewCase({ family: 'planted', name: 'offset ignored', operands: [{ shape: [3, 4], broadcast: [0] }], run: ([x]) => scaleOnGpuIf(x, x.offset > 0) }),
      // Identity whose backward doubles a non-contiguous upstream gradient on the GPU.
      operandViewCase({
        family: 'planted',
        name: 'strided upstream gradient misread',
        operands: [{ shape: [2, 5] }],
        run: ([x]) => record('planted_identity', [x], mulScalar(x, 1), [], (g) => [mulScalar(g, onGpu(g) && !g.isContiguous ? 2 : 1)]),
      }),
      // Doubles the view in place on both backends; the GPU also zeroes the element just before the view.
      operandViewCase({
        family: 'planted',
        name: 'in-place write beside the view',
        operands: [{ shape: [6], mutated: true }],
        forwardOnly: true,
        run: ([p]) => {
          const doubled = mulScalar(p, 2);
          copyInto(p.backend, doubled, p);
          doubled.dispose();
          if (onGpu(p) && p.offset > 0) {
            const zero = fromArray(p.backend, [0], [1]);
            copyInto(p.backend, zero, { storage: p.storage, shape: [1], strides: [1], offset: p.offset - 1, dtype: p.dtype });
            zero.dispose();
          }
        },
      }),
    ];
    const report = await runConformance(cases, await context());
    expect(report.failed).toBe(3);
    const [offset, upstream, inPlace] = report.results.map((r) => r.message ?? '');
    expect(offset).toMatch(/3 failing layout\(s\)/);
    expect(offset).toMatch(/\[operand 0 offset\] output 0/);
    expect(offset).toMatch(/\[operand 0 strided\]/);
    expect(offset).toMatch(/\[operand 0 broadcast\]/);
    expect(upstream).toMatch(/1 failing layout\(s\):\n\[all contiguous, strided upstream gradient\] gradient of operand 0 \(whole base buffer\)/);
    expect(inPlace).toMatch(/\[operand 0 offset\] operand 0 after the in-place update \(whole base buffer\): element 2 /);
  });
});
