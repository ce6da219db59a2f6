/** The reference's constructor arguments (kwargs, YAML) → our configs and models. */
export {
  referenceConfig, ecgEncoderFromReference, ecgDecoderFromReference, paMaeFromReference, ditFromReference, vaeFromReference,
  discriminatorFromReference, REFERENCE_FIXED, REFERENCE_CLASSES, ReferenceConfigError,
} from './config';
export type { Kwargs, ReferenceClassName, ReferenceConfigs, ReferenceConfigResult } from './config';
export { fromReferenceConfig } from './build';
export type { ReferenceModel, ReferenceModels } from './build';
export { parseYaml, type YamlValue } from './yaml';
export { vaeKwargsFromYaml } from './yaml-config';
export {
  ecgEncoderStateShapes, ecgDecoderStateShapes, ditStateShapes, discriminatorStateShapes, vaeStateShapes, checkStateShapes,
} from './shapes';
export type { ShapeList, ShapeCheckContext } from './shapes';
