/**
 * `npm run evaluate -- --pred PATH --gt PATH [options]`: compares generated cines with ground truth and
 * writes a JSON report (per clip and aggregate) plus a readable table. See docs/EVALUATION.md.
 */
import { readFileSync } from 'node:fs';
import { Engine } from '../engine/engine';
import { NodeFileSystem } from '../data/node-fs';
import type { HostTensor } from '../models/module';
import {
  createI3dExtractor, createInceptionExtractor, createLpipsScorer, evaluateClipSets, formatReport, FID_INPUT_SIZE, FVD_INPUT_SIZE,
  FVD_MIN_FRAMES, loadClipSource, loadSubjectMeta, pooledPixelFeatures, readWeightFile,
  type ClipSet, type FeatureExtractor, type FeatureNetExtractor, type LpipsScorer, type SubjectMeta, type ValueRange,
} from '../eval/index';

const USAGE = `usage: npm run evaluate -- --pred PATH --gt PATH [options]

  --pred PATH            generated clips: .npy (N,1,T,H,W) | (N,T,H,W) | (T,H,W), or a directory of <id>.npy
  --gt PATH              ground truth: the same forms, or a dataset directory (manifest.json; see --split)
  --split NAME           split of a dataset directory (default test)
  --phantom-meta PATH    subject metadata for the anatomy metrics: meta.json, manifest.json or dataset dir
  --range auto|unit|signed|byte   input value range (default auto: >1.1 = 0-255, min < -0.05 = [-1,1])
  --lpips-weights FILE   LPIPS weights (.safetensors or .pth, lpips key layout, VGG16 or AlexNet)
  --device gpu|cpu       engine for LPIPS, FID and FVD (default gpu; cpu = the float64 reference backend, slow)
  --fd-pixels            Fréchet distance on 8x8 average-pooled frames (a sanity statistic, not FID)
  --fid-weights FILE     FID: torchvision inception_v3 IMAGENET1K_V1 state dict (.pth or .safetensors)
  --fvd-weights FILE     FVD: VideoGPT's I3D i3d_pretrained_400.pt state dict (.pt or .safetensors)
  --fid, --fvd           ask for FID / FVD; without the weights flag they are reported as skipped
  --fid-size N, --fvd-size N   network input size (default 299 / 224, the reference's); other sizes are for
                         smoke tests only and do not give FID / FVD values
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
  fidWeights: string | null;
  fvdWeights: string | null;
  fidSize: number;
  fvdSize: number;
  anatomy: boolean;
  limit: number | null;
  out: string | null;
  rows: number;
}

const FLAGS_WITH_VALUE = [
  '--pred', '--gt', '--split', '--phantom-meta', '--range', '--lpips-weights', '--device', '--limit', '--out', '--rows',
  '--fid-weights', '--fvd-weights', '--fid-size', '--fvd-size',
];
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
  const size = (flag: string, fallback: number) => {
    const v = Number(values.get(flag) ?? fallback);
    if (!(Number.isInteger(v) && v > 0)) throw new UsageError(`${flag} must be a positive integer`);
    return v;
  };
  const fidWeights = values.get('--fid-weights') ?? null;
  const fvdWeights = values.get('--fvd-weights') ?? null;
  return {
    pred, gt, split: values.get('--split') ?? 'test', phantomMeta: values.get('--phantom-meta') ?? null, range,
    lpipsWeights: values.get('--lpips-weights') ?? null, device, fdPixels: switches.has('--fd-pixels'),
    // A weights file implies the metric.
    fid: switches.has('--fid') || fidWeights !== null, fvd: switches.has('--fvd') || fvdWeights !== null, fidWeights, fvdWeights,
    fidSize: size('--fid-size', FID_INPUT_SIZE), fvdSize: size('--fvd-size', FVD_INPUT_SIZE),
    anatomy: !switches.has('--no-anatomy'), limit, out: values.get('--out') ?? null, rows: Number.isFinite(rows) ? rows : 40,
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

const loadWeights = (path: string): Map<string, HostTensor> => readWeightFile(new Uint8Array(readFileSync(path)), path);

interface FrechetRequest {
  extractor: FeatureNetExtractor<unknown>;
  unit: 'frame' | 'clip';
}

/** The FID / FVD extractors the arguments ask for; a request that cannot run is reported through `say`. */
async function featureNetworks(args: Args, getEngine: () => Promise<Engine>, frames: number, clips: number, say: (message: string) => void): Promise<FrechetRequest[]> {
  const metrics = [
    { name: 'FID (Inception-v3 frame features)', wanted: args.fid, weights: args.fidWeights, flag: '--fid-weights', size: args.fidSize, reference: FID_INPUT_SIZE, unit: 'frame', dims: 2048, samples: frames * clips, create: createInceptionExtractor },
    { name: 'FVD (I3D clip features)', wanted: args.fvd, weights: args.fvdWeights, flag: '--fvd-weights', size: args.fvdSize, reference: FVD_INPUT_SIZE, unit: 'clip', dims: 1024, samples: clips, create: createI3dExtractor },
  ] as const;
  const out: FrechetRequest[] = [];
  for (const m of metrics) {
    if (!m.wanted) continue;
    if (!m.weights) {
      say(`${m.name} skipped: no weights given (${m.flag} FILE)`);
      continue;
    }
    if (m.unit === 'clip' && m.size === FVD_INPUT_SIZE && frames < FVD_MIN_FRAMES) {
      say(`${m.name} skipped: clips have ${frames} frames, the I3D's final average pool needs at least ${FVD_MIN_FRAMES}`);
      continue;
    }
    const engine = await getEngine();
    const label = m.name.slice(0, 3);
    const onProgress = (done: number, total: number) => process.stderr.write(`\r${label} features: ${done}/${total} ${m.unit}s${done === total ? '\n' : ''}`);
    const extractor = m.create(engine, loadWeights(m.weights), { inputSize: m.size, onProgress });
    out.push({ extractor, unit: m.unit });
    process.stderr.write(`${m.name}: weights from ${m.weights} on ${engine.kind}, network input ${m.size}x${m.size}\n`);
    if (m.size !== m.reference) say(`${m.name} computed at ${m.size}x${m.size}, not the reference's ${m.reference}x${m.reference}: a smoke test, not comparable with ${label} values`);
    if (m.samples <= m.dims) {
      say(`${m.name}: ${m.samples} ${m.unit}s per set for ${m.dims}-d features, so the covariances are singular (rank ≤ ${m.samples - 1}); ` +
        `the value is unstable and biased upwards until there are many more ${m.unit}s than ${m.dims}`);
    }
  }
  return out;
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

  let engine: Engine | null = null;
  const getEngine = async () => (engine ??= args.device === 'cpu' ? Engine.cpu() : await Engine.webgpu());
  const say = (message: string) => {
    process.stderr.write(`${message}\n`);
    notes.push(message);
  };
  let lpips: LpipsScorer | null = null;
  let networks: FrechetRequest[] = [];
  try {
    networks = await featureNetworks(args, getEngine, pred.frames, pred.clips.length, say);
    if (args.lpipsWeights) {
      const weights = loadWeights(args.lpipsWeights);
      engine = await getEngine();
      lpips = createLpipsScorer(engine, weights);
      process.stderr.write(`LPIPS: ${lpips.backbone} weights from ${args.lpipsWeights} on ${engine.kind}\n`);
      if (lpips.backbone === 'vgg16') notes.push('LPIPS uses VGG16 features; the reference evaluation used AlexNet (values are not comparable)');
    }
    const started = Date.now();
    const report = await evaluateClipSets(pred, gt, {
      meta,
      anatomy: args.anatomy,
      lpips,
      frechet: [
        ...(args.fdPixels ? [{ extractor: pooledPixelFeatures(8) as FeatureExtractor, unit: 'frame' as const }] : []),
        ...networks,
      ],
      onProgress: (done, total) => {
        if (done === total || done % 10 === 0) process.stderr.write(`\r${done}/${total} clips${done === total ? '\n' : ''}`);
      },
    });
    process.stderr.write(`evaluated in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    report.notes.unshift(...notes);
    process.stdout.write(`${formatReport(report, args.rows)}\n`);
    if (args.out) {
      // Non-finite numbers (identical-frame PSNR) become null in JSON.
      await fs.writeFile(args.out, JSON.stringify(report, null, 1));
      process.stderr.write(`report written to ${args.out}\n`);
    }
  } finally {
    lpips?.dispose();
    for (const n of networks) n.extractor.dispose();
    (engine as Engine | null)?.destroy();
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
