/** A 12-lead ECG as an SVG: 6 rows x 2 columns (limb | chest leads), ECG-paper grid, R peaks marked. */
const LEADS = ['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'];

export interface EcgSvgOptions {
  fs?: number;
  rPeaks?: number[];
  title?: string;
  /** Seconds shown per lead (default: whole record). */
  seconds?: number;
}

export function ecgToSvg(ecg: Float32Array, options: EcgSvgOptions = {}): string {
  const fs = options.fs ?? 500;
  const n = ecg.length / 12;
  const shown = Math.min(n, Math.round((options.seconds ?? n / fs) * fs));
  // 25 mm/s and 10 mm/mV drawn at 2 px per mm.
  const pxPerS = 50;
  const pxPerMv = 20;
  const colW = (shown / fs) * pxPerS;
  const rowH = 60;
  const marginL = 30;
  const marginT = options.title ? 24 : 6;
  const width = marginL * 2 + colW * 2 + 20;
  const height = marginT + rowH * 6 + 6;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width.toFixed(0)}" height="${height}" viewBox="0 0 ${width.toFixed(0)} ${height}" font-family="sans-serif">`);
  parts.push('<defs><pattern id="small" width="2" height="2" patternUnits="userSpaceOnUse"><path d="M2 0H0V2" fill="none" stroke="#f6d3d3" stroke-width="0.3"/></pattern>');
  parts.push('<pattern id="big" width="10" height="10" patternUnits="userSpaceOnUse"><rect width="10" height="10" fill="url(#small)"/><path d="M10 0H0V10" fill="none" stroke="#eaa" stroke-width="0.6"/></pattern></defs>');
  parts.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  if (options.title) parts.push(`<text x="${marginL}" y="16" font-size="12">${options.title}</text>`);
  for (let col = 0; col < 2; col++) {
    const x0 = marginL + col * (colW + marginL + 20);
    parts.push(`<rect x="${x0}" y="${marginT}" width="${colW.toFixed(1)}" height="${rowH * 6}" fill="url(#big)"/>`);
    for (let row = 0; row < 6; row++) {
      const lead = col * 6 + row;
      const yMid = marginT + row * rowH + rowH / 2;
      const data = ecg.subarray(lead * n, lead * n + shown);
      // Min/max decimation to 2 points per pixel column keeps QRS spikes and the file small.
      const step = Math.max(1, Math.floor(fs / pxPerS));
      const pts: string[] = [];
      for (let i = 0; i < shown; i += step) {
        let lo = i, hi = i;
        for (let j = i; j < Math.min(shown, i + step); j++) {
          if (data[j] < data[lo]) lo = j;
          if (data[j] > data[hi]) hi = j;
        }
        for (const j of lo < hi ? [lo, hi] : [hi, lo]) pts.push(`${(x0 + (j / fs) * pxPerS).toFixed(1)},${(yMid - data[j] * pxPerMv).toFixed(1)}`);
      }
      parts.push(`<polyline fill="none" stroke="#000" stroke-width="0.8" points="${pts.join(' ')}"/>`);
      parts.push(`<text x="${x0 - 26}" y="${yMid + 4}" font-size="10">${LEADS[lead]}</text>`);
      for (const r of options.rPeaks ?? []) {
        if (r >= shown) continue;
        const x = x0 + (r / fs) * pxPerS;
        parts.push(`<path d="M${x.toFixed(1)} ${(yMid - rowH / 2 + 2).toFixed(1)}l-2 -3h4z" fill="#d22"/>`);
      }
    }
  }
  parts.push('</svg>');
  return parts.join('\n');
}
