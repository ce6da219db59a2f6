/** The training stages the CLI knows; null marks a stage that is planned but not implemented yet. */
import { ecgStage } from './stage-ecg';
import { vaeStage } from './stage-vae';
import { flowStage } from './stage-flow';
import type { StageFactory } from './stage';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each stage has its own config type
export const STAGES: Record<string, StageFactory<any> | null> = {
  ecg: ecgStage,
  vae: vaeStage,
  flow: flowStage,
};
