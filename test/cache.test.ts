/**
 * The cache's rules with a stepped clock: lifetimes (RFC 2308 for negative answers), TTL countdown, SERVFAIL
 * that never replaces a good answer, the entry bound, prefetch and serve-stale (RFC 8767). Upstream replies are
 * encoded by dns2 and decoded by our wire code, as the forwarder gets them; the prepared answers are read back
 * with dns2 too.
 */
import dns2 from 'dns2';
import { describe, expect, it } from 'vitest';
import { AnswerCache, type CacheOptions } from '../src/plugins/cache/index.js';
import { decodeEde, decodeMessage, encodeEde, HeaderFlag, nameToKey, newQuery, parseQuery, replyLimit, writeReply, type PreparedAnswer } from '../src/wire/index.js';

const { Packet } = dns2;
type Record = { name: string; type: number; class: number; ttl: number } & { [field: string]: unknown };

function upstreamReply(name: string, type: number, options: { rcode?: number; answers?: Record[]; soa?: { ttl: number; minimum: number } }): ReturnType<typeof decodeMessage> {
  const request = new Packet();
  request.header.id = 7;
  request.questions.push({ name, type, class: 1 } as never);
  const response = Packet.createResponseFromRequest(request);
  response.header.rcode = options.rcode ?? 0;
  (response.answers as unknown as Record[]).push(...(options.answers ?? []));
  if (options.soa !== undefined) {
    (response.authorities as unknown as Record[]).push({
      name: 'example.test', type: Packet.TYPE.SOA, class: 1, ttl: options.soa.ttl,
      primary: 'ns.example.test', admin: 'hostmaster.example.test', serial: 1, refresh: 1, retry: 1, expiration: 1, minimum: options.soa.minimum,
    });
  }
  return decodeMessage(response.toBuffer());
}

const a = (name: string, ttl: number, address: string): Record => ({ name, type: Packet.TYPE.A, class: 1, ttl, address });

/** What a client would read: the reply to a query for `name`, decoded by dns2. */
function read(name: string, type: number, answer: PreparedAnswer): { rcode: number; answers: Array<{ name: string; ttl: number; address?: string }>; authorities: Array<{ ttl: number }> } {
  const request = new Packet();
  request.header.id = 9;
  request.questions.push({ name, type, class: 1 } as never);
  const packet = request.toBuffer();
  const q = newQuery();
  parseQuery(packet, q);
  const reply = Packet.parse(writeReply(packet, q, answer, replyLimit(q, true)));
  return { rcode: reply.header.rcode, answers: reply.answers as never, authorities: reply.authorities as never };
}

function cacheWithClock(options: Partial<CacheOptions> = {}): { cache: AnswerCache; clock: { ms: number } } {
  const clock = { ms: 1_000_000 };
  const cache = new AnswerCache({ maxEntries: 100, maxTtl: 3600, maxNegativeTtl: 1800, serveStale: 0, prefetch: { amount: 2, fraction: 0.1 }, now: () => clock.ms, ...options });
  return { cache, clock };
}

const question = (name: string, qtype = 1) => ({ key: nameToKey(name), qtype, qclass: 1, dnssecOk: false, flags: 0 });

describe('AnswerCache', () => {
  it('keeps a positive answer for its smallest answer TTL, counting the TTLs down', () => {
    const { cache, clock } = cacheWithClock();
    const q = question('www.example.test');
    cache.store(q, upstreamReply('www.example.test', 1, { answers: [a('www.example.test', 300, '192.0.2.1'), a('www.example.test', 120, '192.0.2.2')] }));
    clock.ms += 30_500;
    const hit = cache.get(q);
    expect(read('www.example.test', 1, hit!.answer).answers.map((record) => record.ttl)).toEqual([90, 90]);
    clock.ms += 89_000;
    expect(read('www.example.test', 1, cache.get(q)!.answer).answers[0]!.ttl).toBe(1);
    clock.ms += 1_000;
    expect(cache.get(q)).toBeUndefined();
    expect(cache.stats()).toMatchObject({ requests: 3, misses: 1, hits: { success: 2 } });
  });

  it('caps the lifetime at --cache-max-ttl', () => {
    const { cache, clock } = cacheWithClock({ maxTtl: 60 });
    const q = question('www.example.test');
    cache.store(q, upstreamReply('www.example.test', 1, { answers: [a('www.example.test', 86400, '192.0.2.1')] }));
    expect(read('www.example.test', 1, cache.get(q)!.answer).answers[0]!.ttl).toBe(60);
    clock.ms += 60_000;
    expect(cache.get(q)).toBeUndefined();
  });

  it('keeps NXDOMAIN and NODATA for min(SOA TTL, SOA MINIMUM) under --cache-max-negative-ttl (RFC 2308 §5)', () => {
    const { cache, clock } = cacheWithClock({ maxNegativeTtl: 100 });
    const nx = question('gone.example.test');
    const nodata = question('www.example.test', 28);
    cache.store(nx, upstreamReply('gone.example.test', 1, { rcode: 3, soa: { ttl: 3600, minimum: 40 } }));
    cache.store(nodata, upstreamReply('www.example.test', 28, { soa: { ttl: 500, minimum: 900 } }));
    expect(cache.stats().entries.denial).toBe(2);
    const negative = read('gone.example.test', 1, cache.get(nx)!.answer);
    expect(negative.rcode).toBe(3);
    expect(negative.authorities[0]!.ttl).toBe(40);
    clock.ms += 40_000;
    expect(cache.get(nx)).toBeUndefined();
    // NODATA: min(500, 900) = 500, capped at 100.
    expect(cache.get(nodata)).toBeDefined();
    clock.ms += 60_000;
    expect(cache.get(nodata)).toBeUndefined();
    // Expired entries outside any serve-stale window are dropped when met.
    expect(cache.stats().entries.denial).toBe(0);
  });

  it('does not cache a negative answer without an SOA', () => {
    const { cache } = cacheWithClock();
    const q = question('gone.example.test');
    const answer = cache.store(q, upstreamReply('gone.example.test', 1, { rcode: 3 }));
    expect(read('gone.example.test', 1, answer).rcode).toBe(3);
    expect(cache.get(q)).toBeUndefined();
  });

  it('keeps SERVFAIL for 5 s, and never in place of a good answer', () => {
    const { cache, clock } = cacheWithClock({ serveStale: 3600 });
    const failing = question('broken.example.test');
    cache.store(failing, upstreamReply('broken.example.test', 1, { rcode: 2 }));
    expect(read('broken.example.test', 1, cache.get(failing)!.answer).rcode).toBe(2);
    clock.ms += 5_000;
    expect(cache.get(failing)).toBeUndefined();

    const good = question('www.example.test');
    cache.store(good, upstreamReply('www.example.test', 1, { answers: [a('www.example.test', 10, '192.0.2.1')] }));
    clock.ms += 11_000;
    // Expired, then the upstream fails: the SERVFAIL goes to the client but the good entry stays for serve-stale.
    expect(read('www.example.test', 1, cache.store(good, upstreamReply('www.example.test', 1, { rcode: 2 }))).rcode).toBe(2);
    expect(read('www.example.test', 1, cache.stale(good)!).answers[0]).toMatchObject({ address: '192.0.2.1', ttl: 30 });
  });

  it('serves stale only inside the --serve-stale window, and not at all when it is 0', () => {
    const { cache, clock } = cacheWithClock({ serveStale: 60 });
    const q = question('www.example.test');
    cache.store(q, upstreamReply('www.example.test', 1, { answers: [a('www.example.test', 10, '192.0.2.1')] }));
    expect(cache.stale(q)).toBeDefined();
    clock.ms += 70_000;
    expect(cache.stale(q)).toBeDefined();
    clock.ms += 1_000;
    expect(cache.stale(q)).toBeUndefined();
    expect(cache.stats().servedStale).toBe(2);

    const off = cacheWithClock({ serveStale: 0 });
    off.cache.store(q, upstreamReply('www.example.test', 1, { answers: [a('www.example.test', 10, '192.0.2.1')] }));
    off.clock.ms += 11_000;
    expect(off.cache.stale(q)).toBeUndefined();
  });

  it('says a stale answer is stale (RFC 8914 3, or 19 for NXDOMAIN), with its age, before why the upstreams failed', () => {
    const { cache, clock } = cacheWithClock({ serveStale: 60 });
    const q = question('www.example.test');
    const gone = question('gone.example.test');
    cache.store(q, upstreamReply('www.example.test', 1, { answers: [a('www.example.test', 10, '192.0.2.1')] }));
    cache.store(gone, upstreamReply('gone.example.test', 1, { rcode: 3, soa: { ttl: 10, minimum: 10 } }));
    clock.ms += 25_000;
    const why = encodeEde(22, 'upstream 192.0.2.53:53: no answer (timeout)');
    expect(decodeEde(cache.stale(q, why)!.ede!)).toEqual([[3, 'expired 15 s ago; the upstreams did not answer'], [22, 'upstream 192.0.2.53:53: no answer (timeout)']]);
    expect(decodeEde(cache.stale(gone)!.ede!)).toEqual([[19, 'expired 15 s ago; the upstreams did not answer']]);
  });

  it('asks for a prefetch once, for an entry asked again in the last 10% of its TTL', () => {
    const { cache, clock } = cacheWithClock();
    const q = question('www.example.test');
    cache.store(q, upstreamReply('www.example.test', 1, { answers: [a('www.example.test', 100, '192.0.2.1')] }));
    expect(cache.get(q)!.prefetch).toBe(false);
    clock.ms += 91_000;
    expect(cache.get(q)!.prefetch).toBe(true);
    expect(cache.get(q)!.prefetch).toBe(false);
    // The refetched answer replaces the entry with a full lifetime.
    cache.store(q, upstreamReply('www.example.test', 1, { answers: [a('www.example.test', 100, '192.0.2.9')] }));
    clock.ms += 50_000;
    expect(read('www.example.test', 1, cache.get(q)!.answer).answers[0]).toMatchObject({ address: '192.0.2.9', ttl: 50 });
    expect(cache.stats().prefetches).toBe(1);
  });

  it('holds at most --cache-size entries, dropping the least recently used', () => {
    const { cache } = cacheWithClock({ maxEntries: 2 });
    const names = ['one.example.test', 'two.example.test', 'three.example.test'];
    for (const name of names.slice(0, 2)) cache.store(question(name), upstreamReply(name, 1, { answers: [a(name, 60, '192.0.2.1')] }));
    cache.get(question('one.example.test'));
    cache.store(question('three.example.test'), upstreamReply('three.example.test', 1, { answers: [a('three.example.test', 60, '192.0.2.3')] }));
    expect(cache.get(question('two.example.test'))).toBeUndefined();
    expect(cache.get(question('one.example.test'))).toBeDefined();
    expect(cache.get(question('three.example.test'))).toBeDefined();
    expect(cache.stats().entries.success).toBe(2);
  });

  it('keys on the DO bit and the type: each is its own entry', () => {
    const { cache } = cacheWithClock();
    cache.store(question('www.example.test'), upstreamReply('www.example.test', 1, { answers: [a('www.example.test', 60, '192.0.2.1')] }));
    expect(cache.get({ ...question('www.example.test'), dnssecOk: true })).toBeUndefined();
    expect(cache.get(question('www.example.test', 28))).toBeUndefined();
    expect(cache.get(question('WWW.Example.Test'))).toBeDefined();
  });

  it('keys on the CD bit: an answer fetched with checking disabled is never served to a CD=0 client', () => {
    const { cache } = cacheWithClock();
    const checkingDisabled = { ...question('bogus.example.test'), flags: HeaderFlag.CD | HeaderFlag.RD };
    cache.store(checkingDisabled, upstreamReply('bogus.example.test', 1, { answers: [a('bogus.example.test', 60, '192.0.2.66')] }));
    expect(cache.get({ ...question('bogus.example.test'), flags: HeaderFlag.RD })).toBeUndefined();
    expect(cache.get(checkingDisabled)).toBeDefined();
  });
});
