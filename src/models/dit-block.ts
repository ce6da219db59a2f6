/**
 * Building blocks of ECG_DiT (REFERENCE_SPEC §5.4): the sinusoidal timestep embedder and the factorised
 * spatio-temporal block with ECG cross-attention and adaLN-Zero modulation.
 */
import { fromArray } from '../engine/create';
import type { Tensor } from '../engine/tensor';
import { add, addScalar, cos, gelu, mul, silu, sin, zeros } from '../kernels/elementwise';
import { concat } from '../kernels/layout';
import { layerNorm } from '../kernels/norm';
import { permute, reshape, split, unsqueeze } from '../kernels/views';
import { Linear, MultiheadAttention, Sequential, type InitContext } from './layers';
import { Module } from './module';
import { normal, zerosInit } from './init';
import { mlpHiddenSize, type DitConfig } from './dit-config';

/** LayerNorm without affine parameters, eps 1e-6, over the last (feature) dim. */
export const plainLayerNorm = (x: Tensor): Tensor => layerNorm(x, [x.shape[x.rank - 1]], null, null, 1e-6);

/** [B, D] → [B, 1, 1, D]: broadcasts one vector per sample over a 4-D token grid of any layout. */
const perSample = (v: Tensor): Tensor => unsqueeze(unsqueeze(v, 1), 1);

/** adaLN modulation x·(1 + scale) + shift with per-sample [B, D] vectors over x [B, A, S, D]. */
export function modulate(x: Tensor, shift: Tensor, scale: Tensor): Tensor {
  return add(mul(x, addScalar(perSample(scale), 1)), perSample(shift));
}

/** Residual x + gate·y with a per-sample gate [B, D]. */
export const gatedResidual = (x: Tensor, gate: Tensor, y: Tensor): Tensor => add(x, mul(perSample(gate), y));

/**
 * Sinusoidal embedding of t [B] → [B, dim]: first half cos, second half sin, frequencies
 * exp(−ln(maxPeriod)·i/half). t is used as given (in [0, 1] for this model, not ×1000); an odd dim gets
 * a zero last column. Not differentiable with respect to the frequencies (constants).
 */
export function timestepEmbedding(t: Tensor, dim: number, maxPeriod = 10000): Tensor {
  const half = Math.floor(dim / 2);
  const freqValues = new Float32Array(half);
  for (let i = 0; i < half; i++) freqValues[i] = Math.exp((-Math.log(maxPeriod) * i) / half);
  const freqs = fromArray(t.backend, freqValues, [1, half]);
  const args = mul(unsqueeze(t, 1), freqs);
  const parts = [cos(args), sin(args)];
  if (dim % 2) parts.push(zeros(t.backend, [t.shape[0], 1]));
  const emb = concat(parts, 1);
  freqs.dispose();
  args.dispose();
  for (const p of parts) p.dispose();
  return emb;
}

/** t_embedder: sinusoidal features → mlp.{0: Linear(F→D), 1: SiLU, 2: Linear(D→D)}; weights N(0, 0.02). */
export class TimestepEmbedder extends Module {
  readonly mlp: Sequential;
  constructor(ctx: InitContext, readonly hiddenSize: number, readonly frequencyEmbeddingSize: number) {
    super(ctx.backend);
    const weightInit = normal(ctx.gen, 0, 0.02);
    this.mlp = this.registerModule(
      'mlp',
      new Sequential(ctx.backend, new Linear(ctx, frequencyEmbeddingSize, hiddenSize, { weightInit }), silu, new Linear(ctx, hiddenSize, hiddenSize, { weightInit })),
    );
  }
  forward(t: Tensor): Tensor {
    const features = timestepEmbedding(t, this.frequencyEmbeddingSize);
    const out = this.mlp.forward(features);
    features.dispose();
    return out;
  }
}

/**
 * Order of the 12 adaLN chunks of a block, as the released code unpacks `adaLN_modulation(c).chunk(12)`:
 * spatial, temporal, cross, MLP, each (shift, scale, gate). This is NOT the execution order (temporal,
 * cross, spatial, MLP); mixing the two up silently breaks loading of the original checkpoints.
 */
export const ADALN_CHUNK_ORDER = ['spatial', 'temporal', 'cross', 'mlp'] as const;
export type SubLayer = (typeof ADALN_CHUNK_ORDER)[number];

interface Modulation {
  shift: Tensor;
  scale: Tensor;
  gate: Tensor;
}

/**
 * One ECG_DiT block. State-dict children in the reference's registration order: attn_spatial,
 * attn_temporal, attn_cross, mlp.{0,2}, adaLN_modulation.1 (zero-initialised).
 * Input and output are token grids [B, T, L, D].
 */
export class DitBlock extends Module {
  readonly attnSpatial: MultiheadAttention;
  readonly attnTemporal: MultiheadAttention;
  readonly attnCross: MultiheadAttention;
  readonly mlp: Sequential;
  readonly adaLNModulation: Sequential;

  constructor(ctx: InitContext, readonly config: DitConfig) {
    super(ctx.backend);
    const d = config.hiddenSize;
    this.attnSpatial = this.registerModule('attn_spatial', new MultiheadAttention(ctx, d, config.numHeads));
    this.attnTemporal = this.registerModule('attn_temporal', new MultiheadAttention(ctx, d, config.numHeads));
    this.attnCross = this.registerModule('attn_cross', new MultiheadAttention(ctx, d, config.numHeads));
    const hidden = mlpHiddenSize(config);
    this.mlp = this.registerModule('mlp', new Sequential(ctx.backend, new Linear(ctx, d, hidden), gelu, new Linear(ctx, hidden, d)));
    this.adaLNModulation = this.registerModule(
      'adaLN_modulation',
      new Sequential(ctx.backend, silu, new Linear(ctx, d, 12 * d, { weightInit: zerosInit, biasInit: zerosInit })),
    );
  }

  /** The 12 [B, D] modulation vectors of c [B, D], grouped per sub-layer. */
  modulation(c: Tensor): Record<SubLayer, Modulation> {
    const chunks = split(this.adaLNModulation.forward(c), this.config.hiddenSize, 1);
    const out = {} as Record<SubLayer, Modulation>;
    ADALN_CHUNK_ORDER.forEach((name, i) => (out[name] = { shift: chunks[3 * i], scale: chunks[3 * i + 1], gate: chunks[3 * i + 2] }));
    return out;
  }

  /**
   * x [B, T, L, D], c [B, D], ecg [B, Te, D] (projected tokens) → [B, T, L, D].
   * Temporal self-attention over (B·L, T), ECG cross-attention, spatial self-attention over (B·T, L),
   * MLP; each pre-normed, modulated and gated.
   */
  forward(x: Tensor, c: Tensor, ecg: Tensor): Tensor {
    const [b, t, l, d] = x.shape;
    const m = this.modulation(c);

    // Temporal layout [B, L, T, D]: a permuted view; the first residual add materialises it.
    const xTemporal = permute(x, [0, 2, 1, 3]);
    let h = modulate(plainLayerNorm(xTemporal), m.temporal.shift, m.temporal.scale);
    let y = this.attnTemporal.forward(reshape(h, [b * l, t, d]));
    let xl = gatedResidual(xTemporal, m.temporal.gate, reshape(y, [b, l, t, d]));

    // The reference repeats the Te ECG tokens for each of the L locations and attends per (b, l) over
    // T queries. Every query row attends the same keys, so one call with all L·T queries of a sample
    // against its Te keys is the same computation without the L-fold copy of K/V.
    h = modulate(plainLayerNorm(xl), m.cross.shift, m.cross.scale);
    y = this.attnCross.forward(reshape(h, [b, l * t, d]), ecg);
    xl = gatedResidual(xl, m.cross.gate, reshape(y, [b, l, t, d]));

    // Spatial layout [B, T, L, D].
    const xSpatial = permute(xl, [0, 2, 1, 3]);
    h = modulate(plainLayerNorm(xSpatial), m.spatial.shift, m.spatial.scale);
    y = this.attnSpatial.forward(reshape(h, [b * t, l, d]));
    let xs = gatedResidual(xSpatial, m.spatial.gate, reshape(y, [b, t, l, d]));

    h = modulate(plainLayerNorm(xs), m.mlp.shift, m.mlp.scale);
    xs = gatedResidual(xs, m.mlp.gate, this.mlp.forward(h));
    return xs;
  }
}

/** torch.nn.ModuleList: children named '0', '1', …. */
export class ModuleList<M extends Module> extends Module {
  constructor(backend: Module['backend'], readonly items: readonly M[]) {
    super(backend);
    items.forEach((m, i) => this.registerModule(String(i), m));
  }
}
