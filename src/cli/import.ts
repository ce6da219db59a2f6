/**
 * `npm run import -- --pamae checkpoint-best.pth --vae VAE_CKPT --flow checkpoint_flow_best.pth
 *   (--template anatomy_template.pt | --latents all_latents.pt | --cines FILE...) --out RUN [options]`:
 * the reference's three checkpoints → a run directory `npm run generate -- --checkpoint RUN` and the web
 * page read (src/platform/import.ts). Reads files; the conversion itself is browser-safe.
 */
import { readFileSync } from 'node:fs';
import { Engine } from '../engine/engine';
import type { HostTensor } from '../models/io/tensor';
import type { Vae3dConfig } from '../models/vae3d';
import { importReferenceChain, type ImportInputs, type InputFile } from '../platform/import';
import { templateFromCines } from '../platform/import-cines';
import { NodeTrainFileSystem } from '../train/node-files';
import { UsageError } from '../train/options';
import { runCliMain } from './cli-main';

const USAGE = `usage: npm run import -- --pamae FILE --vae FILE --flow FILE (--template FILE | --latents FILE | --cines FILE...) --out DIR [options]

  --pamae FILE          the PA-MAE checkpoint (train_ecg.py: checkpoint-best.pth, model_state_dict encoder.*/decoder.*)
  --vae FILE            the VAE checkpoint (train_disentangle_vae3d.py: checkpoint-best.pth, model_state_dict with loss.*)
  --flow FILE           the flow checkpoint (train_flow.py: checkpoint_flow_best.pth, model_state_dict + encoder_state_dict)
  --template FILE       the anatomy template: anatomy_template.pt (1, C, 1, h, w), or .safetensors/.npy
  --latents FILE        all_latents.pt (N, C, T, h, w): the template is their mean over subjects and frames
  --cines FILE...       cine files (.nii/.nii.gz, .npy, DICOM): the template is the mean VAE latent (mode) of
                        these clips over subjects and frames, computed with the imported VAE (needs WebGPU)
  --out DIR             the run directory to write (must not hold a run yet)
  --config-yaml FILE    the reference's VAE YAML (config/disentangle_vae3d.yaml); default: read the VAE's
                        arguments from the checkpoint's shapes (frame size and count from the DiT)
  --dit-heads N         ECG_DiT num_heads (train_flow.py --dit_heads; not stored in the checkpoint; default 8)
  --no-web              do not write DIR/web (the page's chain: manifest.json + safetensors)
  --allow-nonfinite-weights  convert weights holding NaN/Inf instead of refusing them (generation still refuses them)
`;

interface Args {
  pamae: string;
  vae: string;
  flow: string;
  template?: string;
  latents?: string;
  cines: string[];
  out: string;
  configYaml?: string;
  ditHeads?: number;
  noWeb: boolean;
  allowNonFiniteWeights: boolean;
}

function parseImportArgs(argv: string[]): Args {
  const args: Args = { pamae: '', vae: '', flow: '', cines: [], out: '', noWeb: false, allowNonFiniteWeights: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const one = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    if (flag === '--pamae') args.pamae = one();
    else if (flag === '--vae') args.vae = one();
    else if (flag === '--flow') args.flow = one();
    else if (flag === '--template') args.template = one();
    else if (flag === '--latents') args.latents = one();
    else if (flag === '--cines') {
      while (i + 1 < argv.length && !argv[i + 1].startsWith('--')) args.cines.push(argv[++i]);
      if (!args.cines.length) throw new UsageError('--cines needs at least one file');
    } else if (flag === '--out') args.out = one();
    else if (flag === '--config-yaml') args.configYaml = one();
    else if (flag === '--dit-heads') {
      const raw = one();
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`--dit-heads must be an integer >= 1, got '${raw}'`);
      args.ditHeads = n;
    } else if (flag === '--no-web') args.noWeb = true;
    else if (flag === '--allow-nonfinite-weights') args.allowNonFiniteWeights = true;
    else throw new UsageError(`unknown argument '${flag}'`);
  }
  for (const [name, value] of [['--pamae', args.pamae], ['--vae', args.vae], ['--flow', args.flow], ['--out', args.out]] as const) {
    if (!value) throw new UsageError(`${name} is required`);
  }
  const sources = [args.template, args.latents, args.cines.length ? 'cines' : undefined].filter(Boolean).length;
  if (sources !== 1) throw new UsageError('give exactly one of --template, --latents, --cines (the anatomy template)');
  return args;
}

const readInput = (path: string): InputFile => ({ name: path, bytes: new Uint8Array(readFileSync(path)) });

async function templateWithEngine(paths: string[], fs: NodeTrainFileSystem, vae: { config: Vae3dConfig; weights: Map<string, HostTensor> }): Promise<HostTensor> {
  const engine = await Engine.webgpu();
  try {
    return await templateFromCines(engine, fs, paths, vae, (w) => process.stderr.write(`warning: ${w}\n`));
  } finally {
    engine.destroy();
  }
}

async function main(argv: string[]): Promise<number> {
  const args = parseImportArgs(argv);
  const fs = new NodeTrainFileSystem();
  const inputs: ImportInputs = {
    pamae: readInput(args.pamae), vae: readInput(args.vae), flow: readInput(args.flow),
    ditHeads: args.ditHeads, noWeb: args.noWeb, allowNonFiniteWeights: args.allowNonFiniteWeights,
    ...(args.template ? { template: readInput(args.template) } : {}),
    ...(args.latents ? { latents: readInput(args.latents) } : {}),
    ...(args.cines.length ? { computeTemplate: { source: `mean VAE latent (mode) of ${args.cines.length} cine(s)`, compute: (vae) => templateWithEngine(args.cines, fs, vae) } } : {}),
    ...(args.configYaml ? { configYaml: { name: args.configYaml, text: readFileSync(args.configYaml, 'utf8') } } : {}),
  };
  const summary = await importReferenceChain(fs, inputs, args.out);
  console.log(`imported into ${summary.outDir} (generate with: npm run generate -- --checkpoint ${summary.outDir} --out DIR --ecg FILE)`);
  for (const c of summary.calls) console.log(`  ${c.className}(${Object.entries(c.kwargs).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')})`);
  console.log(`  template: ${summary.templateSource}`);
  for (const n of summary.notes) console.log(`  note: ${n}`);
  for (const f of summary.files) console.log(`  ${f.path} (${f.bytes} bytes)`);
  return 0;
}

runCliMain(USAGE, main);
