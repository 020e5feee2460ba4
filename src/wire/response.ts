/**
 * Reply assembly on the hot path: header, the client's own question bytes, a prepared answer, and an OPT record
 * when the query had one (RFC 6891). Fits the reply to the transport: on UDP at most 512 bytes without EDNS and
 * at most the client's size (capped at MAX_UDP_PAYLOAD) with it; when the answer does not fit, whole answer
 * records are kept while they fit and TC is set, so the client retries over TCP (RFC 1035 §4.2.1, RFC 2181 §9).
 * An additional section that does not fit is dropped without TC: it is optional. The answer's Extended DNS Errors
 * go in the OPT record only for a client that sent one (RFC 8914 §3), and only into the room left once the records
 * are placed: an EDE is advice, so it never displaces a record and never makes a reply truncated. Of several, the
 * first ones go while they fit (the answer's own, most specific, comes first).
 */
import type { PreparedAnswer } from './answer.js';
import { CLASSIC_UDP_SIZE, HeaderFlag, MAX_TCP_MESSAGE, MAX_UDP_PAYLOAD, RRType } from './constants.js';
import { fittingOptions } from './ede.js';
import type { Query } from './query.js';

const OPT_LENGTH = 11;

/** The largest reply the client can take on this transport; `maxUdp` is the server's own cap (bufsize). */
export function replyLimit(q: Query, overTcp: boolean, maxUdp = MAX_UDP_PAYLOAD): number {
  if (overTcp) return MAX_TCP_MESSAGE;
  if (!q.edns) return CLASSIC_UDP_SIZE;
  return Math.min(Math.max(q.udpSize, CLASSIC_UDP_SIZE), maxUdp);
}

/** What a written reply carried, for the caller's counters (one object may be reused: writeReply is synchronous). */
export interface ReplyNotes {
  /** The answer's EDE options that went out (all, the first few, or none). */
  ede: Buffer | undefined;
}

/**
 * The reply to `packet` (already parsed into `q`) carrying `answer`; `notes`, when given, says what went in.
 * `nsid`: the server's NSID option (RFC 5001), sent when the query asked for it, where there is room.
 */
export function writeReply(packet: Buffer, q: Query, answer: PreparedAnswer, limit: number, notes?: ReplyNotes, nsid?: Buffer): Buffer {
  const questionLength = q.questionEnd - 12;
  const optLength = q.edns ? OPT_LENGTH : 0;
  const fixed = 12 + questionLength + optLength;
  let answerLength = answer.answer.length;
  let answerCount = answer.answerEnds.length;
  let authorityLength = answer.authority.length;
  let additionalLength = answer.additional.length;
  let truncated = false;

  if (fixed + answerLength + authorityLength + additionalLength > limit) {
    additionalLength = 0;
    if (fixed + answerLength + authorityLength > limit) {
      truncated = true;
      authorityLength = 0;
      while (answerCount > 0 && fixed + answer.answerEnds[answerCount - 1]! > limit) answerCount--;
      answerLength = answerCount === 0 ? 0 : answer.answerEnds[answerCount - 1]!;
    }
  }

  const records = fixed + answerLength + authorityLength + additionalLength;
  const identity = q.nsid && nsid !== undefined && records + nsid.length <= limit ? nsid : undefined;
  const ede = q.edns && answer.ede !== undefined ? fittingOptions(answer.ede, limit - records - (identity?.length ?? 0)) : undefined;
  if (notes !== undefined) notes.ede = ede;
  const options = identity === undefined ? ede : ede === undefined ? identity : Buffer.concat([identity, ede]);

  const reply = Buffer.allocUnsafe(records + (options?.length ?? 0));
  reply.writeUInt16BE(q.id, 0);
  let flags = replyFlags(q.flags, answer.rcode);
  if (answer.authoritative) flags |= HeaderFlag.AA;
  if (answer.recursionAvailable === true) flags |= HeaderFlag.RA;
  if (truncated) flags |= HeaderFlag.TC;
  reply.writeUInt16BE(flags, 2);
  reply.writeUInt16BE(1, 4);
  reply.writeUInt16BE(answerCount, 6);
  reply.writeUInt16BE(authorityLength > 0 ? answer.authorityCount : 0, 8);
  reply.writeUInt16BE((additionalLength > 0 ? answer.additionalCount : 0) + (q.edns ? 1 : 0), 10);
  packet.copy(reply, 12, 12, q.questionEnd);
  let offset = q.questionEnd;
  offset += answer.answer.copy(reply, offset, 0, answerLength);
  if (authorityLength > 0) offset += answer.authority.copy(reply, offset);
  if (additionalLength > 0) offset += answer.additional.copy(reply, offset);
  if (q.edns) writeOpt(reply, offset, answer.rcode, q.dnssecOk, options);
  return reply;
}

/** A reply with no question section, for queries whose question cannot be read or is not a QUERY. */
export function writeHeaderOnlyReply(packet: Buffer, rcode: number): Buffer {
  const reply = Buffer.alloc(12);
  reply.writeUInt16BE(packet.readUInt16BE(0), 0);
  reply.writeUInt16BE(replyFlags(packet.readUInt16BE(2), rcode), 2);
  return reply;
}

/** QR, the opcode and RD and CD echoed from the query, the rcode's low four bits; AA, TC and RA are the caller's. */
function replyFlags(queryFlags: number, rcode: number): number {
  return HeaderFlag.QR | (queryFlags & HeaderFlag.ECHOED) | (rcode & 0xf);
}

function writeOpt(reply: Buffer, offset: number, rcode: number, dnssecOk: boolean, options: Buffer | undefined): void {
  reply[offset] = 0;
  reply.writeUInt16BE(RRType.OPT, offset + 1);
  reply.writeUInt16BE(MAX_UDP_PAYLOAD, offset + 3);
  reply[offset + 5] = rcode >> 4; // extended rcode: BADVERS (16) is 1 here and 0 in the header
  reply[offset + 6] = 0; // EDNS version 0
  reply[offset + 7] = dnssecOk ? 0x80 : 0; // DO echoed (RFC 3225 §3)
  reply[offset + 8] = 0;
  reply.writeUInt16BE(options?.length ?? 0, offset + 9);
  options?.copy(reply, offset + OPT_LENGTH);
}
