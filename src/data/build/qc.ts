/**
 * The QC report a build ends with: DIR/qc.md and DIR/qc/ pictures. Counts per split, rejections grouped by
 * reason, warnings grouped by kind, label columns, heart-rate and amplitude histograms, subjects whose
 * numbers look implausible, and for a seeded random sample: lead-II strips with the R peaks the build found
 * and cine thumbnails (every 10th frame). It is computed from the finished dataset folder only, so a
 * single build and a merge of shards write the same report.
 */
import { joinPath, decodeText } from '../fs';
import { seededPermutation, hashSeed } from '../random';
import { SPLIT_NAMES } from '../dataset';
import { cineToStripPng } from '../viz/images';
import type { BuildFileSystem } from './build-fs';
import { parseCsvRows } from './pairs';
import { ECG_ROW_BYTES, CMR_ROW_BYTES, readBuiltSubjects, type BuiltDatasetManifest, type BuiltSubject } from './store';
import { histogram, histogramSvg, ecgStripGridSvg } from './qc-svg';

/** Heart rates and amplitudes outside these ranges are listed for a human to look at (not rejected). */
const PLAUSIBLE_HR: [number, number] = [30, 200];
const PLAUSIBLE_AMPLITUDE_MV: [number, number] = [0.3, 8];

/** Groups messages that differ only in numbers, quoted names or paths. */
export function reasonKind(text: string): string {
  return text
    .replace(/'[^']*'/g, "'…'")
    .replace(/\S*[\\/]\S*/g, '…')
    .replace(/-?\d+(\.\d+)?(e[-+]?\d+)?/gi, '#')
    .trim();
}

function countBy(items: string[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
}

function mdCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

async function readRow(fs: BuildFileSystem, dir: string, s: BuiltSubject): Promise<{ ecg: Float32Array; cmr: Float32Array }> {
  const read = async (kind: 'ecg' | 'cmr', bytes: number) => {
    const path = joinPath(dir, s.split, `${kind}.npy`);
    const headerProbe = await fs.readRange(path, 0, 10);
    const headerLen = 10 + (headerProbe[8] | (headerProbe[9] << 8));
    return new Float32Array((await fs.readRange(path, headerLen + s.row * bytes, bytes)).slice().buffer);
  };
  return { ecg: await read('ecg', ECG_ROW_BYTES), cmr: await read('cmr', CMR_ROW_BYTES) };
}

export interface QcOptions {
  /** Subjects shown as strips and thumbnails (default 8). */
  samples?: number;
}

export async function writeQcReport(fs: BuildFileSystem, dir: string, manifest: BuiltDatasetManifest, options: QcOptions = {}): Promise<string> {
  const qcDir = joinPath(dir, 'qc');
  await fs.mkdir(qcDir);
  const subjects = await readBuiltSubjects(fs, dir);
  const rejectedRows = parseCsvRows(decodeText(await fs.readFile(joinPath(dir, 'rejected.csv'))), 'rejected.csv').slice(1);
  const rejected = rejectedRows.map((r) => ({ id: r.cells[0], stage: r.cells[2], file: r.cells[3], reason: r.cells[4] }));
  const total = subjects.length + rejected.length;
  const md: string[] = [`# Build QC report`, '', `${total} subjects${manifest.build.shard.count > 1 ? ` in shard ${manifest.build.shard.index}/${manifest.build.shard.count}` : ''}: **${subjects.length} accepted**, **${rejected.length} rejected** (rejected.csv).`, ''];
  md.push('| split | subjects | classes |', '|---|---|---|');
  for (const split of SPLIT_NAMES) {
    const info = manifest.splits[split];
    md.push(`| ${split} | ${info.count} | ${Object.entries(info.classes).map(([k, v]) => `${k} ${v}`).join(', ') || '-'} |`);
  }
  md.push('', `Split rule: hash(seed ${manifest.seed}, subject id) against fractions ${manifest.build.fractions.join(' / ')} (a \`split\` column overrides).`, '');

  md.push('## Rejections by reason', '');
  if (!rejected.length) md.push('None.', '');
  else {
    md.push('| stage | reason | subjects | example |', '|---|---|---|---|');
    for (const [key, n] of countBy(rejected.map((r) => `${r.stage}\u0000${reasonKind(r.reason)}`))) {
      const [stage, kind] = key.split('\u0000');
      const example = rejected.find((r) => r.stage === stage && reasonKind(r.reason) === kind)!;
      md.push(`| ${stage} | ${mdCell(kind)} | ${n} | ${mdCell(`${example.id}: ${example.file}: ${example.reason}`)} |`);
    }
    md.push('');
  }

  md.push('## Warnings by kind (accepted subjects)', '');
  const warnings = countBy(subjects.flatMap((s) => [...new Set(s.warnings.map((w) => reasonKind(w)))]));
  if (!warnings.length) md.push('None.', '');
  else {
    md.push('| warning | subjects |', '|---|---|');
    for (const [kind, n] of warnings.slice(0, 20)) md.push(`| ${mdCell(kind)} | ${n} |`);
    if (warnings.length > 20) md.push(`| … ${warnings.length - 20} more kinds | |`);
    md.push('');
  }

  if (manifest.build.labelColumns.length) {
    md.push('## Label columns', '', '| column | type | present | summary |', '|---|---|---|---|');
    for (const col of manifest.build.labelColumns) {
      const values = subjects.map((s) => s.labels[col.name]).filter((v) => v !== null && v !== undefined);
      let summary: string;
      if (col.type === 'number') {
        const nums = values as number[];
        summary = nums.length ? `min ${nums.reduce((a, b) => Math.min(a, b))}, mean ${(nums.reduce((a, b) => a + b, 0) / nums.length).toPrecision(4)}, max ${nums.reduce((a, b) => Math.max(a, b))}` : '-';
      } else summary = countBy(values.map(String)).slice(0, 6).map(([k, n]) => `${k} ${n}`).join(', ');
      md.push(`| ${mdCell(col.name)} | ${col.type} | ${values.length}/${subjects.length} | ${mdCell(summary)} |`);
    }
    md.push('');
  }

  md.push('## Heart rate and amplitude', '');
  const rates = subjects.map((s) => s.heartRateBpm).filter((v): v is number => v !== null);
  const amplitudes = subjects.map((s) => s.amplitudeMv);
  if (subjects.length) {
    await fs.writeFile(joinPath(qcDir, 'heart-rate.svg'), histogramSvg(histogram(rates.length ? rates : [0], 17, 30, 200), `Heart rate (lead II, robust R peaks), ${rates.length} subjects`, 'bpm'));
    await fs.writeFile(joinPath(qcDir, 'amplitude.svg'), histogramSvg(histogram(amplitudes, 20, 0, amplitudes.reduce((a, b) => Math.max(a, b), 5)), `Largest robust peak-to-peak amplitude over 12 leads, ${amplitudes.length} subjects`, 'mV'));
    md.push('![heart rate](qc/heart-rate.svg) ![amplitude](qc/amplitude.svg)', '');
  }
  const odd = subjects.filter((s) => s.heartRateBpm === null || s.heartRateBpm < PLAUSIBLE_HR[0] || s.heartRateBpm > PLAUSIBLE_HR[1] || s.amplitudeMv < PLAUSIBLE_AMPLITUDE_MV[0] || s.amplitudeMv > PLAUSIBLE_AMPLITUDE_MV[1]);
  md.push(`Outside ${PLAUSIBLE_HR.join('-')} bpm or ${PLAUSIBLE_AMPLITUDE_MV.join('-')} mV (kept, worth a look): ${odd.length}.`, '');
  for (const s of odd.slice(0, 20)) md.push(`- ${s.id} (${s.split} row ${s.row}): HR ${s.heartRateBpm ?? 'no R peaks'} bpm, amplitude ${s.amplitudeMv} mV, ECG ${s.sources.ecg}`);
  if (odd.length) md.push('');

  const sampleCount = Math.min(options.samples ?? 8, subjects.length);
  if (sampleCount) {
    const picked = seededPermutation(subjects.length, hashSeed(manifest.seed, 0x9c)).slice(0, sampleCount).sort((a, b) => a - b).map((i) => subjects[i]);
    const rows = [];
    for (const s of picked) rows.push({ s, ...(await readRow(fs, dir, s)) });
    await fs.writeFile(joinPath(qcDir, 'ecg-strips.svg'), ecgStripGridSvg(rows.map(({ s, ecg }) => ({
      title: `${s.id} (${s.split} ${s.row}) ${s.cls} HR ${s.heartRateBpm ?? '-'} bpm, ${s.rPeaks.length} R peaks`, lead: ecg.subarray(5000, 10000), rPeaks: s.rPeaks,
    }))));
    md.push(`## ${sampleCount} random subjects`, '', 'Lead II with the R peaks found by the build (red):', '', '![ECG strips](qc/ecg-strips.svg)', '', 'Cine frames 0, 10, 20, 30, 40:', '');
    md.push('| subject | frames |', '|---|---|');
    for (const { s, cmr } of rows) {
      const name = `cine-${s.split}-${s.row}.png`;
      await fs.writeFile(joinPath(qcDir, name), cineToStripPng(cmr, 50, 96, { step: 10 }));
      md.push(`| ${mdCell(s.id)} | ![](qc/${name}) |`);
    }
    md.push('');
  }
  const text = md.join('\n');
  await fs.writeFile(joinPath(dir, 'qc.md'), text);
  return text;
}
