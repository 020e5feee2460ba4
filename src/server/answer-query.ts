/**
 * One query in, one reply out (or none): parse once, run the resolver steps in order, write the reply for the
 * transport. Every error a client can cause ends here as an rcode: FORMERR for a malformed message whose header
 * is readable, NOTIMP for other opcodes, BADVERS for EDNS versions above 0, REFUSED for names no step answers.
 */
import {
  emptyAnswer,
  newQuery,
  ParseOutcome,
  parseQuery,
  Rcode,
  replyLimit,
  RRType,
  writeHeaderOnlyReply,
  writeReply,
  type PreparedAnswer,
  type Query,
} from '../wire/index.js';

/** A resolver step: an answer, or undefined to let the next step (or REFUSED) have the question. */
export interface ResolverStep {
  resolve(q: Query): PreparedAnswer | undefined;
}

const REFUSED = emptyAnswer(Rcode.REFUSED);
const SERVFAIL = emptyAnswer(Rcode.SERVFAIL);
const FORMERR = emptyAnswer(Rcode.FORMERR);
const BADVERS = emptyAnswer(Rcode.BADVERS);
/** Zone transfers (IXFR 251, AXFR 252) are not offered: the cluster zone is watched, not transferred. */
const TRANSFER_TYPES = new Set([251, 252]);

export class QueryAnswerer {
  /** Reused for every query: answering is synchronous, so one parse target is enough. */
  private readonly query = newQuery();

  constructor(
    private readonly steps: readonly ResolverStep[],
    /** Told of a resolver that threw: a bug, answered as SERVFAIL rather than taking the server down. */
    private readonly onStepError: (error: unknown, q: Query) => void,
  ) {}

  answer(packet: Buffer, overTcp: boolean): Buffer | undefined {
    const q = this.query;
    switch (parseQuery(packet, q)) {
      case ParseOutcome.Drop:
        return undefined;
      case ParseOutcome.FormErrNoQuestion:
        return writeHeaderOnlyReply(packet, Rcode.FORMERR);
      case ParseOutcome.NotImplemented:
        return writeHeaderOnlyReply(packet, Rcode.NOTIMP);
      case ParseOutcome.FormErr:
        q.edns = false;
        return writeReply(packet, q, FORMERR, replyLimit(q, overTcp));
    }
    const limit = replyLimit(q, overTcp);
    if (q.edns && q.ednsVersion !== 0) return writeReply(packet, q, BADVERS, limit);
    if (q.qtype === RRType.OPT) return writeReply(packet, q, FORMERR, limit);
    if (TRANSFER_TYPES.has(q.qtype)) return writeReply(packet, q, REFUSED, limit);
    try {
      for (const step of this.steps) {
        const answer = step.resolve(q);
        if (answer !== undefined) return writeReply(packet, q, answer, limit);
      }
    } catch (error) {
      this.onStepError(error, q);
      return writeReply(packet, q, SERVFAIL, limit);
    }
    return writeReply(packet, q, REFUSED, limit);
  }
}
