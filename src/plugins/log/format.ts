/**
 * CoreDNS's query log format: `{remote}:{port} - {>id} "{type} {class} {name} ..."` and the other placeholders its
 * log plugin documents, compiled once at setup into a list of literal texts and fields, so a logged query costs one
 * pass over that list. A placeholder CoreDNS does not know stays as written, as in CoreDNS; `{/LABEL}` (metadata,
 * which clusterdns has no plugin to set) is `-`, CoreDNS's value for a label nothing set.
 */
import { isIPv6 } from 'node:net';
import { classMnemonic, keyToName, rcodeName, typeName } from '../../wire/index.js';
import type { LoggedQuery } from '../plugin.js';

export const COMMON_LOG_FORMAT = '{remote}:{port} - {>id} "{type} {class} {name} {proto} {size} {>do} {>bufsize}" {rcode} {>rflags} {rsize} {duration}';
export const COMBINED_LOG_FORMAT = `${COMMON_LOG_FORMAT} "{>opcode}"`;

type Field = (logged: LoggedQuery) => string;

/** An IP as CoreDNS's replacer writes it: IPv6 in brackets (RFC 3986), so `{remote}:{port}` stays readable. */
function bracketed(address: string): string {
  return isIPv6(address) ? `[${address}]` : address;
}

/** The header flags of a reply in CoreDNS's order and spelling: `qr,aa,rd,ra`. */
function replyFlags(reply: Buffer): string {
  if (reply.length < 4) return '';
  const flags = reply.readUInt16BE(2);
  const set: string[] = [];
  if (flags & 0x8000) set.push('qr');
  if (flags & 0x0400) set.push('aa');
  if (flags & 0x0200) set.push('tc');
  if (flags & 0x0100) set.push('rd');
  if (flags & 0x0080) set.push('ra');
  if (flags & 0x0040) set.push('z');
  if (flags & 0x0020) set.push('ad');
  if (flags & 0x0010) set.push('cd');
  return set.join(',');
}

/** Seconds as Go's FormatFloat(s, 'f', -1) then "s": plain decimals, never an exponent. */
function duration(seconds: number): string {
  return `${seconds.toFixed(9).replace(/\.?0+$/, '')}s`;
}

const FIELDS: Readonly<Record<string, Field>> = {
  '{type}': ({ query }) => typeName(query.qtype),
  '{name}': ({ query }) => keyToName(query.key),
  '{class}': ({ query }) => classMnemonic(query.qclass) ?? `CLASS${query.qclass}`,
  '{proto}': ({ client }) => (client.transport === 'tcp' ? 'tcp' : 'udp'),
  '{size}': (logged) => String(logged.requestSize),
  '{remote}': ({ client }) => bracketed(client.address),
  '{port}': ({ client }) => String(client.port),
  '{local}': (logged) => bracketed(logged.local),
  '{rcode}': (logged) => rcodeName(logged.rcode),
  '{rsize}': (logged) => String(logged.reply.length),
  '{duration}': (logged) => duration(logged.seconds),
  '{>id}': ({ query }) => String(query.id),
  '{>opcode}': ({ query }) => String((query.flags >> 11) & 0xf),
  '{>do}': ({ query }) => String(query.edns && query.dnssecOk),
  // CoreDNS's request size: 65535 over TCP, else the advertised EDNS size, at least 512.
  '{>bufsize}': ({ query, client }) => String(client.transport === 'tcp' ? 65535 : query.edns ? Math.max(512, query.udpSize) : 512),
  '{>rflags}': (logged) => replyFlags(logged.reply),
};

/** A format's pieces: literal texts and the fields between them. */
export type CompiledFormat = readonly (string | Field)[];

export function compileFormat(format: string): CompiledFormat {
  const expanded = format.replaceAll('{common}', COMMON_LOG_FORMAT).replaceAll('{combined}', COMBINED_LOG_FORMAT);
  const pieces: (string | Field)[] = [];
  let literal = '';
  for (const part of expanded.split(/(\{[^{}]*\})/)) {
    const field = FIELDS[part] ?? (part.startsWith('{/') ? () => '-' : undefined);
    if (field === undefined) {
      literal += part;
      continue;
    }
    if (literal !== '') pieces.push(literal);
    literal = '';
    pieces.push(field);
  }
  if (literal !== '') pieces.push(literal);
  return pieces;
}

export function formatLine(format: CompiledFormat, logged: LoggedQuery): string {
  let line = '';
  for (const piece of format) line += typeof piece === 'string' ? piece : piece(logged);
  return line;
}
