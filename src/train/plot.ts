/**
 * A loss-curve picture as hand-written SVG: every training scalar (except learning rate and gradient
 * norm, whose scales differ) on a log-scaled y axis against the step, the total loss also smoothed, and
 * validation values as dots. No dependencies, so it works in a browser too.
 */
import type { MetricsRecord } from './metrics';

const WIDTH = 720;
const HEIGHT = 420;
const MARGIN = { left: 64, right: 150, top: 28, bottom: 44 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22'];
const EXCLUDED = new Set(['gradNorm', 'lr']);

interface Series {
  name: string;
  points: [number, number][];
  color: string;
  kind: 'line' | 'faint' | 'dots';
}

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Exponential moving average with bias correction (the first points are not pulled towards 0). */
function smooth(points: [number, number][], beta = 0.9): [number, number][] {
  let avg = 0;
  return points.map(([x, y], i) => {
    avg = beta * avg + (1 - beta) * y;
    return [x, avg / (1 - beta ** (i + 1))];
  });
}

export function lossCurveSvg(records: readonly MetricsRecord[], title = 'training loss'): string {
  const series: Series[] = [];
  const train = records.filter((r) => r.type === 'train');
  const val = records.filter((r) => r.type === 'val');
  const trainKeys = [...new Set(train.flatMap((r) => Object.keys(r.values)))].filter((k) => !EXCLUDED.has(k));
  trainKeys.forEach((key, i) => {
    const points = train.filter((r) => Number.isFinite(r.values[key]) && r.values[key] > 0).map((r) => [r.step, r.values[key]] as [number, number]);
    const color = COLORS[i % COLORS.length];
    if (key === 'loss' && points.length > 1) {
      series.push({ name: 'loss', points, color, kind: 'faint' }, { name: 'loss (smoothed)', points: smooth(points), color, kind: 'line' });
    } else series.push({ name: key, points, color, kind: 'line' });
  });
  const valKeys = [...new Set(val.flatMap((r) => Object.keys(r.values)))];
  valKeys.forEach((key, i) => {
    const points = val.filter((r) => Number.isFinite(r.values[key]) && r.values[key] > 0).map((r) => [r.step, r.values[key]] as [number, number]);
    series.push({ name: `val ${key}`, points, color: COLORS[(trainKeys.length + i) % COLORS.length], kind: 'dots' });
  });

  const all = series.flatMap((s) => s.points);
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="11">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${MARGIN.left}" y="18" font-size="13">${escapeXml(title)}</text>`,
  ];
  if (all.length === 0) {
    parts.push(`<text x="${WIDTH / 2}" y="${HEIGHT / 2}" text-anchor="middle">no data yet</text>`, '</svg>');
    return parts.join('\n');
  }
  const xMin = Math.min(...all.map((p) => p[0]));
  const xMax = Math.max(xMin + 1, ...all.map((p) => p[0]));
  let yLo = Math.log10(Math.min(...all.map((p) => p[1])));
  let yHi = Math.log10(Math.max(...all.map((p) => p[1])));
  if (yHi - yLo < 0.1) {
    yLo -= 0.05;
    yHi += 0.05;
  }
  const sx = (x: number) => MARGIN.left + ((x - xMin) / (xMax - xMin)) * plotW;
  const sy = (y: number) => MARGIN.top + (1 - (Math.log10(y) - yLo) / (yHi - yLo)) * plotH;
  const fmt = (v: number) => v.toFixed(1);

  // Axes and grid: a line per decade (and 2×, 5× when few decades are visible).
  parts.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#444"/>`);
  const decades = yHi - yLo;
  const mantissas = decades < 1.5 ? [1, 2, 5] : [1];
  for (let e = Math.floor(yLo); e <= Math.ceil(yHi); e++) {
    for (const m of mantissas) {
      const v = m * 10 ** e;
      const lv = Math.log10(v);
      if (lv < yLo - 1e-9 || lv > yHi + 1e-9) continue;
      const y = sy(v);
      parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${fmt(y)}" y2="${fmt(y)}" stroke="#ddd"/>`);
      parts.push(`<text x="${MARGIN.left - 6}" y="${fmt(y + 4)}" text-anchor="end">${Number(v.toPrecision(2))}</text>`);
    }
  }
  const xTicks = 5;
  for (let i = 0; i <= xTicks; i++) {
    const step = Math.round(xMin + ((xMax - xMin) * i) / xTicks);
    const x = sx(step);
    parts.push(`<line x1="${fmt(x)}" x2="${fmt(x)}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH + 4}" stroke="#444"/>`);
    parts.push(`<text x="${fmt(x)}" y="${MARGIN.top + plotH + 17}" text-anchor="middle">${step}</text>`);
  }
  parts.push(`<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 8}" text-anchor="middle">step</text>`);

  for (const s of series) {
    if (s.points.length === 0) continue;
    if (s.kind === 'dots') {
      for (const [x, y] of s.points) parts.push(`<circle cx="${fmt(sx(x))}" cy="${fmt(sy(y))}" r="3.5" fill="${s.color}"/>`);
      continue;
    }
    const d = s.points.map(([x, y], i) => `${i ? 'L' : 'M'}${fmt(sx(x))} ${fmt(sy(y))}`).join('');
    const style = s.kind === 'faint' ? 'stroke-opacity="0.3" stroke-width="1"' : 'stroke-width="1.6"';
    parts.push(`<path d="${d}" fill="none" stroke="${s.color}" ${style}/>`);
  }
  // Legend.
  series.filter((s) => s.points.length).forEach((s, i) => {
    const y = MARGIN.top + 10 + i * 16;
    const x = WIDTH - MARGIN.right + 10;
    parts.push(
      s.kind === 'dots'
        ? `<circle cx="${x + 8}" cy="${y - 4}" r="3.5" fill="${s.color}"/>`
        : `<line x1="${x}" x2="${x + 16}" y1="${y - 4}" y2="${y - 4}" stroke="${s.color}" stroke-width="2"${s.kind === 'faint' ? ' stroke-opacity="0.3"' : ''}/>`,
      `<text x="${x + 22}" y="${y}">${escapeXml(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}
