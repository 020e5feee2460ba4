/**
 * One query in, one reply out (or none): parse once, run the resolver steps in order, write the reply for the
 * transport, count it. Every error a client can cause ends here as an rcode: FORMERR for a malformed message
 * whose header is readable, NOTIMP for other opcodes, BADVERS for EDNS versions above 0, REFUSED for names no
 * step answers.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { PLUGINS, type QueryMetrics } from '../telemetry/index.js';
import {
  emptyAnswer,
  keyToName,
  newQuery,
  ParseOutcome,
  parseQuery,
  Rcode,
  rcodeName,
  replyLimit,
  RRType,
  typeName,
  writeHeaderOnlyReply,
  writeReply,
  type PreparedAnswer,
  type Query,
} from '../wire/index.js';

/** A resolver step: an answer, or undefined to let the next step (or REFUSED) have the question. */
export interface ResolverStep {
  /** The `plugin` label of the responses it writes, as CoreDNS names its plugins (e.g. `kubernetes`). */
  readonly name: string;
  resolve(q: Query): PreparedAnswer | undefined;
}

/** Where a query came in: which listen address (an index into the metrics' listeners) and transport. */
export interface Arrival {
  readonly listener: number;
  readonly overTcp: boolean;
}

export interface Client {
  readonly address: string;
  readonly port: number;
}

export interface AnswererOptions {
  readonly metrics: QueryMetrics;
  readonly log: Logger;
  /** Log every query (--log-queries). */
  readonly logQueries: boolean;
}

const REFUSED = emptyAnswer(Rcode.REFUSED);
const SERVFAIL = emptyAnswer(Rcode.SERVFAIL);
const FORMERR = emptyAnswer(Rcode.FORMERR);
const BADVERS = emptyAnswer(Rcode.BADVERS);
/** Zone transfers (IXFR 251, AXFR 252) are not offered: the cluster zone is watched, not transferred. */
const TRANSFER_TYPES = new Set([251, 252]);
/** At most one "a resolver threw" log line per this many milliseconds: a bug must not flood the logs. */
const STEP_ERROR_LOG_INTERVAL_MS = 10_000;

export class QueryAnswerer {
  /** Reused for every query: answering is synchronous, so one parse target is enough. */
  private readonly query = newQuery();
  private readonly plugins: number[];
  private lastStepErrorLog = -Infinity;

  constructor(private readonly steps: readonly ResolverStep[], private readonly options: AnswererOptions) {
    this.plugins = steps.map((step) => Math.max(0, (PLUGINS as readonly string[]).indexOf(step.name)));
  }

  answer(packet: Buffer, arrival: Arrival, client: Client): Buffer | undefined {
    const started = performance.now();
    const q = this.query;
    let reply: Buffer;
    let rcode: number;
    let plugin = 0;
    switch (parseQuery(packet, q)) {
      case ParseOutcome.Drop:
        return undefined;
      case ParseOutcome.FormErrNoQuestion:
        q.qtype = 0;
        rcode = Rcode.FORMERR;
        reply = writeHeaderOnlyReply(packet, rcode);
        break;
      case ParseOutcome.NotImplemented:
        q.qtype = 0;
        rcode = Rcode.NOTIMP;
        reply = writeHeaderOnlyReply(packet, rcode);
        break;
      case ParseOutcome.FormErr:
        q.edns = false;
        rcode = Rcode.FORMERR;
        reply = writeReply(packet, q, FORMERR, replyLimit(q, arrival.overTcp));
        break;
      default: {
        const limit = replyLimit(q, arrival.overTcp);
        let answer = REFUSED;
        if (q.edns && q.ednsVersion !== 0) answer = BADVERS;
        else if (q.qtype === RRType.OPT) answer = FORMERR;
        else if (!TRANSFER_TYPES.has(q.qtype)) {
          try {
            for (let i = 0; i < this.steps.length; i++) {
              const found = this.steps[i]!.resolve(q);
              if (found !== undefined) {
                answer = found;
                plugin = this.plugins[i]!;
                break;
              }
            }
          } catch (error) {
            this.stepFailed(error, q);
            answer = SERVFAIL;
            plugin = 0;
          }
        }
        rcode = answer.rcode;
        reply = writeReply(packet, q, answer, limit);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    this.options.metrics.observe(arrival.listener, arrival.overTcp, q.qtype, rcode, plugin, packet.length, reply.length, seconds);
    if (this.options.logQueries) this.logQuery(q, arrival, client, rcode, reply.length, seconds);
    return reply;
  }

  private logQuery(q: Query, arrival: Arrival, client: Client, rcode: number, size: number, seconds: number): void {
    this.options.log.info({
      client: `${client.address}:${client.port}`,
      proto: arrival.overTcp ? 'tcp' : 'udp',
      name: q.qtype === 0 ? undefined : keyToName(q.key),
      type: typeName(q.qtype),
      rcode: rcodeName(rcode),
      size,
      durationMs: Math.round(seconds * 1e6) / 1000,
    }, 'query');
  }

  private stepFailed(error: unknown, q: Query): void {
    const now = performance.now();
    if (now - this.lastStepErrorLog < STEP_ERROR_LOG_INTERVAL_MS) return;
    this.lastStepErrorLog = now;
    this.options.log.error({ err: error, name: keyToName(q.key), qtype: q.qtype }, 'a resolver failed; answered SERVFAIL (a bug: please report it)');
  }
}
