/**
 * One query in, one reply out (or none): parse once, ask the resolver chain, write the reply for the
 * transport, count it. The reply is sent at once when the chain answers synchronously (cluster zone, cache) and
 * when its promise settles otherwise. Every error a client can cause ends here as an rcode: FORMERR for a
 * malformed message whose header is readable, NOTIMP for other opcodes, BADVERS for EDNS versions above 0,
 * REFUSED for names no step answers, SERVFAIL when a step fails.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { NOBODY_ANSWERS, type Resolved, type ResolverChain } from '../resolvers/chain.js';
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
  type Query,
} from '../wire/index.js';

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

const PLUGIN_INDEX = new Map<string, number>(PLUGINS.map((name, index) => [name, index]));
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
  private lastStepErrorLog = -Infinity;

  constructor(private readonly chain: ResolverChain, private readonly options: AnswererOptions) {}

  /**
   * Answers `packet` through `send`, now or later; returns false when the packet gets no reply at all (too
   * short, or a response), so a stream transport knows nothing sensible follows.
   */
  answer(packet: Buffer, arrival: Arrival, client: Client, send: (reply: Buffer) => void): boolean {
    const started = performance.now();
    const q = this.query;
    let reply: Buffer;
    let rcode: number;
    switch (parseQuery(packet, q)) {
      case ParseOutcome.Drop:
        return false;
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
        let resolved: Resolved | Promise<Resolved> = NOBODY_ANSWERS;
        if (q.edns && q.ednsVersion !== 0) resolved = { answer: BADVERS, step: undefined };
        else if (q.qtype === RRType.OPT) resolved = { answer: FORMERR, step: undefined };
        else if (!TRANSFER_TYPES.has(q.qtype)) {
          try {
            resolved = this.chain.resolve(q, client);
          } catch (error) {
            resolved = this.stepFailed(error, q);
          }
        }
        if (resolved instanceof Promise) {
          // The reused query object will hold other queries by the time this one is answered.
          const waiting = { ...q };
          const question = Buffer.from(packet.subarray(0, q.questionEnd));
          resolved.then(
            (late) => this.finish(question, waiting, late, arrival, client, started, send),
            (error: unknown) => this.finish(question, waiting, this.stepFailed(error, waiting), arrival, client, started, send),
          );
          return true;
        }
        this.finish(packet, q, resolved, arrival, client, started, send);
        return true;
      }
    }
    this.count(packet, q, rcode, 0, reply, arrival, client, started);
    send(reply);
    return true;
  }

  private finish(packet: Buffer, q: Query, resolved: Resolved, arrival: Arrival, client: Client, started: number, send: (reply: Buffer) => void): void {
    const reply = writeReply(packet, q, resolved.answer, replyLimit(q, arrival.overTcp));
    const plugin = resolved.step === undefined ? 0 : (PLUGIN_INDEX.get(resolved.step) ?? 0);
    this.count(packet, q, resolved.answer.rcode, plugin, reply, arrival, client, started);
    send(reply);
  }

  private count(packet: Buffer, q: Query, rcode: number, plugin: number, reply: Buffer, arrival: Arrival, client: Client, started: number): void {
    const seconds = (performance.now() - started) / 1000;
    this.options.metrics.observe(arrival.listener, arrival.overTcp, q.qtype, rcode, plugin, packet.length, reply.length, seconds);
    if (this.options.logQueries) this.logQuery(q, arrival, client, rcode, reply.length, seconds);
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

  private stepFailed(error: unknown, q: Query): Resolved {
    const now = performance.now();
    if (now - this.lastStepErrorLog >= STEP_ERROR_LOG_INTERVAL_MS) {
      this.lastStepErrorLog = now;
      this.options.log.error({ err: error, name: keyToName(q.key), qtype: q.qtype }, 'a resolver failed; answered SERVFAIL (a bug: please report it)');
    }
    return { answer: SERVFAIL, step: undefined };
  }
}
