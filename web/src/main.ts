/**
 * The page: Generate (ECG → cine with a trained chain) and Train (the three stages on phantom data), both on
 * navigator.gpu through the same engine, models, trainer and pipeline code as the Node CLI.
 *
 * `document.body.dataset.status` tells scripts (the browser test) where the page is: loading, ready, busy,
 * generated, trained, error or no-webgpu; `window.ecgflow` exposes the last result and a training probe.
 */
import { Engine } from '../../src/engine/engine';
import { sideBySideGif, writeNifti } from '../../src/data/writers/index';
import { generateStepwise, type SteppedClip } from '../../src/platform/generate';
import { flowTrainingProbe, ObservedMemoryFileSystem } from '../../src/platform/train';
import { FlowPipeline } from '../../src/train/pipeline';
import type { SamplerMethod, TimeGrid } from '../../src/train/sampler';
import { download, dropZone, ecgFromFiles, filesOf, installBundledChain, installDroppedChain, phantomInput, type EcgInput } from './inputs';
import { CinePlayer, drawEcg, drawLossCurves } from './plots';
import { trainChain, type TrainedChain } from './train-panel';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const number = (id: string) => Number($<HTMLInputElement>(id).value);
const radio = (name: string) => (document.querySelector(`input[name="${name}"]:checked`) as HTMLInputElement).value;

type Status = 'loading' | 'ready' | 'busy' | 'generated' | 'trained' | 'error' | 'no-webgpu';
const setStatus = (s: Status) => (document.body.dataset.status = s);

const logBox = $('log');
function log(line: string): void {
  logBox.textContent += `${new Date().toLocaleTimeString()}  ${line}\n`;
  logBox.scrollTop = logBox.scrollHeight;
  console.log(line);
}

/** One file system for the whole session: bundled chain, dropped chains, training runs. */
const fs = new ObservedMemoryFileSystem();
let engine: Engine | null = null;
const chains = new Map<string, { flowRun: string; description: string }>();
const pipelines = new Map<string, Promise<FlowPipeline>>();
let droppedEcg: EcgInput | null = null;
let droppedChainCount = 0;
let trained: TrainedChain | null = null;
let busy = false;
let last: { input: EcgInput; result: SteppedClip; chain: string } | null = null;

const player = new CinePlayer($<HTMLCanvasElement>('cine-canvas'), (f, n) => ($('frame-label').textContent = `frame ${f + 1}/${n}`));

function setBusy(value: boolean): void {
  busy = value;
  for (const id of ['generate', 'train']) $<HTMLButtonElement>(id).disabled = value || !engine;
  $<HTMLButtonElement>('sample-trained').disabled = value || !trained;
  setStatus(value ? 'busy' : 'ready');
}

function fail(where: string, e: unknown): void {
  const message = e instanceof Error ? e.message : String(e);
  log(`${where}: ${message}`);
  $(where === 'generate' ? 'gen-status' : 'train-status').textContent = `error: ${message}`;
  setStatus('error');
}

/** The chain the Generate panel should use, installed (and its pipeline loaded) on first use. */
async function currentPipeline(): Promise<{ key: string; pipeline: FlowPipeline }> {
  const source = radio('chain-source');
  let key: string;
  if (source === 'trained') {
    if (!trained) throw new Error('nothing trained in this page yet (Train panel)');
    key = 'trained';
    chains.set(key, { flowRun: trained.flow, description: 'trained in this page' });
  } else if (source === 'dropped') {
    key = `dropped-${droppedChainCount}`;
    if (!chains.has(key)) throw new Error('drop or choose a chain (manifest.json + .safetensors) first');
  } else {
    key = 'bundled';
    if (!chains.has(key)) {
      const { chain, description, bytes } = await installBundledChain(fs);
      chains.set(key, { flowRun: chain.runs.flow, description });
      $('chain-info').textContent = `bundled: ${description} (${(bytes / 1024).toFixed(0)} KiB)`;
    }
  }
  let pipeline = pipelines.get(key);
  if (!pipeline) {
    pipeline = FlowPipeline.load(engine!, fs, chains.get(key)!.flowRun);
    pipelines.set(key, pipeline);
    pipeline.catch(() => pipelines.delete(key));
  }
  return { key, pipeline: await pipeline };
}

function currentEcg(): EcgInput {
  if (radio('ecg-source') === 'file') {
    if (!droppedEcg) throw new Error('choose or drop an ECG file first');
    return droppedEcg;
  }
  return phantomInput(number('phantom-seed'), number('phantom-index'));
}

function showEcg(input: EcgInput | null, window: [number, number] | null = null): void {
  drawEcg($<HTMLCanvasElement>('ecg-canvas'), input?.ecg ?? null, window, input ? `${input.name}  (leads I, II, III, V1, V3, V5; 10 s)` : '');
}

export interface GenerateRequest {
  steps: number;
  guidance: number;
  alpha: number;
  seed: number;
  method: SamplerMethod;
  timeGrid: TimeGrid;
}

async function generate(): Promise<SteppedClip> {
  if (!engine) throw new Error('WebGPU is not available');
  setBusy(true);
  const status = $('gen-status');
  const bar = $<HTMLProgressElement>('gen-progress');
  try {
    const input = currentEcg();
    showEcg(input);
    status.textContent = 'loading the chain…';
    const { key, pipeline } = await currentPipeline();
    const request: GenerateRequest = { steps: number('steps'), guidance: number('guidance'), alpha: number('alpha'), seed: number('seed'), method: $<HTMLSelectElement>('method').value as SamplerMethod, timeGrid: $<HTMLSelectElement>('time-grid').value as TimeGrid };
    const result = await generateStepwise(engine, pipeline, input.ecg, request, (p) => {
      const evaluations = request.method === 'heun' ? 2 : 1;
      bar.value = p.phase === 'done' ? 1 : (p.step + (p.phase === 'decode' ? 0.5 : 0)) / (p.steps + 1);
      status.textContent = p.phase === 'sample' ? `sampling: step ${p.step}/${p.steps} (${evaluations * (request.guidance > 1 ? 2 : 1)} DiT passes each), ${p.seconds.toFixed(1)} s` : `${p.phase}… ${p.seconds.toFixed(1)} s`;
    });
    last = { input, result, chain: key };
    showEcg(input, result.windowSamples);
    const dims = { frames: result.frames, height: result.height, width: result.width };
    const panels = [{ data: result.clip, label: 'generated' }];
    const geometry = pipeline.config.vaeInput ?? { frames: result.frames, size: result.height };
    if (input.groundTruth) panels.push({ data: input.groundTruth(geometry), label: 'phantom (truth)' });
    player.show(panels, dims, Math.max(2, Math.min(12, result.frames * 1.2)));
    for (const id of ['play', 'download-gif', 'download-nifti']) $<HTMLButtonElement>(id).disabled = false;
    $('play').textContent = 'pause';
    const s = result.seconds;
    status.textContent = `done: ${dims.frames} × ${dims.height} × ${dims.width} in ${(s.encode + s.sample + s.decode).toFixed(1)} s (encode ${s.encode.toFixed(1)}, sample ${s.sample.toFixed(1)}, decode ${s.decode.toFixed(1)})`;
    for (const w of input.warnings) log(`warning: ${w}`);
    log(`generated ${input.name} with the ${key} chain: ${request.method}${request.method === 'euler' ? ` (${request.timeGrid} times)` : ''}, ${request.steps} steps, guidance ${request.guidance}, α ${request.alpha}, seed ${request.seed}; cycle ${result.windowSamples.join('-')} samples`);
    setBusy(false);
    setStatus('generated');
    return result;
  } catch (e) {
    setBusy(false);
    fail('generate', e);
    throw e;
  }
}

async function train(): Promise<void> {
  if (!engine) return;
  setBusy(true);
  const status = $('train-status');
  const bar = $<HTMLProgressElement>('train-progress');
  try {
    // A fresh root per click: the trainer refuses nothing here, but old runs must not mix with new ones.
    const root = `/trained-${Date.now().toString(36)}`;
    trained = await trainChain({
      engine, fs, canvas: $<HTMLCanvasElement>('loss-canvas'), seed: number('train-seed'),
      steps: { ecg: number('ecg-steps'), vae: number('vae-steps'), flow: number('flow-steps') },
      onStatus: (text, fraction) => {
        status.textContent = text;
        bar.value = fraction;
      },
      log,
    }, root);
    pipelines.get('trained')?.then((p) => p.dispose());
    pipelines.delete('trained');
    const option = $<HTMLInputElement>('chain-trained');
    option.disabled = false;
    setBusy(false);
    setStatus('trained');
  } catch (e) {
    setBusy(false);
    fail('train', e);
  }
}

function wire(): void {
  $('generate').addEventListener('click', () => void generate().catch(() => undefined));
  $('train').addEventListener('click', () => void train());
  $('sample-trained').addEventListener('click', () => {
    $<HTMLInputElement>('chain-trained').checked = true;
    void generate().catch(() => undefined);
  });
  $('play').addEventListener('click', () => {
    player.toggle();
    $('play').textContent = player.playing ? 'pause' : 'play';
  });
  $('download-gif').addEventListener('click', () => {
    if (!last) return;
    const r = last.result;
    download(sideBySideGif([r.clip], { frames: r.frames, height: r.height, width: r.width }), `${last.input.name}.gif`, 'image/gif');
  });
  $('download-nifti').addEventListener('click', () => {
    if (!last) return;
    const r = last.result;
    const bytes = writeNifti(r.clip, { frames: r.frames, height: r.height, width: r.width }, { gzip: true, description: `ECGFlowCMR generated from ${last.input.name}` });
    download(bytes, `${last.input.name}.nii.gz`, 'application/gzip');
  });
  const takeEcg = async (files: File[]) => {
    if (!files.length) return;
    try {
      const rate = $<HTMLInputElement>('ecg-fs').value.trim();
      droppedEcg = await ecgFromFiles(files, rate ? { fs: Number(rate) } : {});
      ($<HTMLInputElement>('ecg-file').closest('label')!.querySelector('input[type=radio]') as HTMLInputElement).checked = true;
      showEcg(droppedEcg);
      log(`ECG ${droppedEcg.name}: 12 × 5000 at 500 Hz${droppedEcg.warnings.length ? `; ${droppedEcg.warnings.join('; ')}` : ''}`);
    } catch (e) {
      fail('generate', e);
    }
  };
  const takeChain = async (files: File[]) => {
    if (!files.length) return;
    try {
      const key = `dropped-${droppedChainCount + 1}`;
      const { chain, description, bytes } = await installDroppedChain(fs, files, `/${key}`);
      droppedChainCount++;
      chains.set(key, { flowRun: chain.runs.flow, description });
      ($<HTMLInputElement>('chain-file').closest('label')!.querySelector('input[type=radio]') as HTMLInputElement).checked = true;
      $('chain-info').textContent = `dropped: ${description} (${(bytes / 1024).toFixed(0)} KiB)`;
      log(`chain installed: ${description}`);
    } catch (e) {
      fail('generate', e);
    }
  };
  $<HTMLInputElement>('ecg-file').addEventListener('change', (e) => void takeEcg(filesOf((e.target as HTMLInputElement).files)));
  $<HTMLInputElement>('chain-file').addEventListener('change', (e) => void takeChain(filesOf((e.target as HTMLInputElement).files)));
  dropZone($('ecg-drop'), (f) => void takeEcg(f));
  dropZone($('chain-drop'), (f) => void takeChain(f));
  for (const id of ['phantom-index', 'phantom-seed']) $(id).addEventListener('change', () => radio('ecg-source') === 'phantom' && showEcg(currentEcg()));
}

async function start(): Promise<void> {
  wire();
  showEcg(phantomInput(number('phantom-seed'), number('phantom-index')));
  player.draw();
  drawLossCurves($<HTMLCanvasElement>('loss-canvas'), []);
  if (!('gpu' in navigator) || !navigator.gpu) {
    const banner = $('no-webgpu');
    banner.hidden = false;
    banner.textContent = 'WebGPU is not available in this browser, so nothing can run here. Use a browser with WebGPU enabled '
      + '(Chrome/Edge 113+, or Chromium with --enable-unsafe-webgpu), opened from https:// or http://127.0.0.1 / localhost (a secure context).';
    $('device').textContent = 'no WebGPU';
    setStatus('no-webgpu');
    return;
  }
  try {
    engine = await Engine.webgpu();
  } catch (e) {
    const banner = $('no-webgpu');
    banner.hidden = false;
    banner.textContent = `WebGPU is present but no device could be created: ${e instanceof Error ? e.message : String(e)}`;
    $('device').textContent = 'no WebGPU device';
    setStatus('no-webgpu');
    return;
  }
  const caps = engine.caps!;
  const a = caps.adapter;
  // The engine picks f32 paths when shader-f16 or subgroups are missing; say which the device has.
  $('device').textContent = `${a.vendor || 'GPU'} ${a.architecture || a.device || a.description}${caps.software ? ' (software)' : ''} · f16 ${caps.f16 ? 'yes' : 'no'} · subgroups ${caps.subgroups ? 'yes' : 'no'} · max binding ${(caps.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB`;
  log(`WebGPU: ${JSON.stringify(a)}; f16 ${caps.f16}, subgroups ${caps.subgroups}`);
  setBusy(false);
}

/** Hooks for the browser test and the console. */
declare global {
  interface Window {
    ecgflow: {
      ready: Promise<void>;
      last: () => { clip: number[]; latent: number[]; frames: number; height: number; width: number; windowSamples: [number, number]; seconds: SteppedClip['seconds'] } | null;
      flowProbe: (steps: number, seed: number) => Promise<{ loss: number[]; gradNorm: number[] }>;
      loadedEcg: () => { name: string; sum: number; absSum: number; length: number; warnings: string[] } | null;
      caps: () => unknown;
    };
  }
}

window.ecgflow = {
  ready: start().catch((e) => fail('generate', e)),
  last: () => (last ? { clip: Array.from(last.result.clip), latent: Array.from(last.result.latent), frames: last.result.frames, height: last.result.height, width: last.result.width, windowSamples: last.result.windowSamples, seconds: last.result.seconds } : null),
  flowProbe: async (steps, seed) => {
    if (!engine) throw new Error('WebGPU is not available');
    const { chain } = chains.has('bundled') ? { chain: null } : await installBundledChain(fs).then((c) => (chains.set('bundled', { flowRun: c.chain.runs.flow, description: c.description }), c));
    const root = chain?.root ?? '/bundled';
    return flowTrainingProbe(engine, fs, { ecg: `${root}/ecg`, vae: `${root}/vae` }, steps, seed, `/probe-${Date.now().toString(36)}`);
  },
  caps: () => engine?.caps ?? null,
  loadedEcg: () => {
    if (!droppedEcg) return null;
    let sum = 0;
    let absSum = 0;
    for (const v of droppedEcg.ecg) {
      sum += v;
      absSum += Math.abs(v);
    }
    return { name: droppedEcg.name, sum, absSum, length: droppedEcg.ecg.length, warnings: droppedEcg.warnings };
  },
};
