/**
 * plugins/loadbalance — spreads clients over the addresses of an answer (CoreDNS's `loadbalance round_robin`): the
 * A, AAAA and MX records of each answer go out in a different order per query, after any CNAMEs, so clients that
 * take the first address (most do) are spread over a headless service's pods or a multi-address name.
 *
 * The rotations of an answer are prepared once, the first time it passes with two or more such records, and kept
 * beside the answer (which is itself kept by the plugin that made it), so a query costs one lookup and no encoding.
 */
import { prepareAnswer, preparedRecords, RRType, type PreparedAnswer, type Question, type WireRecord } from '../../wire/index.js';
import type { Client, Handler, Next, Reply, Result } from '../plugin.js';

const SHUFFLED = new Set<number>([RRType.A, RRType.AAAA, 15 /* MX */]);
/** At most this many orders per answer: enough for every client to see each address first. */
const MAX_ROTATIONS = 16;

export class LoadBalancer implements Handler {
  readonly name = 'loadbalance';
  private readonly rotations = new WeakMap<PreparedAnswer, readonly PreparedAnswer[]>();
  private turn = 0;

  resolve(q: Question, client: Client, next: Next): Result {
    const result = next(q, client);
    return result instanceof Promise ? result.then((reply) => this.rotate(q, reply)) : this.rotate(q, result);
  }

  private rotate(q: Question, reply: Reply): Reply {
    if (reply.answer.answerEnds.length < 2) return reply;
    let orders = this.rotations.get(reply.answer);
    if (orders === undefined) this.rotations.set(reply.answer, (orders = rotationsOf(q, reply.answer)));
    if (orders.length < 2) return reply;
    this.turn = (this.turn + 1) % 0x7fffffff;
    return { ...reply, answer: orders[this.turn % orders.length]! };
  }
}

/** The answer once per rotation of its A/AAAA/MX records (itself first); just itself when fewer than two. */
function rotationsOf(q: Question, answer: PreparedAnswer): readonly PreparedAnswer[] {
  const message = preparedRecords(q.key, q.qtype, answer);
  const fixed: WireRecord[] = [];
  const shuffled: WireRecord[] = [];
  for (const record of message.answer) (SHUFFLED.has(record.type) ? shuffled : fixed).push(record);
  if (shuffled.length < 2) return [answer];
  const orders: PreparedAnswer[] = [answer];
  for (let shift = 1; shift < Math.min(shuffled.length, MAX_ROTATIONS); shift++) {
    const rotated = [...shuffled.slice(shift), ...shuffled.slice(0, shift)];
    orders.push(prepareAnswer(q.key, {
      rcode: answer.rcode,
      authoritative: answer.authoritative,
      recursionAvailable: answer.recursionAvailable === true,
      ...(answer.chaseTarget !== undefined && { chaseTarget: answer.chaseTarget }),
      ...(answer.ede !== undefined && { ede: answer.ede }),
      answer: [...fixed, ...rotated],
      authority: message.authority,
      additional: message.additional,
    }));
  }
  return orders;
}
