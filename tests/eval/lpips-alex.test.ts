import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine';
import { Generator } from '../../src/kernels/random';
import type { HostTensor } from '../../src/models/module';
import { ALEX_LPIPS_CONFIGS, AlexLpips, alexLpipsFromTorchvision } from '../../src/eval/lpips-alex';
import { createLpipsScorer, detectLpipsBackbone, lpipsKeys } from '../../src/eval/lpips-eval';

const cpu = Engine.cpu();
const ctx = { backend: cpu.backend, gen: new Generator(3) };

/** Random weights in the lpips layout for the tiny AlexNet config (heads positive, as trained ones are). */
function tinyWeights(): Map<string, HostTensor> {
  const m = new AlexLpips(ctx, ALEX_LPIPS_CONFIGS.tiny);
  const out = new Map<string, HostTensor>();
  let s = 5;
  for (const [k, t] of m.stateDict()) {
    if (k.startsWith('scaling_layer')) continue;
    const n = t.shape.reduce((a, b) => a * b, 1);
    out.set(k, { shape: t.shape, data: Float32Array.from({ length: n }, () => {
      s = (s * 1664525 + 1013904223) >>> 0;
      const u = s / 2 ** 32;
      return k.startsWith('lin') ? u : (u - 0.5) * 0.4;
    }) });
  }
  m.dispose();
  return out;
}

describe('AlexNet LPIPS', () => {
  it('lpips package key layout; AlexNet size', () => {
    const m = new AlexLpips(ctx);
    const keys = [...m.stateDict().keys()];
    expect(keys).toEqual([
      'scaling_layer.shift', 'scaling_layer.scale',
      'net.slice1.0.weight', 'net.slice1.0.bias', 'net.slice2.3.weight', 'net.slice2.3.bias', 'net.slice3.6.weight', 'net.slice3.6.bias',
      'net.slice4.8.weight', 'net.slice4.8.bias', 'net.slice5.10.weight', 'net.slice5.10.bias',
      'lin0.model.1.weight', 'lin1.model.1.weight', 'lin2.model.1.weight', 'lin3.model.1.weight', 'lin4.model.1.weight',
    ]);
    // torchvision alexnet().features: 2,469,696 parameters; heads 64+192+384+256+256.
    expect(m.numParameters()).toBe(2_469_696 + 1152);
    expect(m.numParameters(true)).toBe(0);
    m.dispose();
  });

  it('identical frames score 0, different ones > 0, symmetric; the scorer maps [0, 1] frames', async () => {
    const weights = tinyWeights();
    expect(detectLpipsBackbone(weights)).toBe('alex');
    const m = new AlexLpips(ctx, ALEX_LPIPS_CONFIGS.tiny);
    m.loadWeights(weights);
    const h = 40;
    const a = Float32Array.from({ length: 2 * h * h }, (_, i) => Math.sin(i * 0.1));
    const b = Float32Array.from({ length: 2 * h * h }, (_, i) => Math.cos(i * 0.07));
    const ta = cpu.tensor(a, [2, 1, h, h]);
    const tb = cpu.tensor(b, [2, 1, h, h]);
    const same = await m.forward(ta, ta).dataF64();
    const ab = await m.forward(ta, tb).dataF64();
    const ba = await m.forward(tb, ta).dataF64();
    expect([...same].every((v) => Math.abs(v) < 1e-12)).toBe(true);
    expect(ab[0]).toBeGreaterThan(0);
    ab.forEach((v, i) => expect(v).toBeCloseTo(ba[i], 12));
    m.dispose();
  });

  it('torchvision renaming and prefixed checkpoints are recognised', () => {
    const w = tinyWeights();
    const tv = new Map<string, HostTensor>();
    const heads = new Map<string, HostTensor>();
    for (const [k, t] of w) {
      const m = /^net\.slice\d\.(\d+)\.(weight|bias)$/.exec(k);
      if (m) tv.set(`features.${m[1]}.${m[2]}`, t);
      else heads.set(k, t);
    }
    tv.set('classifier.1.weight', { shape: [1], data: [0] });
    expect([...alexLpipsFromTorchvision(tv, heads).keys()].sort()).toEqual([...w.keys()].sort());
    const prefixed = new Map([...w].map(([k, t]) => [`loss.perceptual_loss.${k}`, t]));
    prefixed.set('encoder.conv_in.weight', { shape: [1], data: [0] });
    expect([...lpipsKeys(prefixed).keys()].sort()).toEqual([...w.keys()].sort());
  });

  it('scorer refuses unknown weights', () => {
    expect(() => createLpipsScorer(cpu, new Map([['foo', { shape: [1], data: [1] }]]))).toThrow(/neither VGG16/);
  });
});
