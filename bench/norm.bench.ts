import type { Engine } from '../src/engine/engine';
import { grad } from '../src/engine/autograd';
import type { Tensor } from '../src/engine/tensor';
import { Generator, randn } from '../src/kernels/random';
import { batchNorm, groupNorm, layerNorm } from '../src/kernels/norm';
import { maxPool1d } from '../src/kernels/pool';
import { upsampleNearest } from '../src/kernels/resample';
import { row, timeGpu, type BenchRow } from './harness';

/**
 * Normalization, pooling and upsampling. GB/s counts the minimum traffic (each tensor read or written once:
 * forward reads x and writes y; backward reads x and g and writes dx), so it understates the bytes moved by
 * the multi-pass kernels.
 */
export async function run(engine: Engine, options: { quick: boolean }): Promise<BenchRow[]> {
  const gen = new Generator(0);
  const budget = options.quick ? 1500 : 4000;
  const rows: BenchRow[] = [];
  const q = options.quick;
  const be = engine.backend;

  /** Times forward alone and forward + backward (gradients wrt every trainable input). */
  const measure = async (name: string, shape: number[], op: (x: Tensor) => Tensor, params: Tensor[]) => {
    const x = randn(be, shape, gen);
    const probe = op(x);
    const outShape = [...probe.shape];
    probe.dispose();
    const fwdBytes = 4 * (x.size + probe.size);
    const fwd = await timeGpu(engine, () => op(x), { budgetMs: budget });
    rows.push(row({ suite: 'norm', name: `${name} fwd`, shape: `[${shape}]`, ms: fwd, gbps: fwdBytes / fwd / 1e6 }));
    x.requiresGrad = true;
    const g = randn(be, outShape, gen);
    const both = await timeGpu(
      engine,
      () => {
        const y = op(x);
        const grads = grad([y], [x, ...params], { gradOutputs: [g] });
        return [y, ...grads.filter((t): t is Tensor => t !== null)];
      },
      { budgetMs: budget },
    );
    rows.push(row({ suite: 'norm', name: `${name} fwd+bwd`, shape: `[${shape}]`, ms: both, gbps: (fwdBytes + 4 * (2 * x.size + probe.size)) / both / 1e6 }));
    x.dispose();
    g.dispose();
  };
  const param = (n: number, requiresGrad = true) => {
    const t = randn(be, [n], gen);
    t.requiresGrad = requiresGrad;
    return t;
  };

  // VAE GroupNorm: 32 groups, affine.
  const gnShape = q ? [1, 128, 4, 24, 24] : [1, 128, 8, 48, 48];
  const gw = param(128);
  const gb = param(128);
  await measure('groupNorm(32)', gnShape, (x) => groupNorm(x, 32, gw, gb, 1e-6), [gw, gb]);

  // ECG BatchNorm1d in training mode (running buffers updated in place every call).
  const bnShape = q ? [8, 64, 1250] : [32, 64, 1250];
  const bw = param(64);
  const bb = param(64);
  const rm = param(64, false);
  const rv = randn(be, [64], gen, 1, 0);
  await measure('batchNorm train', bnShape, (x) => batchNorm(x, rm, rv, bw, bb, { training: true }), [bw, bb]);

  // DiT LayerNorm without affine.
  const lnShape = q ? [4, 900, 512] : [4, 7200, 512];
  await measure('layerNorm', lnShape, (x) => layerNorm(x, [512], null, null, 1e-6), []);

  // ECG stem max pool and VAE nearest upsampling.
  const poolShape = q ? [8, 64, 2500] : [32, 64, 2500];
  await measure('maxPool1d k3 s2 p1', poolShape, (x) => maxPool1d(x, { kernel: 3, stride: 2, padding: 1 }), []);
  const upShape = q ? [1, 64, 4, 24, 24] : [1, 128, 8, 48, 48];
  await measure('upsampleNearest ×(1,2,2)', upShape, (x) => upsampleNearest(x, [1, 2, 2]), []);

  for (const t of [gw, gb, bw, bb, rm, rv]) t.dispose();
  return rows;
}
