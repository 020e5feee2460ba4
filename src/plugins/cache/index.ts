/**
 * plugins/cache — remembers what the plugins after it got from other servers: a reply that carries its upstream
 * message (forward's, and autopath's completions of them). Answers prepared here from the live store (kubernetes,
 * hosts, template) carry none and are never kept, so a changed endpoint is never served stale: the effect of
 * kubeadm's `disable success|denial cluster.local`, always. Owns the entries, their lifetimes and their counters.
 *
 * Lifetimes: a positive answer lives for the smallest TTL in its answer section, a negative one (NXDOMAIN or
 * NODATA) for its SOA's TTL or minimum, whichever is smaller (RFC 2308 §5), each under its cap; a negative
 * answer without an SOA is not cached (RFC 2308 §5); SERVFAIL lives SERVFAIL_SECONDS and never replaces a good
 * answer. The TTLs a client sees count down. A popular entry near its end asks to be fetched again (prefetch),
 * and an expired one can still be served, with a 30 s TTL, when every upstream fails (RFC 8767), saying so in an
 * Extended DNS Error (RFC 8914: 3 Stale Answer, 19 Stale NXDOMAIN Answer) beside the upstream failure's own.
 * Entries are bounded by count (lru-cache), and time comes from an injected clock so tests step it.
 */
import { LRUCache } from 'lru-cache';
import { EdeCode, encodeEde, HeaderFlag, isInZone, joinEde, prepareMessage, Rcode, RRType, type Message, type PreparedAnswer, type Question } from '../../wire/index.js';
import type { Client, Handler, Next, Reply, Result } from '../plugin.js';

export interface CacheOptions {
  /** Entries at most; the least recently used go first. */
  readonly maxEntries: number;
  readonly maxTtl: number;
  readonly maxNegativeTtl: number;
  /** Answers with a shorter TTL are kept this long (CoreDNS's MINTTL, default 5); seconds. */
  readonly minTtl?: number;
  readonly minNegativeTtl?: number;
  /** How long after expiry an entry may still be served when upstreams fail (0: never). Seconds. */
  readonly serveStale: number;
  /** Refetch an entry asked `amount` times once `fraction` of its TTL is left; undefined: never. */
  readonly prefetch?: { readonly amount: number; readonly fraction: number };
  /** How long a SERVFAIL is kept (0: never); default SERVFAIL_SECONDS. */
  readonly servfailTtl?: number;
  /** Serve the TTL the upstream gave instead of counting it down (CoreDNS's keepttl). */
  readonly keepTtl?: boolean;
  /** Milliseconds since some epoch; Date.now in production, a stepped clock in tests. */
  readonly now: () => number;
}

export type EntryKind = 'success' | 'denial' | 'servfail';

export interface CacheStats {
  readonly entries: Readonly<Record<EntryKind, number>>;
  readonly hits: Readonly<Record<EntryKind, number>>;
  readonly misses: number;
  readonly requests: number;
  readonly prefetches: number;
  readonly servedStale: number;
}

interface Entry {
  readonly kind: EntryKind;
  readonly message: Message;
  readonly storedAt: number;
  /** Seconds the entry is fresh. */
  readonly ttl: number;
  /** The answer as prepared for `preparedAge` seconds after storing. */
  prepared: PreparedAnswer | undefined;
  preparedAge: number;
  hits: number;
  prefetching: boolean;
}

export interface CacheHit {
  readonly answer: PreparedAnswer;
  /** The entry is popular and near its end: fetch it again in the background (then store() the result). */
  readonly prefetch: boolean;
}

/** SERVFAIL is remembered this long, so a failing upstream is not asked again by every client at once. */
const SERVFAIL_SECONDS = 5;
/** RFC 8767 §4: a stale answer goes out with this TTL. */
const STALE_TTL = 30;
/** Prefetch only entries whose TTL is long enough that a refetch is worth it. */
const PREFETCH_MIN_TTL = 10;

/**
 * An entry's key: the lower-cased name, type, class, and the DO and CD bits, as CoreDNS keys its cache: an answer
 * fetched with CD=1 may hold data a validating upstream would refuse a CD=0 client.
 */
export function cacheKey(q: Question): string {
  const bits = (q.dnssecOk ? 1 : 0) | ((q.flags & HeaderFlag.CD) !== 0 ? 2 : 0);
  return `${q.key}${String.fromCharCode(q.qtype >> 8, q.qtype & 0xff, q.qclass >> 8, q.qclass & 0xff)}${bits}`;
}

export class AnswerCache {
  private readonly entries: LRUCache<string, Entry>;
  private readonly counts: Record<EntryKind, number> = { success: 0, denial: 0, servfail: 0 };
  private readonly hitCounts: Record<EntryKind, number> = { success: 0, denial: 0, servfail: 0 };
  private misses = 0;
  private requests = 0;
  private prefetches = 0;
  private servedStale = 0;

  constructor(private readonly options: CacheOptions) {
    this.entries = new LRUCache<string, Entry>({
      max: Math.max(1, options.maxEntries),
      dispose: (entry) => {
        this.counts[entry.kind]--;
      },
    });
  }

  /** A fresh answer for the question, or undefined (a miss). */
  get(q: Question): CacheHit | undefined {
    this.requests++;
    const key = cacheKey(q);
    const entry = this.entries.get(key);
    const age = entry === undefined ? 0 : (this.options.now() - entry.storedAt) / 1000;
    if (entry === undefined || age >= entry.ttl) {
      if (entry !== undefined && age >= entry.ttl + this.options.serveStale) this.entries.delete(key);
      this.misses++;
      return undefined;
    }
    this.hitCounts[entry.kind]++;
    entry.hits++;
    const policy = this.options.prefetch;
    const prefetch = policy !== undefined && entry.kind === 'success' && !entry.prefetching && entry.hits >= policy.amount &&
      entry.ttl >= PREFETCH_MIN_TTL && entry.ttl - age <= entry.ttl * policy.fraction;
    if (prefetch) {
      entry.prefetching = true;
      this.prefetches++;
    }
    return { answer: this.answerOf(entry, Math.floor(age)), prefetch };
  }

  /**
   * An expired answer still inside the serve-stale window, for when every upstream failed; `why` (the failure's
   * own EDE options) goes out after the one that says the answer is stale.
   */
  stale(q: Question, why?: Buffer): PreparedAnswer | undefined {
    if (this.options.serveStale === 0) return undefined;
    const entry = this.entries.get(cacheKey(q));
    if (entry === undefined || entry.kind === 'servfail') return undefined;
    const age = (this.options.now() - entry.storedAt) / 1000;
    if (age > entry.ttl + this.options.serveStale) return undefined;
    this.servedStale++;
    const code = entry.message.rcode === Rcode.NXDOMAIN ? EdeCode.STALE_NXDOMAIN_ANSWER : EdeCode.STALE_ANSWER;
    const stale = encodeEde(code, `expired ${Math.floor(age - entry.ttl)} s ago; the upstreams did not answer`);
    return prepareMessage(entry.message, () => STALE_TTL, joinEde(stale, why));
  }

  /**
   * Remembers an upstream reply to `q` (when it may be remembered) and returns the answer for the client.
   */
  store(q: Question, message: Message): PreparedAnswer {
    const key = cacheKey(q);
    const kind = kindOf(message);
    const ttl = kind === undefined ? 0 : this.lifetime(kind, message);
    const old = this.entries.get(key, { updateAgeOnGet: false });
    if (old !== undefined && kind === 'servfail' && old.kind !== 'servfail') {
      // Never over a good answer: keep it (for serve-stale) and let the client have this SERVFAIL uncached.
      old.prefetching = false;
      return prepareMessage(message, (record) => record.ttl);
    }
    if (kind === undefined || ttl <= 0) {
      if (old !== undefined) old.prefetching = false;
      return prepareMessage(message, (record) => record.ttl);
    }
    const entry: Entry = { kind, message, storedAt: this.options.now(), ttl, prepared: undefined, preparedAge: 0, hits: 0, prefetching: false };
    this.entries.set(key, entry);
    this.counts[kind]++;
    return this.answerOf(entry, 0);
  }

  /** A prefetch that failed: let a later hit try again. */
  prefetchFailed(q: Question): void {
    const entry = this.entries.get(cacheKey(q), { updateAgeOnGet: false });
    if (entry !== undefined) entry.prefetching = false;
  }

  stats(): CacheStats {
    return {
      entries: { ...this.counts },
      hits: { ...this.hitCounts },
      misses: this.misses,
      requests: this.requests,
      prefetches: this.prefetches,
      servedStale: this.servedStale,
    };
  }

  private lifetime(kind: EntryKind, message: Message): number {
    if (kind === 'servfail') return this.options.servfailTtl ?? SERVFAIL_SECONDS;
    if (kind === 'success') {
      let ttl = this.options.maxTtl;
      for (const record of message.answer) ttl = Math.min(ttl, record.ttl);
      return Math.max(ttl, Math.min(this.options.minTtl ?? 0, this.options.maxTtl));
    }
    const soa = message.authority.find((record) => record.type === RRType.SOA);
    if (soa === undefined) return 0;
    // The SOA's MINIMUM is its RDATA's last four bytes.
    const minimum = soa.rdata.readUInt32BE(soa.rdata.length - 4);
    return Math.max(Math.min(soa.ttl, minimum, this.options.maxNegativeTtl), Math.min(this.options.minNegativeTtl ?? 0, this.options.maxNegativeTtl));
  }

  /** The entry's answer with TTLs counted down by `age` seconds, prepared once per second of age. */
  private answerOf(entry: Entry, age: number): PreparedAnswer {
    if (this.options.keepTtl === true) age = 0;
    if (entry.prepared === undefined || entry.preparedAge !== age) {
      entry.prepared = prepareMessage(entry.message, (record) => Math.max(0, Math.min(record.ttl, entry.ttl) - age));
      entry.preparedAge = age;
    }
    return entry.prepared;
  }
}

/**
 * Which names the cache plugin looks at: those under its zones, except the live zones (answered from the store
 * after it: a lookup there always misses, so it is skipped); and which replies it keeps (`disable success|denial`).
 */
export class CacheScope {
  /** Wire keys: `zones` cached (root: all), `live` never looked up, and the zones each kind is not kept for. */
  constructor(
    private readonly zones: readonly string[],
    private readonly live: readonly string[],
    private readonly disabled: { readonly success: readonly string[]; readonly denial: readonly string[] },
  ) {}

  caches(key: string): boolean {
    for (const zone of this.live) if (isInZone(key, zone)) return false;
    for (const zone of this.zones) if (isInZone(key, zone)) return true;
    return false;
  }

  keeps(key: string, message: Message): boolean {
    const kind = kindOf(message);
    const disabled = kind === 'success' ? this.disabled.success : kind === 'denial' ? this.disabled.denial : [];
    for (const zone of disabled) if (isInZone(key, zone)) return false;
    return true;
  }
}

const NO_SCOPE = new CacheScope(['\0'], [], { success: [], denial: [] });

/**
 * The cache plugin: a hit is answered at once (asking for a refetch of a popular entry near its end); a miss goes
 * on to `next`, and a reply that carries an upstream message is kept. When the plugins after it fail outright
 * (SERVFAIL with no upstream message: every upstream down), an entry expired within the serve-stale window is
 * answered instead (RFC 8767).
 */
export class CacheHandler implements Handler {
  readonly name = 'cache';

  /**
   * `liveZones`: wire keys of zones answered from live state by a plugin after this one, whose answers are never
   * kept; their questions skip the lookup (a miss, always), so the cluster zone pays nothing for the cache.
   */
  constructor(private readonly cache: AnswerCache, private readonly scope: CacheScope = NO_SCOPE) {}

  resolve(q: Question, client: Client, next: Next): Result {
    if (!this.scope.caches(q.key)) return next(q, client);
    const hit = this.cache.get(q);
    if (hit !== undefined) {
      if (hit.prefetch) this.refetch(q, client, next);
      return { answer: hit.answer, plugin: this.name };
    }
    const fetched = next(q, client);
    return fetched instanceof Promise ? fetched.then((reply) => this.keep(q, reply)) : this.keep(q, fetched);
  }

  private keep(q: Question, reply: Reply): Reply {
    if (reply.message !== undefined && this.scope.keeps(q.key, reply.message)) return { ...reply, answer: this.cache.store(q, reply.message) };
    if (reply.answer.rcode !== Rcode.SERVFAIL) return reply;
    const stale = this.cache.stale(q, reply.answer.ede);
    return stale === undefined ? reply : { answer: stale, plugin: this.name };
  }

  private refetch(q: Question, client: Client, next: Next): void {
    const failed = (): void => this.cache.prefetchFailed(q);
    Promise.resolve(next(q, client)).then((reply) => {
      if (reply.message !== undefined && this.scope.keeps(q.key, reply.message)) this.cache.store(q, reply.message);
      else failed();
    }, failed);
  }
}

function kindOf(message: Message): EntryKind | undefined {
  if (message.rcode === Rcode.SERVFAIL) return 'servfail';
  if (message.rcode === Rcode.NXDOMAIN) return 'denial';
  if (message.rcode !== Rcode.NOERROR) return undefined;
  return message.answer.length > 0 ? 'success' : 'denial';
}
