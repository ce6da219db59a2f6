/**
 * Issue 11, item 1: the GPU matmul epilogue must read the bias through its own element offset and stride.
 * `linear(x, W, b.slice(d, 3d))` — the DiT cross-attention splits `in_proj_bias` exactly like this — used
 * to add b[0:2d] on the WebGPU backend (the shader read `bias[col]`). Every matmul kernel variant is run
 * with a bias that is an offset view and with a stepped (stride 2) bias view, against Engine.cpu().
 */
import { afterAll, afterEach, describe, it } from 'vitest';
import * as ops from '../../src/index';
import type { Engine, Tensor } from '../../src/index';
import { cpu, expectClose, gpuEngine, randomValues, releaseGpu } from '../helpers/oracle';
import { setSubgroupMatmul, setSubgroupMatmulEmulation } from '../../src/kernels/matmul-subgroup';

const gpu = await gpuEngine();
afterAll(releaseGpu);
afterEach(() => {
  ops.setMatmulTiling(null);
  setSubgroupMatmul('auto');
  setSubgroupMatmulEmulation(null);
});

const d = 8;
const tokens = 5;

/** linear(x, W[d:3d], b[d:3d]) and linear(x, W, b[1::2]) on one engine, with gradients of every leaf. */
async function run(e: Engine, dtype: 'f32' | 'f16', stepped: boolean): Promise<Float64Array[]> {
  const x = e.tensor(randomValues(tokens * d, 1), [tokens, d], dtype);
  const wAll = e.tensor(randomValues(3 * d * d, 2), [3 * d, d], dtype);
  // Distinct, non-zero bias values everywhere: a bias read from the wrong place cannot go unnoticed.
  const bAll = e.tensor(randomValues(6 * d, 3, 0.5, 4), [6 * d], dtype === 'f16' ? 'f16' : 'f32');
  const leaves = dtype === 'f32' ? [x, wAll, bAll] : [];
  for (const l of leaves) l.requiresGrad = true;
  const w = ops.slice(wAll, 0, d, 3 * d);
  const b = stepped ? ops.slice(bAll, 0, 1, 4 * d + 1, 2) : ops.slice(bAll, 0, d, 3 * d);
  const y = ops.linear(x, w, b);
  const out = [await y.dataF64()];
  if (leaves.length) {
    const up = e.tensor(randomValues(y.size, 4), y.shape);
    ops.backward(ops.sum(ops.mul(y, up)));
    for (const l of leaves) out.push(await l.grad!.dataF64());
    up.dispose();
  }
  for (const t of [x, wAll, bAll, w, b, y] as Tensor[]) t.dispose();
  return out;
}

async function check(dtype: 'f32' | 'f16' = 'f32'): Promise<void> {
  for (const stepped of [false, true]) {
    const [g, r] = [await run(gpu, dtype, stepped), await run(cpu, dtype, stepped)];
    const tol = dtype === 'f16' ? 2e-2 : 1e-5;
    g.forEach((v, i) => expectClose(v, r[i], tol, tol, `${stepped ? 'stepped' : 'offset'} bias, ${i === 0 ? 'forward' : `gradient ${i - 1}`}`));
  }
}

describe('matmul bias operand: element offset and stride reach every kernel', () => {
  it('direct (register-blocked) kernel, the lavapipe default', () => check());
  it('shared-memory tiled kernel', async () => {
    ops.setMatmulTiling({ bm: 16, bn: 16, bk: 8, tm: 2, tn: 2 });
    await check();
  });
  it('subgroup-matrix kernel with emulated builtins (f16 operands and bias)', async () => {
    setSubgroupMatmulEmulation({ config: { componentType: 'f16', resultComponentType: 'f32', M: 8, N: 8, K: 8 }, subgroupSize: 32 });
    setSubgroupMatmul('force');
    await check('f16');
  });
});
