/**
 * `npm run summary -- --config tiny|small|paper [--model NAME] [--depth N]`: per model, a layer table
 * (module path, type, parameter shapes, count) and the totals. Models are built on the float64 CPU
 * backend, so no GPU is needed (the paper config takes ~1 GB of host memory and some seconds).
 */
import { Engine } from '../engine/engine';
import { Generator } from '../kernels/random';
import type { Module } from '../models/module';
import { EcgDecoder, EcgEncoder, PAMAE_CONFIGS } from '../models/pamae';
import { VAE3d, VAE_CONFIGS } from '../models/vae3d';
import { PatchGan3d } from '../models/discriminator3d';
import { EcgDiT, DIT_CONFIGS } from '../models/dit';

type ConfigName = 'tiny' | 'small' | 'paper';

const MODELS: Record<string, (config: ConfigName, ctx: { backend: Engine['backend']; gen: Generator }) => Module> = {
  'ecg-encoder': (c, ctx) => new EcgEncoder(ctx, PAMAE_CONFIGS[c].encoder),
  'ecg-decoder': (c, ctx) => new EcgDecoder(ctx, PAMAE_CONFIGS[c].decoder),
  vae: (c, ctx) => new VAE3d(ctx, VAE_CONFIGS[c]),
  discriminator: (c, ctx) => new PatchGan3d(ctx, VAE_CONFIGS[c].discriminator),
  dit: (c, ctx) => new EcgDiT(ctx, DIT_CONFIGS[c]),
};

function parseArgs(argv: string[]): { config: ConfigName; model: string | null; depth: number } {
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const config = (get('--config') ?? 'tiny') as ConfigName;
  if (!['tiny', 'small', 'paper'].includes(config)) throw new Error(`--config must be tiny, small or paper (got ${config})`);
  const model = get('--model') ?? null;
  if (model && !MODELS[model]) throw new Error(`--model must be one of ${Object.keys(MODELS).join(', ')}`);
  return { config, model, depth: Number(get('--depth') ?? 3) };
}

const fmt = (n: number) => n.toLocaleString('en-US');

/** Rows aggregated at `depth` levels of the module tree (deeper modules fold into their ancestor). */
function layerTable(m: Module, depth: number): string[] {
  const rows = new Map<string, { type: string; shapes: string[]; count: number; trainable: number }>();
  const typeOf = new Map(m.namedModules().map(([name, mod]) => [name, mod.constructor.name]));
  for (const [name, t] of m.namedParameters()) {
    const parts = name.split('.');
    const key = parts.slice(0, Math.min(depth, parts.length - 1)).join('.') || '(root)';
    const row = rows.get(key) ?? { type: typeOf.get(key === '(root)' ? '' : key) ?? '', shapes: [], count: 0, trainable: 0 };
    if (parts.length - 1 <= depth) row.shapes.push(`${parts[parts.length - 1]} [${t.shape.join('×')}]`);
    row.count += t.size;
    if (t.requiresGrad) row.trainable += t.size;
    rows.set(key, row);
  }
  const width = Math.max(...[...rows.keys()].map((k) => k.length), 6);
  const out = [`${'module'.padEnd(width)}  ${'type'.padEnd(18)} ${'parameters'.padStart(12)}  shapes`];
  for (const [key, r] of rows) {
    const shapes = r.shapes.length > 4 ? `${r.shapes.slice(0, 4).join(', ')}, …` : r.shapes.join(', ');
    out.push(`${key.padEnd(width)}  ${r.type.padEnd(18)} ${fmt(r.count).padStart(12)}${r.trainable !== r.count ? ` (${fmt(r.trainable)} trainable)` : ''}  ${shapes}`);
  }
  return out;
}

async function main(): Promise<void> {
  const { config, model, depth } = parseArgs(process.argv.slice(2));
  const engine = Engine.cpu();
  const totals: string[] = [];
  for (const [name, build] of Object.entries(MODELS)) {
    if (model && name !== model) continue;
    const m = build(config, { backend: engine.backend, gen: new Generator(0) });
    console.log(`\n## ${name} (${config})`);
    for (const line of layerTable(m, depth)) console.log(line);
    const all = m.numParameters();
    const trainable = m.numParameters(true);
    const buffers = m.namedBuffers().reduce((a, [, t]) => a + t.size, 0);
    const line = `${name}: ${fmt(trainable)} trainable parameters${all !== trainable ? `, ${fmt(all)} in the state dict` : ''}${buffers ? `, ${fmt(buffers)} buffer values` : ''}`;
    console.log(line);
    totals.push(line);
    m.dispose();
  }
  console.log(`\n${totals.join('\n')}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
