/**
 * One query in, one reply out (or none): parse once, ask the plugin chain, write the reply for the
 * transport, count it under the plugin that wrote it. The reply is sent at once when the chain answers synchronously (cluster zone, cache) and
 * when its promise settles otherwise. Every error a client can cause ends here as an rcode: FORMERR for a
 * malformed message whose header is readable, NOTIMP for other opcodes, BADVERS for EDNS versions above 0,
 * REFUSED for names no plugin answers, SERVFAIL when a plugin fails.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { NOBODY_ANSWERS } from '../plugins/chain.js';
import type { Client, ErrorSink, LoggedQuery, Next, Reply, Result } from '../plugins/plugin.js';
import type { FailureTop, QueryMetrics } from '../telemetry/index.js';
import {
  emptyAnswer,
  isInZone,
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
  type ReplyNotes,
} from '../wire/index.js';

/** Where a query came in: which listen address (an index into the metrics' listeners) and transport. */
export interface Arrival {
  readonly listener: number;
  readonly overTcp: boolean;
}

export type { Client } from '../plugins/plugin.js';

export interface AnswererOptions {
  readonly metrics: QueryMetrics;
  readonly log: Logger;
  /** Where NXDOMAIN and SERVFAIL answers are counted by name and client (/debug/top); absent without a metrics endpoint. */
  readonly failures?: FailureTop;
}

const SERVFAIL: Reply = { answer: emptyAnswer(Rcode.SERVFAIL), plugin: '' };
const FORMERR: Reply = { answer: emptyAnswer(Rcode.FORMERR), plugin: '' };
const BADVERS: Reply = { answer: emptyAnswer(Rcode.BADVERS), plugin: '' };
/** Zone transfers (IXFR 251, AXFR 252) are not offered: the cluster zone is watched, not transferred. */
const TRANSFER_TYPES = new Set([251, 252]);
/** At most one "a plugin threw" log line per this many milliseconds: a bug must not flood the logs. */
const PLUGIN_ERROR_LOG_INTERVAL_MS = 10_000;

/** A server block's zone on one listener, and its plugins composed (plugins/chain.ts). */
export interface ZoneRoute {
  /** Wire key of the zone (the root for `.`). */
  readonly zoneKey: string;
  readonly chain: Next;
  /** The block's query log: the line a query gets (its `msg`), or undefined for none; no query is logged when absent. */
  readonly queryLog?: (query: LoggedQuery) => string | undefined;
  /** Where the errors a plugin answered with (Reply.error) go: the block's errors plugin; absent, they are not logged. */
  readonly reportError?: ErrorSink;
  /** The address the listener is bound to: the query log's `{local}`. */
  readonly local?: string;
  /** The largest UDP reply to an EDNS client (the block's bufsize); MAX_UDP_PAYLOAD when absent. */
  readonly maxUdpReply?: number;
  /** The block's NSID option (RFC 5001), encoded, for the clients that ask for it. */
  readonly nsid?: Buffer;
}

/** A route as the answerer keeps it: with the metrics slot of its listener and zone. */
interface Route extends ZoneRoute {
  readonly slot: number;
}

export class QueryAnswerer {
  private lastPluginErrorLog = -Infinity;
  /** What the reply being written carried; reused, since writeReply is synchronous. */
  private readonly notes: ReplyNotes = { ede: undefined };
  private routes: ReadonlyArray<readonly Route[]> = [];
  /** Per listener, the metrics slot of what no block takes (zone "."): bad packets and REFUSED names. */
  private unrouted: readonly number[] = [];

  /**
   * `routes`: per listener (Arrival.listener), the zones served there; a query goes to the most specific zone
   * that holds its name (CoreDNS's server-block choice), REFUSED when none does.
   */
  constructor(routes: ReadonlyArray<readonly ZoneRoute[]>, private readonly options: AnswererOptions) {
    this.setRoutes(routes);
  }

  /** New chains (a reloaded Corefile) for the next query on; a query already inside a chain finishes there. */
  setRoutes(routes: ReadonlyArray<readonly ZoneRoute[]>): void {
    const { metrics } = this.options;
    this.routes = routes.map((zones, listener) => [...zones]
      .sort((a, b) => b.zoneKey.length - a.zoneKey.length)
      .map((route) => ({ ...route, slot: metrics.slot(listener, keyToName(route.zoneKey)) })));
    this.unrouted = routes.map((_, listener) => metrics.slot(listener, '.'));
  }

  private routeFor(listener: number, key: string): Route | undefined {
    for (const route of this.routes[listener] ?? []) if (isInZone(key, route.zoneKey)) return route;
    return undefined;
  }

  /**
   * Answers `packet` through `send`, now or later; returns false when the packet gets no reply at all (too
   * short, or a response), so a stream transport knows nothing sensible follows.
   */
  answer(packet: Buffer, arrival: Arrival, client: Client, send: (reply: Buffer) => void): boolean {
    const started = performance.now();
    // Every query its own: a plugin that waits reads it later (one small object; no copies anywhere after).
    const q = newQuery();
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
        reply = writeReply(packet, q, FORMERR.answer, replyLimit(q, arrival.overTcp));
        break;
      default: {
        let resolved: Result = NOBODY_ANSWERS;
        const route = this.routeFor(arrival.listener, q.key);
        if (q.edns && q.ednsVersion !== 0) resolved = BADVERS;
        else if (q.qtype === RRType.OPT) resolved = FORMERR;
        else if (!TRANSFER_TYPES.has(q.qtype) && route !== undefined) {
          try {
            resolved = route.chain(q, client);
          } catch (error) {
            resolved = this.pluginFailed(error, q);
          }
        }
        if (resolved instanceof Promise) {
          // The packet's buffer may be reused (TCP) by the time this one is answered: keep its question only.
          const requestSize = packet.length;
          const question = Buffer.from(packet.subarray(0, q.questionEnd));
          resolved.then(
            (late) => this.finish(question, requestSize, q, late, route, arrival, client, started, send),
            (error: unknown) => this.finish(question, requestSize, q, this.pluginFailed(error, q), route, arrival, client, started, send),
          );
          return true;
        }
        this.finish(packet, packet.length, q, resolved, route, arrival, client, started, send);
        return true;
      }
    }
    this.count(packet.length, q, rcode, 0, reply, undefined, arrival, client, started);
    send(reply);
    return true;
  }

  /** `packet` holds at least the question; `requestSize` is the whole query's size, OPT record included. */
  private finish(packet: Buffer, requestSize: number, q: Query, resolved: Reply, route: Route | undefined, arrival: Arrival, client: Client, started: number, send: (reply: Buffer) => void): void {
    const reply = writeReply(packet, q, resolved.answer, replyLimit(q, arrival.overTcp, route?.maxUdpReply), this.notes, route?.nsid);
    if (this.notes.ede !== undefined) this.options.metrics.observeExtendedErrors(route?.slot ?? this.unrouted[arrival.listener]!, this.notes.ede);
    this.count(requestSize, q, resolved.answer.rcode, this.options.metrics.pluginIndex(resolved.plugin), reply, route, arrival, client, started);
    send(reply);
    // One check for an answer without an error (every cluster answer, every cache hit); logged after the reply is sent.
    if (resolved.error !== undefined) route?.reportError?.(q, resolved.answer.rcode, resolved.error);
  }

  private count(requestSize: number, q: Query, rcode: number, plugin: number, reply: Buffer, route: Route | undefined, arrival: Arrival, client: Client, started: number): void {
    const seconds = (performance.now() - started) / 1000;
    const slot = route?.slot ?? this.unrouted[arrival.listener]!;
    this.options.metrics.observe(slot, arrival.overTcp, q.qtype, rcode, plugin, requestSize, reply.length, seconds);
    // A call and two comparisons for any other rcode: the sketch's work (bounded) is for failures only.
    this.options.failures?.record(q.key, rcode, client.address);
    if (route?.queryLog !== undefined) this.logQuery(route, requestSize, q, rcode, reply, arrival, client, seconds);
  }

  /** The block's log line as `msg` (CoreDNS's text), with the same facts as fields for JSON log pipelines. */
  private logQuery(route: Route, requestSize: number, q: Query, rcode: number, reply: Buffer, arrival: Arrival, client: Client, seconds: number): void {
    const line = route.queryLog!({ query: q, client, local: route.local ?? '-', requestSize, rcode, reply, seconds });
    if (line === undefined) return;
    this.options.log.info({
      client: `${client.address}:${client.port}`,
      proto: arrival.overTcp ? 'tcp' : 'udp',
      name: keyToName(q.key),
      type: typeName(q.qtype),
      rcode: rcodeName(rcode),
      size: reply.length,
      durationMs: Math.round(seconds * 1e6) / 1000,
    }, line);
  }

  private pluginFailed(error: unknown, q: Query): Reply {
    const now = performance.now();
    if (now - this.lastPluginErrorLog >= PLUGIN_ERROR_LOG_INTERVAL_MS) {
      this.lastPluginErrorLog = now;
      this.options.log.error({ err: error, name: keyToName(q.key), qtype: q.qtype }, 'a plugin failed; answered SERVFAIL (a bug: please report it)');
    }
    return SERVFAIL;
  }
}
