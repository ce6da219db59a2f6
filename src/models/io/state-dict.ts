/**
 * Picking the tensors out of a checkpoint, with the reference implementation's conventions:
 * training scripts wrap the weights in a dict (`model_state_dict`, `encoder_state_dict`, ...)
 * next to epoch counters, optimizer state and args; the stage-3 flow loads the stage-1 ECG
 * encoder by keeping only the `encoder.`-prefixed keys of the PA-MAE checkpoint.
 */
import { WeightsError } from './errors';
import { PyObject, type PyValue } from './pickle';
import type { PthFile } from './pth';
import { HostTensor } from './tensor';

/** Parameter/buffer name → tensor, in file order. */
export type StateDict = Map<string, HostTensor>;

/** Keys tried, in this order, when the top level is not itself a state dict. */
export const STATE_DICT_SEARCH_ORDER = ['model_state_dict', 'state_dict', 'model', 'encoder_state_dict'] as const;

export const ENCODER_PREFIX = 'encoder.';

/** Top-level module names of the ECG encoder (REFERENCE_SPEC §6), used to sanity-check a load. */
const ECG_ENCODER_MODULES = ['stem', 'layer1', 'layer2', 'layer3', 'layer4', 'feature_proj', 'phase_head'];

function describe(value: PyValue): string {
  if (value === null) return 'None';
  if (value instanceof HostTensor) return `tensor ${value.dtype}[${value.shape.join(', ')}]`;
  if (value instanceof Map) return `dict (${value.size} entries)`;
  if (value instanceof PyObject) return `object ${value.className}`;
  if (Array.isArray(value)) return `${Object.isFrozen(value) ? 'tuple' : 'list'} (${value.length})`;
  if (value instanceof Uint8Array) return `bytes (${value.length})`;
  return typeof value;
}

/** True for a non-empty dict whose keys are strings and whose values are all tensors. */
export function isStateDict(value: PyValue): value is Map<string, HostTensor> {
  if (!(value instanceof Map) || value.size === 0) return false;
  for (const [k, v] of value) if (typeof k !== 'string' || !(v instanceof HostTensor)) return false;
  return true;
}

/** Looks up a string key in a rebuilt Python dict (or the attributes of an object). */
export function getEntry(container: PyValue, key: string): PyValue | undefined {
  if (container instanceof Map) return container.get(key);
  if (container instanceof PyObject) return container.attributes.get(key);
  return undefined;
}

function rootOf(source: PthFile | PyValue): PyValue {
  return source !== null && typeof source === 'object' && 'root' in source && 'archiveName' in source ? (source as PthFile).root : (source as PyValue);
}

function asStateDict(value: PyValue, where: string): StateDict {
  if (!(value instanceof Map)) throw new WeightsError(`${where} is a ${describe(value)}, not a dict of tensors`);
  const out: StateDict = new Map();
  for (const [k, v] of value) {
    if (typeof k !== 'string') throw new WeightsError(`${where} has a non-string key ${String(k)}`);
    if (!(v instanceof HostTensor)) throw new WeightsError(`${where}['${k}'] is a ${describe(v)}, not a tensor`);
    out.set(k, v);
  }
  return out;
}

export interface ExtractOptions {
  /** Take the state dict from this key (dots walk nested dicts: 'checkpoint.model'). */
  prefer?: string;
}

/**
 * Returns the checkpoint's state dict: the `prefer` key if given; else the top level if it is a
 * dict of tensors; else the first of STATE_DICT_SEARCH_ORDER present as a dict of tensors.
 */
export function extractStateDict(source: PthFile | PyValue, options: ExtractOptions = {}): StateDict {
  const root = rootOf(source);
  if (options.prefer) {
    let value: PyValue | undefined = root;
    for (const part of options.prefer.split('.')) {
      const next: PyValue | undefined = getEntry(value ?? null, part);
      if (next === undefined) {
        throw new WeightsError(`checkpoint has no key '${options.prefer}' (top-level keys: ${listKeys(root).join(', ') || 'none'})`);
      }
      value = next;
    }
    return asStateDict(value ?? null, `checkpoint['${options.prefer}']`);
  }
  if (isStateDict(root)) return asStateDict(root, 'checkpoint');
  for (const key of STATE_DICT_SEARCH_ORDER) {
    const value = getEntry(root, key);
    if (value !== undefined && isStateDict(value)) return asStateDict(value, `checkpoint['${key}']`);
  }
  throw new WeightsError(
    `no state dict found: the top level is a ${describe(root)} and none of ${STATE_DICT_SEARCH_ORDER.join(', ')} holds a dict of tensors` +
      ` (top-level keys: ${listKeys(root).join(', ') || 'none'}); pick one with the 'prefer' option / --key`,
  );
}

function listKeys(value: PyValue): string[] {
  if (value instanceof Map) return [...value.keys()].map((k) => String(k));
  if (value instanceof PyObject) return [...value.attributes.keys()].map((k) => String(k));
  return [];
}

/** Keys of a checkpoint's top level with a short description of each value (for --list). */
export function describeEntries(source: PthFile | PyValue): [string, string][] {
  const root = rootOf(source);
  if (!(root instanceof Map)) return [['<root>', describe(root)]];
  return [...root.entries()].map(([k, v]) => [String(k), describe(v)]);
}

export interface StripPrefixOptions {
  /** Keep keys without the prefix unchanged (default: drop them, as the reference loader does). */
  keepOthers?: boolean;
}

/** Removes `prefix` from every key that has it; other keys are dropped unless keepOthers. */
export function stripPrefix(stateDict: StateDict, prefix: string, options: StripPrefixOptions = {}): StateDict {
  const out: StateDict = new Map();
  for (const [k, v] of stateDict) {
    if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
    else if (options.keepOthers) out.set(k, v);
  }
  return out;
}

export interface EcgEncoderOptions {
  /**
   * 'pamae' (default, what the reference's train_flow.py and infer_flow.py do): the
   * `encoder.`-prefixed keys of `model_state_dict`, prefix stripped.
   * 'finetuned': the `encoder_state_dict` a flow checkpoint stores (the encoder the DiT was
   * actually trained with; the reference inference ignores it, see REFERENCE_SPEC §9.2).
   */
  source?: 'pamae' | 'finetuned';
}

/**
 * The ECG encoder weights from a checkpoint. Unlike the reference (which loads non-strictly and
 * silently keeps a random encoder when nothing matches, e.g. given a flow checkpoint), this
 * throws when no encoder keys are found.
 */
export function extractEcgEncoderStateDict(source: PthFile | PyValue, options: EcgEncoderOptions = {}): StateDict {
  const root = rootOf(source);
  let encoder: StateDict;
  if (options.source === 'finetuned') {
    encoder = extractStateDict(root, { prefer: 'encoder_state_dict' });
  } else {
    const modelValue = getEntry(root, 'model_state_dict');
    const full = modelValue !== undefined ? asStateDict(modelValue, "checkpoint['model_state_dict']") : extractStateDict(root);
    encoder = stripPrefix(full, ENCODER_PREFIX);
    if (encoder.size === 0) {
      const hint = getEntry(root, 'encoder_state_dict') !== undefined ? " (this looks like a flow checkpoint: use source 'finetuned')" : '';
      throw new WeightsError(`no '${ENCODER_PREFIX}'-prefixed keys in the checkpoint's state dict; is this a PA-MAE checkpoint?${hint}`);
    }
  }
  const unknown = [...encoder.keys()].filter((k) => !ECG_ENCODER_MODULES.includes(k.split('.')[0]));
  if (unknown.length === encoder.size) {
    throw new WeightsError(`none of the ${encoder.size} keys belongs to the ECG encoder (first: '${unknown[0]}')`);
  }
  return encoder;
}

/** A tensor whose data is plain float32 values: what engine-side loaders consume. */
export type Float32HostTensor = HostTensor & { readonly dtype: 'f32'; readonly data: Float32Array };

/**
 * Every tensor as float32 values (f16/bf16 decoded, f64 rounded, int buffers such as
 * num_batches_tracked converted). Use this before handing weights to code that reads `data` as
 * numbers: raw f16/bf16 bit patterns and BigInt64Array must not reach it.
 */
export function toFloat32StateDict(stateDict: StateDict): Map<string, Float32HostTensor> {
  const out = new Map<string, Float32HostTensor>();
  for (const [k, t] of stateDict) {
    out.set(k, (t.dtype === 'f32' ? t : new HostTensor('f32', t.shape, t.toFloat32())) as Float32HostTensor);
  }
  return out;
}

export interface StateDictSummary {
  tensors: number;
  parameters: number;
  bytes: number;
  dtypes: Record<string, number>;
}

export function summarizeStateDict(stateDict: StateDict): StateDictSummary {
  const summary: StateDictSummary = { tensors: 0, parameters: 0, bytes: 0, dtypes: {} };
  for (const t of stateDict.values()) {
    summary.tensors++;
    summary.parameters += t.numel;
    summary.bytes += t.byteLength;
    summary.dtypes[t.dtype] = (summary.dtypes[t.dtype] ?? 0) + 1;
  }
  return summary;
}

/** Where a non-finite value sits: the tensor, how many of its values are NaN/±Inf, and the first one. */
export interface NonFiniteReport {
  key: string;
  count: number;
  numel: number;
  firstIndex: number;
  firstValue: number;
}

/**
 * The first tensor of `stateDict` that holds a NaN or ±Inf (float dtypes only; integer buffers such as
 * num_batches_tracked cannot), or null when every value is finite.
 */
export function findNonFinite(stateDict: Iterable<[string, HostTensor]>): NonFiniteReport | null {
  for (const [key, t] of stateDict) {
    if (t.dtype !== 'f32' && t.dtype !== 'f64' && t.dtype !== 'f16' && t.dtype !== 'bf16') continue;
    const values = t.dtype === 'f32' || t.dtype === 'f64' ? (t.data as Float32Array | Float64Array) : t.toFloat32();
    let count = 0;
    let firstIndex = -1;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      // v - v is 0 for every finite number and NaN for NaN and ±Inf: one test for both.
      if (v - v !== 0) {
        if (firstIndex < 0) firstIndex = i;
        count++;
      }
    }
    if (count) return { key, count, numel: values.length, firstIndex, firstValue: values[firstIndex] };
  }
  return null;
}

/**
 * Weights with NaN or ±Inf values: a diverged training run saved them. Loading them would only produce
 * NaN outputs (an all-black clip after clamping), so loaders refuse them unless told otherwise.
 */
export class NonFiniteWeightsError extends WeightsError {
  constructor(readonly source: string, readonly report: NonFiniteReport, optOut: string) {
    super(
      `${source}: tensor '${report.key}' holds ${report.count} non-finite value(s) of ${report.numel} ` +
        `(first at index ${report.firstIndex}: ${report.firstValue}); the run that wrote it diverged. ` +
        `Retrain (lower --lr, or --on-nonfinite stop keeps such weights from being saved) or pass ${optOut} to load it anyway`,
    );
    this.name = 'NonFiniteWeightsError';
  }
}

export interface FiniteCheckOptions {
  /** File (or other origin) named in the error. */
  source: string;
  /** Skip the check (the caller's opt-out flag). */
  allowNonFinite?: boolean;
  /** The opt-out as the user spells it, for the error message (default: the option name). */
  optOut?: string;
}

/** Throws NonFiniteWeightsError naming the file and tensor when a weight is NaN or ±Inf. */
export function assertFiniteWeights(stateDict: Iterable<[string, HostTensor]>, options: FiniteCheckOptions): void {
  if (options.allowNonFinite) return;
  const report = findNonFinite(stateDict);
  if (report) throw new NonFiniteWeightsError(options.source, report, options.optOut ?? 'allowNonFinite: true');
}
