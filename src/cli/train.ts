/**
 * `npm run train -- --stage ecg [options]`: trains one stage on the WebGPU device (lavapipe without a GPU),
 * writing the run directory described in docs/TRAINING.md, and prints where everything went.
 */
import { Engine } from '../engine/engine';
import { NodeTrainFileSystem } from '../train/node-files';
import { defaultRunDir, parseRunArgs, UsageError, USAGE } from '../train/options';
import { STAGES } from '../train/stages';
import { train } from '../train/trainer';
import { resumeCheckpoint } from '../train/checkpoint';
import { NON_FINITE_EXIT_CODE, NonFiniteTrainingError } from '../train/nonfinite';
import { AMP_NEEDS_F16 } from '../train/stage-common';
import { runCliMain } from './cli-main';

async function main(argv: string[]): Promise<number> {
  const options = parseRunArgs(argv);
  const fs = new NodeTrainFileSystem();
  if (options.resume) {
    // Only to learn the stage: the trainer checks the checkpoint again and reports any fallback to 'best'.
    const stored = (await resumeCheckpoint(fs, options.resume, () => undefined)).checkpoint.meta.stage;
    if (options.stage && options.stage !== stored) throw new UsageError(`${options.resume} holds a '${stored}' run, not '${options.stage}'`);
    options.stage = stored;
  }
  if (!(options.stage in STAGES)) throw new UsageError(`unknown stage '${options.stage}' (known: ${Object.keys(STAGES).join(', ')})`);
  const factory = STAGES[options.stage];
  if (!factory) {
    process.stderr.write(`error: training stage '${options.stage}' is not implemented yet (available: ${Object.entries(STAGES).filter(([, f]) => f).map(([n]) => n).join(', ')})\n`);
    return 2;
  }
  if (options.resume && options.out && options.out !== options.resume) throw new UsageError('--resume continues in its own run directory; drop --out');
  const runDir = options.resume ?? options.out ?? defaultRunDir(options.stage);
  if (!options.resume && (await fs.exists(`${runDir}/checkpoints/last.safetensors`))) {
    throw new UsageError(`${runDir} already holds a run; use --resume ${runDir} to continue it or choose another --out`);
  }
  const config = options.resume ? null : factory.resolveConfig(options);
  const amp = options.resume ? Boolean((await resumeCheckpoint(fs, runDir, () => undefined)).checkpoint.meta.config.amp) : Boolean(options.amp);
  const engine = await Engine.webgpu();
  try {
    if (amp && !engine.caps?.f16) throw new UsageError(AMP_NEEDS_F16);
    const adapter = engine.caps?.adapter;
    process.stderr.write(`${options.resume ? 'resuming' : 'training'} stage '${options.stage}' (${config ? `config ${config.preset}, ${config.totalSteps} steps, batch ${config.batchSize}` : `from ${runDir}`}${amp ? ', mixed precision' : ''}) on ${adapter?.description || adapter?.device || 'WebGPU'}\n`);
    let summary;
    try {
      summary = await train(factory, config, {
        engine,
        fs,
        runDir,
        resume: Boolean(options.resume),
        profileSteps: options.profileSteps ?? 0,
        display: { logEvery: options.overrides.logEvery, plotEvery: options.overrides.plotEvery },
        progress: options.quiet ? null : { write: (t) => process.stderr.write(t), isTTY: Boolean(process.stderr.isTTY), columns: process.stderr.columns },
        nonFinite: { action: options.onNonFinite ?? 'stop', limit: options.nonFiniteLimit },
        allowNonFiniteWeights: options.allowNonFiniteWeights,
      });
    } catch (e) {
      // A diverged run is an expected outcome with its own exit code (docs/TRAINING.md § Non-finite values).
      if (!(e instanceof NonFiniteTrainingError)) throw e;
      process.stderr.write(`error: ${e.message}\n`);
      return NON_FINITE_EXIT_CODE;
    }
    const loss = (v: number | null) => (v === null ? '-' : v.toPrecision(4));
    console.log(`done: ${summary.steps}/${summary.totalSteps} steps in ${summary.seconds.toFixed(1)} s (${summary.stepsPerSecond.toFixed(2)} steps/s)`);
    console.log(`loss ${loss(summary.firstLoss)} → ${loss(summary.lastLoss)}; best validation ${summary.best.name ?? ''} ${loss(summary.best.score)} at step ${summary.best.step ?? '-'}`);
    if (summary.nonFinite.total) console.log(`non-finite steps: ${summary.nonFinite.total} (updates skipped; see nonfinite in ${summary.files.metrics})`);
    console.log('written:');
    for (const [what, path] of Object.entries(summary.files)) console.log(`  ${what.padEnd(15)} ${path}`);
    return 0;
  } finally {
    engine.destroy();
  }
}

runCliMain(USAGE, main);
