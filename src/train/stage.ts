/**
 * The contract between the stage-independent trainer (trainer.ts) and one training stage (PA-MAE, VAE,
 * flow). The trainer owns the loop, the schedule of validation/checkpoints/plots, logging, the data
 * position and resuming; a stage owns its models, optimizers, generators and data, and knows how to run
 * one step and one validation pass.
 */
import type { Engine } from '../engine/engine';
import type { Tensor } from '../engine/tensor';
import type { HostTensor } from '../models/io/tensor';
import type { TrainFileSystem } from './files';
import type { RunOptions } from './options';

/** JSON-safe values (configs and metadata are stored as JSON in checkpoints). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** What every stage configuration carries; stages add their own fields. */
export interface BaseStageConfig {
  stage: string;
  preset: string;
  seed: number;
  batchSize: number;
  /** Total optimizer steps (the cosine schedule's T_max). */
  totalSteps: number;
  /** Validate every N steps (default: steps per epoch). */
  valEvery: number;
  /** Write the `last` checkpoint every N steps (default: valEvery). */
  checkpointEvery: number;
  plotEvery: number;
  logEvery: number;
  /** Dataset directory, or null for the on-the-fly phantom. */
  data: string | null;
}

/** Random-access batches: batch `index` of `epoch` depends only on (seed, epoch, index). */
export interface StageBatches<B> {
  readonly batchesPerEpoch: number;
  /** May be called ahead of use (prefetch); host-side preparation (targets, resampling) belongs here. */
  load(epoch: number, index: number): Promise<B>;
}

/** Scalars of one training step, still on the device; the trainer reads them back one step later. */
export interface StepOutput {
  /** Named scalar tensors (e.g. loss, recon, phase, gradNorm); the trainer disposes them. */
  scalars: Record<string, Tensor>;
  /** Learning rate used by this step (host value). */
  lr: number;
}

export interface ValidationResult {
  /** Host values, logged as they are. */
  metrics: Record<string, number>;
  /** The selection metric, lower is better (the `best` checkpoint keeps the lowest). */
  score: number;
  scoreName: string;
}

/** Host state of a stage that is not a tensor: optimizer scalars, generator states, anything JSON. */
export type StageMetadata = { [key: string]: Json };

export interface Stage<B = unknown> {
  readonly name: string;
  readonly config: BaseStageConfig;
  readonly train: StageBatches<B>;
  /**
   * Records one optimisation step on the device (forward, backward, clipping, optimizer update) for
   * step index `step` (0-based) and returns its scalars unread. It must not read back from the device
   * unless the algorithm needs it (e.g. a loss scaler's overflow flag), so the GPU stays busy.
   */
  trainStep(batch: B, step: number): StepOutput | Promise<StepOutput>;
  /** A full, deterministic validation pass (it may read back); leaves the models in training mode. */
  validate(): Promise<ValidationResult>;
  /** Every tensor needed to resume exactly: model weights and buffers, optimizer moments. */
  stateTensors(): Promise<Map<string, HostTensor>>;
  /** The model weights alone, under their reference state-dict names (for export and later stages). */
  weightTensors(): Promise<Map<string, HostTensor>>;
  /** Non-tensor state (optimizer step counts and hyper-parameters, generator counters). */
  metadata(): StageMetadata;
  /** Restores what stateTensors() and metadata() returned. */
  loadState(tensors: Map<string, HostTensor>, metadata: StageMetadata): void;
  /** Frees device memory. */
  dispose(): void;
}

/** What a stage factory gets to build itself. */
export interface StageContext {
  engine: Engine;
  fs: TrainFileSystem;
  /** Load upstream weights (stage flow: the VAE and PA-MAE runs) even with NaN/Inf values. */
  allowNonFiniteWeights?: boolean;
}

export interface StageFactory<C extends BaseStageConfig = BaseStageConfig> {
  readonly name: string;
  /** Preset + CLI overrides → the full configuration that is stored with the run (JSON-safe). */
  resolveConfig(options: RunOptions): C;
  /** Builds models, optimizers and data for a resolved (or restored) configuration. */
  create(config: C, context: StageContext): Promise<Stage>;
  /**
   * Optional work on a completed run directory after the stage is freed (stage vae: the latent dump);
   * returns the files it wrote (added to the summary's `files`).
   */
  afterTraining?(context: StageContext & { runDir: string }): Promise<Record<string, string>>;
}
