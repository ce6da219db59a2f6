/**
 * XML loading for the ECG XML formats (GE CardioSoft, GE MUSE, HL7 aECG), on fast-xml-parser.
 *
 * - Text decoding follows the file: a UTF-8/UTF-16 byte-order mark, else the encoding named in the XML
 *   declaration (MUSE and CardioSoft exports declare ISO-8859-1), else UTF-8.
 * - Malformed XML is a DataError with the parser's line and column, not a library exception.
 * - Every element is parsed as an array of nodes and keeps its text under '#text', so the readers walk
 *   one uniform tree whether an element occurs once or many times. Namespace prefixes are dropped
 *   (HL7's default namespace and `xsi:type` become plain names).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { DataError } from '../errors';

export interface XmlNode {
  [child: string]: XmlNode[] | string | undefined;
}

const TEXT = '#text';
const ATTR = '@_';

/** The ECG XML dialects this layer reads, by root element. */
export type EcgXmlKind = 'cardiosoft' | 'muse' | 'hl7-aecg';

const ROOT_KINDS: Record<string, EcgXmlKind> = { CardiologyXML: 'cardiosoft', RestingECG: 'muse', AnnotatedECG: 'hl7-aecg' };

function declaredEncoding(bytes: Uint8Array): string | null {
  const head = new TextDecoder('latin1').decode(bytes.subarray(0, Math.min(bytes.length, 200)));
  const m = /^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']/.exec(head);
  return m ? m[1].toLowerCase() : null;
}

/** Decodes XML bytes as the file says (BOM, then the declaration, then UTF-8). */
export function decodeXmlText(bytes: Uint8Array, source: string): string {
  if (bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xfe) return new TextDecoder('utf-16le').decode(bytes.subarray(2));
  if (bytes.length >= 2 && bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder('utf-16be').decode(bytes.subarray(2));
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return new TextDecoder('utf-8').decode(bytes.subarray(3));
  // UTF-16 without a BOM still starts with '<' and a zero byte.
  if (bytes.length >= 2 && bytes[0] === 0x3c && bytes[1] === 0) return new TextDecoder('utf-16le').decode(bytes);
  if (bytes.length >= 2 && bytes[0] === 0 && bytes[1] === 0x3c) return new TextDecoder('utf-16be').decode(bytes);
  const encoding = declaredEncoding(bytes) ?? 'utf-8';
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(encoding);
  } catch {
    throw new DataError(source, `XML declares encoding '${encoding}', which this reader cannot decode (save the file as UTF-8)`);
  }
  return decoder.decode(bytes);
}

/** The root element's name of an XML text, or null (used to sniff .xml files). */
export function xmlRootName(text: string): string | null {
  // Skip the declaration, comments, processing instructions and a DOCTYPE (possibly with an internal subset).
  const m = /^\s*(?:<\?[\s\S]*?\?>\s*|<!--[\s\S]*?-->\s*|<!DOCTYPE[^[>]*(?:\[[\s\S]*?\])?\s*>\s*)*<([A-Za-z_][\w.:-]*)/.exec(text);
  if (!m) return null;
  const name = m[1];
  const colon = name.indexOf(':');
  return colon >= 0 ? name.slice(colon + 1) : name;
}

/** Which ECG XML dialect a text is, by its root element, or null. */
export function ecgXmlKind(text: string): EcgXmlKind | null {
  const root = xmlRootName(text);
  return root ? (ROOT_KINDS[root] ?? null) : null;
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: ATTR,
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  alwaysCreateTextNode: true,
  isArray: (_name, _path, _leaf, isAttribute) => !isAttribute,
});

/** Parses an ECG XML document and returns its root element, checking the root's name. */
export function parseEcgXml(bytes: Uint8Array, source: string, expectedRoot: string): XmlNode {
  const text = decodeXmlText(bytes, source);
  const check = XMLValidator.validate(text);
  if (check !== true) {
    const { msg, line, col } = check.err;
    throw new DataError(source, `malformed XML at line ${line}, column ${col}: ${msg}`);
  }
  let doc: XmlNode;
  try {
    doc = parser.parse(text) as XmlNode;
  } catch (e) {
    throw new DataError(source, `malformed XML (${e instanceof Error ? e.message : String(e)})`);
  }
  const root = children(doc, expectedRoot)[0];
  if (!root) {
    const found = Object.keys(doc).filter((k) => !k.startsWith('?') && k !== TEXT);
    throw new DataError(source, `root element is <${found[0] ?? '?'}>, expected <${expectedRoot}>`);
  }
  return root;
}

/** The child elements called `name` (none -> []). */
export function children(node: XmlNode | undefined, name: string): XmlNode[] {
  const value = node?.[name];
  return Array.isArray(value) ? value : [];
}

/** The first child called `name`, if any. */
export function child(node: XmlNode | undefined, name: string): XmlNode | undefined {
  return children(node, name)[0];
}

/** Follows a path of first children (`path(root, 'a', 'b')` = root/a[0]/b[0]). */
export function path(node: XmlNode | undefined, ...names: string[]): XmlNode | undefined {
  let current = node;
  for (const name of names) current = child(current, name);
  return current;
}

/** An element's own text ('' when empty). */
export function textOf(node: XmlNode | undefined): string {
  const value = node?.[TEXT];
  return typeof value === 'string' ? value : '';
}

/** The text of the first child called `name`, or undefined when there is no such child. */
export function childText(node: XmlNode | undefined, name: string): string | undefined {
  const c = child(node, name);
  return c === undefined ? undefined : textOf(c);
}

/** An attribute's value (without namespace prefix), if present. */
export function attr(node: XmlNode | undefined, name: string): string | undefined {
  const value = node?.[ATTR + name];
  return typeof value === 'string' ? value : undefined;
}

/** Every descendant element called `name`, depth first in document order of each level. */
export function descendants(node: XmlNode, name: string, out: XmlNode[] = []): XmlNode[] {
  for (const [key, value] of Object.entries(node)) {
    if (!Array.isArray(value)) continue;
    for (const c of value) {
      if (key === name) out.push(c);
      descendants(c, name, out);
    }
  }
  return out;
}
