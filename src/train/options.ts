/**
 * Stage-independent run options: what the CLI (or a browser page) asks for before a stage turns them
 * into its own resolved configuration. Parsing lives here so every stage accepts the same flags.
 */
import { NON_FINITE_ACTIONS, type NonFiniteAction } from './nonfinite';

export const PRESETS = ['tiny', 'cpu', 'small', 'paper'] as const;
export type Preset = (typeof PRESETS)[number];

/** Values given on the command line; anything left undefined falls back to the preset. */
export interface RunOverrides {
  steps?: number;
  epochs?: number;
  batch?: number;
  lr?: number;
  seed?: number;
  valEvery?: number;
  checkpointEvery?: number;
  plotEvery?: number;
  logEvery?: number;
  /** Stage vae: first step of the adversarial terms. */
  discStart?: number;
}

export interface RunOptions {
  stage: string;
  preset: Preset;
  overrides: RunOverrides;
  /** Dataset directory (NPY layout of docs/DATA.md); undefined = phantom generated on the fly. */
  data?: string;
  /** Run directory; undefined = runs/<stage>-<timestamp>. */
  out?: string;
  /** Run directory to continue from its `last` checkpoint. */
  resume?: string;
  /** Stage flow: the trained VAE run (latents, template, weights) and PA-MAE run (encoder weights). */
  vaeRun?: string;
  ecgRun?: string;
  /** Stage vae: LPIPS weights (safetensors, lpips key layout); without them the perceptual term is off. */
  lpipsWeights?: string;
  /** Mixed precision: f16 autocast with dynamic loss scaling (needs shader-f16); stored in the run's config. */
  amp?: boolean;
  /** No progress bar (metrics are still logged). */
  quiet: boolean;
  /** Kernel-profile this many steps (profile.json / profile.txt in the run directory); 0 = off. */
  profileSteps?: number;
  /** NaN/Inf losses or gradients: stop after `limit` consecutive (default) or skip them (nonfinite.ts). */
  onNonFinite?: NonFiniteAction;
  nonFiniteLimit?: number;
  /** Stage flow: load upstream weights even with NaN/Inf values (refused by default). */
  allowNonFiniteWeights?: boolean;
}

export const USAGE = `usage: npm run train -- --stage ecg [options]

  --stage ecg|vae|flow   training stage: ecg (PA-MAE), vae (3-D VAE), flow (DiT; needs --vae-run, --ecg-run); optional with --resume
  --config tiny|cpu|small|paper
                         preset (default tiny: trains in well under a minute on lavapipe; cpu: a chain
                         sized for a CPU adapter, tens of minutes; small/paper: for a GPU)
  --steps N              total optimizer steps (overrides --epochs)
  --epochs N             epochs (total steps = epochs × batches per epoch)
  --batch N              batch size (samples per step)
  --lr X                 base learning rate (the cosine schedule decays it to the preset's minimum)
  --seed N               seed of model init, masks and data order
  --data DIR             dataset directory (npm run data -- synth); default: phantom generated on the fly
  --out DIR              run directory (default runs/<stage>-<timestamp>)
  --resume DIR           continue the run in DIR from its last checkpoint (same config, same losses)
  --vae-run DIR          stage flow: the VAE run (latents.safetensors, template.safetensors, weights)
  --ecg-run DIR          stage flow: the PA-MAE run whose best encoder is fine-tuned
  --lpips-weights FILE   stage vae: LPIPS (VGG16) weights, lpips key layout; default: no perceptual term
  --disc-start N         stage vae: first step with the discriminator (paper 10000, tiny 20)
  --amp                  mixed precision: f16 matmul/conv/attention with f32 accumulation, dynamic loss
                         scaling (needs a device with shader-f16; kept by --resume)
  --val-every N          validate every N steps (default: once per epoch, and at the end)
  --checkpoint-every N   write the 'last' checkpoint every N steps (default: at each validation)
  --plot-every N         redraw loss.svg every N steps (default 25)
  --log-every N          progress line every N steps when stderr is not a terminal (default 10)
  --quiet                no progress output
  --profile N            time every GPU kernel of N steps (after the first) → profile.txt, profile.json
  --on-nonfinite stop|skip
                         NaN/Inf loss or gradients: the step's update is skipped on the device either way;
                         stop (default) ends the run (exit code 3) after --nonfinite-limit such steps in a row,
                         skip goes on and counts them (metrics.jsonl: nonfinite.skippedSteps)
  --nonfinite-limit N    consecutive non-finite steps before 'stop' stops (default 3; 25 with --amp)
  --allow-nonfinite-weights
                         stage flow: load VAE/PA-MAE weights that hold NaN/Inf values (refused by default)
`;

const INTEGER_FLAGS: Record<string, keyof RunOverrides> = {
  '--steps': 'steps',
  '--epochs': 'epochs',
  '--batch': 'batch',
  '--seed': 'seed',
  '--val-every': 'valEvery',
  '--checkpoint-every': 'checkpointEvery',
  '--plot-every': 'plotEvery',
  '--log-every': 'logEvery',
  '--disc-start': 'discStart',
};

export class UsageError extends Error {}

/** `value` when it is one of `allowed`, else a UsageError naming the flag and the choices. */
export function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, got '${value}'`);
  return value as T;
}

/** Parses `--flag value` / `--flag=value` arguments; throws UsageError with a readable message. */
export function parseRunArgs(argv: readonly string[]): RunOptions {
  const options: RunOptions = { stage: '', preset: 'tiny', overrides: {}, quiet: false };
  const args: string[] = [];
  for (const a of argv) {
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    if (eq > 0) args.push(a.slice(0, eq), a.slice(eq + 1));
    else args.push(a);
  }
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const value = (): string => {
      const v = args[++i];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    if (flag === '--quiet') options.quiet = true;
    else if (flag === '--amp') options.amp = true;
    else if (flag === '--allow-nonfinite-weights') options.allowNonFiniteWeights = true;
    else if (flag === '--on-nonfinite') options.onNonFinite = oneOf(flag, value(), NON_FINITE_ACTIONS);
    else if (flag === '--nonfinite-limit') {
      const raw = value();
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`--nonfinite-limit must be an integer ≥ 1, got '${raw}'`);
      options.nonFiniteLimit = n;
    }
    else if (flag === '--stage') options.stage = value();
    else if (flag === '--config' || flag === '--preset') {
      const p = value();
      if (!(PRESETS as readonly string[]).includes(p)) throw new UsageError(`--config must be one of ${PRESETS.join(', ')}, got '${p}'`);
      options.preset = p as Preset;
    } else if (flag === '--data') options.data = value();
    else if (flag === '--out') options.out = value();
    else if (flag === '--resume') options.resume = value();
    else if (flag === '--lpips-weights') options.lpipsWeights = value();
    else if (flag === '--vae-run') options.vaeRun = value();
    else if (flag === '--ecg-run') options.ecgRun = value();
    else if (flag === '--profile') {
      const raw = value();
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 0) throw new UsageError(`--profile must be an integer ≥ 0, got '${raw}'`);
      options.profileSteps = n;
    } else if (flag === '--lr') {
      const raw = value();
      const lr = Number(raw);
      if (!(lr > 0 && Number.isFinite(lr))) throw new UsageError(`--lr must be a positive number, got '${raw}'`);
      options.overrides.lr = lr;
    } else if (flag in INTEGER_FLAGS) {
      const raw = value();
      const n = Number(raw);
      const key = INTEGER_FLAGS[flag];
      const min = key === 'seed' || key === 'discStart' ? 0 : 1;
      if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} must be an integer ≥ ${min}, got '${raw}'`);
      options.overrides[key] = n;
    } else throw new UsageError(`unknown argument '${flag}'`);
  }
  if (options.resume && options.lpipsWeights) throw new UsageError("--resume continues with the run's stored configuration; drop --lpips-weights");
  if (options.resume) {
    // A resumed run repeats the stored configuration exactly; changing it would break that promise.
    // Output-only settings (log and plot intervals) do not change the arithmetic: they may differ.
    const outputOnly = new Set(['logEvery', 'plotEvery']);
    const changed = [...Object.keys(options.overrides).filter((k) => !outputOnly.has(k)), ...(options.amp ? ['amp'] : []), ...(options.data ? ['data'] : []), ...(options.vaeRun ? ['vaeRun'] : []), ...(options.ecgRun ? ['ecgRun'] : [])];
    if (changed.length) throw new UsageError(`--resume continues with the run's stored configuration; drop ${changed.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}`);
  } else if (!options.stage) throw new UsageError('--stage is required');
  return options;
}

/** runs/<stage>-YYYYMMDD-HHMMSS (local time), the default run directory. */
export function defaultRunDir(stage: string, now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  return `runs/${stage}-${stamp}`;
}
