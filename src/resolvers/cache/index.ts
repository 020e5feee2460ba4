/**
 * resolvers/cache — remembers forwarded answers (never the cluster zone: that is always answered from the live
 * store, so a changed endpoint is never served stale). Owns the entries, their lifetimes and their counters.
 *
 * Lifetimes: a positive answer lives for the smallest TTL in its answer section, a negative one (NXDOMAIN or
 * NODATA) for its SOA's TTL or minimum, whichever is smaller (RFC 2308 §5), each under its cap; a negative
 * answer without an SOA is not cached (RFC 2308 §5); SERVFAIL lives SERVFAIL_SECONDS and never replaces a good
 * answer. The TTLs a client sees count down. A popular entry near its end asks to be fetched again (prefetch),
 * and an expired one can still be served, with a 30 s TTL, when every upstream fails (RFC 8767).
 * Entries are bounded by count (lru-cache), and time comes from an injected clock so tests step it.
 */
import { LRUCache } from 'lru-cache';
import { prepareAnswer, Rcode, RRType, type Message, type PreparedAnswer, type WireRecord } from '../../wire/index.js';
import { copyQuestion, type ChainQuestion, type ResolverStep } from '../chain.js';

export interface CacheOptions {
  /** Entries at most; the least recently used go first. */
  readonly maxEntries: number;
  readonly maxTtl: number;
  readonly maxNegativeTtl: number;
  /** How long after expiry an entry may still be served when upstreams fail (0: never). Seconds. */
  readonly serveStale: number;
  /** Milliseconds since some epoch; Date.now in production, a stepped clock in tests. */
  readonly now: () => number;
}

/** What a cache key is made of: the lower-cased name, type, class and the DO bit. */
export interface CacheQuestion {
  readonly key: string;
  readonly qtype: number;
  readonly qclass: number;
  readonly dnssecOk: boolean;
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
/** Prefetch when at most this fraction of the TTL is left... */
const PREFETCH_FRACTION = 0.1;
/** ...the entry has been asked this often since it was stored... */
const PREFETCH_MIN_HITS = 2;
/** ...and its TTL is long enough that a refetch is worth it. */
const PREFETCH_MIN_TTL = 10;

export function cacheKey(q: CacheQuestion): string {
  return `${q.key}${String.fromCharCode(q.qtype >> 8, q.qtype & 0xff, q.qclass >> 8, q.qclass & 0xff)}${q.dnssecOk ? '1' : '0'}`;
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
  get(q: CacheQuestion): CacheHit | undefined {
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
    const prefetch = entry.kind === 'success' && !entry.prefetching && entry.hits >= PREFETCH_MIN_HITS &&
      entry.ttl >= PREFETCH_MIN_TTL && entry.ttl - age <= entry.ttl * PREFETCH_FRACTION;
    if (prefetch) {
      entry.prefetching = true;
      this.prefetches++;
    }
    return { answer: this.answerOf(entry, Math.floor(age)), prefetch };
  }

  /** An expired answer still inside the serve-stale window, for when every upstream failed. */
  stale(q: CacheQuestion): PreparedAnswer | undefined {
    if (this.options.serveStale === 0) return undefined;
    const entry = this.entries.get(cacheKey(q));
    if (entry === undefined || entry.kind === 'servfail') return undefined;
    const age = (this.options.now() - entry.storedAt) / 1000;
    if (age > entry.ttl + this.options.serveStale) return undefined;
    this.servedStale++;
    return prepare(entry.message, () => STALE_TTL);
  }

  /**
   * Remembers an upstream reply to `q` (when it may be remembered) and returns the answer for the client.
   */
  store(q: CacheQuestion, message: Message): PreparedAnswer {
    const key = cacheKey(q);
    const kind = kindOf(message);
    const ttl = kind === undefined ? 0 : this.lifetime(kind, message);
    const old = this.entries.get(key, { updateAgeOnGet: false });
    if (old !== undefined && kind === 'servfail' && old.kind !== 'servfail') {
      // Never over a good answer: keep it (for serve-stale) and let the client have this SERVFAIL uncached.
      old.prefetching = false;
      return prepare(message, (record) => record.ttl);
    }
    if (kind === undefined || ttl <= 0) {
      if (old !== undefined) old.prefetching = false;
      return prepare(message, (record) => record.ttl);
    }
    const entry: Entry = { kind, message, storedAt: this.options.now(), ttl, prepared: undefined, preparedAge: 0, hits: 0, prefetching: false };
    this.entries.set(key, entry);
    this.counts[kind]++;
    return this.answerOf(entry, 0);
  }

  /** A prefetch that failed: let a later hit try again. */
  prefetchFailed(q: CacheQuestion): void {
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
    if (kind === 'servfail') return SERVFAIL_SECONDS;
    if (kind === 'success') {
      let ttl = this.options.maxTtl;
      for (const record of message.answer) ttl = Math.min(ttl, record.ttl);
      return ttl;
    }
    const soa = message.authority.find((record) => record.type === RRType.SOA);
    if (soa === undefined) return 0;
    // The SOA's MINIMUM is its RDATA's last four bytes.
    const minimum = soa.rdata.readUInt32BE(soa.rdata.length - 4);
    return Math.min(soa.ttl, minimum, this.options.maxNegativeTtl);
  }

  /** The entry's answer with TTLs counted down by `age` seconds, prepared once per second of age. */
  private answerOf(entry: Entry, age: number): PreparedAnswer {
    if (entry.prepared === undefined || entry.preparedAge !== age) {
      entry.prepared = prepare(entry.message, (record) => Math.max(0, Math.min(record.ttl, entry.ttl) - age));
      entry.preparedAge = age;
    }
    return entry.prepared;
  }
}

/** The chain step in front of the forwarder: answers hits, and asks for a refetch of popular entries near expiry. */
export class CacheStep implements ResolverStep {
  readonly name = 'cache';

  constructor(private readonly cache: AnswerCache, private readonly refetch: (q: ChainQuestion) => void) {}

  resolve(q: ChainQuestion): PreparedAnswer | undefined {
    const hit = this.cache.get(q);
    if (hit === undefined) return undefined;
    if (hit.prefetch) this.refetch(copyQuestion(q));
    return hit.answer;
  }
}

function kindOf(message: Message): EntryKind | undefined {
  if (message.rcode === Rcode.SERVFAIL) return 'servfail';
  if (message.rcode === Rcode.NXDOMAIN) return 'denial';
  if (message.rcode !== Rcode.NOERROR) return undefined;
  return message.answer.length > 0 ? 'success' : 'denial';
}

/** The client's answer from an upstream message, with each record's TTL given by `ttl`. */
export function prepare(message: Message, ttl: (record: WireRecord) => number): PreparedAnswer {
  const withTtl = (records: readonly WireRecord[]): WireRecord[] => records.map((record) => ({ ...record, ttl: ttl(record) }));
  return prepareAnswer(message.question?.key ?? '\0', {
    rcode: message.rcode,
    authoritative: false,
    recursionAvailable: true,
    answer: withTtl(message.answer),
    authority: withTtl(message.authority),
    additional: withTtl(message.additional),
  });
}
