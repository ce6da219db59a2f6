/**
 * Page inputs: ECG recordings (dropped/selected files or a phantom subject) → the 12 × 5000 recording the
 * models take, and trained chains (bundled, dropped files, or trained in the page) → a file system that
 * FlowPipeline.load reads. Files go through the data layer's readers on a MemoryFileSystem, as the CLI's do
 * on disk, so the page accepts exactly what `npm run generate -- --ecg` accepts.
 */
import { MemoryFileSystem } from '../../src/data/fs';
import { generateSubject, phantomId } from '../../src/data/phantom/subject';
import { normalizeClip } from '../../src/data/preprocess/cmr';
import { prepareEcg } from '../../src/data/preprocess/ecg';
import { readEcgFile } from '../../src/data/readers/index';
import { installChain, parseChainManifest, type InstalledChain } from '../../src/platform/chain';
import { resizeCine, type CineGeometry } from '../../src/train/cine-data';
import type { MemoryTrainFileSystem } from '../../src/train/files';

export interface EcgInput {
  name: string;
  /** (12, 5000) mV at 500 Hz. */
  ecg: Float32Array;
  warnings: string[];
  /** Phantom inputs: the rendered cine, at the chain's clip geometry, in [0, 1]. */
  groundTruth?: (geometry: CineGeometry) => Float32Array;
}

export function phantomInput(seed: number, index: number): EcgInput {
  const subject = generateSubject(seed, index, { cine: false });
  return {
    name: phantomId(seed, index),
    ecg: subject.ecg,
    warnings: [],
    groundTruth: (geometry) => resizeCine(normalizeClip(generateSubject(seed, index, { cine: true }).cine!), geometry).map((v) => (v + 1) / 2),
  };
}

const ECG_EXTENSIONS = /\.(csv|tsv|txt|hea|dat|npy|xml|dcm|edf|bdf)$/i;

/**
 * A recording from the given files: a WFDB record needs its .hea and .dat together (the header names
 * the .dat), other formats are one file. The first readable recording wins. `fs` is the sampling rate for
 * files that store none (NPY; CSV without a time column): it is never assumed.
 */
export async function ecgFromFiles(files: File[], options: { fs?: number } = {}): Promise<EcgInput> {
  const usable = files.filter((f) => ECG_EXTENSIONS.test(f.name));
  if (!usable.length) throw new Error(`no ECG file among ${files.map((f) => f.name).join(', ') || 'the dropped items'} (expected .csv, .tsv, .txt, .hea + .dat, .npy, .xml (GE CardioSoft/MUSE, HL7 aECG), .dcm (DICOM ECG), .edf/.bdf)`);
  const fs = new MemoryFileSystem();
  await fs.mkdir('/upload');
  for (const f of usable) await fs.writeFile(`/upload/${f.name}`, new Uint8Array(await f.arrayBuffer()));
  const header = usable.find((f) => /\.hea$/i.test(f.name));
  const dat = usable.find((f) => /\.dat$/i.test(f.name));
  if (dat && !header) throw new Error(`${dat.name}: a WFDB .dat file needs its .hea header; drop both together`);
  const main = header ?? usable[0];
  const recording = await readEcgFile(fs, `/upload/${main.name}`, options.fs !== undefined ? { fs: options.fs } : {});
  const prepared = prepareEcg(recording);
  return { name: main.name.replace(/\.(hea|csv|tsv|txt|npy|xml|dcm|edf|bdf)$/i, ''), ecg: prepared.data, warnings: [...recording.warnings, ...prepared.warnings] };
}

/** The bundled tiny chain: web/assets/tiny-chain/manifest.json and its safetensors, fetched. */
export async function installBundledChain(fs: MemoryTrainFileSystem, base = 'assets/tiny-chain/', root = '/bundled'): Promise<{ chain: InstalledChain; description: string; bytes: number }> {
  const response = await fetch(base + 'manifest.json');
  if (!response.ok) throw new Error(`${base}manifest.json: HTTP ${response.status} (was web/assets/tiny-chain built? see docs/BROWSER.md)`);
  const manifest = parseChainManifest(await response.text(), `${base}manifest.json`);
  const chain = await installChain(fs, manifest, async (asset) => {
    const r = await fetch(base + asset);
    if (!r.ok) throw new Error(`${base}${asset}: HTTP ${r.status}`);
    return new Uint8Array(await r.arrayBuffer());
  }, root);
  return { chain, description: manifest.description, bytes: manifest.assets.reduce((a, x) => a + x.bytes, 0) };
}

/** A chain from dropped files: one manifest.json (web/tools/make-tiny-chain.ts writes it) and the assets it lists. */
export async function installDroppedChain(fs: MemoryTrainFileSystem, files: File[], root: string): Promise<{ chain: InstalledChain; description: string; bytes: number }> {
  const manifestFile = files.find((f) => f.name.endsWith('.json'));
  if (!manifestFile) throw new Error('drop the chain manifest (manifest.json) together with its .safetensors files');
  const manifest = parseChainManifest(await manifestFile.text(), manifestFile.name);
  const byName = new Map(files.map((f) => [f.name, f]));
  const missing = manifest.assets.filter((a) => !byName.has(a.asset)).map((a) => a.asset);
  if (missing.length) throw new Error(`${manifestFile.name} lists files that were not dropped: ${missing.join(', ')}`);
  const chain = await installChain(fs, manifest, async (asset) => new Uint8Array(await byName.get(asset)!.arrayBuffer()), root);
  return { chain, description: manifest.description, bytes: manifest.assets.reduce((a, x) => a + x.bytes, 0) };
}

/** Files of a drop event or a file input. */
export function filesOf(list: FileList | null | undefined): File[] {
  return list ? Array.from(list) : [];
}

/** Wires a drop zone: highlight on drag, `onFiles` on drop. */
export function dropZone(element: HTMLElement, onFiles: (files: File[]) => void): void {
  element.addEventListener('dragover', (e) => {
    e.preventDefault();
    element.classList.add('over');
  });
  element.addEventListener('dragleave', () => element.classList.remove('over'));
  element.addEventListener('drop', (e) => {
    e.preventDefault();
    element.classList.remove('over');
    onFiles(filesOf(e.dataTransfer?.files));
  });
}

/** Starts a download of `bytes` as `name`. */
export function download(bytes: Uint8Array, name: string, type: string): void {
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
