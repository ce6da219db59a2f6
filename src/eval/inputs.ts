/**
 * Turning arrays into evaluation clips (T, H, W) in [0, 1] (host only; the CLI does the file IO).
 *
 * Range detection over the whole array, as the reference evaluation does it (§7.1: above 1.1 means
 * 0-255), extended to our [-1, 1] dataset convention:
 *   max > 1.1          → 0-255, divided by 255
 *   else min < -0.05   → [-1, 1] (the dataset's min-max normalisation), mapped by (x + 1) / 2
 *   else               → already [0, 1]
 * After mapping, values are clamped to [0, 1] (generated clips overshoot slightly; a saved image would
 * clip them too).
 */

export type ValueRange = 'unit' | 'signed' | 'byte';

export function detectRange(data: ArrayLike<number>): ValueRange {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (max > 1.1) return 'byte';
  if (min < -0.05) return 'signed';
  return 'unit';
}

/** A fresh float32 copy mapped from `range` to [0, 1] and clamped. */
export function toUnitRange(data: ArrayLike<number>, range: ValueRange): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = range === 'byte' ? data[i] / 255 : range === 'signed' ? (data[i] + 1) / 2 : data[i];
    out[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return out;
}

export interface ClipSet {
  /** Clips (T, H, W) in [0, 1]. */
  clips: Float32Array[];
  frames: number;
  height: number;
  width: number;
  /** Subject ids when known (directories of <id>.npy, or metadata), else null. */
  ids: (string | null)[];
  range: ValueRange;
}

/**
 * Splits an array of shape (N, 1, T, H, W), (N, T, H, W) or (T, H, W) (one clip) into clips. With
 * `single`, a 4-D (1, T, H, W) or 5-D (1, 1, T, H, W) array is one clip (a per-subject file).
 */
export function clipLayout(shape: readonly number[], source: string): { count: number; frames: number; height: number; width: number } {
  if (shape.length === 5) {
    if (shape[1] !== 1) throw new Error(`${source}: a 5-D array must be (N, 1, T, H, W), got (${shape.join(', ')})`);
    return { count: shape[0], frames: shape[2], height: shape[3], width: shape[4] };
  }
  if (shape.length === 4) return { count: shape[0], frames: shape[1], height: shape[2], width: shape[3] };
  if (shape.length === 3) return { count: 1, frames: shape[0], height: shape[1], width: shape[2] };
  throw new Error(`${source}: expected (N, 1, T, H, W), (N, T, H, W) or (T, H, W), got (${shape.join(', ')})`);
}

type NumericArray = ArrayLike<number> & { subarray(begin: number, end: number): ArrayLike<number> };

/** Builds a ClipSet from one array; `range` 'auto' detects it over the whole array. */
export function clipSetFromArray(data: NumericArray, shape: readonly number[], source: string, range: ValueRange | 'auto' = 'auto', ids?: readonly string[]): ClipSet {
  const layout = clipLayout(shape, source);
  const size = layout.frames * layout.height * layout.width;
  if (data.length !== layout.count * size) throw new Error(`${source}: ${data.length} values do not fill shape (${shape.join(', ')})`);
  if (ids && ids.length !== layout.count) throw new Error(`${source}: ${ids.length} ids for ${layout.count} clips`);
  const resolved = range === 'auto' ? detectRange(data) : range;
  const clips: Float32Array[] = [];
  for (let k = 0; k < layout.count; k++) clips.push(toUnitRange(data.subarray(k * size, (k + 1) * size), resolved));
  return { clips, frames: layout.frames, height: layout.height, width: layout.width, ids: ids ? [...ids] : clips.map(() => null), range: resolved };
}
