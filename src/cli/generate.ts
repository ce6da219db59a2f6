/**
 * `npm run generate -- --checkpoint FLOW_RUN --out DIR (--ecg FILE... | --phantom-index I...) [options]`:
 * ECG → cine with a trained chain (docs/TRAINING.md, "Generation"). Per input it writes `<name>.gif`,
 * `<name>.nii.gz`, `<name>.npy` (T, H, W) in [0, 1] (the layout `npm run evaluate -- --pred DIR` reads) and,
 * with a ground truth, `<name>-vs-gt.gif` (generated left, ground truth right); then prints a summary.
 */
import { readCmrFile, readEcgFile } from '../data/readers/index';
import { ECG_CHECK_MODES, prepareEcg, type EcgCheckMode } from '../data/preprocess/ecg';
import { normalizeClip, prepareCine } from '../data/preprocess/cmr';
import { generateSubject, phantomId } from '../data/phantom/subject';
import { baseName, joinPath } from '../data/fs';
import { writeNpy } from '../data/npy';
import { sideBySideGif, writeNifti } from '../data/writers/index';
import { Engine } from '../engine/engine';
import { resizeCine } from '../train/cine-data';
import { runCliMain } from './cli-main';
import { NodeTrainFileSystem } from '../train/node-files';
import { oneOf, UsageError } from '../train/options';
import { FlowPipeline } from '../train/pipeline';
import { SAMPLE_DEFAULTS, SAMPLER_METHODS, TIME_GRIDS, type SamplerMethod, type TimeGrid } from '../train/sampler';

const USAGE = `usage: npm run generate -- --checkpoint FLOW_RUN_DIR --out DIR (--ecg FILE... | --phantom-index I...) [options]

  --checkpoint DIR       a flow run directory (npm run train -- --stage flow); its config points to the VAE run
  --out DIR              output directory (created)
  --ecg FILE...          ECG recordings: WFDB .hea, .csv/.tsv/.txt, .npy (resampled to 12 x 5000 at 500 Hz)
  --phantom-index I...   phantom subjects instead of files (ECG generated, ground truth available)
  --phantom-seed S       seed of the phantom subjects (default 42)
  --gt FILE...           ground-truth cines for the --ecg inputs, in the same order (.nii/.nii.gz, .npy, DICOM)
  --fs HZ                sampling frequency of --ecg files that carry none (required for .npy; CSV without a
                         time column); WFDB headers keep their own
  --ecg-checks MODE      strict | normal | lenient: how doubtful ECG input is handled (docs/DATA.md,
                         "Plausibility checks"; default normal)
  --phantom-index A-B    a range of phantom subjects (inclusive), e.g. 100000-100031
  --phantom-gt           also write <name>-vs-gt.gif for phantom inputs (their rendered cine)
  --unconditional        ignore the ECG (zero tokens, the null condition): a baseline for evaluation
  --reconstruct          no sampling: the VAE's round trip (encode, mode, decode) of each ground truth, the
                         ceiling a perfect flow could reach (needs --gt or --phantom-gt)
  --steps N              integration steps (default ${SAMPLE_DEFAULTS.steps})
  --sampler euler|heun   euler: the reference (mid-interval time); heun: 2nd order, 2 evaluations per step
  --time-grid mid|start  euler's evaluation time in step k of N: mid = (k + 0.5)/N (default, infer_flow.py),
                         start = k/N (the reference's ECG_DiT.sample)
  --guidance S           classifier-free guidance scale (default ${SAMPLE_DEFAULTS.guidance}; none when <= 1)
  --alpha A              source noise scale (default ${SAMPLE_DEFAULTS.alpha} as the reference's inference; training used 0.8)
  --seed S               noise seed (default ${SAMPLE_DEFAULTS.seed}; input i uses hash(seed, i))
  --stage1-encoder       use the PA-MAE run's encoder, as the reference does, not the fine-tuned one
  --allow-nonfinite-weights
                         load weights that hold NaN/Inf values (refused by default); a non-finite clip
                         still fails
`;

interface Args {
  checkpoint: string;
  out: string;
  ecg: string[];
  gt: string[];
  phantomIndices: number[];
  phantomSeed: number;
  phantomGt: boolean;
  steps: number;
  sampler: SamplerMethod;
  timeGrid: TimeGrid;
  allowNonFiniteWeights: boolean;
  guidance: number;
  alpha: number;
  seed: number;
  stage1Encoder: boolean;
  unconditional: boolean;
  reconstruct: boolean;
  /** Sampling frequency of ECG files that store none (NPY, CSV without a time column). */
  ecgFs?: number;
  ecgChecks: EcgCheckMode;
}

/** `7` or an inclusive range `100-131`. */
function indexRange(flag: string, raw: string): number[] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(raw);
  const from = m ? Number(m[1]) : NaN;
  const to = m?.[2] !== undefined ? Number(m[2]) : from;
  if (!m || to < from || to - from >= 100_000) throw new UsageError(`${flag} takes integers >= 0 or ranges A-B, got '${raw}'`);
  return Array.from({ length: to - from + 1 }, (_, k) => from + k);
}

function parseGenerateArgs(argv: string[]): Args {
  const args: Args = {
    checkpoint: '', out: '', ecg: [], gt: [], phantomIndices: [], phantomSeed: 42, phantomGt: false,
    steps: SAMPLE_DEFAULTS.steps, sampler: SAMPLE_DEFAULTS.method, guidance: SAMPLE_DEFAULTS.guidance, alpha: SAMPLE_DEFAULTS.alpha, seed: SAMPLE_DEFAULTS.seed, stage1Encoder: false,
    unconditional: false,
    reconstruct: false,
    ecgChecks: 'normal',
    timeGrid: SAMPLE_DEFAULTS.timeGrid,
    allowNonFiniteWeights: false,
  };
  const list: string[] = [];
  for (const a of argv) {
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    if (eq > 0) list.push(a.slice(0, eq), a.slice(eq + 1));
    else list.push(a);
  }
  const number = (flag: string, raw: string | undefined, check: (n: number) => boolean, what: string): number => {
    const n = Number(raw);
    if (raw === undefined || raw.startsWith('--') || !check(n)) throw new UsageError(`${flag} must be ${what}, got '${raw ?? ''}'`);
    return n;
  };
  for (let i = 0; i < list.length; i++) {
    const flag = list[i];
    // Flags with several values take everything up to the next flag.
    const many = (): string[] => {
      const values: string[] = [];
      while (i + 1 < list.length && !list[i + 1].startsWith('--')) values.push(list[++i]);
      if (!values.length) throw new UsageError(`${flag} needs at least one value`);
      return values;
    };
    const one = (): string => {
      const v = list[++i];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    const isInt = (min: number) => (n: number) => Number.isInteger(n) && n >= min;
    if (flag === '--checkpoint') args.checkpoint = one();
    else if (flag === '--out') args.out = one();
    else if (flag === '--ecg') args.ecg.push(...many());
    else if (flag === '--gt') args.gt.push(...many());
    else if (flag === '--phantom-index') args.phantomIndices.push(...many().flatMap((v) => indexRange(flag, v)));
    else if (flag === '--phantom-seed') args.phantomSeed = number(flag, list[++i], isInt(0), 'an integer >= 0');
    else if (flag === '--phantom-gt') args.phantomGt = true;
    else if (flag === '--steps') args.steps = number(flag, list[++i], isInt(1), 'an integer >= 1');
    else if (flag === '--guidance') args.guidance = number(flag, list[++i], (n) => Number.isFinite(n) && n >= 0, 'a number >= 0');
    else if (flag === '--alpha') args.alpha = number(flag, list[++i], (n) => Number.isFinite(n) && n >= 0, 'a number >= 0');
    else if (flag === '--seed') args.seed = number(flag, list[++i], isInt(0), 'an integer >= 0');
    else if (flag === '--stage1-encoder') args.stage1Encoder = true;
    else if (flag === '--unconditional') args.unconditional = true;
    else if (flag === '--reconstruct') args.reconstruct = true;
    else if (flag === '--fs') args.ecgFs = number(flag, list[++i], (n) => Number.isFinite(n) && n > 0, 'a sampling frequency in Hz');
    else if (flag === '--ecg-checks') args.ecgChecks = oneOf(flag, one(), ECG_CHECK_MODES);
    else if (flag === '--allow-nonfinite-weights') args.allowNonFiniteWeights = true;
    else if (flag === '--time-grid') args.timeGrid = oneOf(flag, one(), TIME_GRIDS);
    else if (flag === '--sampler') args.sampler = oneOf(flag, one(), SAMPLER_METHODS);
    else throw new UsageError(`unknown argument '${flag}'`);
  }
  if (!args.checkpoint) throw new UsageError('--checkpoint is required (a flow run directory)');
  if (!args.out) throw new UsageError('--out is required');
  if (!args.ecg.length && !args.phantomIndices.length) throw new UsageError('give --ecg FILE... or --phantom-index I...');
  if (args.gt.length && args.gt.length !== args.ecg.length) throw new UsageError(`--gt lists ${args.gt.length} files for ${args.ecg.length} --ecg inputs`);
  if (args.phantomGt && !args.phantomIndices.length) throw new UsageError('--phantom-gt goes with --phantom-index');
  if (args.reconstruct && args.unconditional) throw new UsageError('--reconstruct and --unconditional exclude each other');
  if (args.reconstruct && !args.phantomGt && args.gt.length !== args.ecg.length) throw new UsageError('--reconstruct needs a ground truth for every input (--gt, --phantom-gt)');
  return args;
}

/** One input to generate from: a name, its 12 × 5000 ECG and, maybe, a way to get its ground truth (50 × 96 × 96 in [-1, 1]). */
interface Input {
  name: string;
  ecg: () => Promise<Float32Array>;
  groundTruth: (() => Promise<Float32Array>) | null;
  /** Phantom subjects: the metadata row the evaluation's anatomy metrics read (as a dataset's meta.json). */
  meta?: () => object;
}

const stem = (path: string) => baseName(path).replace(/\.(nii\.gz|hea|dat|csv|tsv|txt|npy|nii)$/i, '');

function inputsOf(args: Args, fs: NodeTrainFileSystem): Input[] {
  const files: Input[] = args.ecg.map((path, i) => ({
    name: stem(path),
    ecg: async () => {
      const recording = await readEcgFile(fs, path, { fs: args.ecgFs });
      const prepared = prepareEcg(recording, { checks: args.ecgChecks });
      for (const w of [...recording.warnings, ...prepared.warnings]) process.stderr.write(`warning: ${w}\n`);
      return prepared.data;
    },
    groundTruth: args.gt[i]
      ? async () => {
          const volume = await readCmrFile(fs, args.gt[i]);
          const prepared = prepareCine(volume, { source: args.gt[i] });
          for (const w of [...volume.warnings, ...prepared.warnings]) process.stderr.write(`warning: ${w}\n`);
          return prepared.data;
        }
      : null,
  }));
  const phantoms: Input[] = args.phantomIndices.map((index) => ({
    name: phantomId(args.phantomSeed, index),
    ecg: async () => generateSubject(args.phantomSeed, index, { cine: false }).ecg,
    groundTruth: args.phantomGt ? async () => normalizeClip(generateSubject(args.phantomSeed, index, { cine: true }).cine!) : null,
    meta: () => {
      const subject = generateSubject(args.phantomSeed, index, { cine: true });
      return { id: subject.id, index, cls: subject.truth.cls, truth: subject.truth, params: subject.params };
    },
  }));
  const all = [...files, ...phantoms];
  const seen = new Set<string>();
  for (const input of all) {
    // Two inputs with the same file name would overwrite each other's outputs.
    let name = input.name;
    for (let k = 2; seen.has(name); k++) name = `${input.name}-${k}`;
    seen.add(name);
    input.name = name;
  }
  return all;
}

async function main(argv: string[]): Promise<number> {
  const args = parseGenerateArgs(argv);
  const fs = new NodeTrainFileSystem();
  const inputs = inputsOf(args, fs);
  await fs.mkdir(args.out);
  const engine = await Engine.webgpu();
  let pipeline: FlowPipeline | null = null;
  try {
    pipeline = await FlowPipeline.load(engine, fs, args.checkpoint, { stage1Encoder: args.stage1Encoder, allowNonFiniteWeights: args.allowNonFiniteWeights });
    const adapter = engine.caps?.adapter;
    process.stderr.write(`generating ${inputs.length} clip(s) with ${args.checkpoint} (${args.sampler}${args.sampler === 'euler' ? ` ${args.timeGrid} times` : ''}, ${args.steps} steps, guidance ${args.guidance}, alpha ${args.alpha}, seed ${args.seed}) on ${adapter?.description || adapter?.device || 'WebGPU'}\n`);
    process.stderr.write(`weights: ${pipeline.weightsSource}; ECG encoder: ${args.stage1Encoder ? `stage 1 (${pipeline.encoderSource})` : 'fine-tuned'}\n`);
    const rows: string[] = [];
    // Ground truths at the model's geometry, in the layout `npm run evaluate -- --gt DIR` reads.
    const gtDir = joinPath(args.out, 'ground-truth');
    const gtMeta: object[] = [];
    if (inputs.some((input) => input.groundTruth)) await fs.mkdir(gtDir);
    for (const [i, input] of inputs.entries()) {
      const started = performance.now();
      // The ground truth goes through the VAE run's input preprocessing ([-1, 1]); compared in [0, 1] like the output.
      const truth = input.groundTruth ? await input.groundTruth() : null;
      const atModelGeometry = (frames: number, size: number) => (truth ? resizeCine(truth, pipeline!.config.vaeInput ?? { frames, size }) : null);
      const out = args.reconstruct
        ? await pipeline.reconstruct(truth!)
        : await pipeline.generate(await input.ecg(), { steps: args.steps, method: args.sampler, timeGrid: args.timeGrid, guidance: args.guidance, alpha: args.alpha, seed: args.seed, index: i, unconditional: args.unconditional });
      const gtModel = atModelGeometry(out.frames, out.height);
      const seconds = (performance.now() - started) / 1000;
      const dims = { frames: out.frames, height: out.height, width: out.width };
      const base = joinPath(args.out, input.name);
      const written = [`${base}.gif`, `${base}.nii.gz`, `${base}.npy`];
      await fs.writeFile(written[0], sideBySideGif([out.clip], dims));
      await fs.writeFile(written[1], writeNifti(out.clip, dims, { gzip: true, description: `ECGFlowCMR generated from ${input.name}` }));
      await fs.writeFile(written[2], writeNpy(out.clip, [out.frames, out.height, out.width]));
      let comparison = '';
      if (gtModel) {
        const gt = gtModel.map((v) => (v + 1) / 2);
        written.push(`${base}-vs-gt.gif`, joinPath(gtDir, `${input.name}.npy`));
        await fs.writeFile(written[3], sideBySideGif([out.clip, gt], dims));
        await fs.writeFile(written[4], writeNpy(gt, [out.frames, out.height, out.width]));
        if (input.meta) gtMeta.push(input.meta());
        let absolute = 0;
        for (let k = 0; k < gt.length; k++) absolute += Math.abs(gt[k] - out.clip[k]);
        comparison = `  MAE vs GT ${(absolute / gt.length).toFixed(4)}`;
      }
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of out.clip) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
      rows.push(`  ${input.name}: ${out.frames}x${out.height}x${out.width} in [${lo.toFixed(3)}, ${hi.toFixed(3)}], ${seconds.toFixed(2)} s${comparison}\n    ${written.join('\n    ')}`);
    }
    console.log(`generated ${inputs.length} clip(s) in ${args.out}:`);
    for (const r of rows) console.log(r);
    if (gtMeta.length) {
      const metaPath = joinPath(gtDir, 'meta.json');
      await fs.writeFile(metaPath, new TextEncoder().encode(JSON.stringify({ split: 'generated', subjects: gtMeta }) + '\n'));
      console.log(`ground truth and phantom metadata in ${gtDir}; evaluate with:\n  npm run evaluate -- --pred ${args.out} --gt ${gtDir} --phantom-meta ${metaPath}`);
    }
    return 0;
  } finally {
    pipeline?.dispose();
    engine.destroy();
  }
}

runCliMain(USAGE, main);
