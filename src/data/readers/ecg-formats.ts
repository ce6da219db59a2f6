/**
 * Which ECG reader a file needs: by extension, and by content where the extension does not say enough
 * (.xml is CardioSoft, MUSE or HL7 aECG by its root element; .dcm may be an image rather than a waveform;
 * DICOM files often have no extension at all).
 */
import { DataError } from '../errors';
import { type EcgReadResult } from './ecg-common';
import { decodeXmlText, ecgXmlKind, xmlRootName } from './ecg-xml';
import { parseCardiosoftXml } from './cardiosoft-xml';
import { parseMuseXml } from './muse-xml';
import { parseHl7Aecg } from './hl7-aecg';
import { looksLikeDicom, parseDicomEcg } from './dicom-ecg';
import { looksLikeEdf, parseEdf } from './edf';

export type EcgFileFormat = 'cardiosoft' | 'muse' | 'hl7-aecg' | 'dicom' | 'edf';

function xmlFormat(bytes: Uint8Array, source: string): EcgFileFormat {
  // The root element is usually within the first 4 kB; long comment or DOCTYPE preambles need the whole text.
  let text = decodeXmlText(bytes.subarray(0, Math.min(bytes.length, 4096)), source);
  if (xmlRootName(text) === null && bytes.length > 4096) text = decodeXmlText(bytes, source);
  const kind = ecgXmlKind(text);
  if (kind) return kind;
  const root = xmlRootName(text);
  throw new DataError(source, `XML root element <${root ?? '?'}> is not an ECG format this reader knows (CardiologyXML = GE CardioSoft, RestingECG = GE MUSE, AnnotatedECG = HL7 aECG)`);
}

function startsLikeXml(bytes: Uint8Array): boolean {
  let i = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) return true;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  return bytes[i] === 0x3c; // '<'
}

/** The format of an ECG file from its extension and, where needed, its first bytes; null if unknown. */
export function detectEcgFormat(bytes: Uint8Array, path: string): EcgFileFormat | null {
  const lower = path.toLowerCase();
  if (lower.endsWith('.xml')) return xmlFormat(bytes, path);
  if (lower.endsWith('.dcm') || lower.endsWith('.dicom')) return 'dicom';
  if (/\.(edf|bdf|rec)$/.test(lower)) return 'edf';
  if (looksLikeDicom(bytes)) return 'dicom';
  if (looksLikeEdf(bytes)) return 'edf';
  if (startsLikeXml(bytes)) return xmlFormat(bytes, path);
  return null;
}

/** Reads an ECG file of a known format from its bytes. */
export function parseEcgFormat(bytes: Uint8Array, source: string, format: EcgFileFormat): EcgReadResult {
  switch (format) {
    case 'cardiosoft':
      return parseCardiosoftXml(bytes, source);
    case 'muse':
      return parseMuseXml(bytes, source);
    case 'hl7-aecg':
      return parseHl7Aecg(bytes, source);
    case 'dicom':
      return parseDicomEcg(bytes, source);
    case 'edf':
      return parseEdf(bytes, source);
  }
}

/** Detects the format and reads it; a DataError when the bytes are none of these formats. */
export function parseEcgBytes(bytes: Uint8Array, source: string): EcgReadResult {
  const format = detectEcgFormat(bytes, source);
  if (!format) throw new DataError(source, 'not a recognised ECG file (expected CardioSoft/MUSE/HL7 aECG XML, DICOM waveform or EDF)');
  return parseEcgFormat(bytes, source, format);
}
