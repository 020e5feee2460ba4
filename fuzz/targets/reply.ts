/**
 * Target `reply`: a message from an upstream server through the forwarder's decoder (decodeMessage,
 * src/wire/message.ts) and back out the way a forwarded answer leaves (prepareMessage, src/wire/answer.ts, then
 * writeReply to the client's query over TCP). Invariant: decoding either fails with a MessageError or gives a
 * message whose re-encoding decodes to the same rcode (extended bits included), question and records (owner,
 * type, class, TTL, RDATA with names expanded): lossless, except that a reply too big for the transport is cut
 * at a record boundary with TC set, and an additional section that does not fit is left out (RFC 2181 §9).
 */
import {
  decodeMessage,
  encodeQuery,
  HeaderFlag,
  MAX_TCP_MESSAGE,
  MessageError,
  newQuery,
  ParseOutcome,
  parseQuery,
  prepareMessage,
  ROOT_KEY,
  writeReply,
  type Message,
  type WireRecord,
} from '../../src/wire/index.js';
import { bigReplies, dnsMessages } from '../dns-inputs.js';
import { assert, type FuzzTarget } from '../harness.js';

const text = (records: readonly WireRecord[]): string =>
  records.map((r) => `${JSON.stringify(r.owner)} ${r.type} ${r.class} ${r.ttl} ${r.rdata.toString('hex')}`).join('\n');

export const target: FuzzTarget = {
  name: 'reply',
  check(data) {
    let message: Message;
    try {
      message = decodeMessage(data);
    } catch (error) {
      assert(error instanceof MessageError, `decoding fails only with a MessageError, not ${String(error)}`);
      return;
    }
    const asked = message.question ?? { key: ROOT_KEY, qtype: 1, qclass: 1 };
    const query = encodeQuery({ id: message.id, ...asked, dnssecOk: false, checkingDisabled: false }, 1232);
    const q = newQuery();
    assert(parseQuery(query, q) === ParseOutcome.Ok, 'the question re-encodes to a query that parses');
    const again = decodeMessage(writeReply(query, q, prepareMessage(message, (record) => record.ttl), MAX_TCP_MESSAGE));
    assert(again.rcode === message.rcode, `rcode ${again.rcode}, was ${message.rcode}`);
    assert(again.question?.key === asked.key && again.question.qtype === asked.qtype && again.question.qclass === asked.qclass, 'same question');
    if ((again.flags & HeaderFlag.TC) !== 0) {
      assert(text(message.answer).startsWith(text(again.answer)), 'a truncated answer section is a prefix of the original');
      return;
    }
    assert(text(again.answer) === text(message.answer), `same answer section:\n${text(again.answer)}\nwas\n${text(message.answer)}`);
    assert(text(again.authority) === text(message.authority), 'same authority section');
    assert(again.additional.length === 0 || text(again.additional) === text(message.additional), 'same additional section, or none');
  },
  generators: [dnsMessages(true), bigReplies()],
};
