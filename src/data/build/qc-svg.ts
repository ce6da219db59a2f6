/** SVG pictures of the build's QC report: a histogram, and lead-II strips of several subjects with R peaks. */

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export interface HistogramBins {
  edges: number[];
  counts: number[];
}

/** `bins` equal-width bins over [lo, hi]; values outside are counted in the first / last bin. */
export function histogram(values: number[], bins: number, lo?: number, hi?: number): HistogramBins {
  // Loops, not Math.min(...values): a large cohort would overflow the argument list.
  const min = lo ?? values.reduce((a, b) => Math.min(a, b), Infinity);
  let max = hi ?? values.reduce((a, b) => Math.max(a, b), -Infinity);
  if (!(max > min)) max = min + 1;
  const edges = Array.from({ length: bins + 1 }, (_, i) => min + ((max - min) * i) / bins);
  const counts = new Array(bins).fill(0);
  for (const v of values) counts[Math.max(0, Math.min(bins - 1, Math.floor(((v - min) / (max - min)) * bins)))]++;
  return { edges, counts };
}

export function histogramSvg(h: HistogramBins, title: string, unit: string): string {
  const width = 480;
  const height = 220;
  const left = 40;
  const bottom = 30;
  const top = 24;
  const plotW = width - left - 10;
  const plotH = height - top - bottom;
  const peak = h.counts.reduce((a, b) => Math.max(a, b), 1);
  const barW = plotW / h.counts.length;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="10">`,
    '<rect width="100%" height="100%" fill="#fff"/>',
    `<text x="${left}" y="15" font-size="12">${escapeXml(title)}</text>`,
    `<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#000"/>`,
    `<text x="4" y="${top + 8}">${peak}</text><text x="4" y="${top + plotH}">0</text>`,
  ];
  h.counts.forEach((c, i) => {
    const barH = (c / peak) * plotH;
    parts.push(`<rect x="${(left + i * barW + 1).toFixed(1)}" y="${(top + plotH - barH).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${barH.toFixed(1)}" fill="#4a7ab5"><title>${h.edges[i].toFixed(2)}-${h.edges[i + 1].toFixed(2)} ${escapeXml(unit)}: ${c}</title></rect>`);
  });
  const ticks = [0, Math.floor(h.counts.length / 2), h.counts.length];
  for (const t of ticks) {
    parts.push(`<text x="${(left + t * barW).toFixed(1)}" y="${top + plotH + 14}" text-anchor="middle">${Number(h.edges[t].toPrecision(3))}</text>`);
  }
  parts.push(`<text x="${left + plotW}" y="${height - 3}" text-anchor="end">${escapeXml(unit)}</text>`, '</svg>');
  return parts.join('\n');
}

export interface StripSubject {
  title: string;
  /** Lead II, 5000 samples at 500 Hz, mV. */
  lead: Float32Array;
  rPeaks: number[];
}

/** One 10 s lead-II strip per subject on ECG paper (25 mm/s, 10 mm/mV at 3 px per mm), R peaks as red marks. */
export function ecgStripGridSvg(subjects: StripSubject[], fs = 500): string {
  // 3 px per mm: a 10 s strip is 750 px wide, wide enough for its title and to see P and T waves.
  const mm = 3;
  const pxPerS = 25 * mm;
  const pxPerMv = 10 * mm;
  const rowH = 40 * mm;
  const left = 6;
  const seconds = subjects.length ? subjects[0].lead.length / fs : 10;
  const width = left * 2 + seconds * pxPerS;
  const height = subjects.length * (rowH + 14) + 4;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="10">`,
    `<defs><pattern id="g" width="${5 * mm}" height="${5 * mm}" patternUnits="userSpaceOnUse"><path d="M${5 * mm} 0H0V${5 * mm}" fill="none" stroke="#f1c4c4" stroke-width="0.5"/></pattern></defs>`,
    '<rect width="100%" height="100%" fill="#fff"/>',
  ];
  subjects.forEach((s, k) => {
    const y0 = k * (rowH + 14) + 12;
    const yMid = y0 + rowH / 2;
    parts.push(`<text x="${left}" y="${y0 - 2}">${escapeXml(s.title)}</text>`);
    parts.push(`<rect x="${left}" y="${y0}" width="${seconds * pxPerS}" height="${rowH}" fill="url(#g)"/>`);
    // Min/max per pixel column keeps the QRS spikes while the file stays small.
    const step = Math.max(1, Math.floor(fs / pxPerS));
    const pts: string[] = [];
    for (let i = 0; i < s.lead.length; i += step) {
      let lo = i;
      let hi = i;
      for (let j = i; j < Math.min(s.lead.length, i + step); j++) {
        if (s.lead[j] < s.lead[lo]) lo = j;
        if (s.lead[j] > s.lead[hi]) hi = j;
      }
      for (const j of lo < hi ? [lo, hi] : [hi, lo]) {
        const y = Math.max(y0, Math.min(y0 + rowH, yMid - s.lead[j] * pxPerMv));
        pts.push(`${(left + (j / fs) * pxPerS).toFixed(1)},${y.toFixed(1)}`);
      }
    }
    parts.push(`<polyline fill="none" stroke="#000" stroke-width="0.7" points="${pts.join(' ')}"/>`);
    for (const r of s.rPeaks) parts.push(`<circle cx="${(left + (r / fs) * pxPerS).toFixed(1)}" cy="${y0 + 3}" r="1.8" fill="#d22"/>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
