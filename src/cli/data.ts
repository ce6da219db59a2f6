/**
 * Data command line (npm run data -- <command>):
 *   synth --n N --out DIR [--seed S] [--split 0.8,0.1,0.1]     write a phantom dataset
 *   show --data DIR --index I [--split train] --out DIR2        pictures of a dataset subject
 *   show --phantom [--class healthy] [--seed S] [--index I] --out DIR2   pictures of a fresh phantom
 *   inspect FILE [--fs HZ] [--strict|--lenient] [--series RE]      read an ECG or CMR file (DICOM folder/zip: series chosen by RE), print what the model would get
 *   build --pairs pairs.csv --out DIR [--workers N] [--shard i/n] [--resume]   dataset from files (data-build.ts)
 *   merge --out DIR SHARD_DIR...                                join the shards of a build
 *   synth-files --n N --out DIR                                 phantom cohort as WFDB + NIfTI files + pairs.csv
 */
import { NodeFileSystem } from '../data/node-fs';
import { joinPath, decodeText } from '../data/fs';
import { writeSyntheticDataset, type DatasetManifest, type SplitName } from '../data/dataset';
import { NpyDatasetSource } from '../data/loader';
import { generateSubject } from '../data/phantom/subject';
import { PHANTOM_CLASSES, type PhantomClass } from '../data/phantom/params';
import { robustRPeaks } from '../data/ecg-phase';
import { ecgToSvg } from '../data/viz/ecg-svg';
import { cineToGif, cineToStripPng } from '../data/viz/images';
import { readEcgFile, readCmrFile } from '../data/readers/index';
import { describeSeries } from '../data/readers/dicom-series-select';
import { prepareEcg } from '../data/preprocess/ecg';
import { prepareCine } from '../data/preprocess/cmr';
import { DataError } from '../data/errors';
import { buildCommand, mergeCommand, synthFilesCommand } from './data-build';

type Flags = Record<string, string | boolean>;

function parseFlags(args: string[]): { positional: string[]; flags: Flags } {
  const flags: Flags = {};
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith('--')) {
      const key = a.slice(2);
      const next = args[i + 1];
      if (next !== undefined && !next.startsWith('--')) {
        flags[key] = next;
        i++;
      } else flags[key] = true;
    } else positional.push(a);
  }
  return { positional, flags };
}

function need(flags: Flags, key: string): string {
  const v = flags[key];
  if (typeof v !== 'string') throw new Error(`missing --${key}`);
  return v;
}

const fs = new NodeFileSystem();

async function synth(flags: Flags) {
  const n = Number(need(flags, 'n'));
  const out = need(flags, 'out');
  const seed = flags.seed !== undefined ? Number(flags.seed) : 42;
  const split = typeof flags.split === 'string' ? (flags.split.split(',').map(Number) as [number, number, number]) : undefined;
  if (split && (split.length !== 3 || split.some((x) => !Number.isFinite(x)))) throw new Error('--split needs three numbers, e.g. 0.8,0.1,0.1');
  const t0 = Date.now();
  const manifest = await writeSyntheticDataset(fs, out, {
    n, seed, split,
    onProgress: (done, total) => {
      if (done === total || done % 50 === 0) process.stderr.write(`\r${done}/${total} subjects`);
    },
  });
  process.stderr.write('\n');
  const counts = Object.entries(manifest.splits).map(([k, v]) => `${k} ${v.count}`).join(', ');
  console.log(`wrote ${out}: ${counts} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

let smallPictures = false;

async function writePictures(outDir: string, name: string, ecg: Float32Array, cine: Float32Array, rPeaks: number[], title: string, esFrame?: number) {
  // --small (used for docs/img): 16 grey levels and every 2nd frame, to keep GIFs of a noisy cine small.
  const gifOptions = smallPictures ? { upscale: 2, levels: 16, frameStep: 2 } : { upscale: 2, levels: 64 };
  await fs.mkdir(outDir);
  await fs.writeFile(joinPath(outDir, `ecg-${name}.svg`), ecgToSvg(ecg, { rPeaks, title }));
  await fs.writeFile(joinPath(outDir, `cine-${name}.gif`), cineToGif(cine, 50, 96, gifOptions));
  await fs.writeFile(joinPath(outDir, `strip-${name}.png`), cineToStripPng(cine, 50, 96, { step: 5, markFrame: esFrame }));
  console.log(`wrote ${outDir}/{ecg,cine,strip}-${name}.{svg,gif,png}`);
}

async function show(flags: Flags) {
  const out = need(flags, 'out');
  smallPictures = flags.small === true;
  if (flags.phantom) {
    const cls = (typeof flags.class === 'string' ? flags.class : 'healthy') as PhantomClass;
    if (!PHANTOM_CLASSES.includes(cls)) throw new Error(`--class must be one of ${PHANTOM_CLASSES.join(', ')}`);
    const seed = flags.seed !== undefined ? Number(flags.seed) : 1;
    const index = flags.index !== undefined ? Number(flags.index) : 0;
    const s = generateSubject(seed, index, { cls });
    const t = s.truth;
    const title = `${s.id} ${cls}${t.regionalWall ? ` (${t.regionalWall})` : ''} HR ${t.heartRateBpm.toFixed(0)} QRS ${t.qrsMs.toFixed(0)} ms EF~${t.efProxy.toFixed(2)} (R peaks: ground truth)`;
    await writePictures(out, typeof flags.name === 'string' ? flags.name : cls, s.ecg, s.cine!, t.rPeaks, title, t.endSystoleFrame);
    return;
  }
  const dir = need(flags, 'data');
  const split = (typeof flags.split === 'string' ? flags.split : 'train') as SplitName;
  const index = Number(flags.index ?? 0);
  const source = await NpyDatasetSource.open(fs, dir, split, { batchSize: 1 });
  const { ecg, cmr } = await source.readSample(index);
  const manifest = JSON.parse(decodeText(await fs.readFile(joinPath(dir, 'manifest.json')))) as DatasetManifest;
  const info = manifest.subjects.find((s) => s.split === split && s.row === index);
  const peaks = robustRPeaks(ecg.subarray(5000, 10000));
  const title = `${info?.id ?? `${split}[${index}]`} ${info?.cls ?? ''} (R peaks: detected on lead II)`;
  await writePictures(out, `${split}-${index}`, ecg, cmr, peaks, title, info?.endSystoleFrame);
}

async function inspect(positional: string[], flags: Flags) {
  const path = positional[0];
  if (!path) throw new Error('inspect needs a file path');
  const isCmr = /\.(nii|nii\.gz|dcm)$/i.test(path) || (!/\.(hea|dat|csv|tsv|txt|npy)$/i.test(path)) || flags.cmr === true;
  if (isCmr) {
    const text = (flag: string) => (typeof flags[flag] === 'string' ? (flags[flag] as string) : undefined);
    const vol = await readCmrFile(fs, path, {
      slice: flags.slice !== undefined ? Number(flags.slice) : undefined,
      seriesPattern: text('series'),
      seriesUid: text('series-uid'),
      sliceLocation: text('slice-location'),
    });
    const prepared = prepareCine(vol, { source: path });
    console.log(`CMR ${path}: ${vol.frames} frames of ${vol.height}x${vol.width} -> (50, 96, 96) in [-1, 1]`);
    if (vol.selection) console.log(`series: ${describeSeries(vol.selection.chosen)} (${vol.selection.reason}; ${vol.selection.series.length} series found)`);
    [...vol.warnings, ...prepared.warnings].forEach((w) => console.log(`warning: ${w}`));
    return;
  }
  if (flags.fs !== undefined && !(typeof flags.fs === 'string' && Number(flags.fs) > 0)) throw new Error(`--fs needs a sampling frequency in Hz, got '${flags.fs === true ? '' : flags.fs}'`);
  if (flags.strict === true && flags.lenient === true) throw new Error('--strict and --lenient exclude each other');
  const rec = await readEcgFile(fs, path, { fs: flags.fs !== undefined ? Number(flags.fs) : undefined });
  const prepared = prepareEcg(rec, { checks: flags.strict === true ? 'strict' : flags.lenient === true ? 'lenient' : 'normal' });
  console.log(`ECG ${path}: ${rec.signals.length} lead(s) [${rec.leadNames.join(', ')}], ${rec.signals[0].length} samples at ${rec.fs} Hz -> (12, 5000)`);
  const rate = prepared.heartRateBpm === null ? 'not measurable' : `${prepared.heartRateBpm.toFixed(0)} bpm`;
  console.log(`R peaks (lead II, robust): ${robustRPeaks(prepared.data.subarray(5000, 10000)).length}; heart rate ${rate}`);
  [...rec.warnings, ...prepared.warnings].forEach((w) => console.log(`warning: ${w}`));
}

async function main() {
  const [command, ...rest] = process.argv.slice(2);
  const { positional, flags } = parseFlags(rest);
  if (command === 'synth') await synth(flags);
  else if (command === 'show') await show(flags);
  else if (command === 'inspect') await inspect(positional, flags);
  else if (command === 'build') await buildCommand(flags);
  else if (command === 'merge') await mergeCommand(positional, flags);
  else if (command === 'synth-files') await synthFilesCommand(flags);
  else {
    console.log('usage: npm run data -- synth --n N --out DIR [--seed S] [--split 0.8,0.1,0.1]');
    console.log('       npm run data -- show --data DIR --index I [--split train] --out DIR2');
    console.log('       npm run data -- show --phantom --class healthy|hypertrophic|dilated|regional [--seed S] [--small] --out DIR2');
    console.log('       npm run data -- inspect FILE [--fs HZ] [--strict | --lenient] [--slice Z] [--series REGEX] [--series-uid UID] [--slice-location TEXT]');
    console.log('       npm run data -- build --pairs pairs.csv --out DIR [--workers N] [--shard i/n] [--resume] [--split 0.8,0.1,0.1] [--seed S] [--fs HZ] [--strict | --lenient]');
    console.log('       npm run data -- build --ecg-dir D --cmr-dir D --out DIR [--id-pattern REGEX] [--labels labels.csv] [...]');
    console.log('       npm run data -- merge --out DIR SHARD_DIR...');
    console.log('       npm run data -- synth-files --n N --out DIR [--seed S] [--gzip]   (phantom cohort as WFDB + NIfTI files, for trying build)');
    process.exitCode = command ? 1 : 0;
  }
}

main().catch((e) => {
  console.error(e instanceof DataError ? `data error: ${e.message}` : e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
