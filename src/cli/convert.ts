/**
 * Weight conversion command line (npm run convert -- ...):
 *   convert IN.pth OUT.safetensors [--key NAME] [--strip-prefix P] [--keep-others] [--dtype f32|f16]
 *   convert IN.safetensors OUT.safetensors --dtype f32|f16
 *   convert IN(.pth|.pt|.safetensors) --list [--key NAME] [--strip-prefix P]
 * Only float tensors are cast by --dtype; integer buffers (num_batches_tracked) keep their type.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, basename } from 'node:path';
import {
  WeightsError, readPth, readSafetensors, writeSafetensors, extractStateDict, stripPrefix, describeEntries,
  summarizeStateDict, castTensor, type StateDict, type HostDType,
} from '../models/io/index';
import { assertFiniteWeights } from '../models/io/state-dict';
import { isFloatDType } from '../models/io/tensor';

interface ConvertArgs {
  input: string;
  output?: string;
  key?: string;
  stripPrefix?: string;
  keepOthers: boolean;
  dtype?: 'f32' | 'f16';
  list: boolean;
  allowNonFinite: boolean;
}

const USAGE = `usage: npm run convert -- IN [OUT] [--key NAME] [--strip-prefix P] [--keep-others] [--dtype f32|f16] [--list] [--allow-nonfinite-weights]
  IN   a torch.save checkpoint (.pth/.pt/.bin, zip format) or a .safetensors file
  OUT  the .safetensors file to write (omit with --list)`;

function parseArgs(argv: string[]): ConvertArgs {
  const positional: string[] = [];
  const args: ConvertArgs = { input: '', keepOthers: false, list: false, allowNonFinite: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === '--key') args.key = value();
    else if (a === '--strip-prefix') args.stripPrefix = value();
    else if (a === '--keep-others') args.keepOthers = true;
    else if (a === '--list') args.list = true;
    else if (a === '--allow-nonfinite-weights') args.allowNonFinite = true;
    else if (a === '--dtype') {
      const d = value();
      if (d !== 'f32' && d !== 'f16') throw new Error(`--dtype must be f32 or f16, got ${d}`);
      args.dtype = d;
    } else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (a.startsWith('--')) throw new Error(`unknown option ${a}\n${USAGE}`);
    else positional.push(a);
  }
  if (positional.length < 1 || positional.length > 2) throw new Error(USAGE);
  [args.input, args.output] = positional;
  if (!args.list && !args.output) throw new Error(`missing OUT (or use --list)\n${USAGE}`);
  return args;
}

function isSafetensorsName(path: string): boolean {
  return path.toLowerCase().endsWith('.safetensors');
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function summaryLine(stateDict: StateDict): string {
  const s = summarizeStateDict(stateDict);
  const dtypes = Object.entries(s.dtypes).map(([d, n]) => `${d}×${n}`).join(', ');
  return `${s.tensors} tensors, ${s.parameters.toLocaleString('en-US')} parameters, ${formatBytes(s.bytes)} (${dtypes || 'none'})`;
}

/** Reads IN and applies --key / --strip-prefix; returns the tensors plus metadata to carry over. */
function loadStateDict(args: ConvertArgs, bytes: Uint8Array): { stateDict: StateDict; metadata: Record<string, string> } {
  const name = basename(args.input);
  let stateDict: StateDict;
  let metadata: Record<string, string> = {};
  if (isSafetensorsName(args.input)) {
    if (args.key) throw new Error('--key applies to .pth checkpoints, not safetensors');
    const file = readSafetensors(bytes, { name });
    stateDict = file.tensors;
    metadata = { ...file.metadata };
  } else {
    const pth = readPth(bytes, { name });
    if (args.list) {
      console.log(`${name}: top level`);
      for (const [k, d] of describeEntries(pth)) console.log(`  ${k}: ${d}`);
    }
    stateDict = extractStateDict(pth, { prefer: args.key });
    metadata = { format: 'pt', source: name };
    if (args.key) metadata.source_key = args.key;
  }
  if (args.stripPrefix !== undefined) {
    const before = stateDict.size;
    stateDict = stripPrefix(stateDict, args.stripPrefix, { keepOthers: args.keepOthers });
    if (stateDict.size === 0) throw new WeightsError(`no key starts with '${args.stripPrefix}' (of ${before} keys)`);
    metadata.stripped_prefix = args.stripPrefix;
  }
  return { stateDict, metadata };
}

function castFloats(stateDict: StateDict, dtype: HostDType): StateDict {
  const out: StateDict = new Map();
  for (const [k, t] of stateDict) out.set(k, isFloatDType(t.dtype) ? castTensor(t, dtype) : t);
  return out;
}

export function runConvert(argv: string[]): void {
  const args = parseArgs(argv);
  const bytes = new Uint8Array(readFileSync(args.input));
  let { stateDict, metadata } = loadStateDict(args, bytes);
  if (args.list) {
    console.log(`${basename(args.input)}: state dict`);
    for (const [k, t] of stateDict) console.log(`  ${k}\t${t.dtype}\t[${t.shape.join(', ')}]`);
    console.log(summaryLine(stateDict));
    if (!args.output) return;
  }
  if (!isSafetensorsName(args.output!)) throw new Error(`OUT must end in .safetensors, got ${args.output}`);
  // A diverged run's checkpoint, or a cast to f16 that overflows (|x| > 65504 → Inf), must not become a
  // weights file silently.
  const finite = (source: string) => assertFiniteWeights(stateDict, { source, allowNonFinite: args.allowNonFinite, optOut: '--allow-nonfinite-weights' });
  finite(basename(args.input));
  if (args.dtype) {
    stateDict = castFloats(stateDict, args.dtype);
    metadata.dtype = args.dtype;
    finite(`${basename(args.input)} after the cast to ${args.dtype} (values beyond the ${args.dtype} range became Inf)`);
  }
  const out = writeSafetensors(stateDict, metadata);
  mkdirSync(dirname(args.output!), { recursive: true });
  writeFileSync(args.output!, out);
  console.log(`wrote ${args.output}: ${summaryLine(stateDict)}; file ${formatBytes(out.length)}`);
}

const invokedDirectly = process.argv[1] !== undefined && /convert\.[cm]?[jt]s$/.test(process.argv[1]);
if (invokedDirectly) {
  try {
    runConvert(process.argv.slice(2));
  } catch (err) {
    console.error(err instanceof WeightsError ? `error: ${err.message}` : (err as Error).message);
    process.exit(1);
  }
}
