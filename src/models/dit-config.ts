/**
 * ECG_DiT hyper-parameters (REFERENCE_SPEC §5.4) and a shape-only description of its parameters, so
 * parameter counts and checkpoint layouts can be checked without allocating 73M weights.
 */

export interface DitConfig {
  /** Token width D. */
  hiddenSize: number;
  /** Number of DiT blocks. */
  depth: number;
  /** Attention heads (head dim = hiddenSize / numHeads). */
  numHeads: number;
  /** MLP hidden width = trunc(hiddenSize · mlpRatio), as int() in the reference. */
  mlpRatio: number;
  /** VAE latent channels (input and output of the velocity field). */
  latentChannels: number;
  /** Latent height and width; tokens per frame L = H·W (patch size 1×1×1). */
  latentSize: readonly [number, number];
  /** Frames T (the learned positional table is [1, T, L, D]). */
  numFrames: number;
  /** Width of the ECG tokens; ecg_proj is an identity (no parameters) when it equals hiddenSize. */
  ecgDim: number;
  /** Width of the sinusoidal timestep embedding fed to t_embedder.mlp.0. */
  frequencyEmbeddingSize: number;
}

export const DIT_CONFIGS = {
  /** The released model: 72,757,252 parameters. */
  paper: { hiddenSize: 512, depth: 8, numHeads: 8, mlpRatio: 4, latentChannels: 4, latentSize: [12, 12], numFrames: 50, ecgDim: 768, frequencyEmbeddingSize: 256 },
  /** Same topology at a quarter of the width and half the depth, for quick experiments. */
  small: { hiddenSize: 128, depth: 4, numHeads: 4, mlpRatio: 4, latentChannels: 4, latentSize: [12, 12], numFrames: 50, ecgDim: 768, frequencyEmbeddingSize: 256 },
  /**
   * Golden-test size. H ≠ W, T ≠ the ECG token count used in the test, ecgDim ≠ D: every layout
   * mix-up changes the output.
   */
  tiny: { hiddenSize: 32, depth: 2, numHeads: 2, mlpRatio: 4, latentChannels: 4, latentSize: [3, 4], numFrames: 5, ecgDim: 24, frequencyEmbeddingSize: 64 },
} as const satisfies Record<string, DitConfig>;

export type DitConfigName = keyof typeof DIT_CONFIGS;

export const mlpHiddenSize = (c: DitConfig) => Math.trunc(c.hiddenSize * c.mlpRatio);
export const tokensPerFrame = (c: DitConfig) => c.latentSize[0] * c.latentSize[1];

function linearShapes(prefix: string, inFeatures: number, outFeatures: number): [string, number[]][] {
  return [[`${prefix}.weight`, [outFeatures, inFeatures]], [`${prefix}.bias`, [outFeatures]]];
}

function attentionShapes(prefix: string, d: number): [string, number[]][] {
  return [[`${prefix}.in_proj_weight`, [3 * d, d]], [`${prefix}.in_proj_bias`, [3 * d]], ...linearShapes(`${prefix}.out_proj`, d, d)];
}

/**
 * Every parameter of EcgDiT with its shape, in the reference's state-dict order (the module's own
 * pos_embed first, then children in registration order). The model has no buffers.
 */
export function ditParameterShapes(c: DitConfig): [string, number[]][] {
  const d = c.hiddenSize;
  const out: [string, number[]][] = [['pos_embed', [1, c.numFrames, tokensPerFrame(c), d]]];
  out.push(...linearShapes('x_embedder', c.latentChannels, d));
  out.push(...linearShapes('t_embedder.mlp.0', c.frequencyEmbeddingSize, d), ...linearShapes('t_embedder.mlp.2', d, d));
  if (c.ecgDim !== d) out.push(...linearShapes('ecg_proj', c.ecgDim, d));
  out.push(...linearShapes('ecg_global_proj.0', d, d), ...linearShapes('ecg_global_proj.2', d, d));
  for (let i = 0; i < c.depth; i++) {
    const p = `blocks.${i}`;
    out.push(...attentionShapes(`${p}.attn_spatial`, d), ...attentionShapes(`${p}.attn_temporal`, d), ...attentionShapes(`${p}.attn_cross`, d));
    out.push(...linearShapes(`${p}.mlp.0`, d, mlpHiddenSize(c)), ...linearShapes(`${p}.mlp.2`, mlpHiddenSize(c), d));
    out.push(...linearShapes(`${p}.adaLN_modulation.1`, d, 12 * d));
  }
  out.push(...linearShapes('final_adaLN_modulation.1', d, 2 * d), ...linearShapes('final_linear', d, c.latentChannels));
  return out;
}

/** Parameter count from shapes alone (no allocation). */
export function countDitParameters(c: DitConfig): number {
  return ditParameterShapes(c).reduce((total, [, shape]) => total + shape.reduce((a, b) => a * b, 1), 0);
}
