/**
 * One resource record in zone-file presentation (RFC 1035 §5.1), as a template renders it and miekg/dns's NewRR
 * reads it: `OWNER [TTL] [CLASS] TYPE RDATA`, TTL and class in either order, TTL 3600 and class IN when left out,
 * names relative to the root, parentheses and `;` comments allowed. Returns the record in wire form, ready for
 * prepareAnswer.
 *
 * Record types: A, AAAA, CNAME, DNAME, MX, NS, PTR, SOA, SRV, TXT. Another type is an error, which the template
 * plugin reports when it loads (a record it would never be able to write) and counts if it appears only once a
 * template runs.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { ipBytes } from '../../ip.js';
import { CLASS_CODES, NameError, presentationToKey, ROOT_KEY, TYPE_CODES, type WireRecord } from '../../wire/index.js';

export class RecordTextError extends Error {}

const WRITABLE = ['A', 'AAAA', 'CNAME', 'DNAME', 'MX', 'NS', 'PTR', 'SOA', 'SRV', 'TXT'] as const;
const DEFAULT_TTL = 3600;

interface Token {
  readonly text: string;
  readonly quoted: boolean;
}

/** The record's type mnemonic, found as parseRecord finds it, or undefined: for checking a template at load. */
export function recordType(text: string): string | undefined {
  const tokens = tokenize(text);
  let i = 1;
  for (let fields = 0; fields < 2 && i < tokens.length && (isTtl(tokens[i]!.text) || tokens[i]!.text.toUpperCase() in CLASS_CODES); fields++) i++;
  return tokens[i]?.text.toUpperCase();
}

/** The one record `text` holds. Throws RecordTextError saying what is wrong. */
export function parseRecord(text: string): WireRecord {
  const tokens = tokenize(text);
  const fail: (why: string) => never = (why) => {
    throw new RecordTextError(`record ${JSON.stringify(text.trim())}: ${why}`);
  };
  if (tokens.length === 0) fail('empty');
  const owner = name(tokens[0]!, fail);
  let ttl: number | undefined;
  let klass: number | undefined;
  let i = 1;
  for (; i < tokens.length && i <= 2; i++) {
    const field = tokens[i]!.text;
    if (ttl === undefined && isTtl(field)) ttl = seconds(field, fail);
    else if (klass === undefined && field.toUpperCase() in CLASS_CODES) klass = CLASS_CODES[field.toUpperCase()]!;
    else break;
  }
  const typeText = tokens[i]?.text.toUpperCase();
  if (typeText === undefined) fail('no type');
  const type = TYPE_CODES[typeText] ?? (/^TYPE\d+$/.test(typeText) ? Number(typeText.slice(4)) : undefined);
  if (type === undefined || type > 0xffff) fail(`"${tokens[i]!.text}" is not a record type`);
  const rdata = rdataOf(typeText, tokens.slice(i + 1), fail);
  return { owner, type, class: klass ?? CLASS_CODES.IN!, ttl: ttl ?? DEFAULT_TTL, rdata };
}

function rdataOf(type: string, fields: readonly Token[], fail: (why: string) => never): Buffer {
  const count = (n: number): void => {
    if (fields.length !== n) fail(`${type} wants ${n} field${n === 1 ? '' : 's'} after the type, got ${fields.length}`);
  };
  const u16 = (token: Token): Buffer => {
    if (!/^\d+$/.test(token.text) || Number(token.text) > 0xffff) fail(`"${token.text}" is not a number from 0 to 65535`);
    const out = Buffer.alloc(2);
    out.writeUInt16BE(Number(token.text));
    return out;
  };
  const nameBytes = (token: Token): Buffer => Buffer.from(name(token, fail), 'latin1');
  switch (type as (typeof WRITABLE)[number]) {
    case 'A':
      count(1);
      if (!isIPv4(fields[0]!.text)) fail(`"${fields[0]!.text}" is not an IPv4 address`);
      return ipBytes(fields[0]!.text);
    case 'AAAA':
      count(1);
      if (!isIPv6(fields[0]!.text)) fail(`"${fields[0]!.text}" is not an IPv6 address`);
      return ipBytes(fields[0]!.text);
    case 'CNAME':
    case 'DNAME':
    case 'NS':
    case 'PTR':
      count(1);
      return nameBytes(fields[0]!);
    case 'MX':
      count(2);
      return Buffer.concat([u16(fields[0]!), nameBytes(fields[1]!)]);
    case 'SRV':
      count(4);
      return Buffer.concat([u16(fields[0]!), u16(fields[1]!), u16(fields[2]!), nameBytes(fields[3]!)]);
    case 'TXT': {
      if (fields.length === 0) fail('TXT wants at least one string');
      return Buffer.concat(fields.map((field) => {
        const bytes = characterString(field.text);
        if (bytes.length > 255) fail('a TXT string is longer than 255 bytes');
        return Buffer.concat([Buffer.from([bytes.length]), bytes]);
      }));
    }
    case 'SOA': {
      count(7);
      const times = fields.slice(2).map((field) => {
        const out = Buffer.alloc(4);
        out.writeUInt32BE(seconds(field.text, fail));
        return out;
      });
      return Buffer.concat([nameBytes(fields[0]!), nameBytes(fields[1]!), ...times]);
    }
    default:
      return fail(`type ${type} is not supported in template records (supported: ${WRITABLE.join(', ')})`);
  }
}

/** A name relative to the root (CoreDNS's NewRR has origin "."): a trailing dot is added when it lacks one. */
function name(token: Token, fail: (why: string) => never): string {
  if (token.quoted) fail(`a name cannot be quoted: "${token.text}"`);
  if (token.text === '@') return ROOT_KEY;
  try {
    return presentationToKey(token.text);
  } catch (error) {
    if (error instanceof NameError) return fail(error.message);
    throw error;
  }
}

/** miekg/dns's TTLs: seconds, or a sum of number-unit pairs (`1h30m`, `2d`; units s, m, h, d, w). */
function isTtl(text: string): boolean {
  return /^\d+$/.test(text) || /^(?:\d+[smhdw])+$/i.test(text);
}

function seconds(text: string, fail: (why: string) => never): number {
  if (!isTtl(text)) fail(`"${text}" is not a TTL`);
  const unit: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  const total = /^\d+$/.test(text)
    ? Number(text)
    : [...text.toLowerCase().matchAll(/(\d+)([smhdw])/g)].reduce((sum, [, n, u]) => sum + Number(n) * unit[u!]!, 0);
  if (total > 0xffffffff) fail(`TTL ${text} is above 2^32-1`);
  return total;
}

/** A character string's bytes: `\DDD` is that byte, `\X` is X, and other text is UTF-8 (as Go writes it). */
function characterString(text: string): Buffer {
  const parts: Buffer[] = [];
  let plain = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== '\\' || i + 1 >= text.length) {
      plain += text[i];
      continue;
    }
    const digits = /^\d{3}/.exec(text.slice(i + 1, i + 4));
    if (digits === null) {
      plain += text[++i];
      continue;
    }
    parts.push(Buffer.from(plain, 'utf8'), Buffer.from([Number(digits[0]) & 0xff]));
    plain = '';
    i += 3;
  }
  parts.push(Buffer.from(plain, 'utf8'));
  return Buffer.concat(parts);
}

/** Splits on whitespace outside quotes; drops parentheses and `;` comments. Escapes stay for the field's reader. */
function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c) || c === '(' || c === ')') {
      i++;
    } else if (c === ';') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '"') {
      let value = '';
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === '\\' && i + 1 < text.length) value += text[i++];
        value += text[i];
      }
      i++;
      tokens.push({ text: value, quoted: true });
    } else {
      let value = '';
      while (i < text.length && !/[\s();"]/.test(text[i]!)) {
        if (text[i] === '\\' && i + 1 < text.length) value += text[i++];
        value += text[i++];
      }
      tokens.push({ text: value, quoted: false });
    }
  }
  return tokens;
}
