/**
 * ECG_DiT (REFERENCE_SPEC §5.4): the AMDF velocity field v_θ(x_t, t, ECG tokens) over VAE latents
 * [B, C, T, H, W]. Tokens are latent voxels (patch 1×1×1) with a learned [1, T, L, D] positional table;
 * c = t_embedder(t) + ecg_global_proj(mean_t ecg_proj(tokens)) drives adaLN in every block; the
 * projected ECG tokens are the cross-attention keys/values. State-dict keys and shapes equal the
 * reference's, so its checkpoints load with strict matching.
 */
import { tidy } from '../engine/scope';
import { ShapeError } from '../engine/errors';
import { formatShape } from '../engine/shape';
import type { Tensor } from '../engine/tensor';
import { add, mulScalar, silu, sub, zerosLike } from '../kernels/elementwise';
import { concat } from '../kernels/layout';
import { mean } from '../kernels/reduce';
import { permute, reshape, slice, split } from '../kernels/views';
import { Linear, Sequential, type InitContext } from './layers';
import { Module, type LoadOptions, type LoadReport } from './module';
import type { StateDict } from './io';
import { normal, zerosInit } from './init';
import { DitBlock, ModuleList, TimestepEmbedder, modulate, plainLayerNorm } from './dit-block';
import { tokensPerFrame, type DitConfig } from './dit-config';

export { DIT_CONFIGS, ditParameterShapes, countDitParameters, mlpHiddenSize, tokensPerFrame, type DitConfig, type DitConfigName } from './dit-config';
export { ADALN_CHUNK_ORDER, DitBlock, TimestepEmbedder, timestepEmbedding, modulate, type SubLayer } from './dit-block';

export class EcgDiT extends Module {
  readonly posEmbed: Tensor;
  readonly xEmbedder: Linear;
  readonly tEmbedder: TimestepEmbedder;
  /** null when ecgDim equals hiddenSize (the reference uses nn.Identity, which has no parameters). */
  readonly ecgProj: Linear | null;
  readonly ecgGlobalProj: Sequential;
  readonly blocks: ModuleList<DitBlock>;
  readonly finalAdaLNModulation: Sequential;
  readonly finalLinear: Linear;

  constructor(ctx: InitContext, readonly config: DitConfig) {
    super(ctx.backend);
    const d = config.hiddenSize;
    if (d % config.numHeads) throw new ShapeError(`EcgDiT: hidden size ${d} is not divisible by ${config.numHeads} heads`);
    // Registration order = the reference's state-dict order (own parameter first, then children).
    this.posEmbed = this.parameter('pos_embed', [1, config.numFrames, tokensPerFrame(config), d], normal(ctx.gen, 0, 0.02));
    this.xEmbedder = this.registerModule('x_embedder', new Linear(ctx, config.latentChannels, d, { weightInit: normal(ctx.gen, 0, 0.02) }));
    this.tEmbedder = this.registerModule('t_embedder', new TimestepEmbedder(ctx, d, config.frequencyEmbeddingSize));
    this.ecgProj = config.ecgDim === d ? null : this.registerModule('ecg_proj', new Linear(ctx, config.ecgDim, d));
    this.ecgGlobalProj = this.registerModule('ecg_global_proj', new Sequential(ctx.backend, new Linear(ctx, d, d), silu, new Linear(ctx, d, d)));
    const blocks = Array.from({ length: config.depth }, () => new DitBlock(ctx, config));
    this.blocks = this.registerModule('blocks', new ModuleList(ctx.backend, blocks));
    this.finalAdaLNModulation = this.registerModule(
      'final_adaLN_modulation',
      new Sequential(ctx.backend, silu, new Linear(ctx, d, 2 * d, { weightInit: zerosInit, biasInit: zerosInit })),
    );
    // Deliberately not zero-initialised (unlike reference DiT): the released code keeps the default init.
    this.finalLinear = this.registerModule('final_linear', new Linear(ctx, d, config.latentChannels));
  }

  /**
   * Loads a state dict read from a reference checkpoint (f32, f16 or bf16 host tensors), strict by
   * default: every key of the original ECG_DiT must be present with its exact shape.
   */
  loadReferenceStateDict(stateDict: StateDict, options: LoadOptions = {}): LoadReport {
    const floats = new Map([...stateDict].map(([key, t]) => [key, { shape: t.shape, data: t.toFloat32() }]));
    return this.loadStateDict(floats, options);
  }

  private checkInputs(x: Tensor, t: Tensor, ecgTokens: Tensor): void {
    const c = this.config;
    const [h, w] = c.latentSize;
    const expected = [x.shape[0], c.latentChannels, c.numFrames, h, w];
    const shapes = `x ${formatShape(x.shape)}, t ${formatShape(t.shape)}, ecg tokens ${formatShape(ecgTokens.shape)}`;
    if (x.rank !== 5 || x.shape.some((s, i) => s !== expected[i])) throw new ShapeError(`EcgDiT: x must be ${formatShape(expected)}: ${shapes}`);
    if (t.rank !== 1 || t.shape[0] !== x.shape[0]) throw new ShapeError(`EcgDiT: t must be [${x.shape[0]}]: ${shapes}`);
    if (ecgTokens.rank !== 3 || ecgTokens.shape[0] !== x.shape[0] || ecgTokens.shape[2] !== c.ecgDim) {
      throw new ShapeError(`EcgDiT: ECG tokens must be [${x.shape[0]}, Te, ${c.ecgDim}]: ${shapes}`);
    }
  }

  /**
   * Velocity v_θ: x [B, C, T, H, W], t [B] in [0, 1], ECG tokens [B, Te, ecgDim] (zeros = null
   * condition) → [B, C, T, H, W]. Intermediates are freed here; the autograd graph keeps what it needs.
   */
  forward(x: Tensor, t: Tensor, ecgTokens: Tensor): Tensor {
    this.checkInputs(x, t, ecgTokens);
    return tidy(() => {
      const [b, ch, frames, h, w] = x.shape;
      const l = h * w;
      // 'b c t h w -> b t (h w) c', embed, add the positional table.
      const voxels = reshape(permute(x, [0, 2, 3, 4, 1]), [b, frames, l, ch]);
      let tokens = add(this.xEmbedder.forward(voxels), this.posEmbed);

      const ecg = this.ecgProj ? this.ecgProj.forward(ecgTokens) : ecgTokens;
      const c = add(this.tEmbedder.forward(t), this.ecgGlobalProj.forward(mean(ecg, 1)));

      for (const block of this.blocks.items) tokens = block.forward(tokens, c, ecg);

      const [shift, scale] = split(this.finalAdaLNModulation.forward(c), this.config.hiddenSize, 1);
      const out = this.finalLinear.forward(modulate(plainLayerNorm(tokens), shift, scale));
      // 'b t (h w) c -> b c t h w'
      return reshape(permute(out, [0, 3, 1, 2]), [b, ch, frames, h, w]);
    });
  }

  /**
   * Classifier-free guidance: v_u + scale·(v_c − v_u), v_u with zero ECG tokens (the training-time null
   * condition). Both passes run as one batch of 2B (unconditional first). scale 1 is the conditional
   * velocity alone and skips the unconditional pass.
   */
  forwardWithGuidance(x: Tensor, t: Tensor, ecgTokens: Tensor, scale: number): Tensor {
    if (scale === 1) return this.forward(x, t, ecgTokens);
    return tidy(() => {
      const b = x.shape[0];
      const v = this.forward(concat([x, x], 0), concat([t, t], 0), concat([zerosLike(ecgTokens), ecgTokens], 0));
      const vUncond = slice(v, 0, 0, b);
      const vCond = slice(v, 0, b, 2 * b);
      return add(vUncond, mulScalar(sub(vCond, vUncond), scale));
    });
  }
}
