import { afterAll, describe, expect, it } from 'vitest';
import * as ops from '../../src/index';
import { Engine } from '../../src/index';
import { formatKernelProfile } from '../../src/engine/profiler';
import { gpuEngine, randomValues, releaseGpu } from '../helpers/oracle';

afterAll(releaseGpu);

describe('kernel profiler', () => {
  it('times every dispatch by kernel key without changing results', async () => {
    const e = await gpuEngine();
    const a = e.tensor(randomValues(48 * 40, 1), [48, 40]);
    const b = e.tensor(randomValues(40 * 24, 2), [40, 24]);
    const plain = await ops.exp(ops.matmul(a, b)).data();
    const before = e.counters!.dispatches;
    e.startProfile();
    const outs = [];
    for (let i = 0; i < 3; i++) outs.push(ops.exp(ops.matmul(a, b)));
    const profile = await e.stopProfile();
    const dispatched = e.counters!.dispatches - before;
    expect(profile.dispatches).toBe(dispatched);
    const matmul = profile.kernels.find((k) => k.key.startsWith('matmul'));
    const exp = profile.kernels.find((k) => k.key.startsWith('elementwise:exp'));
    expect(matmul?.dispatches).toBe(3);
    expect(exp?.dispatches).toBe(3);
    expect(matmul!.totalMs).toBeGreaterThan(0);
    expect(profile.totalMs).toBeCloseTo(profile.kernels.reduce((s, k) => s + k.totalMs, 0), 9);
    for (const k of profile.kernels.slice(1)) expect(k.totalMs).toBeLessThanOrEqual(profile.kernels[0].totalMs);
    for (const out of outs) expect(Array.from(await out.data())).toEqual(Array.from(plain));
    expect(formatKernelProfile(profile)).toContain(matmul!.key);
    // Profiling is off again: no more timed passes are recorded.
    await expect(e.stopProfile()).rejects.toThrow(/no profile is running/);
    for (const t of [a, b, ...outs]) t.dispose();
  });

  it('spans more dispatches than fit one query set (the context submits early)', async () => {
    const e = await gpuEngine();
    const x = e.tensor(randomValues(64, 3), [64]);
    e.startProfile();
    let y = x;
    for (let i = 0; i < 600; i++) {
      const next = ops.mulScalar(y, 1.0001);
      if (y !== x) y.dispose();
      y = next;
    }
    const profile = await e.stopProfile();
    expect(profile.kernels.find((k) => k.key.startsWith('elementwise:mul_scalar'))?.dispatches).toBe(600);
    x.dispose();
    y.dispose();
  });

  it('is refused on the CPU reference backend', () => {
    expect(() => Engine.cpu().startProfile()).toThrow(/WebGPU backend/);
  });
});
