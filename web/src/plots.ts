/** Canvas drawings of the page: ECG traces with the chosen cycle, the live loss curves, the cine player. */

const LEADS = ['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'];
/** Leads drawn: limb leads plus three chest leads keep each trace tall enough to read. */
const SHOWN_LEADS = [0, 1, 2, 6, 8, 10];

/** A canvas sized in CSS pixels and drawn at the screen's pixel density. */
function prepare(canvas: HTMLCanvasElement): { ctx: CanvasRenderingContext2D; width: number; height: number } {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.width;
  const height = canvas.clientHeight || canvas.height;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  return { ctx, width, height };
}

/**
 * 12 × `samples` recording (mV at 500 Hz) as stacked traces; `window` = [start, end) in samples of the
 * cycle the encoder selected, shaded.
 */
export function drawEcg(canvas: HTMLCanvasElement, ecg: Float32Array | null, window: [number, number] | null, title = ''): void {
  const { ctx, width, height } = prepare(canvas);
  ctx.fillStyle = '#fffdf8';
  ctx.fillRect(0, 0, width, height);
  if (!ecg) {
    ctx.fillStyle = '#888';
    ctx.font = '13px system-ui, sans-serif';
    ctx.fillText('no ECG selected', 12, 22);
    return;
  }
  const samples = ecg.length / 12;
  const left = 34;
  const top = 18;
  const plotW = width - left - 8;
  const rowH = (height - top - 16) / SHOWN_LEADS.length;
  const x = (i: number) => left + (i / (samples - 1)) * plotW;
  // 0.2 s grid, as ECG paper.
  ctx.strokeStyle = '#f3d6d6';
  ctx.lineWidth = 1;
  const seconds = samples / 500;
  for (let s = 0; s <= seconds + 1e-9; s += 0.2) {
    const px = left + (s / seconds) * plotW;
    ctx.beginPath();
    ctx.moveTo(px, top);
    ctx.lineTo(px, height - 16);
    ctx.stroke();
  }
  if (window) {
    ctx.fillStyle = 'rgba(40, 120, 220, 0.16)';
    ctx.fillRect(x(window[0]), top, x(window[1]) - x(window[0]), height - top - 16);
    ctx.strokeStyle = 'rgba(40, 120, 220, 0.8)';
    for (const edge of window) {
      ctx.beginPath();
      ctx.moveTo(x(edge), top);
      ctx.lineTo(x(edge), height - 16);
      ctx.stroke();
    }
  }
  ctx.font = '11px system-ui, sans-serif';
  SHOWN_LEADS.forEach((lead, row) => {
    const trace = ecg.subarray(lead * samples, (lead + 1) * samples);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of trace) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
    const span = Math.max(hi - lo, 0.5);
    const mid = top + row * rowH + rowH / 2;
    const centre = (hi + lo) / 2;
    const y = (v: number) => mid - ((v - centre) / span) * rowH * 0.9;
    ctx.fillStyle = '#555';
    ctx.fillText(LEADS[lead], 4, mid + 4);
    ctx.strokeStyle = '#1b1b1b';
    ctx.lineWidth = 1;
    ctx.beginPath();
    // One vertex per pixel column (min/max pairs) keeps 5000 samples crisp at any width.
    const perPixel = samples / plotW;
    for (let px = 0; px < plotW; px++) {
      const a = Math.floor(px * perPixel);
      const b = Math.max(a + 1, Math.floor((px + 1) * perPixel));
      let mn = Infinity;
      let mx = -Infinity;
      for (let i = a; i < Math.min(b, samples); i++) [mn, mx] = [Math.min(mn, trace[i]), Math.max(mx, trace[i])];
      if (px === 0) ctx.moveTo(left + px, y(trace[0]));
      ctx.lineTo(left + px, y(mn));
      ctx.lineTo(left + px, y(mx));
    }
    ctx.stroke();
  });
  ctx.fillStyle = '#333';
  ctx.fillText(title, left, 12);
  ctx.fillStyle = '#666';
  ctx.fillText('0 s', left, height - 3);
  ctx.fillText(`${seconds.toFixed(0)} s`, width - 30, height - 3);
  if (window) {
    // Top right, clear of the axis labels: the window may start at 0 s or end at 10 s.
    const label = `selected cycle ${(window[0] / 500).toFixed(2)}-${(window[1] / 500).toFixed(2)} s`;
    ctx.fillStyle = 'rgba(30, 90, 180, 1)';
    ctx.fillText(label, width - 8 - ctx.measureText(label).width, 12);
  }
}

export interface LossSeries {
  name: string;
  colour: string;
  /** (step, value) pairs; steps are drawn on the run's own axis, one run after the other. */
  points: [number, number][];
  totalSteps: number;
}

/** Loss curves of the runs side by side on a shared log-scaled y axis. */
export function drawLossCurves(canvas: HTMLCanvasElement, series: LossSeries[]): void {
  const { ctx, width, height } = prepare(canvas);
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, width, height);
  const left = 46;
  const bottom = height - 22;
  const top = 10;
  const values = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v > 0 && Number.isFinite(v));
  ctx.font = '11px system-ui, sans-serif';
  if (!values.length) {
    ctx.fillStyle = '#888';
    ctx.fillText('losses appear here while training', left, height / 2);
    return;
  }
  const lo = Math.log10(Math.min(...values));
  const hi = Math.log10(Math.max(...values));
  const span = Math.max(hi - lo, 0.3);
  const y = (v: number) => bottom - ((Math.log10(v) - (lo - span * 0.05)) / (span * 1.1)) * (bottom - top);
  ctx.strokeStyle = '#eee';
  ctx.fillStyle = '#666';
  for (let e = Math.floor(lo - 0.05 * span); e <= Math.ceil(hi + 0.05 * span); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      const py = y(v);
      if (py < top || py > bottom) continue;
      ctx.beginPath();
      ctx.moveTo(left, py);
      ctx.lineTo(width - 6, py);
      ctx.stroke();
      ctx.fillText(v >= 1 && v < 1e5 ? String(v) : v.toPrecision(1), 4, py + 4);
    }
  }
  const totalSteps = series.reduce((a, s) => a + Math.max(s.totalSteps, 1), 0);
  const plotW = width - left - 8;
  let offset = 0;
  for (const s of series) {
    const x = (step: number) => left + ((offset + step) / totalSteps) * plotW;
    ctx.strokeStyle = s.colour;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    s.points.forEach(([step, v], i) => (i ? ctx.lineTo(x(step), y(v)) : ctx.moveTo(x(step), y(v))));
    ctx.stroke();
    ctx.fillStyle = s.colour;
    ctx.fillText(s.name, x(0) + 4, bottom + 14);
    offset += Math.max(s.totalSteps, 1);
    ctx.strokeStyle = '#ccc';
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(x(0), top);
    ctx.lineTo(x(0), bottom);
    ctx.stroke();
  }
}

/** Plays clips (frames × height × width in [0, 1]) side by side on a canvas, looping. */
export class CinePlayer {
  private clips: { data: Float32Array; label: string }[] = [];
  private dims = { frames: 0, height: 0, width: 0 };
  private frame = 0;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly canvas: HTMLCanvasElement, private readonly onFrame: (frame: number, frames: number) => void = () => undefined) {}

  show(clips: { data: Float32Array; label: string }[], dims: { frames: number; height: number; width: number }, framesPerSecond = 8): void {
    this.clips = clips;
    this.dims = dims;
    this.frame = 0;
    this.stop();
    this.draw();
    if (dims.frames > 1) this.timer = setInterval(() => this.step(), 1000 / framesPerSecond);
  }

  get playing(): boolean {
    return this.timer !== null;
  }

  toggle(framesPerSecond = 8): void {
    if (this.timer) this.stop();
    else if (this.dims.frames > 1) this.timer = setInterval(() => this.step(), 1000 / framesPerSecond);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private step(): void {
    this.frame = (this.frame + 1) % this.dims.frames;
    this.draw();
  }

  draw(): void {
    const { ctx, width, height } = prepare(this.canvas);
    ctx.fillStyle = '#111';
    ctx.fillRect(0, 0, width, height);
    const { frames, height: h, width: w } = this.dims;
    if (!this.clips.length || !frames) {
      ctx.fillStyle = '#999';
      ctx.font = '13px system-ui, sans-serif';
      ctx.fillText('the generated cine plays here', 12, 22);
      return;
    }
    const gap = 8;
    const labelH = 16;
    const side = Math.min((width - gap * (this.clips.length + 1)) / this.clips.length, height - labelH - gap);
    const image = new ImageData(w, h);
    const tile = document.createElement('canvas');
    tile.width = w;
    tile.height = h;
    const tileCtx = tile.getContext('2d')!;
    this.clips.forEach((clip, k) => {
      const plane = clip.data.subarray(this.frame * h * w, (this.frame + 1) * h * w);
      for (let i = 0; i < h * w; i++) {
        const g = Math.max(0, Math.min(255, Math.round(plane[i] * 255)));
        image.data[4 * i] = g;
        image.data[4 * i + 1] = g;
        image.data[4 * i + 2] = g;
        image.data[4 * i + 3] = 255;
      }
      tileCtx.putImageData(image, 0, 0);
      const x = gap + k * (side + gap);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(tile, x, labelH, side, side);
      ctx.fillStyle = '#ddd';
      ctx.font = '12px system-ui, sans-serif';
      ctx.fillText(clip.label, x, 12);
    });
    this.onFrame(this.frame, frames);
  }
}
