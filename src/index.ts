/**
 * Public API: the WebGPU engine (tensors, autograd, kernels) with its float64 CPU reference backend.
 */
export { Engine } from './engine/engine';
export type { DeviceOptions } from './engine/device';
export type { DeviceCapabilities } from './engine/gpu-context';
export type { MemoryStats } from './engine/buffer-pool';
export { Tensor } from './engine/tensor';
export type { DType } from './engine/dtype';
export { tidy, keep } from './engine/scope';
export { backward, grad, noGrad, isGradEnabled } from './engine/autograd';
export { autocast, autocastDtype, isAutocastEnabled, supportsF16 } from './engine/autocast';
export * from './engine/errors';
export { empty, fromArray } from './engine/create';
export * from './kernels/elementwise';
export * from './kernels/reduce';
export * from './kernels/views';
export * from './kernels/matmul';
export {
  setSubgroupMatmul,
  subgroupMatmulMode,
  subgroupMatmulDispatches,
  planSubgroupMatmul,
  SUBGROUP_BLOCK_LARGE,
  SUBGROUP_BLOCK_SMALL,
  type SubgroupMatmulMode,
  type SubgroupBlock,
  type SubgroupMatmulPlan,
} from './kernels/matmul-subgroup';
export type { SubgroupMatrixConfig, SubgroupMatrixCaps } from './engine/device';
export * from './kernels/softmax';
export * from './kernels/layout';
export * from './kernels/random';
export * from './kernels/conv';
export * from './kernels/pool';
export * from './kernels/resample';
export * from './kernels/norm';
export * from './kernels/attention';
export * from './kernels/loss';
export * from './kernels/optimizer';
export * from './kernels/grad-scaler';
export * from './kernels/dropout';
export { assign } from './engine/create';
export { Module, type LoadableTensor, type LoadOptions, type LoadReport } from './models/module';
export * as layers from './models/layers';
export * as init from './models/init';
export * from './models/io';
export { InceptionV3, IMAGENET_MEAN, IMAGENET_STD, type InceptionV3Options } from './models/inception-v3';
export { I3d, samePadding, type I3dOptions, type I3dFeatureOptions } from './models/i3d';
export * as reference from './models/reference/index';
export { importPaMae, importVae, importFlow, type PaMaeImport, type VaeImport, type FlowImport, type ReferenceCall } from './models/import/infer';
