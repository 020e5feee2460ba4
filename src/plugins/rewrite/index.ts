/**
 * plugins/rewrite — the question asked of the rest of the chain under another name, type or class (CoreDNS's
 * `rewrite`), and the answer's names mapped back, so the client sees records for the name it asked.
 *
 * The rules of a server block are applied in Corefile order to the question; each later rule sees the question
 * the earlier ones made; a `stop` rule that matches ends the list (the default), a `continue` rule goes on. When no
 * rule matches, the question passes untouched and this plugin costs one name conversion. When one does, `next` is
 * asked `{ ...q, key, qtype, qclass }` (the question itself never changes), and its answer is taken apart, its
 * names mapped back by the response rules (the last rule's first, so chained rules unwind in order; ttl rules
 * clamp every TTL), and prepared again for the client's own question: the prepared answer points into the
 * question section, which the reply fills with the client's name. An upstream message is mapped back the same way, so the cache in front keeps it under the asked
 * name. A rewritten name that is not a name, or a mapped-back one, is SERVFAIL.
 */
import type { Message, WireRecord } from '../../wire/index.js';
import { emptyAnswer, keyToName, NameError, prepareAnswer, preparedRecords, presentationToKey, Rcode, RRType } from '../../wire/index.js';
import type { Client, Handler, Next, Question, Reply, Result } from '../plugin.js';
import type { Asked, ResponseRule, Rule } from './rules.js';

const SERVFAIL: Reply = { answer: emptyAnswer(Rcode.SERVFAIL), plugin: 'rewrite' };

/** Where the name a record points at starts in its (expanded) RDATA; NAPTR's follows three character strings. */
const VALUE_AT = new Map<number, number | 'naptr'>([
  [RRType.CNAME, 0],
  [39 /* DNAME */, 0],
  [RRType.NS, 0],
  [RRType.PTR, 0],
  [RRType.SOA, 0],
  [15 /* MX */, 2],
  [RRType.SRV, 6],
  [35 /* NAPTR */, 'naptr'],
]);

export class RewriteHandler implements Handler {
  readonly name = 'rewrite';

  constructor(private readonly rules: readonly Rule[]) {}

  resolve(q: Question, client: Client, next: Next): Result {
    let asked: Asked = { name: keyToName(q.key), qtype: q.qtype, qclass: q.qclass };
    let key = q.key;
    let applied: Array<readonly ResponseRule[]> | undefined;
    for (const rule of this.rules) {
      const after = rule.apply(asked);
      if (after === undefined) continue;
      if (after.name !== asked.name) {
        try {
          key = presentationToKey(after.name);
        } catch (error) {
          if (error instanceof NameError) return SERVFAIL;
          throw error;
        }
      }
      (applied ??= []).push(rule.responseRules(asked, after));
      asked = after;
      if (rule.mode === 'stop') break;
    }
    if (applied === undefined) return next(q, client);
    const responseRules = applied.reverse().flat();
    const question: Question = { ...q, key, qtype: asked.qtype, qclass: asked.qclass };
    const back = (reply: Reply): Reply => mapBack(q, question, reply, responseRules);
    const result = next(question, client);
    return result instanceof Promise ? result.then(back) : back(result);
  }
}

/** `reply` (the answer to `asked`) as the answer to `q`, changed on its way back by `rules`. */
function mapBack(q: Question, asked: Question, reply: Reply, rules: readonly ResponseRule[]): Reply {
  const records = preparedRecords(asked.key, asked.qtype, reply.answer);
  try {
    const map = (section: readonly WireRecord[]): WireRecord[] => section.map((record) => mapRecord(record, rules));
    const answer = prepareAnswer(q.key, {
      rcode: reply.answer.rcode,
      authoritative: reply.answer.authoritative,
      recursionAvailable: reply.answer.recursionAvailable === true,
      ...(reply.answer.chaseTarget !== undefined && { chaseTarget: reply.answer.chaseTarget }),
      answer: map(records.answer),
      authority: map(records.authority),
      additional: map(records.additional),
    });
    const message: Message | undefined = reply.message === undefined ? undefined : {
      ...reply.message,
      question: { key: q.key, qtype: q.qtype, qclass: q.qclass },
      answer: map(reply.message.answer),
      authority: map(reply.message.authority),
      additional: map(reply.message.additional),
    };
    return { answer, plugin: reply.plugin, ...(message !== undefined && { message }) };
  } catch (error) {
    if (error instanceof NameError) return SERVFAIL;
    throw error;
  }
}

function mapRecord(record: WireRecord, rules: readonly ResponseRule[]): WireRecord {
  let owner = record.owner;
  let rdata = record.rdata;
  let ttl = record.ttl;
  for (const rule of rules) if (rule.part === 'ttl') ttl = Math.min(Math.max(ttl, rule.min), rule.max);
  if (rules.some((rule) => rule.part === 'name')) owner = mapName(owner, rules, 'name');
  const at = VALUE_AT.get(record.type);
  if (at !== undefined && rules.some((rule) => rule.part === 'value')) {
    const start = at === 'naptr' ? naptrNameAt(rdata) : at;
    if (start < rdata.length) {
      let end = start;
      while (end < rdata.length && rdata[end] !== 0) end += rdata[end]! + 1;
      const value = rdata.toString('latin1', start, end + 1);
      const mapped = mapName(value, rules, 'value');
      if (mapped !== value) rdata = Buffer.concat([rdata.subarray(0, start), Buffer.from(mapped, 'latin1'), rdata.subarray(end + 1)]);
    }
  }
  return owner === record.owner && rdata === record.rdata && ttl === record.ttl ? record : { ...record, owner, rdata, ttl };
}

/** A key through every rule of `part`, in order; the same key when none changes it. */
function mapName(key: string, rules: readonly ResponseRule[], part: 'name' | 'value'): string {
  const text = keyToName(key);
  let mapped = text;
  for (const rule of rules) if (rule.part === part) mapped = rule.rewrite(mapped);
  return mapped === text ? key : presentationToKey(mapped);
}

/** NAPTR RDATA: order, preference, then flags, services and regexp as character strings, then the replacement. */
function naptrNameAt(rdata: Buffer): number {
  let at = 4;
  for (let i = 0; i < 3 && at < rdata.length; i++) at += rdata[at]! + 1;
  return at;
}
