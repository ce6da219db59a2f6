/** Training: the stage-independent trainer, its file/metrics/plot helpers, and the stages. */
export * from './stage';
export * from './options';
export * from './files';
export * from './metrics';
export * from './plot';
export * from './progress';
export * from './checkpoint';
export * from './integrity';
export * from './nonfinite';
export * from './trainer';
export * from './ecg-data';
export { ecgStage, type EcgStageConfig } from './stage-ecg';
export { STAGES } from './stages';
