/**
 * The PA-MAE ECG encoder (REFERENCE_SPEC §3.2): a 1-D ResNet-18-style backbone with a semantic
 * feature projection and a [sin, cos] phase head, plus the phase-aware cycle alignment (§2.5) that
 * turns the long feature map into one token per CMR frame.
 */
import type { Tensor } from '../engine/tensor';
import { tidy } from '../engine/scope';
import { fromArray } from '../engine/create';
import { add, relu } from '../kernels/elementwise';
import { maxPool1d } from '../kernels/pool';
import { interpolateLinear1d } from '../kernels/resample';
import { concat } from '../kernels/layout';
import { slice, transpose } from '../kernels/views';
import { resizeLinear1d, selectCycle, type CycleMode, type CycleWindow } from '../data/ecg-phase';
import { Module } from './module';
import { BatchNorm, Sequential, conv1d, type InitContext } from './layers';
import { needsDownsample, type EcgEncoderConfig } from './pamae-config';

/** conv k3 (stride s) → BN → ReLU → conv k3 → BN, plus the shortcut (identity or conv k1 stride s + BN), → ReLU. */
export class BasicBlock1d extends Module {
  readonly conv1;
  readonly bn1;
  readonly conv2;
  readonly bn2;
  readonly downsample: Sequential | null;
  constructor(ctx: InitContext, inChannels: number, outChannels: number, stride: number, bn: { eps: number; momentum: number }) {
    super(ctx.backend);
    this.conv1 = this.registerModule('conv1', conv1d(ctx, inChannels, outChannels, 3, { stride, padding: 1, bias: false }));
    this.bn1 = this.registerModule('bn1', new BatchNorm(ctx, outChannels, bn));
    this.conv2 = this.registerModule('conv2', conv1d(ctx, outChannels, outChannels, 3, { padding: 1, bias: false }));
    this.bn2 = this.registerModule('bn2', new BatchNorm(ctx, outChannels, bn));
    this.downsample = needsDownsample(inChannels, outChannels, stride)
      ? this.registerModule('downsample', new Sequential(ctx.backend, conv1d(ctx, inChannels, outChannels, 1, { stride, bias: false }), new BatchNorm(ctx, outChannels, bn)))
      : null;
  }
  forward(x: Tensor): Tensor {
    const h = this.bn2.forward(this.conv2.forward(relu(this.bn1.forward(this.conv1.forward(x)))));
    return relu(add(h, this.downsample ? this.downsample.forward(x) : x));
  }
}

export interface EcgEncoderRaw {
  /** Semantic feature map [B, featureDim, L/8]. */
  features: Tensor;
  /** Predicted [sin, cos] of the cardiac phase [B, 2, L/8] (no output activation). */
  phase: Tensor;
}

export interface EcgEncoderOutput {
  /** One token per CMR frame [B, tokenSteps, featureDim]; differentiable w.r.t. the features. */
  tokens: Tensor;
  /** atan2 of the resized phase [B, tokenSteps], in (-π, π]; no gradient (the reference never uses it). */
  angle: Tensor;
  /** The cycle window picked per sample on the feature grid. */
  windows: CycleWindow[];
}

export interface EcgEncodeOptions {
  /** 'faithful' (default): the reference's atan2 wrap at φ = π; 'fixed': R peak to R peak (spec §2.5). */
  cycle?: CycleMode;
}

export class EcgEncoder extends Module {
  readonly stem: Sequential;
  readonly layers: Sequential[] = [];
  readonly featureProj;
  readonly phaseHead: Sequential;

  constructor(ctx: InitContext, readonly config: EcgEncoderConfig) {
    super(ctx.backend);
    const c = config;
    const bn = { eps: c.bnEps, momentum: c.bnMomentum };
    this.stem = this.registerModule(
      'stem',
      new Sequential(
        ctx.backend,
        conv1d(ctx, c.inChannels, c.stemChannels, c.stemKernel, { stride: 2, padding: Math.floor(c.stemKernel / 2), bias: false }),
        new BatchNorm(ctx, c.stemChannels, bn),
        relu,
        (x: Tensor) => maxPool1d(x, { kernel: 3, stride: 2, padding: 1 }),
      ),
    );
    let cin = c.stemChannels;
    c.layerChannels.forEach((cout, li) => {
      const blocks: BasicBlock1d[] = [];
      for (let b = 0; b < c.blocksPerLayer; b++) {
        blocks.push(new BasicBlock1d(ctx, cin, cout, b === 0 ? c.layerStrides[li] : 1, bn));
        cin = cout;
      }
      this.layers.push(this.registerModule(`layer${li + 1}`, new Sequential(ctx.backend, ...blocks)));
    });
    this.featureProj = this.registerModule('feature_proj', conv1d(ctx, cin, c.featureDim, 1));
    this.phaseHead = this.registerModule('phase_head', new Sequential(ctx.backend, conv1d(ctx, cin, c.phaseHidden, 1), relu, conv1d(ctx, c.phaseHidden, 2, 1)));
  }

  /** Stage-1 mode: ecg [B, leads, L] → features [B, featureDim, L/8] and phase [B, 2, L/8]. */
  forwardRaw(ecg: Tensor): EcgEncoderRaw {
    return tidy(() => {
      let h = this.stem.forward(ecg);
      for (const layer of this.layers) h = layer.forward(h);
      return { features: this.featureProj.forward(h), phase: this.phaseHead.forward(h) };
    });
  }

  /**
   * Default mode: raw forward, cycle selection from the predicted phase (read back once per batch;
   * non-differentiable), then the differentiable ROI align of the features to `tokenSteps` tokens.
   * Async because of the read-back; call it outside tidy() (it frees its own temporaries).
   */
  async forward(ecg: Tensor, options: EcgEncodeOptions = {}): Promise<EcgEncoderOutput> {
    const { features, phase } = this.forwardRaw(ecg);
    try {
      const host = await phase.data();
      const windows = cycleWindowsFromHost(host, phase.shape, options.cycle ?? 'faithful');
      const tokens = alignTokens(features, windows, this.config.tokenSteps);
      const angle = fromArray(phase.backend, alignedAngleFromHost(host, phase.shape, windows, this.config.tokenSteps), [windows.length, this.config.tokenSteps]);
      return { tokens, angle, windows };
    } finally {
      features.dispose();
      phase.dispose();
    }
  }
}

/** Reads the phase [B, 2, T] back once and picks one cycle window per sample. */
export async function selectCycleWindows(phase: Tensor, mode: CycleMode = 'faithful'): Promise<CycleWindow[]> {
  return cycleWindowsFromHost(await phase.data(), phase.shape, mode);
}

/** One cycle window per sample of a host copy of the phase [B, 2, T] (row-major). */
export function cycleWindowsFromHost(host: ArrayLike<number>, shape: readonly number[], mode: CycleMode): CycleWindow[] {
  const [b, two, steps] = shape;
  if (shape.length !== 3 || two !== 2 || host.length !== b * 2 * steps) throw new Error(`cycle selection expects phase [B, 2, T], got [${shape}]`);
  const out: CycleWindow[] = [];
  for (let i = 0; i < b; i++) out.push(selectCycle(Array.prototype.slice.call(host, i * 2 * steps, (i + 1) * 2 * steps) as number[], steps, mode));
  return out;
}

/**
 * "ROI align": crops each sample's features [C, start:end) and resizes them to `steps` by linear
 * interpolation (align_corners = false), then stacks to tokens [B, steps, C]. Differentiable w.r.t.
 * the features; windows differ per sample, so each sample is cropped on its own.
 */
export function alignTokens(features: Tensor, windows: readonly CycleWindow[], steps: number): Tensor {
  if (features.rank !== 3 || windows.length !== features.shape[0]) {
    throw new Error(`alignTokens: features [B, C, T] with one window per sample, got [${features.shape}] and ${windows.length} windows`);
  }
  return tidy(() => {
    const perSample = windows.map((w, i) => interpolateLinear1d(slice(slice(features, 0, i, i + 1), 2, w.start, w.end), { size: steps }));
    return transpose(perSample.length === 1 ? perSample[0] : concat(perSample, 0), 1, 2);
  });
}

/** The reference's angle output: the phase resized like the features, then atan2(sin, cos); [B * steps] row-major. */
export function alignedAngleFromHost(host: ArrayLike<number>, shape: readonly number[], windows: readonly CycleWindow[], steps: number): Float32Array {
  const [b, , length] = shape;
  const angle = new Float32Array(b * steps);
  for (let i = 0; i < b; i++) {
    const sample = Array.prototype.slice.call(host, i * 2 * length, (i + 1) * 2 * length) as number[];
    const resized = resizeLinear1d(sample, 2, length, windows[i].start, windows[i].end, steps);
    for (let t = 0; t < steps; t++) angle[i * steps + t] = Math.atan2(resized[t], resized[steps + t]);
  }
  return angle;
}
