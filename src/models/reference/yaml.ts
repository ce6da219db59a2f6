/**
 * The YAML subset the reference's config files use (config/disentangle_vae3d.yaml): nested mappings by
 * indentation, `key: value` scalars (integers, floats incl. `1e-6`, True/False/true/false, null/None/~,
 * bare or quoted strings), flow lists `[1, 2, 4, 4]` of scalars, block lists (`- item`) of scalars, and
 * `#` comments. Anchors, multi-line strings, flow mappings and nested flow lists are refused with the line
 * number (no YAML dependency for a dozen lines of config).
 */
import { ReferenceConfigError } from './kwargs';

export type YamlValue = null | boolean | number | string | YamlValue[] | { [key: string]: YamlValue };

interface Line {
  number: number;
  indent: number;
  text: string;
}

function stripComment(raw: string): string {
  let quote: string | null = null;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(raw[i - 1]))) return raw.slice(0, i);
  }
  return raw;
}

function scalar(text: string, line: number, source: string): YamlValue {
  const t = text.trim();
  if (t === '' || t === '~' || t === 'null' || t === 'None' || t === 'Null' || t === 'NULL') return null;
  if (/^(true|True|TRUE)$/.test(t)) return true;
  if (/^(false|False|FALSE)$/.test(t)) return false;
  if (/^[-+]?\d+$/.test(t)) return Number(t);
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return Number(t);
  if ((t.startsWith('"') && t.endsWith('"')) || (t.startsWith("'") && t.endsWith("'"))) return t.length >= 2 ? t.slice(1, -1) : fail(line, source, 'unterminated string');
  if (/^[&*!|>{]/.test(t)) return fail(line, source, `unsupported YAML syntax '${t[0]}' (only mappings, scalars and lists are read)`);
  if (t.startsWith('[')) {
    if (!t.endsWith(']')) return fail(line, source, 'a flow list must open and close on one line');
    const inner = t.slice(1, -1).trim();
    if (inner.includes('[') || inner.includes('{')) return fail(line, source, 'nested flow collections are not supported');
    return inner === '' ? [] : inner.split(',').map((item) => scalar(item, line, source));
  }
  return t;
}

function fail(line: number, source: string, message: string): never {
  throw new ReferenceConfigError(`${source}:${line}: ${message}`);
}

export function parseYaml(text: string, source = 'config.yaml'): YamlValue {
  const lines: Line[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    if (/\t/.test(raw.match(/^\s*/)![0])) fail(i + 1, source, 'tabs are not allowed in indentation');
    const body = stripComment(raw);
    if (body.trim() === '' || body.trim() === '---') return;
    lines.push({ number: i + 1, indent: body.length - body.trimStart().length, text: body.trim() });
  });
  let pos = 0;

  const block = (indent: number): YamlValue => {
    const first = lines[pos];
    if (first.text.startsWith('- ') || first.text === '-') {
      const list: YamlValue[] = [];
      while (pos < lines.length && lines[pos].indent === indent && (lines[pos].text.startsWith('- ') || lines[pos].text === '-')) {
        const item = lines[pos].text.slice(1).trim();
        if (/^[^'"[\s][^:]*:(\s|$)/.test(item)) fail(lines[pos].number, source, 'mappings inside block lists are not supported');
        list.push(scalar(item, lines[pos].number, source));
        pos++;
      }
      return list;
    }
    const map: { [key: string]: YamlValue } = {};
    while (pos < lines.length && lines[pos].indent === indent) {
      const { text: t, number } = lines[pos];
      const m = /^("[^"]*"|'[^']*'|[^:]+?)\s*:(\s+(.*))?$/.exec(t);
      if (!m) fail(number, source, `expected 'key: value', got '${t}'`);
      const key = m[1].replace(/^["']|["']$/g, '');
      if (Object.prototype.hasOwnProperty.call(map, key)) fail(number, source, `duplicate key '${key}'`);
      pos++;
      const rest = m[3]?.trim() ?? '';
      if (rest !== '') map[key] = scalar(rest, number, source);
      else if (pos < lines.length && lines[pos].indent > indent) map[key] = block(lines[pos].indent);
      else if (pos < lines.length && lines[pos].indent === indent && lines[pos].text.startsWith('-')) map[key] = block(indent);
      else map[key] = null;
    }
    if (pos < lines.length && lines[pos].indent > indent) fail(lines[pos].number, source, 'unexpected indentation');
    return map;
  };

  if (!lines.length) return null;
  const root = block(lines[0].indent);
  if (pos < lines.length) fail(lines[pos].number, source, 'unexpected indentation');
  return root;
}
