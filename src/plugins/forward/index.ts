/**
 * plugins/forward — sends every name we are not authoritative for to upstream servers: the default upstreams
 * (--upstream, else resolv.conf's nameservers) or, for names under a stub domain, that domain's own servers.
 * Owns the upstreams' health, the choice among them, failover within a deadline, the bound on concurrent
 * upstream queries, coalescing of identical questions in flight and loop detection. Its replies carry the
 * upstream message, which a cache in front of it may keep; it knows nothing of any cache.
 *
 * Failure rules, per upstream: a try that times out or fails on the network counts one failure, and the next
 * upstream is tried at once; a refusal (ICMP port unreachable, exchange.ts) fails without waiting. `maxFails`
 * in a row mark the upstream down, and one background probe at a time (`. NS`, every PROBE_INTERVAL_MS)
 * brings it back as soon as it answers anything. Down upstreams are skipped; when all are down, one is still
 * tried (none with `failfast`: SERVFAIL at once). An upstream found to forward back to us (a loop) is never used
 * again, and said so once. tls:// upstreams are asked over one shared TLS connection each (tls.ts). With `next`
 * rcodes, an upstream answer with one of them goes on to `next` (the following forward stanza) instead.
 *
 * Its own SERVFAIL and REFUSED say why in an Extended DNS Error (RFC 8914): which upstream failed last and how
 * (22 No Reachable Authority for a timeout, 23 Network Error for a refusal or a broken answer), or that too many
 * queries were in flight. An upstream's own EDE options pass through with its answer (wire/). They carry the
 * error too (Reply.error), in CoreDNS's words: the last try's (Go's net text, exchange.ts), `no healthy proxies`,
 * `concurrent queries exceeded maximum N`: what the errors plugin logs.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import {
  EdeCode,
  emptyAnswer,
  encodeEde,
  HeaderFlag,
  isInZone,
  nameToKey,
  prepareMessage,
  Rcode,
  RRClass,
  RRType,
  type Message,
  type Question as ClientQuestion,
} from '../../wire/index.js';
import type { Client, Handler, Next, Reply, Result } from '../plugin.js';
import { describeUpstream, exchange, ExchangeError, type Question, type Transport, type UpstreamAddress } from './exchange.js';
import { DEFAULT_EXPIRE_MS, DotUpstream, type TlsClientConfig } from './tls.js';

export type { UpstreamAddress } from './exchange.js';

export type ForwardPolicy = 'random' | 'round_robin' | 'sequential';
export const FORWARD_POLICIES: readonly ForwardPolicy[] = ['random', 'round_robin', 'sequential'];

export interface StubDomain {
  /** Wire key of the domain (names.ts). */
  readonly zoneKey: string;
  readonly upstreams: readonly UpstreamAddress[];
}

/** What the forwarder reports; telemetry turns it into CoreDNS's metrics. */
export interface ForwardObserver {
  request(to: string): void;
  response(to: string, rcode: number, seconds: number): void;
  healthcheckFailure(to: string): void;
  /** Every upstream of a group was down when a query came. */
  allDown(): void;
  rejected(): void;
  coalesced(): void;
}

export interface ForwarderOptions {
  readonly upstreams: readonly UpstreamAddress[];
  readonly stubDomains: readonly StubDomain[];
  readonly policy: ForwardPolicy;
  readonly maxFails: number;
  /** Each try waits this long for an answer. */
  readonly tryTimeoutMs: number;
  /** All tries of one question end by then; the client gets SERVFAIL (or a stale answer). */
  readonly deadlineMs: number;
  readonly maxConcurrent: number;
  /** Wire keys of zones never forwarded (CoreDNS's `except`): their names go on to the next plugin. */
  readonly except?: readonly string[];
  /** How often a down upstream is probed; PROBE_INTERVAL_MS by default (CoreDNS's `health_check`). */
  readonly probeIntervalMs?: number;
  /** 'tcp': queries, health probes and loop probes all go over TCP (CoreDNS's `force_tcp`); 'udp' by default. */
  readonly transport?: Transport;
  /** The client side of TLS for tls:// upstreams (their queries and probes all go over TLS). */
  readonly tls?: TlsClientConfig;
  /** A TLS connection with nothing in flight is closed after this long (CoreDNS's `expire`); 10 s by default. */
  readonly expireMs?: number;
  /**
   * An upstream answer with one of these rcodes goes on to `next` instead (CoreDNS's `next`): set only when the
   * next handler is another forward stanza, where CoreDNS's `next` acts.
   */
  readonly nextRcodes?: ReadonlySet<number>;
  /** Every upstream down: SERVFAIL at once instead of trying one anyway (`failfast_all_unhealthy_upstreams`). */
  readonly failfast?: boolean;
  readonly observer: ForwardObserver;
  readonly log: Logger;
  /** In [0, 1); Math.random in production. */
  readonly random?: () => number;
}

export interface UpstreamState {
  readonly to: string;
  readonly up: boolean;
  readonly looping: boolean;
}

const PROBE_INTERVAL_MS = 500;
const LOOP_PROBE_TIMEOUT_MS = 2000;
const HINFO = 13;
const SERVFAIL: Reply = { answer: emptyAnswer(Rcode.SERVFAIL), plugin: 'forward' };
/** CoreDNS's ErrNoHealthy: no upstream could be tried. */
const NO_HEALTHY = new Error('no healthy proxies');
/** The deadline left no time for a try. */
const NO_TRY: Reply = { ...SERVFAIL, error: NO_HEALTHY };
/** Every upstream left is one found to forward back to us. */
const ALL_LOOPING: Reply = {
  answer: emptyAnswer(Rcode.SERVFAIL, false, encodeEde(EdeCode.NO_REACHABLE_AUTHORITY, 'every upstream forwards back to this server (a loop)')),
  plugin: 'forward',
  error: new Error('no healthy proxies: every upstream forwards back to this server (a loop)'),
};

/** Why the last try of a question failed. */
interface Failure {
  readonly upstream: Upstream;
  readonly error: ExchangeError;
  /** Upstreams tried for the question. */
  readonly tried: number;
}

/** The SERVFAIL for a question whose every try failed, naming the last upstream and what went wrong. */
function failedReply(failure: Failure): Reply {
  const { upstream, error, tried } = failure;
  const [code, what] = error.reason === 'timeout' ? [EdeCode.NO_REACHABLE_AUTHORITY, 'no answer (timeout)']
    : error.reason === 'malformed' ? [EdeCode.NETWORK_ERROR, 'an answer that does not match the question']
    : error.reason === 'tls' ? [EdeCode.NETWORK_ERROR, `TLS handshake failed (${error.code ?? 'error'})`]
    : error.code === 'ECONNREFUSED' ? [EdeCode.NETWORK_ERROR, 'connection refused']
    : [EdeCode.NETWORK_ERROR, `network error ${error.code ?? ''}`.trim()];
  const text = `upstream ${upstream.to}: ${what}${tried > 1 ? `; ${tried} upstreams tried` : ''}`;
  return { answer: emptyAnswer(Rcode.SERVFAIL, false, encodeEde(code, text)), plugin: 'forward', error };
}

/** Every upstream was down and `failfast_all_unhealthy_upstreams` is set. */
const ALL_DOWN: Reply = {
  answer: emptyAnswer(Rcode.SERVFAIL, false, encodeEde(EdeCode.NO_REACHABLE_AUTHORITY, 'every upstream is down (failfast_all_unhealthy_upstreams)')),
  plugin: 'forward',
  error: NO_HEALTHY,
};

class Upstream {
  readonly to: string;
  fails = 0;
  down = false;
  looping = false;
  probing: NodeJS.Timeout | undefined;

  /** `dot`: the shared TLS connection of a tls:// upstream. */
  constructor(readonly address: UpstreamAddress, readonly dot?: DotUpstream) {
    this.to = describeUpstream(address);
  }

  close(): void {
    clearTimeout(this.probing);
    this.dot?.close();
  }
}

class Group {
  private next = 0;

  constructor(readonly upstreams: readonly Upstream[]) {}

  /** The order to try this group's upstreams in, by policy; down ones last, looping ones never. */
  order(policy: ForwardPolicy, random: () => number): Upstream[] {
    const usable = this.upstreams.filter((upstream) => !upstream.looping);
    let ordered = usable;
    if (policy === 'random') {
      ordered = [...usable];
      for (let i = ordered.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [ordered[i], ordered[j]] = [ordered[j]!, ordered[i]!];
      }
    } else if (policy === 'round_robin' && usable.length > 0) {
      const start = this.next++ % usable.length;
      ordered = [...usable.slice(start), ...usable.slice(0, start)];
    }
    const healthy = ordered.filter((upstream) => !upstream.down);
    // All down: still try one, the first in policy order (tryUpstreams tries none with failfast).
    return healthy.length > 0 ? healthy : ordered.slice(0, 1);
  }
}

/** The question as it goes upstream: the client's CD bit is passed on. */
function upstreamQuestion(q: ClientQuestion): Question {
  return { key: q.key, qtype: q.qtype, qclass: q.qclass, dnssecOk: q.dnssecOk, checkingDisabled: (q.flags & HeaderFlag.CD) !== 0 };
}

function upstreamFor(known: Map<string, Upstream>, address: UpstreamAddress, create: (address: UpstreamAddress) => Upstream): Upstream {
  const to = describeUpstream(address);
  let found = known.get(to);
  if (found === undefined) known.set(to, (found = create(address)));
  return found;
}

export class Forwarder implements Handler {
  readonly name = 'forward';
  private defaultGroup: Group | undefined;
  private readonly stubGroups: Array<{ zoneKey: string; group: Group }>;
  /** Every upstream of every group, once: the health state lives here. */
  private all: Upstream[];
  private readonly inFlight = new Map<string, Promise<Reply>>();
  private upstreamQueries = 0;
  /** Names of loop probes in flight → the upstream each was sent to. */
  private readonly loopProbes = new Map<string, Upstream>();
  private readonly random: () => number;
  private closed = false;
  /** The REFUSED past max_concurrent, saying so. */
  private readonly busy: Reply;

  constructor(private readonly options: ForwarderOptions) {
    this.random = options.random ?? Math.random;
    this.busy = {
      answer: emptyAnswer(Rcode.REFUSED, false, encodeEde(EdeCode.OTHER, `too many queries in flight upstream (max_concurrent ${options.maxConcurrent})`)),
      plugin: 'forward',
      // CoreDNS's ErrLimitExceeded.
      error: new Error(`concurrent queries exceeded maximum ${options.maxConcurrent}`),
    };
    const byAddress = new Map<string, Upstream>();
    const upstream = (address: UpstreamAddress): Upstream => upstreamFor(byAddress, address, this.create);
    this.defaultGroup = options.upstreams.length > 0 ? new Group(options.upstreams.map(upstream)) : undefined;
    // Longest domain first, so the most specific stub domain wins.
    this.stubGroups = [...options.stubDomains]
      .sort((a, b) => b.zoneKey.length - a.zoneKey.length)
      .map((stub) => ({ zoneKey: stub.zoneKey, group: new Group(stub.upstreams.map(upstream)) }));
    this.all = [...byAddress.values()];
  }

  /**
   * Replaces the default upstreams (resolv.conf changed). Upstreams that stay keep their health; new ones are
   * probed for a loop. Resolves when those probes are done.
   */
  async setUpstreams(addresses: readonly UpstreamAddress[]): Promise<void> {
    const known = new Map(this.all.map((upstream) => [upstream.to, upstream]));
    const before = new Set(known.keys());
    this.defaultGroup = addresses.length > 0 ? new Group(addresses.map((address) => upstreamFor(known, address, this.create))) : undefined;
    const used = new Set([...(this.defaultGroup?.upstreams ?? []), ...this.stubGroups.flatMap((stub) => stub.group.upstreams)]);
    for (const upstream of this.all) if (!used.has(upstream)) upstream.close();
    this.all = [...used];
    await this.detectLoops(this.all.filter((upstream) => !before.has(upstream.to)));
  }

  /** Sends a loop probe through every upstream; a probe that comes back to us marks that upstream as a loop. */
  async detectLoops(upstreams: readonly Upstream[] = this.all): Promise<void> {
    await Promise.all(upstreams.map(async (upstream) => {
      const name = `${randomBytes(8).toString('hex')}.${randomBytes(4).toString('hex')}.loop-probe.clusterdns.`;
      const key = nameToKey(name);
      this.loopProbes.set(key, upstream);
      try {
        await this.send(upstream, { key, qtype: HINFO, qclass: RRClass.IN, dnssecOk: false, checkingDisabled: false }, LOOP_PROBE_TIMEOUT_MS);
      } catch {
        // Unanswered is fine here: health checks deal with dead upstreams; only a probe that returns matters.
      } finally {
        this.loopProbes.delete(key);
      }
    }));
  }

  states(): UpstreamState[] {
    return this.all.map((upstream) => ({ to: upstream.to, up: !upstream.down, looping: upstream.looping }));
  }

  close(): void {
    this.closed = true;
    for (const upstream of this.all) upstream.close();
  }

  /** A tls:// upstream is asked over its shared TLS connection; the others as `transport` says. */
  private send(upstream: Upstream, question: Question, timeoutMs: number): Promise<Message> {
    return upstream.dot !== undefined ? upstream.dot.exchange(question, timeoutMs) : exchange(upstream.address, question, timeoutMs, this.options.transport);
  }

  /** An Upstream for an address: a tls:// one gets its shared TLS connection. */
  private readonly create = (address: UpstreamAddress): Upstream => {
    if (address.tls === undefined) return new Upstream(address);
    const tls = { ...this.options.tls, ...address.tls };
    return new Upstream(address, new DotUpstream(address, describeUpstream(address), tls, this.options.expireMs ?? DEFAULT_EXPIRE_MS, this.options.log));
  };

  resolve(q: ClientQuestion, client: Client, next: Next): Result {
    const probed = this.loopProbes.get(q.key);
    if (probed !== undefined) return this.loopFound(probed);
    const group = this.groupFor(q.key);
    if (group === undefined || this.excepted(q.key)) return next(q, client);
    const question = upstreamQuestion(q);
    // Name, type, class, DO and CD: what the upstream's answer can depend on.
    const coalesceKey = `${q.key}${String.fromCharCode(q.qtype, q.qclass)}${question.dnssecOk ? 1 : 0}${question.checkingDisabled ? 1 : 0}`;
    const pending = this.inFlight.get(coalesceKey);
    if (pending !== undefined) {
      this.options.observer.coalesced();
      return pending;
    }
    if (this.upstreamQueries >= this.options.maxConcurrent) {
      this.options.observer.rejected();
      return this.busy;
    }
    const answer = this.ask(group, question).finally(() => this.inFlight.delete(coalesceKey));
    this.inFlight.set(coalesceKey, answer);
    const passOn = this.options.nextRcodes;
    if (passOn === undefined) return answer;
    // CoreDNS's `next`: an upstream answer with one of these rcodes is the next forward stanza's to answer.
    return answer.then((reply) => (reply.message !== undefined && passOn.has(reply.message.rcode) ? next(q, client) : reply));
  }

  private excepted(key: string): boolean {
    for (const zone of this.options.except ?? []) if (isInZone(key, zone)) return true;
    return false;
  }

  private groupFor(key: string): Group | undefined {
    for (const stub of this.stubGroups) if (isInZone(key, stub.zoneKey)) return stub.group;
    return this.defaultGroup;
  }

  private async ask(group: Group, question: Question): Promise<Reply> {
    this.upstreamQueries++;
    try {
      const outcome = await this.tryUpstreams(group, question);
      if (outcome === undefined) return NO_TRY;
      if (outcome === 'looping') return ALL_LOOPING;
      if (outcome === 'down') return ALL_DOWN;
      if ('error' in outcome) return failedReply(outcome);
      return { answer: prepareMessage(outcome, (record) => record.ttl), plugin: this.name, message: outcome };
    } finally {
      this.upstreamQueries--;
    }
  }

  /**
   * Tries upstreams in policy order until one answers or the deadline passes: the answer, or how the last try
   * failed, or 'looping' when no upstream is left to try, or undefined when the deadline left no time for a try.
   */
  private async tryUpstreams(group: Group, question: Question): Promise<Message | Failure | 'looping' | 'down' | undefined> {
    const deadline = Date.now() + this.options.deadlineMs;
    const order = group.order(this.options.policy, this.random);
    if (order.length === 0) return 'looping';
    if (order.every((upstream) => upstream.down)) {
      this.options.observer.allDown();
      if (this.options.failfast === true) return 'down';
    }
    let failure: Failure | undefined;
    for (let attempt = 0; attempt < order.length; attempt++) {
      const upstream = order[attempt]!;
      const left = deadline - Date.now();
      if (left <= 0) break;
      const started = performance.now();
      this.options.observer.request(upstream.to);
      let message: Message;
      try {
        message = await this.send(upstream, question, Math.min(this.options.tryTimeoutMs, left));
      } catch (error) {
        if (!(error instanceof ExchangeError)) throw error;
        this.failed(upstream, error);
        failure = { upstream, error, tried: attempt + 1 };
        continue;
      }
      this.options.observer.response(upstream.to, message.rcode, (performance.now() - started) / 1000);
      upstream.fails = 0;
      return message;
    }
    return failure;
  }

  private failed(upstream: Upstream, error: ExchangeError): void {
    upstream.fails++;
    // max_fails 0: never marked down (CoreDNS's meaning).
    if (upstream.down || this.options.maxFails === 0 || upstream.fails < this.options.maxFails) return;
    upstream.down = true;
    this.options.log.warn({ upstream: upstream.to, fails: upstream.fails, err: error.message }, 'upstream marked down; probing it until it answers');
    this.probe(upstream);
  }

  /** One probe in flight per down upstream, every PROBE_INTERVAL_MS, until it answers. */
  private probe(upstream: Upstream): void {
    if (this.closed || upstream.looping) return;
    upstream.probing = setTimeout(() => {
      this.send(upstream, { key: '\0', qtype: RRType.NS, qclass: RRClass.IN, dnssecOk: false, checkingDisabled: false }, this.options.tryTimeoutMs).then(
        () => {
          upstream.down = false;
          upstream.fails = 0;
          upstream.probing = undefined;
          this.options.log.info({ upstream: upstream.to }, 'upstream answers again');
        },
        () => {
          this.options.observer.healthcheckFailure(upstream.to);
          this.probe(upstream);
        },
      );
    }, this.options.probeIntervalMs ?? PROBE_INTERVAL_MS);
    upstream.probing.unref();
  }

  private loopFound(upstream: Upstream): Reply {
    if (!upstream.looping) {
      upstream.looping = true;
      upstream.close();
      const others = this.all.filter((other) => !other.looping).map((other) => other.to);
      this.options.log.error(
        { upstream: upstream.to, stillUsed: others },
        `forwarding loop: upstream ${upstream.to} sends queries back to this server; it is no longer used` +
          (others.length === 0 ? ' and nothing outside the cluster zone can be resolved' : ''),
      );
    }
    return SERVFAIL;
  }
}
