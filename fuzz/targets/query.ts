/**
 * Target `query`: a UDP datagram through the server's one query answerer (src/server/answer-query.ts, with the
 * hot-path parser src/wire/query.ts and reply writer src/wire/response.ts) to a chain that answers every name
 * with records at that name. Invariant: either no reply (shorter than a header, or a response), or exactly one
 * reply that decodes, echoes the id and, when the question was readable, the question's own bytes, carries the
 * rcode the rules give (FORMERR, NOTIMP, BADVERS, REFUSED for transfers, else the chain's), fits the transport,
 * cuts answers only with TC; and a parsed question re-encodes (as an upstream query) to the same question.
 */
import { COMMON_LOG_FORMAT, compileFormat, formatLine } from '../../src/plugins/log/format.js';
import pino from 'pino';
import type { Arrival, Client } from '../../src/server/answer-query.js';
import { QueryAnswerer } from '../../src/server/answer-query.js';
import { QueryMetrics } from '../../src/telemetry/index.js';
import {
  decodeMessage,
  encodeQuery,
  HeaderFlag,
  newQuery,
  ParseOutcome,
  parseQuery,
  prepareAnswer,
  Rcode,
  replyLimit,
  ROOT_KEY,
  RRType,
  type Question,
} from '../../src/wire/index.js';
import { assert, type FuzzTarget } from '../harness.js';
import { dnsMessages } from '../dns-inputs.js';

const CLIENT: Client = { address: '127.0.0.1', port: 40000 };

/** As many A records as the qtype's low bits say (up to 47): enough, at ~16 bytes each, to overflow 512 bytes. */
function answerCount(qtype: number): number {
  return qtype % 48;
}

/** One answerer for every input, as the server has: state it keeps between queries is part of what is fuzzed. */
const COMMON_FORMAT = compileFormat(COMMON_LOG_FORMAT);
const answerer = new QueryAnswerer([[{
  zoneKey: ROOT_KEY,
  chain: (q: Question) => ({
    plugin: 'fuzz',
    answer: prepareAnswer(q.key, {
      rcode: Rcode.NOERROR,
      authoritative: true,
      answer: Array.from({ length: answerCount(q.qtype) }, (_, i) => ({ owner: q.key, ttl: 5, data: { type: RRType.A, ip: `10.0.${i >> 8}.${i & 0xff}` } })),
      additional: [{ owner: q.key, ttl: 5, data: { type: RRType.TXT, texts: ['fuzz'] } }],
    }),
  }),
  // Builds each query's log line (CoreDNS's format, every field) even though nothing is written.
  queryLog: (query) => formatLine(COMMON_FORMAT, query),
}]], {
  metrics: new QueryMetrics([{ server: 'dns://:53', family: 1 }], ['fuzz']),
  log: pino({ level: 'silent' }),
});

/** Answers `packet` as the server does on this transport; returns the replies sent (the chain never waits). */
export function answer(packet: Buffer, overTcp: boolean): { answered: boolean; replies: Buffer[] } {
  const replies: Buffer[] = [];
  const arrival: Arrival = { listener: 0, overTcp };
  const answered = answerer.answer(packet, arrival, overTcp ? { ...CLIENT, transport: 'tcp' } : CLIENT, (reply) => replies.push(reply));
  return { answered, replies };
}

/** The invariant for one query and what the answerer did with it. */
export function checkAnswer(packet: Buffer, overTcp: boolean, answered: boolean, replies: readonly Buffer[]): void {
  const q = newQuery();
  const outcome = parseQuery(packet, q);
  if (outcome === ParseOutcome.Drop) {
    assert(packet.length < 12 || (packet.readUInt16BE(2) & HeaderFlag.QR) !== 0, 'only a short packet or a response is dropped');
    assert(!answered && replies.length === 0, 'a dropped packet gets no reply');
    return;
  }
  assert(answered && replies.length === 1, `one reply, got ${replies.length}`);
  const bytes = replies[0]!;
  const reply = decodeMessage(bytes);
  assert(reply.id === packet.readUInt16BE(0), 'the reply echoes the id');
  assert((reply.flags & HeaderFlag.QR) !== 0, 'the reply is a response');
  assert((reply.flags & 0x7800) === (packet.readUInt16BE(2) & 0x7800), 'the reply echoes the opcode');
  if (outcome === ParseOutcome.FormErrNoQuestion || outcome === ParseOutcome.NotImplemented) {
    assert(bytes.length === 12, 'a header-only reply');
    assert(reply.rcode === (outcome === ParseOutcome.NotImplemented ? Rcode.NOTIMP : Rcode.FORMERR), `rcode ${reply.rcode}`);
    return;
  }
  assert(bytes.subarray(12, q.questionEnd).equals(packet.subarray(12, q.questionEnd)), 'the question is echoed byte for byte');
  assert(reply.question?.key === q.key && reply.question.qtype === q.qtype && reply.question.qclass === q.qclass, 'the reply has the question');
  if (outcome === ParseOutcome.FormErr) {
    assert(reply.rcode === Rcode.FORMERR && bytes.length === q.questionEnd, 'FORMERR echoing the question only');
    return;
  }
  const limit = replyLimit(q, overTcp);
  assert(bytes.length <= limit, `the reply (${bytes.length} bytes) fits the limit ${limit}`);
  const expected = q.edns && q.ednsVersion !== 0 ? Rcode.BADVERS
    : q.qtype === RRType.OPT ? Rcode.FORMERR
      : q.qtype === 251 || q.qtype === 252 ? Rcode.REFUSED
        : Rcode.NOERROR;
  assert(reply.rcode === expected, `rcode ${reply.rcode}, expected ${expected}`);
  if (expected === Rcode.NOERROR) {
    const truncated = (reply.flags & HeaderFlag.TC) !== 0;
    const count = answerCount(q.qtype);
    assert(truncated ? reply.answer.length < count : reply.answer.length === count, `${reply.answer.length} of ${count} answers, TC ${truncated}`);
    assert(reply.answer.every((record) => record.owner === q.key && record.type === RRType.A), 'answers are owned by the question');
  }
  // The question as the forwarder would ask it upstream parses back to the same question.
  const again = newQuery();
  const upstream = encodeQuery({ id: q.id, key: q.key, qtype: q.qtype, qclass: q.qclass, dnssecOk: q.dnssecOk, checkingDisabled: false }, 1232);
  assert(parseQuery(upstream, again) === ParseOutcome.Ok, 're-encoded question parses');
  assert(again.key === q.key && again.qtype === q.qtype && again.qclass === q.qclass && again.dnssecOk === q.dnssecOk, 're-encoded question is the same');
}

export const target: FuzzTarget = {
  name: 'query',
  check(data) {
    const { answered, replies } = answer(data, false);
    checkAnswer(data, false, answered, replies);
  },
  generators: [dnsMessages(false)],
};
