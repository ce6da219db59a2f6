/**
 * A trained chain (PA-MAE run + VAE run + flow run) packed for the web: a JSON manifest with the three
 * runs' config.json contents and a list of safetensors assets, each the byte-exact copy of one run file.
 * `installChain` writes it into a TrainFileSystem (in memory in a page) as three run directories under one
 * root, rewriting the path fields of the configs to that root, so `FlowPipeline.load` and stage `flow` read
 * it exactly as they read runs on disk. `packChain` does the reverse from run directories (Node tool,
 * web/tools/make-tiny-chain.ts). Browser-safe: only TrainFileSystem and plain data.
 */
import { joinPath } from '../data/fs';
import type { TrainFileSystem } from '../train/files';

export const CHAIN_FORMAT = 'ecgflowcmr-web-chain';
export const CHAIN_VERSION = 1;

export type RunKind = 'ecg' | 'vae' | 'flow';
export const RUN_KINDS: readonly RunKind[] = ['ecg', 'vae', 'flow'];

/** Files of each run that inference and flow training read (anything else in a run directory is left out). */
export const CHAIN_FILES: Record<RunKind, { name: string; optional?: boolean }[]> = {
  ecg: [{ name: 'best-weights.safetensors' }],
  // Generation needs no latents; runs imported from reference checkpoints (src/platform/import.ts) have none.
  vae: [{ name: 'best-weights.safetensors' }, { name: 'latents.safetensors', optional: true }, { name: 'template.safetensors' }, { name: 'val-latents.safetensors', optional: true }],
  flow: [{ name: 'best-weights.safetensors' }],
};

export interface ChainAsset {
  run: RunKind;
  /** File name inside the run directory. */
  name: string;
  /** Asset file name beside the manifest. */
  asset: string;
  bytes: number;
}

export interface ChainManifest {
  format: typeof CHAIN_FORMAT;
  version: number;
  description: string;
  created: string;
  /** The runs' config.json objects; run directories inside read `$chain/ecg`, `$chain/vae`, `$chain/flow`. */
  configs: Record<RunKind, Record<string, unknown>>;
  assets: ChainAsset[];
  /** Free-form facts for the page (parameter counts, training losses, geometry). */
  info?: Record<string, unknown>;
}

/**
 * Stands for the chain root in stored configs. A bare run name would not do: `stage: 'vae'` must stay as
 * it is while `vaeRun: '<dir>'` moves.
 */
export const CHAIN_ROOT_TOKEN = '$chain';

/** Applies `replace` to every string inside a JSON value. */
function rewritePaths(value: unknown, replace: (s: string) => string): unknown {
  if (typeof value === 'string') return replace(value);
  if (Array.isArray(value)) return value.map((v) => rewritePaths(v, replace));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = rewritePaths(v, replace);
    return out;
  }
  return value;
}

/** A prefix replacer for run directories: `dir` and `dir/...` become `to` and `to/...`. */
function dirReplacer(mapping: [string, string][]): (s: string) => string {
  return (s) => {
    for (const [from, to] of mapping) {
      const f = from.replace(/\/+$/, '');
      if (s === f) return to;
      if (s.startsWith(f + '/')) return to + s.slice(f.length);
    }
    return s;
  };
}

export function parseChainManifest(text: string, source = 'manifest.json'): ChainManifest {
  const m = JSON.parse(text) as ChainManifest;
  if (m.format !== CHAIN_FORMAT) throw new Error(`${source}: not an ECGFlowCMR web chain (format '${String(m.format)}')`);
  if (m.version !== CHAIN_VERSION) throw new Error(`${source}: chain version ${m.version}, this page reads ${CHAIN_VERSION}`);
  for (const kind of RUN_KINDS) if (!m.configs?.[kind]) throw new Error(`${source}: the ${kind} run's configuration is missing`);
  return m;
}

export interface InstalledChain {
  root: string;
  runs: Record<RunKind, string>;
}

/**
 * Writes the chain into `fs` under `root`: `<root>/<kind>/config.json` and the assets, read with `readAsset`
 * (fetch in a page, readFile in Node, a dropped File). Sizes are checked against the manifest.
 */
export async function installChain(fs: TrainFileSystem, manifest: ChainManifest, readAsset: (asset: string) => Promise<Uint8Array>, root = '/chain'): Promise<InstalledChain> {
  const runs = { ecg: joinPath(root, 'ecg'), vae: joinPath(root, 'vae'), flow: joinPath(root, 'flow') };
  const toRoot = dirReplacer([[CHAIN_ROOT_TOKEN, root]]);
  await fs.mkdir(root);
  for (const kind of RUN_KINDS) {
    await fs.mkdir(runs[kind]);
    const config = rewritePaths(manifest.configs[kind], toRoot);
    await fs.writeFile(joinPath(runs[kind], 'config.json'), JSON.stringify(config, null, 1) + '\n');
  }
  await Promise.all(
    manifest.assets.map(async (a) => {
      const bytes = await readAsset(a.asset);
      if (bytes.length !== a.bytes) throw new Error(`${a.asset}: ${bytes.length} bytes, the manifest says ${a.bytes}`);
      await fs.writeFile(joinPath(runs[a.run], a.name), bytes);
    }),
  );
  return { root, runs };
}

/**
 * Packs three run directories of `fs` into a manifest and its assets (name → bytes). Configs are stored
 * with the run directories replaced by `$chain/<kind>`, so they can be installed anywhere.
 */
export async function packChain(
  fs: TrainFileSystem,
  runDirs: Record<RunKind, string>,
  options: { description: string; info?: Record<string, unknown> },
): Promise<{ manifest: ChainManifest; files: Map<string, Uint8Array> }> {
  const toRelative = dirReplacer(RUN_KINDS.map((k) => [runDirs[k], `${CHAIN_ROOT_TOKEN}/${k}`]));
  const configs = {} as Record<RunKind, Record<string, unknown>>;
  const assets: ChainAsset[] = [];
  const files = new Map<string, Uint8Array>();
  for (const kind of RUN_KINDS) {
    const text = new TextDecoder().decode(await fs.readFile(joinPath(runDirs[kind], 'config.json')));
    configs[kind] = rewritePaths(JSON.parse(text), toRelative) as Record<string, unknown>;
    for (const file of CHAIN_FILES[kind]) {
      const path = joinPath(runDirs[kind], file.name);
      if (!(await fs.exists(path))) {
        if (file.optional) continue;
        throw new Error(`${path}: not found (a chain needs the finished ${kind} run)`);
      }
      const bytes = await fs.readFile(path);
      const asset = `${kind}-${file.name}`;
      files.set(asset, bytes);
      assets.push({ run: kind, name: file.name, asset, bytes: bytes.length });
    }
  }
  const manifest: ChainManifest = { format: CHAIN_FORMAT, version: CHAIN_VERSION, description: options.description, created: new Date().toISOString(), configs, assets, info: options.info };
  return { manifest, files };
}
