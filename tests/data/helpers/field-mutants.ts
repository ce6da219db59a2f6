/**
 * Header-field sweeps for text formats, next to the random mutants of tests/helpers/fuzz.ts: every number
 * on the chosen lines is replaced, one at a time, by each extreme value (zero, negative, tiny, huge,
 * beyond 2^31 and 2^32, NaN, empty). Random digit swaps rarely hit the one field that sizes an allocation
 * (a sampling frequency, a sample count, the last time stamp); a sweep hits every one of them.
 */
import type { Mutant } from '../../helpers/fuzz';

export const EXTREME_NUMBERS = ['0', '-1', '1e-9', '0.36', '3.5', '2147483648', '4294967296', '99999999999', '1e308', 'NaN', ''];

/** One mutant per (number on `lines`, extreme value); `lines` are 0-based, negative counts from the end. */
export function numericFieldMutants(text: string, lines: number[], values: readonly string[] = EXTREME_NUMBERS): Mutant[] {
  const all = text.split('\n');
  const chosen = new Set(lines.map((l) => (l < 0 ? all.length + l : l)));
  const out: Mutant[] = [];
  const encoder = new TextEncoder();
  all.forEach((line, li) => {
    if (!chosen.has(li)) return;
    for (const m of line.matchAll(/-?\d+(?:\.\d+)?(?:e[-+]?\d+)?/gi)) {
      for (const v of values) {
        const mutated = [...all];
        mutated[li] = line.slice(0, m.index!) + v + line.slice(m.index! + m[0].length);
        out.push({ name: `line ${li + 1}: '${m[0]}' at column ${m.index} -> '${v}'`, bytes: encoder.encode(mutated.join('\n')) });
      }
    }
  });
  return out;
}
