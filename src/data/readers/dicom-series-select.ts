/**
 * Choosing the cine series among the many series of a study (a UK Biobank zip holds the long-axis 2-,
 * 3- and 4-chamber cines, a short-axis stack, localisers, flow, T1 maps...).
 *
 * The series are grouped by SeriesInstanceUID and matched by SeriesDescription (or ProtocolName when the
 * description is empty) against a pattern, by default the long-axis four-chamber cine (UK Biobank:
 * "CINE_segmented_LAX_4Ch"). When the pattern matches several series, those that look like a cine
 * (one slice location, several frames) are preferred; when that still leaves zero or several, the
 * DataError lists every series found (number, description, files, frames, slice locations, orientation)
 * so the user can pass a tighter `seriesPattern` or the `seriesUid`.
 */
import { DataError } from '../errors';

/** UK Biobank "CINE_segmented_LAX_4Ch", "4CH", "4-ch", "four chamber", "LAX ... 4". */
export const DEFAULT_SERIES_PATTERN = /4ch|4-ch|four.?chamber|lax.*4/i;

/** What the selection needs to know about one file. */
export interface SeriesMember {
  seriesUid: string;
  seriesNumber: number | null;
  description: string;
  frames: number;
  location: string;
  /** ImageOrientationPatient (row cosines, column cosines) or null. */
  orientation: number[] | null;
}

export interface SeriesSummary {
  uid: string;
  number: number | null;
  description: string;
  files: number;
  frames: number;
  sliceLocations: number;
  orientation: string;
}

export interface SeriesSelection {
  chosen: SeriesSummary;
  /** Every series found, in series-number order. */
  series: SeriesSummary[];
  /** Why this one: 'only series', 'seriesUid', 'pattern /.../', 'pattern ... and the only cine-like match'. */
  reason: string;
}

export interface SeriesSelectOptions {
  /** Regular expression (or its source, case-insensitive) matched against SeriesDescription. */
  seriesPattern?: RegExp | string;
  /** Exact SeriesInstanceUID; overrides the pattern. */
  seriesUid?: string;
}

/** Plane of an ImageOrientationPatient: the axis the slice normal points along, or 'oblique'. */
export function orientationLabel(orientation: number[] | null): string {
  if (!orientation || orientation.length !== 6 || !orientation.every(Number.isFinite)) return 'orientation unknown';
  const [rx, ry, rz, cx, cy, cz] = orientation;
  const normal = [ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx];
  const length = Math.hypot(...normal) || 1;
  const [ax, ay, az] = normal.map((v) => Math.abs(v) / length);
  const plane = ax > 0.9 ? 'sagittal' : ay > 0.9 ? 'coronal' : az > 0.9 ? 'axial' : 'oblique';
  return `${plane} (normal ${normal.map((v) => (v / length).toFixed(2)).join(',')})`;
}

function summarize<T extends SeriesMember>(members: T[]): SeriesSummary {
  const first = members[0];
  return {
    uid: first.seriesUid,
    number: first.seriesNumber,
    description: first.description,
    files: members.length,
    frames: members.reduce((n, m) => n + m.frames, 0),
    sliceLocations: new Set(members.map((m) => m.location)).size,
    orientation: orientationLabel(first.orientation),
  };
}

export function describeSeries(s: SeriesSummary): string {
  const number = s.number === null ? '' : `#${s.number} `;
  return `${number}"${s.description || '(no description)'}" (${s.files} file(s), ${s.frames} frame(s), ${s.sliceLocations} slice location(s), ${s.orientation}, uid ${s.uid || '(none)'})`;
}

function toPattern(pattern: RegExp | string | undefined, source: string): RegExp {
  if (pattern === undefined) return DEFAULT_SERIES_PATTERN;
  if (pattern instanceof RegExp) return pattern;
  try {
    return new RegExp(pattern, 'i');
  } catch {
    throw new DataError(source, `seriesPattern ${JSON.stringify(pattern)} is not a valid regular expression`);
  }
}

/** Groups `members` by series and picks one; returns its members and the report of the choice. */
export function selectSeries<T extends SeriesMember>(members: T[], options: SeriesSelectOptions, source: string): { members: T[]; selection: SeriesSelection } {
  const groups = new Map<string, T[]>();
  for (const m of members) {
    const list = groups.get(m.seriesUid);
    if (list) list.push(m);
    else groups.set(m.seriesUid, [m]);
  }
  const entries = [...groups.entries()].map(([uid, list]) => ({ uid, list, summary: summarize(list) }));
  entries.sort((a, b) => (a.summary.number ?? Infinity) - (b.summary.number ?? Infinity) || a.uid.localeCompare(b.uid));
  const series = entries.map((e) => e.summary);
  const listing = () => series.map((s) => `  ${describeSeries(s)}`).join('\n');
  const done = (entry: (typeof entries)[number], reason: string) => ({ members: entry.list, selection: { chosen: entry.summary, series, reason } });

  if (options.seriesUid !== undefined) {
    const entry = entries.find((e) => e.uid === options.seriesUid);
    if (!entry) throw new DataError(source, `no series with SeriesInstanceUID ${options.seriesUid}; series found:\n${listing()}`);
    return done(entry, 'seriesUid');
  }
  const pattern = toPattern(options.seriesPattern, source);
  if (entries.length === 1 && options.seriesPattern === undefined) return done(entries[0], 'only series');
  const matching = entries.filter((e) => pattern.test(e.summary.description));
  if (matching.length === 1) return done(matching[0], `SeriesDescription matches ${pattern}`);
  if (matching.length > 1) {
    const cineLike = matching.filter((e) => e.summary.sliceLocations === 1 && e.summary.frames > 1);
    if (cineLike.length === 1) return done(cineLike[0], `SeriesDescription matches ${pattern}; the only match with one slice location and several frames`);
    throw new DataError(
      source,
      `${matching.length} series match ${pattern}; pass a tighter seriesPattern or the seriesUid. Series found:\n${listing()}`,
    );
  }
  throw new DataError(source, `no series description matches ${pattern}; pass seriesPattern or seriesUid. Series found:\n${listing()}`);
}
