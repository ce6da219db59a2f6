/**
 * Conformance of the device features the engine uses beyond compute dispatches: timestamp queries (the
 * kernel profiler) and f16 storage round trips. Implementations differ here most (docs/ENGINE.md, "Dawn
 * and wgpu"), so each case checks what the feature must give, not only that it runs.
 */
import { cast, exp } from '../../src/kernels/elementwise';
import { matmul } from '../../src/kernels/matmul';
import { assertClose, ConformanceFailure, seededValues, type CustomCase } from './harness';

const timestampQueries: CustomCase = {
  name: 'timestamp queries: the kernel profiler times every dispatch without changing results',
  run: async ({ gpu }) => {
    if (!gpu.caps?.timestampQuery) throw new ConformanceFailure('the adapter lists no timestamp-query (the profiler needs it)');
    const a = gpu.tensor(seededValues(48 * 40, 1), [48, 40]);
    const b = gpu.tensor(seededValues(40 * 24, 2), [40, 24]);
    const plainOut = exp(matmul(a, b));
    const plain = await plainOut.data();
    const before = gpu.counters!.dispatches;
    gpu.startProfile();
    const outs = [0, 1, 2].map(() => exp(matmul(a, b)));
    const profile = await gpu.stopProfile();
    try {
      const dispatched = gpu.counters!.dispatches - before;
      if (profile.dispatches !== dispatched) throw new ConformanceFailure(`profile counted ${profile.dispatches} dispatches, the context ${dispatched}`);
      const timed = profile.kernels.find((k) => k.key.startsWith('matmul'));
      if (timed?.dispatches !== 3) throw new ConformanceFailure(`matmul timed ${timed?.dispatches ?? 0} times, expected 3`);
      // Timestamps must advance: a zero or negative span means the queries were not written.
      if (!(timed.totalMs > 0) || !Number.isFinite(profile.totalMs)) throw new ConformanceFailure(`matmul time ${timed.totalMs} ms, total ${profile.totalMs} ms`);
      for (const out of outs) assertClose(await out.data(), plain, 0, 0, 'profiled result');
    } finally {
      for (const t of [a, b, plainOut, ...outs]) t.dispose();
    }
  },
};

const f16RoundTrip: CustomCase = {
  name: 'shader-f16: f32 → f16 → f32 rounds to nearest even, saturates to ±Inf past 65504, keeps subnormals',
  requires: 'f16',
  run: async ({ gpu }) => {
    const values = [0, 1, -2.5, 1 / 3, 65504, 65520, -70000, 6e-8, 2 ** -24, 1 + 2 ** -11, 1 + 3 * 2 ** -11];
    // IEEE binary16 of each: 65520 rounds up past the largest finite value, 2^-24 is the smallest subnormal,
    // 1 + 2^-11 is a tie that rounds to even (1), 1 + 3·2^-11 a tie that rounds up.
    const expected = [0, 1, -2.5, 0.333251953125, 65504, Infinity, -Infinity, 5.960464477539063e-8, 5.960464477539063e-8, 1, 1 + 2 ** -9];
    const x = gpu.tensor(values, [values.length]);
    const half = cast(x, 'f16');
    const back = cast(half, 'f32');
    try {
      const got = await back.data();
      expected.forEach((e, i) => {
        if (!Object.is(got[i], e) && got[i] !== e) throw new ConformanceFailure(`f16(${values[i]}) read back as ${got[i]}, expected ${e}`);
      });
    } finally {
      for (const t of [x, half, back]) t.dispose();
    }
  },
};

export const conformanceCases: CustomCase[] = [timestampQueries, f16RoundTrip];
