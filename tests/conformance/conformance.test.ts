// Every conformance table under vitest on Node (Dawn); scripts/conformance.ts runs the same tables on Deno (wgpu).
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine';
import { runCase, type ConformanceCase, type ConformanceContext } from './harness';
import { conformanceCases as kernelCases } from './kernel-table';
import { conformanceCases as operandViewCases } from './operand-view-table';
import { conformanceCases as deviceCases } from './device-table';

let gpu: Engine | null = null;
const context = async (): Promise<ConformanceContext> => ({ gpu: (gpu ??= await Engine.webgpu()), cpu: Engine.cpu() });
afterAll(() => gpu?.destroy());

const tables: [string, ConformanceCase[]][] = [
  ['kernels: GPU vs float64 reference', kernelCases],
  ['each operand as an offset, strided and broadcast view', operandViewCases],
  ['device features', deviceCases],
];
for (const [title, cases] of tables) {
  describe(`conformance, ${title}`, () => {
    for (const c of cases) {
      it(c.name, async (test) => {
        const result = await runCase(await context(), c);
        if (result.status === 'skipped') test.skip(result.message);
        expect(result.message ?? '', c.name).toBe('');
        expect(result.status).toBe('passed');
      });
    }
  });
}
