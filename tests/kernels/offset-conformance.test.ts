/**
 * Every op of the conformance table (conformance-table.ts) on this WebGPU adapter against the float64
 * reference: once with contiguous operands, then with each operand in turn as an element-offset slice, a
 * stepped + permuted view, and a broadcast where the op allows one — outputs, gradients of every
 * differentiable leaf (whole base buffers) and in-place updates (whole base buffers); and once with the
 * upstream gradient handed to the backward rule as an offset slice and as a strided view with an offset.
 */
import { afterAll, describe, it } from 'vitest';
import { cpu, gpuEngine, releaseGpu } from '../helpers/oracle';
import { layoutsOf, runConformance, type Layout, type Upstream } from './conformance-harness';
import { CONFORMANCE_TABLE } from './conformance-table';

const gpu = await gpuEngine();
afterAll(releaseGpu);

const families = [...new Set(CONFORMANCE_TABLE.map((c) => c.family))];
for (const family of families) {
  describe(`operand views: ${family}`, () => {
    for (const c of CONFORMANCE_TABLE.filter((e) => e.family === family)) {
      it(c.name, async () => {
        const failures: string[] = [];
        const attempt = async (operand: number, layout: Layout, upstream: Upstream = 'contiguous') => {
          try {
            await runConformance(gpu, cpu, c, operand, layout, upstream);
          } catch (e) {
            failures.push(e instanceof Error ? e.message : String(e));
          }
        };
        await attempt(-1, 'contiguous');
        // The backward kernels get the upstream gradient as an offset slice, then an offset, stepped, permuted view.
        if (!c.forwardOnly) for (const upstream of ['offset', 'strided'] as const) await attempt(-1, 'contiguous', upstream);
        for (let i = 0; i < c.operands.length; i++) for (const layout of layoutsOf(c.operands[i])) await attempt(i, layout);
        if (failures.length) throw new Error(`${failures.length} failing layout(s):\n${failures.join('\n')}`);
      });
    }
  });
}
