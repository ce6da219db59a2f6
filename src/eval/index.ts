/** Public API of the evaluation layer (browser-safe: host arrays in, numbers and reports out). */
export * from './image-metrics';
export * from './segmentation';
export * from './anatomy';
export * from './frechet';
export * from './inputs';
export * from './report';
export { AlexLpips, ALEX_LPIPS_CONFIGS, alexLpipsFromTorchvision, type AlexLpipsConfig } from './lpips-alex';
export { createLpipsScorer, detectLpipsBackbone, lpipsKeys, type LpipsScorer, type LpipsBackbone } from './lpips-eval';
export { loadClipSource, loadSubjectMeta, type LoadedSource } from './sources';
export {
  createI3dExtractor, createInceptionExtractor, i3dInput, inceptionInput, readWeightFile, FID_INPUT_SIZE, FVD_INPUT_SIZE, FVD_MIN_FRAMES,
  type FeatureNetExtractor, type FeatureNetOptions,
} from './feature-nets';
