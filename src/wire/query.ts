/**
 * The query parser of the hot path: reads header, question and EDNS straight from the bytes into the object it
 * is given, with no allocation beyond the name key string. It validates everything a hostile client
 * can get wrong (label types, name length, compression pointers, section counts, OPT shape, trailing bytes),
 * so nothing later has to.
 *
 * Why not dns2: its server decodes every query into a tree of objects and answers through promises; measured
 * on this machine it serves ~10k QPS, where a bare Node UDP socket replying without parsing does ~117k. The
 * cluster zone needs ≥0.45× NSD (NSD does ~170-190k QPS on one core here), so this path reads bytes. With it,
 * bench/run.sh measured ~86-92k QPS (0.51× NSD); a CPU profile under that load puts 43% of the time in Node's
 * per-datagram send and ~10% in clusterdns's own code (this parser 1.3%, the name lookup 2.2%, reply assembly
 * 2.4%), so the remaining cost is Node's UDP path, not ours.
 */
import { HeaderFlag, Opcode, RRType } from './constants.js';

export const ParseOutcome = {
  /** Answer it. */
  Ok: 0,
  /** Too short to hold a header, or a response (QR=1): no reply, so we never feed a reflection loop. */
  Drop: 1,
  /** Header readable but the question is not: FORMERR with an empty question section. */
  FormErrNoQuestion: 2,
  /** The question is fine but something after it is not (bad OPT, trailing bytes): FORMERR echoing it. */
  FormErr: 3,
  /** An opcode other than QUERY: NOTIMP. */
  NotImplemented: 4,
} as const;
export type ParseOutcome = (typeof ParseOutcome)[keyof typeof ParseOutcome];

/**
 * The one shape of a question everywhere past the parser: plugins, the cache key, upstream queries. A parsed
 * Query is one; a plugin that asks about another name spreads it with a new `key`.
 */
export interface Question {
  /** Lower-cased wire form of the question name (see names.ts). */
  readonly key: string;
  readonly qtype: number;
  readonly qclass: number;
  /** The DO bit of the query's OPT record. */
  readonly dnssecOk: boolean;
  /** The query's header flag bits (QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode); CD is passed upstream. */
  readonly flags: number;
}

export interface Query extends Question {
  id: number;
  flags: number;
  key: string;
  /** Offset just past QTYPE/QCLASS: the question is bytes 12..questionEnd of the packet. */
  questionEnd: number;
  qtype: number;
  qclass: number;
  /** An OPT record was present (EDNS). */
  edns: boolean;
  /** The client's advertised UDP payload size (meaningful when edns). */
  udpSize: number;
  ednsVersion: number;
  dnssecOk: boolean;
  /** The OPT record asked for the server's NSID (RFC 5001: an NSID option, empty). */
  nsid: boolean;
}

export function newQuery(): Query {
  return { id: 0, flags: 0, key: '', questionEnd: 0, qtype: 0, qclass: 0, edns: false, udpSize: 0, ednsVersion: 0, dnssecOk: false, nsid: false };
}

const MAX_NAME = 255;
/** RFC 5001's EDNS option code. */
export const NSID_OPTION = 3;
/** A name may take at most this many compression jumps; real messages need a handful. */
const MAX_POINTERS = 32;

/** Parses `packet` into `q` (every field is set). */
export function parseQuery(packet: Buffer, q: Query): ParseOutcome {
  const length = packet.length;
  if (length < 12) return ParseOutcome.Drop;
  const flags = packet.readUInt16BE(2);
  if (flags & HeaderFlag.QR) return ParseOutcome.Drop;
  q.id = packet.readUInt16BE(0);
  q.flags = flags;
  q.edns = false;
  q.udpSize = 0;
  q.ednsVersion = 0;
  q.dnssecOk = false;
  q.nsid = false;
  if (((flags >> 11) & 0xf) !== Opcode.QUERY) return ParseOutcome.NotImplemented;
  if (packet.readUInt16BE(4) !== 1) return ParseOutcome.FormErrNoQuestion;

  // Question name: plain labels only. A pointer here could only point into the header or forward.
  let offset = 12;
  let hasUpper = false;
  for (;;) {
    if (offset >= length) return ParseOutcome.FormErrNoQuestion;
    const labelLength = packet[offset]!;
    if (labelLength === 0) break;
    if (labelLength > 63) return ParseOutcome.FormErrNoQuestion;
    const next = offset + 1 + labelLength;
    if (next > length || next - 12 >= MAX_NAME) return ParseOutcome.FormErrNoQuestion;
    for (let i = offset + 1; i < next; i++) {
      const c = packet[i]!;
      if (c >= 0x41 && c <= 0x5a) hasUpper = true;
    }
    offset = next;
  }
  offset++;
  if (offset + 4 > length) return ParseOutcome.FormErrNoQuestion;
  // ASCII-only lower-casing is what DNS means (RFC 4343 §3): a byte above 0x7f is data, and must stay as it is
  // (String's toLowerCase would fold latin1 0xC0-0xDE too, so the forwarder would ask upstream another name).
  q.key = hasUpper ? lowerAsciiKey(packet, 12, offset) : packet.toString('latin1', 12, offset);
  q.qtype = packet.readUInt16BE(offset);
  q.qclass = packet.readUInt16BE(offset + 2);
  offset += 4;
  q.questionEnd = offset;

  // Answer and authority sections are empty in real queries, but a well-formed one is no reason to refuse.
  const skipped = packet.readUInt16BE(6) + packet.readUInt16BE(8);
  const additional = packet.readUInt16BE(10);
  for (let i = 0; i < skipped + additional; i++) {
    const ownerStart = offset;
    offset = skipName(packet, offset);
    if (offset < 0 || offset + 10 > length) return ParseOutcome.FormErr;
    const type = packet.readUInt16BE(offset);
    const rdataLength = packet.readUInt16BE(offset + 8);
    const rdataStart = offset + 10;
    if (rdataStart + rdataLength > length) return ParseOutcome.FormErr;
    if (type === RRType.OPT) {
      // RFC 6891 §6.1.1: one OPT, in the additional section, owned by the root, options that fill RDATA exactly.
      if (i < skipped || q.edns || packet[ownerStart] !== 0) return ParseOutcome.FormErr;
      for (let o = rdataStart; o < rdataStart + rdataLength; ) {
        if (o + 4 > rdataStart + rdataLength) return ParseOutcome.FormErr;
        if (packet.readUInt16BE(o) === NSID_OPTION) q.nsid = true;
        o += 4 + packet.readUInt16BE(o + 2);
        if (o > rdataStart + rdataLength) return ParseOutcome.FormErr;
      }
      q.edns = true;
      q.udpSize = packet.readUInt16BE(offset + 2);
      q.ednsVersion = packet[offset + 5]!;
      q.dnssecOk = (packet[offset + 6]! & 0x80) !== 0;
    }
    offset = rdataStart + rdataLength;
  }
  if (offset !== length) return ParseOutcome.FormErr;
  return ParseOutcome.Ok;
}

/** The bytes start..end as a latin1 string with A-Z lower-cased; a copy, so the packet stays as it came. */
function lowerAsciiKey(packet: Buffer, start: number, end: number): string {
  const bytes = Buffer.from(packet.subarray(start, end));
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c >= 0x41 && c <= 0x5a) bytes[i] = c | 0x20;
  }
  return bytes.toString('latin1');
}

/** Offset just past a (possibly compressed) name at `offset`, or -1 if it is malformed. */
function skipName(packet: Buffer, offset: number): number {
  let end = -1;
  let nameLength = 0;
  for (let jumps = 0; ; ) {
    if (offset >= packet.length) return -1;
    const labelLength = packet[offset]!;
    if (labelLength === 0) return end < 0 ? offset + 1 : end;
    if ((labelLength & 0xc0) === 0xc0) {
      if (offset + 1 >= packet.length || ++jumps > MAX_POINTERS) return -1;
      const target = ((labelLength & 0x3f) << 8) | packet[offset + 1]!;
      // Pointers must go backwards (RFC 1035 §4.1.4 "a prior occurrence"); with the bounds on jumps and on
      // name length, a pointer loop ends in FORMERR instead of spinning.
      if (target >= offset || target < 12) return -1;
      if (end < 0) end = offset + 2;
      offset = target;
      continue;
    }
    if (labelLength > 63) return -1;
    nameLength += labelLength + 1;
    if (nameLength >= MAX_NAME) return -1;
    offset += labelLength + 1;
  }
}
