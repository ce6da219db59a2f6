// The kernel conformance table under vitest on Node (Dawn); scripts/deno-conformance.ts runs the same table on wgpu.
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine';
import { runCase, type ConformanceContext } from './harness';
import { conformanceCases } from './kernel-table';

let gpu: Engine | null = null;
const context = async (): Promise<ConformanceContext> => ({ gpu: (gpu ??= await Engine.webgpu()), cpu: Engine.cpu() });
afterAll(() => gpu?.destroy());

describe('kernel conformance table: GPU vs float64 reference', () => {
  for (const c of conformanceCases) {
    it(c.name, async (test) => {
      const result = await runCase(await context(), c);
      if (result.status === 'skipped') test.skip(result.message);
      expect(result.message ?? '', c.name).toBe('');
      expect(result.status).toBe('passed');
    });
  }
});
