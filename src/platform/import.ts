/**
 * Reference checkpoints → a run directory that `npm run generate -- --checkpoint OUT` and the web page read:
 *
 *   OUT/config.json                      stage 'flow' (FlowStageConfig; the reference's flow hyper-parameters)
 *   OUT/best-weights.safetensors         dit.*, encoder.* (the flow checkpoint's fine-tuned encoder), template
 *   OUT/ecg/config.json, best-weights.safetensors       the PA-MAE run: encoder.*, decoder.*
 *   OUT/vae/config.json, best-weights.safetensors       the VAE run: VAE keys + loss.discriminator.*
 *   OUT/vae/template.safetensors         the anatomy template (1, C, 1, h, w)
 *   OUT/import.json                      provenance: source files, the reference calls the shapes imply, dropped keys
 *   OUT/web/manifest.json + assets       the same chain packed for the page (drop the folder's files on it)
 *
 * Weights are converted once, to float32 safetensors. Browser-safe: bytes in, a TrainFileSystem out.
 */
import { joinPath } from '../data/fs';
import { WeightsError } from '../models/io/errors';
import { readPth } from '../models/io/pth';
import { writeSafetensors } from '../models/io/safetensors';
import { assertFiniteWeights } from '../models/io/state-dict';
import { toFloat32StateDict, type StateDict } from '../models/io/state-dict';
import type { HostTensor } from '../models/io/tensor';
import { PATCHGAN_CHECKPOINT_PREFIX } from '../models/discriminator3d';
import { importFlow, importPaMae, importVae, type ReferenceCall } from '../models/import/infer';
import { readSingleTensor, templateFromLatents, templateFromTensor } from '../models/import/template';
import { vaeKwargsFromYaml } from '../models/reference/yaml-config';
import { checkStateShapes, ecgEncoderStateShapes } from '../models/reference/shapes';
import { ReferenceConfigError } from '../models/reference/kwargs';
import type { FlowStageConfig } from '../train/stage-flow';
import type { Vae3dConfig } from '../models/vae3d';
import type { TrainFileSystem } from '../train/files';
import { VAE_RUN_FILES } from '../train/stage-flow-data';
import { packChain } from './chain';

export interface InputFile {
  /** Shown in messages and recorded in import.json. */
  name: string;
  bytes: Uint8Array;
}

export interface ImportInputs {
  pamae: InputFile;
  vae: InputFile;
  flow: InputFile;
  /** anatomy_template.pt (or .safetensors/.npy); exactly one of template, latents, templateTensor. */
  template?: InputFile;
  /** all_latents.pt (N, C, T, h, w): the template is their mean over subjects and frames. */
  latents?: InputFile;
  /** A template computed from the imported VAE (e.g. encoding cines, src/cli/import.ts --cines), (1, C, 1, h, w). */
  computeTemplate?: { source: string; compute(vae: { config: Vae3dConfig; weights: Map<string, HostTensor> }): Promise<HostTensor> };
  /** The reference's VAE YAML (config/disentangle_vae3d.yaml); without it the VAE arguments come from the shapes. */
  configYaml?: { name: string; text: string };
  /** ECG_DiT num_heads: not recoverable from the weights (train_flow.py --dit_heads, default 8). */
  ditHeads?: number;
  /** Skip OUT/web (the page's chain). */
  noWeb?: boolean;
  /** Convert weights that hold NaN/Inf instead of refusing them (generation refuses them again unless told). */
  allowNonFiniteWeights?: boolean;
}

export interface ImportSummary {
  outDir: string;
  runs: { ecg: string; vae: string; flow: string };
  calls: ReferenceCall[];
  templateSource: string;
  files: { path: string; bytes: number }[];
  notes: string[];
}

const SEED = 42;
const ECG_LEADS = 12;

function readCheckpoint(file: InputFile) {
  return readPth(file.bytes, { name: file.name }).root;
}

const f32 = (sd: StateDict, prefix = '') => {
  const out = new Map<string, HostTensor>();
  for (const [k, t] of toFloat32StateDict(sd)) out.set(prefix + k, t);
  return out;
};

/** Imports the three reference checkpoints into `outDir` (created; existing run files are refused). */
export async function importReferenceChain(fs: TrainFileSystem, inputs: ImportInputs, outDir: string): Promise<ImportSummary> {
  const notes: string[] = [];
  const templateInputs = [inputs.template, inputs.latents, inputs.computeTemplate].filter(Boolean).length;
  if (templateInputs !== 1) throw new WeightsError(`give exactly one anatomy template source (a template file, latents, or a computed template); got ${templateInputs}`);
  if (await fs.exists(joinPath(outDir, 'config.json'))) throw new WeightsError(`${outDir} already holds a run (config.json); choose an empty --out`);

  // The DiT fixes the latent geometry, so it goes first; the VAE's clip geometry follows from it.
  const flow = importFlow(readCheckpoint(inputs.flow), inputs.flow.name, { numHeads: inputs.ditHeads });
  const dit = flow.config;
  const pamae = importPaMae(readCheckpoint(inputs.pamae), inputs.pamae.name, { targetLen: dit.numFrames });
  let yamlKwargs;
  if (inputs.configYaml) {
    try {
      yamlKwargs = vaeKwargsFromYaml(inputs.configYaml.text, inputs.configYaml.name);
    } catch (e) {
      if (e instanceof ReferenceConfigError) throw new WeightsError(e.message);
      throw e;
    }
  }
  const vaeRoot = readCheckpoint(inputs.vae);
  const levels = vaeLevels(vaeRoot);
  const vae = importVae(vaeRoot, inputs.vae.name, {
    yamlKwargs, yamlName: inputs.configYaml?.name,
    resolution: levels ? dit.latentSize[0] * 2 ** (levels - 1) : undefined, tempRes: dit.numFrames,
  });

  // The three models must fit together.
  const e = pamae.config.encoder;
  const factor = 2 ** (vae.config.chMult.length - 1);
  const across = (message: string) => new WeightsError(`${inputs.flow.name} and ${message}`);
  if (e.inChannels !== ECG_LEADS) throw new WeightsError(`${inputs.pamae.name}: the ECG encoder takes ${e.inChannels} leads; generation feeds 12-lead ECGs`);
  if (dit.ecgDim !== e.featureDim) throw across(`${inputs.pamae.name} do not fit: the DiT takes ${dit.ecgDim}-wide ECG tokens (ecg_dim), the encoder gives ${e.featureDim} (out_dim)`);
  if (dit.latentChannels !== vae.config.embedDim) throw across(`${inputs.vae.name} do not fit: the DiT works on ${dit.latentChannels} latent channels, the VAE's embed_dim is ${vae.config.embedDim}`);
  if (vae.config.resolution / factor !== dit.latentSize[0]) {
    throw across(`${inputs.vae.name} do not fit: the DiT's latent is ${dit.latentSize[0]} × ${dit.latentSize[1]}, the VAE maps ${vae.config.resolution}-pixel frames to ${vae.config.resolution / factor} (${vae.geometrySource})`);
  }
  if (vae.config.tempRes !== dit.numFrames) throw across(`${inputs.vae.name} do not fit: the DiT has ${dit.numFrames} frames, the VAE's temp_res is ${vae.config.tempRes} (${vae.geometrySource})`);
  let encoder = flow.encoder;
  if (encoder) {
    checkStateShapes(ecgEncoderStateShapes(e), encoder, {
      file: inputs.flow.name, what: 'the fine-tuned ECG encoder (encoder_state_dict)', against: `the PA-MAE encoder of ${inputs.pamae.name}`,
      fix: 'The flow must have been trained from this PA-MAE checkpoint.',
    });
  } else {
    encoder = new Map([...pamae.tensors].filter(([k]) => k.startsWith('encoder.')).map(([k, t]) => [k.slice('encoder.'.length), t]));
    notes.push(`${inputs.flow.name} has no encoder_state_dict: the flow run uses the PA-MAE encoder of ${inputs.pamae.name}`);
  }
  if (!pamae.hasDecoder) notes.push(`${inputs.pamae.name} has no decoder.* keys: the ECG run holds the encoder only`);
  if (vae.dropped.length) notes.push(`dropped ${vae.dropped.length} training-only VAE keys (loss.logvar, loss.perceptual_loss.*: LPIPS/VGG16)`);
  if (!vae.discriminator.size) notes.push(`${inputs.vae.name} has no loss.discriminator.* keys: the VAE run has no discriminator weights`);

  const geometry = { channels: dit.latentChannels, size: [dit.latentSize[0], dit.latentSize[1]] as [number, number] };
  let template: HostTensor;
  let templateSource: string;
  if (inputs.template) {
    template = templateFromTensor(readSingleTensor(inputs.template.bytes, inputs.template.name), inputs.template.name, geometry);
    templateSource = inputs.template.name;
  } else if (inputs.latents) {
    template = templateFromLatents(readSingleTensor(inputs.latents.bytes, inputs.latents.name), inputs.latents.name, geometry);
    templateSource = `mean of ${inputs.latents.name} over subjects and frames`;
  } else {
    const { source: from, compute } = inputs.computeTemplate!;
    template = templateFromTensor(await compute({ config: vae.config, weights: f32(vae.vae) }), from, geometry);
    templateSource = from;
  }

  const runs = { ecg: joinPath(outDir, 'ecg'), vae: joinPath(outDir, 'vae'), flow: outDir };
  const files: { path: string; bytes: number }[] = [];
  const write = async (path: string, data: Uint8Array | string) => {
    await fs.writeFile(path, data);
    files.push({ path, bytes: typeof data === 'string' ? new TextEncoder().encode(data).length : data.length });
  };
  const json = (v: unknown) => JSON.stringify(v, null, 1) + '\n';
  const source = (f: InputFile) => ({ source: f.name, importedBy: 'npm run import' });
  // A diverged reference run must not become a run directory that decodes to black clips: refuse NaN/Inf here.
  const finite = (tensors: Map<string, HostTensor>, file: InputFile) =>
    assertFiniteWeights(tensors, { source: file.name, allowNonFinite: inputs.allowNonFiniteWeights, optOut: '--allow-nonfinite-weights' });
  finite(f32(pamae.tensors), inputs.pamae);
  finite(f32(vae.vae), inputs.vae);
  finite(f32(flow.dit), inputs.flow);
  for (const dir of [outDir, runs.ecg, runs.vae]) await fs.mkdir(dir);

  await write(joinPath(runs.ecg, 'config.json'), json({ stage: 'ecg', preset: 'reference-import', seed: SEED, data: null, model: pamae.config, imported: { ...source(inputs.pamae), calls: pamae.calls } }));
  await write(joinPath(runs.ecg, 'best-weights.safetensors'), writeSafetensors(f32(pamae.tensors), { stage: 'ecg', ...source(inputs.pamae) }));

  const vaeTensors = f32(vae.vae);
  for (const [k, t] of f32(vae.discriminator, PATCHGAN_CHECKPOINT_PREFIX)) vaeTensors.set(k, t);
  const vaeInput = { frames: vae.config.tempRes, size: vae.config.resolution };
  await write(joinPath(runs.vae, 'config.json'), json({ stage: 'vae', preset: 'reference-import', seed: SEED, data: null, model: vae.config, input: vaeInput, imported: { ...source(inputs.vae), call: vae.call, geometry: vae.geometrySource, dropped: vae.dropped.length } }));
  await write(joinPath(runs.vae, VAE_RUN_FILES.weights), writeSafetensors(vaeTensors, { stage: 'vae', ...source(inputs.vae) }));
  await write(joinPath(runs.vae, VAE_RUN_FILES.template), writeSafetensors(new Map([['template', template]]), { source: templateSource }));

  const flowWeights = f32(flow.dit, 'dit.');
  for (const [k, t] of f32(encoder, 'encoder.')) flowWeights.set(k, t);
  flowWeights.set('template', template);
  const config: FlowStageConfig = {
    stage: 'flow', preset: 'reference-import', seed: SEED, batchSize: 2, totalSteps: 0, valEvery: 1, checkpointEvery: 1, plotEvery: 0, logEvery: 1, data: null,
    vaeRun: runs.vae, ecgRun: runs.ecg,
    files: {
      latents: joinPath(runs.vae, VAE_RUN_FILES.latents), template: joinPath(runs.vae, VAE_RUN_FILES.template),
      vaeWeights: joinPath(runs.vae, VAE_RUN_FILES.weights), ecgWeights: joinPath(runs.ecg, 'best-weights.safetensors'),
    },
    ditWidth: { hiddenSize: dit.hiddenSize, depth: dit.depth, numHeads: dit.numHeads, mlpRatio: dit.mlpRatio, frequencyEmbeddingSize: dit.frequencyEmbeddingSize },
    dit, vae: vae.config, vaeInput, encoder: e, ecgLength: pamae.config.ecgLength,
    // The reference's train_flow.py settings (REFERENCE_SPEC §5).
    cycle: 'faithful', alpha: 0.8, conditionDrop: 0.1,
    lr: 1e-4, minLr: 1e-6, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-4, clipNorm: 1,
    epochs: 10, stepsPerEpoch: 0, trainSubjects: 0, valSubjects: 0, valBatchSize: 2, perEpoch: { totalSteps: false, valEvery: false, checkpointEvery: false },
  };
  await write(joinPath(outDir, 'config.json'), json({ ...config, imported: { ...source(inputs.flow), call: flow.call, encoder: flow.encoder ? 'encoder_state_dict (fine-tuned)' : `PA-MAE (${inputs.pamae.name})` } }));
  await write(joinPath(outDir, 'best-weights.safetensors'), writeSafetensors(flowWeights, { stage: 'flow', ...source(inputs.flow) }));
  const calls = [...pamae.calls, vae.call, flow.call];
  await write(joinPath(outDir, 'import.json'), json({
    format: 'ecgflowcmr-reference-import', version: 1,
    sources: { pamae: inputs.pamae.name, vae: inputs.vae.name, flow: inputs.flow.name, template: templateSource, configYaml: inputs.configYaml?.name ?? null },
    calls, vaeGeometry: vae.geometrySource, ditHeads: dit.numHeads, droppedVaeKeys: vae.dropped, notes,
  }));

  if (!inputs.noWeb) {
    const { manifest, files: assets } = await packChain(fs, runs, { description: `imported from ${inputs.flow.name}`, info: { imported: calls } });
    const web = joinPath(outDir, 'web');
    await fs.mkdir(web);
    for (const [name, bytes] of assets) await write(joinPath(web, name), bytes);
    await write(joinPath(web, 'manifest.json'), json(manifest));
  }
  return { outDir, runs, calls, templateSource, files, notes };
}

/** Number of encoder levels of a VAE checkpoint (to place the template's size in pixels), 0 when unknown. */
function vaeLevels(root: ReturnType<typeof readCheckpoint>): number {
  const sd = root instanceof Map ? (root.get('model_state_dict') ?? root) : null;
  if (!(sd instanceof Map)) return 0;
  let levels = 0;
  for (const k of sd.keys()) {
    const m = typeof k === 'string' ? /^(?:module\.)?encoder_3d\.down\.(\d+)\./.exec(k) : null;
    if (m) levels = Math.max(levels, Number(m[1]) + 1);
  }
  return levels;
}
