/**
 * plugins/any — answers every ANY question with one HINFO record (CPU "RFC8482", OS ""), as RFC 8482 §4.2 lets a
 * server do and CoreDNS's `any` does, instead of every record of the name: ANY answers are what amplification
 * attacks ask for. Other questions go on. The answer is prepared once per name and kept, so a repeat is one lookup.
 */
import { LRUCache } from 'lru-cache';
import { prepareAnswer, Rcode, RRType, type PreparedAnswer, type Question } from '../../wire/index.js';
import type { Client, Handler, Next, Result } from '../plugin.js';

/** RFC 8482 §4.2 suggests a long TTL for the synthesised HINFO; CoreDNS gives 8482 s. */
export const HINFO_TTL = 8482;
/** Names whose answer is kept: ANY names are few, and a flood of random ones must not grow memory. */
const KEPT = 1000;

export class AnyHandler implements Handler {
  readonly name = 'any';
  private readonly answers = new LRUCache<string, PreparedAnswer>({ max: KEPT });

  resolve(q: Question, client: Client, next: Next): Result {
    if (q.qtype !== RRType.ANY) return next(q, client);
    let answer = this.answers.get(q.key);
    if (answer === undefined) {
      answer = prepareAnswer(q.key, {
        rcode: Rcode.NOERROR,
        authoritative: false,
        answer: [{ owner: q.key, ttl: HINFO_TTL, data: { type: RRType.HINFO, cpu: 'RFC8482', os: '' } }],
      });
      this.answers.set(q.key, answer);
    }
    return { answer, plugin: this.name };
  }
}
