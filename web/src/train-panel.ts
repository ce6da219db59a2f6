/**
 * The Train panel: the three stages on their tiny presets, one after the other, in an in-memory file
 * system, with the losses drawn as they are logged. The runs land where a chain's runs would
 * (`/trained/ecg`, `/trained/vae`, `/trained/flow`), so the Generate panel samples from them directly.
 */
import type { Engine } from '../../src/engine/engine';
import { runStage, type ObservedMemoryFileSystem, type StageName } from '../../src/platform/train';
import { drawLossCurves, type LossSeries } from './plots';

export interface TrainedChain {
  ecg: string;
  vae: string;
  flow: string;
}

export interface TrainPanelOptions {
  engine: Engine;
  fs: ObservedMemoryFileSystem;
  canvas: HTMLCanvasElement;
  steps: Record<StageName, number>;
  seed: number;
  onStatus: (text: string, fraction: number) => void;
  log: (line: string) => void;
}

const COLOURS: Record<StageName, string> = { ecg: '#c0392b', vae: '#2a5bd7', flow: '#1e8449' };

/** Trains PA-MAE, then the VAE (its latents and template are written by the stage's afterTraining hook), then the flow. */
export async function trainChain(o: TrainPanelOptions, root = '/trained'): Promise<TrainedChain> {
  const runs: TrainedChain = { ecg: `${root}/ecg`, vae: `${root}/vae`, flow: `${root}/flow` };
  const order: StageName[] = ['ecg', 'vae', 'flow'];
  const series: LossSeries[] = order.map((s) => ({ name: s === 'ecg' ? 'PA-MAE' : s === 'vae' ? 'VAE' : 'flow', colour: COLOURS[s], points: [], totalSteps: o.steps[s] }));
  const totalSteps = order.reduce((a, s) => a + o.steps[s], 0);
  let before = 0;
  let redraw = 0;
  drawLossCurves(o.canvas, series);
  for (const [k, stage] of order.entries()) {
    const line = series[k];
    o.fs.listener = (runDir, record) => {
      if (runDir !== runs[stage]) return;
      if (record.type === 'train') {
        line.points.push([record.step, record.values.loss]);
        o.onStatus(`${line.name}: step ${record.step}/${o.steps[stage]}, loss ${record.values.loss.toPrecision(4)}`, (before + record.step) / totalSteps);
        // Redrawing per step is cheap at these step counts, but keep it to one frame's worth.
        cancelAnimationFrame(redraw);
        redraw = requestAnimationFrame(() => drawLossCurves(o.canvas, series));
      } else {
        o.log(`${line.name} validation at step ${record.step}: ${Object.entries(record.values).map(([n, v]) => `${n} ${v.toPrecision(4)}`).join(', ')}${record.best ? ' (best)' : ''}`);
      }
    };
    o.onStatus(`${line.name}: preparing (phantom subjects, models)…`, before / totalSteps);
    const started = performance.now();
    const summary = await runStage(o.engine, o.fs, {
      stage, runDir: runs[stage], overrides: { steps: o.steps[stage], seed: o.seed, logEvery: 1 },
      vaeRun: stage === 'flow' ? runs.vae : undefined, ecgRun: stage === 'flow' ? runs.ecg : undefined,
    });
    o.log(`${line.name}: ${summary.steps} steps in ${((performance.now() - started) / 1000).toFixed(1)} s, loss ${summary.firstLoss?.toPrecision(4)} → ${summary.lastLoss?.toPrecision(4)}`);
    before += o.steps[stage];
  }
  o.fs.listener = null;
  drawLossCurves(o.canvas, series);
  o.onStatus('trained: sample from it in the Generate panel', 1);
  return runs;
}
