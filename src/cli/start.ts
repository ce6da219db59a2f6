/**
 * `npm start`: checks the WebGPU device, then runs a short end-to-end training job on it (a small
 * network fitted by AdamW-style updates), printing the loss. The full ECG → cine pipeline replaces
 * this demo once the model and training stages land.
 */
import { Engine } from '../engine/engine';
import * as ops from '../index';
import { backward, keep, noGrad, tidy } from '../index';

async function main(): Promise<void> {
  const engine = await Engine.webgpu();
  const caps = engine.caps!;
  console.log(`WebGPU device: ${caps.adapter.description || caps.adapter.device} (${caps.adapter.vendor}, ${caps.adapter.architecture})`);
  console.log(`  f16: ${caps.f16}  subgroups: ${caps.subgroups}  subgroup matrices: ${caps.subgroupMatrix}  timestamps: ${caps.timestampQuery}`);
  console.log(`  max storage binding: ${(caps.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB, workgroup memory: ${caps.limits.maxComputeWorkgroupStorageSize / 1024} KiB`);

  // Fit y = sin(3x)·cos(2x) with a 2-layer GELU network: forward, backward, update, all on the GPU.
  const gen = new ops.Generator(0);
  const b = engine.backend;
  const x = ops.mul(ops.rand(b, [256, 1], gen), 2);
  const target = tidy(() => ops.mul(ops.sin(ops.mul(x, 3)), ops.cos(ops.mul(x, 2))));
  const params = [
    keep(ops.randn(b, [64, 1], gen, 0, 1)),
    keep(ops.randn(b, [64], gen, 0, 0.1)),
    keep(ops.randn(b, [1, 64], gen, 0, 0.125)),
    keep(ops.randn(b, [1], gen, 0, 0.1)),
  ];
  params.forEach((p) => (p.requiresGrad = true));
  const lr = 0.05;
  const t0 = performance.now();
  for (let step = 0; step <= 300; step++) {
    const loss = tidy(() => {
      const h = ops.gelu(ops.linear(x, params[0], params[1]));
      const y = ops.linear(h, params[2], params[3]);
      const l = ops.mean(ops.square(ops.sub(y, target)));
      backward(l);
      noGrad(() => {
        for (const p of params) {
          ops.copyInto(b, ops.sub(p, ops.mul(p.grad!, lr)), p);
          p.grad!.dispose();
          p.grad = null;
        }
      });
      return l;
    });
    engine.flush();
    if (step % 50 === 0) console.log(`step ${String(step).padStart(3)}  loss ${(await loss.item()).toFixed(5)}`);
    loss.dispose();
  }
  const m = engine.memory();
  console.log(`${((performance.now() - t0) / 1000).toFixed(1)} s; GPU memory live ${(m.liveBytes / 1024).toFixed(0)} KiB, peak ${(m.peakBytes / 1024).toFixed(0)} KiB`);
  engine.destroy();
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
