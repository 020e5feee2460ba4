/**
 * The resolver chain: the steps in the order main.ts gives them (cluster, cache, forward), each answering or
 * passing the question on, and an optional completion (autopath) offered every NXDOMAIN before it goes out. A
 * step answers synchronously when it can (cluster zone, cache hit) and with a promise when it must wait (an
 * upstream); the chain stays synchronous until a step does not.
 *
 * It also follows a CNAME out of a step's zone (an ExternalName service): when an answer names a target it
 * lacks records for, the steps after it resolve the target and the two answers are merged, so the client gets
 * the CNAME and the target's addresses in one reply.
 */
import { emptyAnswer, prepareAnswer, preparedRecords, Rcode, type PreparedAnswer } from '../wire/index.js';

export interface ChainQuestion {
  readonly key: string;
  readonly qtype: number;
  readonly qclass: number;
  readonly dnssecOk: boolean;
  /** The client's header flags (CD is passed upstream). */
  readonly flags: number;
}

export interface ChainClient {
  readonly address: string;
}

/** A resolver step: an answer, a promise of one, or undefined to pass the question on. */
export interface ResolverStep {
  /** The `plugin` label of the responses it writes, as CoreDNS names its plugins (e.g. `kubernetes`). */
  readonly name: string;
  resolve(q: ChainQuestion, client: ChainClient): PreparedAnswer | Promise<PreparedAnswer | undefined> | undefined;
}

/**
 * Offered each NXDOMAIN the chain is about to give (autopath): a better answer for the same question, or
 * undefined to let the NXDOMAIN stand.
 */
export interface Completion {
  /** The `plugin` label of the answers it completes. */
  readonly name: string;
  complete(q: ChainQuestion, client: ChainClient): Promise<PreparedAnswer | undefined> | undefined;
}

export interface Resolved {
  readonly answer: PreparedAnswer;
  /** The step that answered, by name; undefined when none did. */
  readonly step: string | undefined;
}

/** REFUSED: no step is authoritative for the name and nothing forwards it. */
export const NOBODY_ANSWERS: Resolved = { answer: emptyAnswer(Rcode.REFUSED), step: undefined };

export class ResolverChain {
  constructor(readonly steps: readonly ResolverStep[], private readonly completion?: Completion) {}

  /**
   * The answer of the first step that has one, REFUSED when none has. Steps may read `q` only synchronously:
   * the server reuses it for the next query while this one waits.
   */
  resolve(q: ChainQuestion, client: ChainClient, from = 0): Resolved | Promise<Resolved> {
    for (let i = from; i < this.steps.length; i++) {
      const found = this.steps[i]!.resolve(q, client);
      if (found === undefined) continue;
      if (found instanceof Promise) {
        const question = copyQuestion(q);
        const address = { address: client.address };
        return found.then((answer) => (answer === undefined ? this.resolve(question, address, i + 1) : this.finish(question, address, answer, i)));
      }
      return this.finish(q, client, found, i);
    }
    return NOBODY_ANSWERS;
  }

  private finish(q: ChainQuestion, client: ChainClient, answer: PreparedAnswer, step: number): Resolved | Promise<Resolved> {
    const resolved = { answer, step: this.steps[step]!.name };
    if (answer.rcode === Rcode.NXDOMAIN && this.completion !== undefined) {
      const completion = this.completion;
      const completed = completion.complete(q, client);
      if (completed !== undefined) return completed.then((better) => (better === undefined ? resolved : { answer: better, step: completion.name }));
    }
    if (answer.chaseTarget === undefined || step + 1 >= this.steps.length) return resolved;
    const question = copyQuestion(q);
    const target = this.resolve({ ...question, key: answer.chaseTarget }, client, step + 1);
    const merge = (found: Resolved): Resolved => {
      if (found.step === undefined) return resolved;
      return { answer: mergeBehindCname(question.key, question.qtype, answer, answer.chaseTarget!, found.answer), step: resolved.step };
    };
    return target instanceof Promise ? target.then(merge) : merge(target);
  }
}

/**
 * `first` (whose answer ends in a CNAME to `targetKey`) followed by the answer for the target: the rcode is
 * the target's (RFC 6604), and a negative target brings its SOA. A failed target leaves `first` alone, so the
 * client can still follow the CNAME itself.
 */
export function mergeBehindCname(key: string, qtype: number, first: PreparedAnswer, targetKey: string, target: PreparedAnswer): PreparedAnswer {
  if (target.rcode !== Rcode.NOERROR && target.rcode !== Rcode.NXDOMAIN) return first;
  const ours = preparedRecords(key, qtype, first);
  const theirs = preparedRecords(targetKey, qtype, target);
  return prepareAnswer(key, {
    rcode: target.rcode,
    authoritative: first.authoritative,
    recursionAvailable: target.recursionAvailable === true,
    answer: [...ours.answer, ...theirs.answer],
    authority: theirs.answer.length === 0 ? theirs.authority : [],
  });
}

/** A question that outlives the query object the server reuses. */
export function copyQuestion(q: ChainQuestion): ChainQuestion {
  return { key: q.key, qtype: q.qtype, qclass: q.qclass, dnssecOk: q.dnssecOk, flags: q.flags };
}
