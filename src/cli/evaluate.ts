/**
 * `npm run evaluate -- --pred PATH --gt PATH [options]`: compares generated cines with ground truth and
 * writes a JSON report (per clip and aggregate) plus a readable table. See docs/EVALUATION.md.
 */
import { readFileSync } from 'node:fs';
import { Engine } from '../engine/engine';
import { NodeFileSystem } from '../data/node-fs';
import { extractStateDict, readPth, readSafetensors } from '../models/io';
import type { HostTensor } from '../models/module';
import {
  createLpipsScorer, evaluateClipSets, formatReport, loadClipSource, loadSubjectMeta, pooledPixelFeatures,
  type ClipSet, type LpipsScorer, type SubjectMeta, type ValueRange,
} from '../eval/index';

const USAGE = `usage: npm run evaluate -- --pred PATH --gt PATH [options]

  --pred PATH            generated clips: .npy (N,1,T,H,W) | (N,T,H,W) | (T,H,W), or a directory of <id>.npy
  --gt PATH              ground truth: the same forms, or a dataset directory (manifest.json; see --split)
  --split NAME           split of a dataset directory (default test)
  --phantom-meta PATH    subject metadata for the anatomy metrics: meta.json, manifest.json or dataset dir
  --range auto|unit|signed|byte   input value range (default auto: >1.1 = 0-255, min < -0.05 = [-1,1])
  --lpips-weights FILE   LPIPS weights (.safetensors or .pth, lpips key layout, VGG16 or AlexNet)
  --device gpu|cpu       engine for LPIPS (default gpu; cpu = the float64 reference backend, slow)
  --fd-pixels            Fréchet distance on 8x8 average-pooled frames (a sanity statistic, not FID)
  --fid, --fvd           not available in this version (reported and skipped)
  --no-anatomy           skip the LV segmentation metrics
  --limit N              evaluate only the first N matched clips
  --out FILE             JSON report (default: print the table only)
  --rows N               clip rows in the printed table (default 40)
`;

class UsageError extends Error {}

interface Args {
  pred: string;
  gt: string;
  split: string;
  phantomMeta: string | null;
  range: ValueRange | 'auto';
  lpipsWeights: string | null;
  device: 'gpu' | 'cpu';
  fdPixels: boolean;
  fid: boolean;
  fvd: boolean;
  anatomy: boolean;
  limit: number | null;
  out: string | null;
  rows: number;
}

const FLAGS_WITH_VALUE = ['--pred', '--gt', '--split', '--phantom-meta', '--range', '--lpips-weights', '--device', '--limit', '--out', '--rows'];
const SWITCHES = ['--fd-pixels', '--fid', '--fvd', '--no-anatomy'];

function parseEvaluateArgs(argv: string[]): Args {
  const values = new Map<string, string>();
  const switches = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (FLAGS_WITH_VALUE.includes(a)) {
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
      values.set(a, argv[++i]);
    } else if (SWITCHES.includes(a)) switches.add(a);
    else throw new UsageError(`unknown argument '${a}'`);
  }
  const pred = values.get('--pred');
  const gt = values.get('--gt');
  if (!pred || !gt) throw new UsageError('--pred and --gt are required');
  const range = (values.get('--range') ?? 'auto') as Args['range'];
  if (!['auto', 'unit', 'signed', 'byte'].includes(range)) throw new UsageError(`--range must be auto, unit, signed or byte (got ${range})`);
  const device = (values.get('--device') ?? 'gpu') as Args['device'];
  if (!['gpu', 'cpu'].includes(device)) throw new UsageError(`--device must be gpu or cpu (got ${device})`);
  const limit = values.has('--limit') ? Number(values.get('--limit')) : null;
  if (limit !== null && !(Number.isInteger(limit) && limit > 0)) throw new UsageError('--limit must be a positive integer');
  const rows = Number(values.get('--rows') ?? 40);
  return {
    pred, gt, split: values.get('--split') ?? 'test', phantomMeta: values.get('--phantom-meta') ?? null, range,
    lpipsWeights: values.get('--lpips-weights') ?? null, device, fdPixels: switches.has('--fd-pixels'), fid: switches.has('--fid'),
    fvd: switches.has('--fvd'), anatomy: !switches.has('--no-anatomy'), limit, out: values.get('--out') ?? null, rows: Number.isFinite(rows) ? rows : 40,
  };
}

function pick(set: ClipSet, rows: number[]): ClipSet {
  return { ...set, clips: rows.map((r) => set.clips[r]), ids: rows.map((r) => set.ids[r]) };
}

/** Pairs prediction and ground-truth clips: by id when both have ids, else by row. */
function matchClips(pred: ClipSet, gt: ClipSet, notes: string[]): { pred: ClipSet; gt: ClipSet; gtRows: number[] } {
  const predIds = pred.ids.every((id) => id !== null);
  const gtIds = gt.ids.every((id) => id !== null);
  if (predIds && gtIds) {
    const gtRow = new Map(gt.ids.map((id, r) => [id!, r]));
    const missing = pred.ids.filter((id) => !gtRow.has(id!));
    if (missing.length) throw new Error(`${missing.length} predicted subject(s) have no ground truth: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`);
    const gtRows = pred.ids.map((id) => gtRow.get(id!)!);
    if (gtRows.length < gt.clips.length) notes.push(`matched ${gtRows.length} of ${gt.clips.length} ground-truth clips by id`);
    return { pred, gt: pick(gt, gtRows), gtRows };
  }
  if (pred.clips.length > gt.clips.length) throw new Error(`${pred.clips.length} predicted clips but only ${gt.clips.length} ground-truth clips`);
  const gtRows = pred.clips.map((_, r) => r);
  if (pred.clips.length < gt.clips.length) notes.push(`matched by row: the first ${pred.clips.length} of ${gt.clips.length} ground-truth clips`);
  return { pred: predIds ? pred : { ...pred, ids: pred.ids.map((id, r) => id ?? gt.ids[r]) }, gt: pick(gt, gtRows), gtRows };
}

async function loadLpipsWeights(path: string): Promise<Map<string, HostTensor>> {
  const bytes = new Uint8Array(readFileSync(path));
  if (path.toLowerCase().endsWith('.safetensors')) return readSafetensors(bytes, { name: path }).tensors as Map<string, HostTensor>;
  return extractStateDict(readPth(bytes, { name: path })) as unknown as Map<string, HostTensor>;
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const args = parseEvaluateArgs(argv);
  const fs = new NodeFileSystem();
  const notes: string[] = [];
  const predSource = await loadClipSource(fs, args.pred, { split: args.split, range: args.range });
  const gtSource = await loadClipSource(fs, args.gt, { split: args.split, range: args.range });
  process.stderr.write(`pred: ${predSource.description}, range ${predSource.set.range}\ngt:   ${gtSource.description}, range ${gtSource.set.range}\n`);
  let { pred, gt, gtRows } = matchClips(predSource.set, gtSource.set, notes);
  if (args.limit !== null && args.limit < pred.clips.length) {
    const rows = Array.from({ length: args.limit }, (_, r) => r);
    pred = pick(pred, rows);
    gt = pick(gt, rows);
    gtRows = gtRows.slice(0, args.limit);
  }

  // Metadata by id where ids exist, else by ground-truth row.
  let meta: (SubjectMeta | null)[] | undefined;
  const metaList = args.phantomMeta ? await loadSubjectMeta(fs, args.phantomMeta) : gtSource.meta;
  if (metaList) {
    const byId = new Map(metaList.map((m) => [m.id, m]));
    meta = gtRows.map((row, k) => {
      const id = gt.ids[k] ?? pred.ids[k];
      return (id !== null && byId.get(id)) || (id === null && metaList.length === gtSource.set.clips.length ? metaList[row] : null) || null;
    });
    const found = meta.filter(Boolean).length;
    if (found < meta.length) notes.push(`metadata found for ${found} of ${meta.length} clips`);
  }

  for (const [flag, name] of [[args.fid, 'FID (Inception-v3 frame features)'], [args.fvd, 'FVD (I3D clip features)']] as const) {
    if (!flag) continue;
    const message = `${name} is not available in this version: its feature network is not implemented; skipped`;
    process.stderr.write(`${message}\n`);
    notes.push(message);
  }

  let engine: Engine | null = null;
  let lpips: LpipsScorer | null = null;
  try {
    if (args.lpipsWeights) {
      const weights = await loadLpipsWeights(args.lpipsWeights);
      engine = args.device === 'cpu' ? Engine.cpu() : await Engine.webgpu();
      lpips = createLpipsScorer(engine, weights);
      process.stderr.write(`LPIPS: ${lpips.backbone} weights from ${args.lpipsWeights} on ${engine.kind}\n`);
      if (lpips.backbone === 'vgg16') notes.push('LPIPS uses VGG16 features; the reference evaluation used AlexNet (values are not comparable)');
    }
    const started = Date.now();
    const report = await evaluateClipSets(pred, gt, {
      meta,
      anatomy: args.anatomy,
      lpips,
      frechet: args.fdPixels ? [{ extractor: pooledPixelFeatures(8), unit: 'frame' }] : [],
      onProgress: (done, total) => {
        if (done === total || done % 10 === 0) process.stderr.write(`\r${done}/${total} clips`);
      },
    });
    process.stderr.write(` (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
    report.notes.unshift(...notes);
    process.stdout.write(`${formatReport(report, args.rows)}\n`);
    if (args.out) {
      // Non-finite numbers (identical-frame PSNR) become null in JSON.
      await fs.writeFile(args.out, JSON.stringify(report, null, 1));
      process.stderr.write(`report written to ${args.out}\n`);
    }
  } finally {
    lpips?.dispose();
    engine?.destroy();
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    if (e instanceof UsageError) process.stderr.write(`error: ${e.message}\n\n${USAGE}`);
    else process.stderr.write(`error: ${(e as Error).message}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
