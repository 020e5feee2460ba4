/**
 * Whole DNS messages from other servers: the upstream replies the forwarder receives, decoded once into records
 * whose names are expanded, so they can be cached, counted down, merged behind a CNAME and re-encoded with our
 * own compression. Also the queries we send upstream.
 *
 * Why not dns2's Packet decoder: it turns names into dotted strings (a label holding a dot becomes two labels),
 * builds an object tree per record and re-encodes only the types it knows, and a forwarder must pass every
 * type through unchanged. Here a record keeps its RDATA bytes; only the names inside the RDATA of the types
 * that RFC 3597 §4 allows to be compressed are expanded, since a compression pointer means nothing outside its
 * own message.
 */
import type { PreparedAnswer } from './answer.js';
import { HeaderFlag, RRClass, RRType } from './constants.js';
import { extractEde } from './ede.js';
import { keptCopy } from './kept.js';

/** A record from another server: owner as a wire key (names.ts), RDATA with every name expanded. */
export interface WireRecord {
  readonly owner: string;
  readonly type: number;
  readonly class: number;
  readonly ttl: number;
  readonly rdata: Buffer;
}

export interface Message {
  readonly id: number;
  readonly flags: number;
  /** The header's rcode with the OPT record's upper bits (RFC 6891 §6.1.3). */
  readonly rcode: number;
  readonly question: { readonly key: string; readonly qtype: number; readonly qclass: number } | undefined;
  readonly answer: readonly WireRecord[];
  readonly authority: readonly WireRecord[];
  /** The additional section without the OPT record (which is per hop, not data). */
  readonly additional: readonly WireRecord[];
  /** The EDE options of its OPT record (ede.ts), which do travel on to our client; undefined when none. */
  readonly ede?: Buffer;
}

export class MessageError extends Error {}

/**
 * Where the compressible names sit in an RDATA (RFC 3597 §4: the RFC 1035 types plus RP, AFSDB, RT, SIG, PX,
 * NXT, NAPTR, SRV may be compressed by old servers): a list of steps, a number skips that many bytes, 'name'
 * is a name. Every other type is copied as it is.
 */
const NAME_LAYOUT = new Map<number, ReadonlyArray<number | 'name'>>([
  [RRType.NS, ['name']],
  [3, ['name']], // MD
  [4, ['name']], // MF
  [RRType.CNAME, ['name']],
  [RRType.SOA, ['name', 'name']],
  [7, ['name']], // MB
  [8, ['name']], // MG
  [9, ['name']], // MR
  [RRType.PTR, ['name']],
  [14, ['name', 'name']], // MINFO
  [15, [2, 'name']], // MX
  [17, ['name', 'name']], // RP
  [18, [2, 'name']], // AFSDB
  [21, [2, 'name']], // RT
  [26, [2, 'name', 'name']], // PX
  [RRType.SRV, [6, 'name']],
]);

const MAX_NAME = 255;
const MAX_POINTERS = 32;

/** Decodes a whole message; throws MessageError when any part of it is malformed. */
export function decodeMessage(buffer: Buffer): Message {
  if (buffer.length < 12) throw new MessageError('shorter than a header');
  const counts = [4, 6, 8, 10].map((offset) => buffer.readUInt16BE(offset));
  const reader = { offset: 12 };
  let question: Message['question'];
  if (counts[0]! > 1) throw new MessageError('more than one question');
  if (counts[0] === 1) {
    const key = readName(buffer, reader);
    need(buffer, reader.offset, 4);
    question = { key, qtype: buffer.readUInt16BE(reader.offset), qclass: buffer.readUInt16BE(reader.offset + 2) };
    reader.offset += 4;
  }
  const answer = readRecords(buffer, reader, counts[1]!);
  const authority = readRecords(buffer, reader, counts[2]!);
  const additionalWithOpt = readRecords(buffer, reader, counts[3]!);
  if (reader.offset !== buffer.length) throw new MessageError('bytes after the last record');
  const flags = buffer.readUInt16BE(2);
  let rcode = flags & 0xf;
  const additional: WireRecord[] = [];
  let ede: Buffer | undefined;
  for (const record of additionalWithOpt) {
    if (record.type !== RRType.OPT) {
      additional.push(record);
      continue;
    }
    // The OPT record's TTL field carries the upper 8 bits of the rcode.
    rcode |= (record.ttl >>> 24) << 4;
    ede = extractEde(record.rdata, 0, record.rdata.length);
  }
  return { id: buffer.readUInt16BE(0), flags, rcode, question, answer, authority, additional, ...(ede !== undefined && { ede }) };
}

/** The records a prepared answer carries, as another server's would be: for merging answers behind a CNAME. */
export function preparedRecords(qnameKey: string, qtype: number, prepared: PreparedAnswer): Message {
  const question = Buffer.from(qnameKey, 'latin1');
  const header = Buffer.alloc(12);
  header.writeUInt16BE(prepared.rcode & 0xf, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(prepared.answerEnds.length, 6);
  header.writeUInt16BE(prepared.authorityCount, 8);
  header.writeUInt16BE(prepared.additionalCount, 10);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(qtype, 0);
  tail.writeUInt16BE(RRClass.IN, 2);
  return decodeMessage(Buffer.concat([header, question, tail, prepared.answer, prepared.authority, prepared.additional]));
}

export interface QueryOptions {
  readonly id: number;
  readonly key: string;
  readonly qtype: number;
  readonly qclass: number;
  /** Ask for DNSSEC records (EDNS DO bit). */
  readonly dnssecOk: boolean;
  /** Checking Disabled, passed on from the client. */
  readonly checkingDisabled: boolean;
}

/** A recursive query with EDNS0 (advertising MAX_UDP_PAYLOAD), as a stub resolver sends it. */
export function encodeQuery(options: QueryOptions, udpPayload: number): Buffer {
  const name = Buffer.from(options.key, 'latin1');
  const query = Buffer.alloc(12 + name.length + 4 + 11);
  query.writeUInt16BE(options.id, 0);
  query.writeUInt16BE(HeaderFlag.RD | (options.checkingDisabled ? HeaderFlag.CD : 0), 2);
  query.writeUInt16BE(1, 4);
  query.writeUInt16BE(1, 10);
  name.copy(query, 12);
  let offset = 12 + name.length;
  query.writeUInt16BE(options.qtype, offset);
  query.writeUInt16BE(options.qclass, offset + 2);
  offset += 4;
  query[offset] = 0;
  query.writeUInt16BE(RRType.OPT, offset + 1);
  query.writeUInt16BE(udpPayload, offset + 3);
  query[offset + 7] = options.dnssecOk ? 0x80 : 0;
  return query;
}

function readRecords(buffer: Buffer, reader: { offset: number }, count: number): WireRecord[] {
  const records: WireRecord[] = [];
  for (let i = 0; i < count; i++) {
    const owner = readName(buffer, reader);
    need(buffer, reader.offset, 10);
    const type = buffer.readUInt16BE(reader.offset);
    const klass = buffer.readUInt16BE(reader.offset + 2);
    const ttl = buffer.readUInt32BE(reader.offset + 4);
    const length = buffer.readUInt16BE(reader.offset + 8);
    const start = reader.offset + 10;
    need(buffer, start, length);
    const end = start + length;
    records.push({ owner, type, class: klass, ttl, rdata: expandRdata(buffer, type, start, end) });
    reader.offset = end;
  }
  return records;
}

function expandRdata(buffer: Buffer, type: number, start: number, end: number): Buffer {
  const layout = NAME_LAYOUT.get(type);
  // Kept copies (kept.ts): a decoded upstream message is what the cache keeps.
  if (layout === undefined) return keptCopy(buffer.subarray(start, end));
  const parts: Buffer[] = [];
  const reader = { offset: start };
  for (const step of layout) {
    if (step === 'name') {
      parts.push(Buffer.from(readName(buffer, reader, end), 'latin1'));
    } else {
      if (reader.offset + step > end) throw new MessageError(`type ${type} RDATA is too short`);
      parts.push(buffer.subarray(reader.offset, reader.offset + step));
      reader.offset += step;
    }
  }
  if (reader.offset > end) throw new MessageError(`type ${type} RDATA is too short`);
  parts.push(buffer.subarray(reader.offset, end));
  const expanded = keptCopy(...parts);
  // Pointers of 2 bytes become names of up to 255: near the size limit, RDATA can outgrow its 16-bit length,
  // and such a record could never be written again (re-encoding it threw a RangeError).
  if (expanded.length > 0xffff) throw new MessageError(`type ${type} RDATA is longer than 65,535 bytes with its names expanded`);
  return expanded;
}

/** Reads a possibly compressed name at reader.offset into a lower-cased wire key; advances past it. */
function readName(buffer: Buffer, reader: { offset: number }, limit = buffer.length): string {
  let offset = reader.offset;
  let end = -1;
  let key = '';
  for (let jumps = 0; ; ) {
    if (offset >= (end < 0 ? limit : buffer.length)) throw new MessageError('name runs past its end');
    const length = buffer[offset]!;
    if (length === 0) {
      reader.offset = end < 0 ? offset + 1 : end;
      return `${key}\0`;
    }
    if ((length & 0xc0) === 0xc0) {
      if (offset + 1 >= buffer.length || ++jumps > MAX_POINTERS) throw new MessageError('bad compression pointer');
      const target = ((length & 0x3f) << 8) | buffer[offset + 1]!;
      if (target >= offset) throw new MessageError('compression pointer points forward');
      if (end < 0) end = offset + 2;
      offset = target;
      continue;
    }
    if (length > 63) throw new MessageError('bad label type');
    if (offset + 1 + length > buffer.length) throw new MessageError('label runs past the message');
    key += String.fromCharCode(length) + lowerAscii(buffer.toString('latin1', offset + 1, offset + 1 + length));
    if (key.length + 1 > MAX_NAME) throw new MessageError('name longer than 255 bytes');
    offset += 1 + length;
  }
}

/** DNS compares names ASCII-case-insensitively (RFC 4343); other bytes are data and stay as they are. */
function lowerAscii(text: string): string {
  return /[A-Z]/.test(text) ? text.replace(/[A-Z]/g, (c) => c.toLowerCase()) : text;
}

function need(buffer: Buffer, offset: number, length: number): void {
  if (offset + length > buffer.length) throw new MessageError('message ends inside a record');
}
