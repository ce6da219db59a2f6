/** The training stages the CLI knows; null marks a stage that is planned but not implemented yet. */
import { ecgStage } from './stage-ecg';
import type { StageFactory } from './stage';

export const STAGES: Record<string, StageFactory | null> = {
  ecg: ecgStage,
  vae: null,
  flow: null,
};
