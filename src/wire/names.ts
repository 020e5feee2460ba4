/**
 * Domain names as "wire keys": the lower-cased wire form of a name (length-prefixed labels, ending in the root
 * label) held in a latin1 string. A key is what a query parses to, what the name table is indexed by, and what
 * the encoder writes, so a label that contains a dot (`web\.default`) can never be mistaken for two labels.
 */
import { ClusterDnsError } from '../errors.js';

export const ROOT_KEY = '\0';

export class NameError extends ClusterDnsError {
  constructor(message: string) {
    super('E_NAME', message);
    this.name = 'NameError';
  }
}

/** `Web.default.svc.cluster.local.` (trailing dot optional) → wire key. Throws NameError on a bad name. */
export function nameToKey(text: string): string {
  const trimmed = text.endsWith('.') ? text.slice(0, -1) : text;
  if (trimmed === '') return ROOT_KEY;
  let key = '';
  for (const label of trimmed.split('.')) {
    if (label.length === 0) throw new NameError(`empty label in name "${text}"`);
    if (label.length > 63) throw new NameError(`label "${label}" is longer than 63 bytes`);
    if (!/^[\x21-\x7e]+$/.test(label)) throw new NameError(`label "${label}" has characters outside printable ASCII`);
    key += String.fromCharCode(label.length) + label.toLowerCase();
  }
  key += ROOT_KEY;
  if (key.length > 255) throw new NameError(`name "${text}" is longer than 255 bytes`);
  return key;
}

/** Wire key → dotted text with a trailing dot; dots and backslashes inside labels are escaped as dig does. */
export function keyToName(key: string): string {
  if (key === ROOT_KEY) return '.';
  let text = '';
  for (let i = 0; key.charCodeAt(i) !== 0; ) {
    const length = key.charCodeAt(i);
    text += key.slice(i + 1, i + 1 + length).replace(/[.\\]/g, (c) => `\\${c}`) + '.';
    i += length + 1;
  }
  return text;
}

/** The key of the name one label up; the root has no parent. */
export function parentKey(key: string): string | undefined {
  if (key === ROOT_KEY) return undefined;
  return key.slice(key.charCodeAt(0) + 1);
}

/** The first label of a key, as text. */
export function firstLabel(key: string): string {
  return key.slice(1, 1 + key.charCodeAt(0));
}

/** The labels of a run of wire-form labels (a key without its root, e.g. the part of a key above its zone), leftmost first. */
export function labelsOf(labels: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < labels.length; i += labels.charCodeAt(i) + 1) out.push(labels.slice(i + 1, i + 1 + labels.charCodeAt(i)));
  return out;
}

/** True when `key` is `zoneKey` or below it, matching on label boundaries only. */
export function isInZone(key: string, zoneKey: string): boolean {
  if (key.length < zoneKey.length || !key.endsWith(zoneKey)) return false;
  const boundary = key.length - zoneKey.length;
  for (let i = 0; i <= boundary; i += key.charCodeAt(i) + 1) if (i === boundary) return true;
  return false;
}

/**
 * Presentation-format name (as keyToName writes it and zone files hold it: `\.` and `\\` inside a label, `\DDD`
 * for any byte) → wire key, with or without the trailing dot. The inverse of keyToName. Throws NameError.
 */
export function presentationToKey(text: string): string {
  if (text === '.' || text === '') {
    if (text === '') throw new NameError('empty name');
    return ROOT_KEY;
  }
  let key = '';
  let label = '';
  const endLabel = (): void => {
    if (label.length === 0) throw new NameError(`empty label in name "${text}"`);
    if (label.length > 63) throw new NameError(`label "${label}" is longer than 63 bytes`);
    key += String.fromCharCode(label.length) + label;
    label = '';
  };
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c === 0x2e /* . */) {
      endLabel();
      continue;
    }
    if (c === 0x5c /* \ */) {
      const digits = /^\d{3}/.exec(text.slice(i + 1, i + 4));
      if (digits !== null) {
        c = Number(digits[0]);
        if (c > 255) throw new NameError(`escape \\${digits[0]} in name "${text}" is above 255`);
        i += 3;
      } else if (i + 1 < text.length) {
        c = text.charCodeAt(++i);
      } else {
        throw new NameError(`name "${text}" ends in a lone backslash`);
      }
    }
    // Raw bytes other than the dot and the backslash stand for themselves, as keyToName writes them.
    if (c > 0xff) throw new NameError(`name "${text}" has a character outside one byte`);
    label += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c + 0x20 : c);
  }
  if (label.length > 0) endLabel();
  key += ROOT_KEY;
  if (key.length > 255) throw new NameError(`name "${text}" is longer than 255 bytes`);
  return key;
}
