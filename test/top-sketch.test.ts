/**
 * The failure top-k (src/telemetry/top.ts) as a unit: the space-saving sketch's counts and error bounds, memory that
 * stays at its bound under a million distinct names while the true heavy hitters are still found, and the sliding
 * window stepped with an injected clock (no sleeping).
 */
import { describe, expect, it } from 'vitest';
import { FailureTop, presentName, SpaceSaving, type TopOptions } from '../src/telemetry/top.js';
import { nameToKey, Rcode, rcodeName } from '../src/wire/index.js';

const entries = (sketch: SpaceSaving): Array<[string, number, number]> => {
  const out: Array<[string, number, number]> = [];
  sketch.forEach((key, count, error) => out.push([key, count, error]));
  return out.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
};

describe('SpaceSaving', () => {
  it('counts exactly while it has a counter for every key', () => {
    const sketch = new SpaceSaving(4);
    for (const key of ['a', 'b', 'a', 'c', 'a', 'b']) sketch.add(key);
    expect(entries(sketch)).toEqual([['a', 3, 0], ['b', 2, 0], ['c', 1, 0]]);
    expect(sketch.floor).toBe(0);
  });

  it('a newcomer takes over the smallest counter and inherits its count as its error', () => {
    const sketch = new SpaceSaving(2);
    for (const key of ['a', 'a', 'b', 'c']) sketch.add(key);
    // b (count 1) was the smallest: c now holds 2, of which 1 may be b's.
    expect(entries(sketch)).toEqual([['a', 2, 0], ['c', 2, 1]]);
    expect(sketch.has('b')).toBe(false);
    expect(sketch.floor).toBe(2);
    sketch.add('d');
    // a and c tie at 2; whichever went, d holds 3 with error 2, and the sketch still has two keys.
    expect(sketch.size).toBe(2);
    expect(entries(sketch).find(([key]) => key === 'd')).toEqual(['d', 3, 2]);
  });

  it('a weighted add counts as that many adds, and a heavy newcomer still leaves the smallest counter at the top', () => {
    const sketch = new SpaceSaving(3);
    sketch.add('a', 5);
    sketch.add('b');
    sketch.add('c', 3);
    // Full now; b (1) is the smallest, so d takes its counter: 1 + 1, of which 1 may be b's.
    sketch.add('d');
    expect(entries(sketch)).toEqual([['a', 5, 0], ['c', 3, 0], ['d', 2, 1]]);
    expect(sketch.floor).toBe(2);
    sketch.add('a', 2);
    expect(entries(sketch)).toEqual([['a', 7, 0], ['c', 3, 0], ['d', 2, 1]]);
  });

  it('clear() empties it for the next interval', () => {
    const sketch = new SpaceSaving(2);
    for (const key of ['a', 'b', 'c']) sketch.add(key);
    sketch.clear();
    expect(sketch.size).toBe(0);
    expect(entries(sketch)).toEqual([]);
    sketch.add('z');
    expect(entries(sketch)).toEqual([['z', 1, 0]]);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new SpaceSaving(0)).toThrow(/capacity must be a positive integer/);
    expect(() => new SpaceSaving(2.5)).toThrow(/capacity must be a positive integer/);
  });
});

/** A clock the test steps. */
function clock(start = 1_700_000_000_000): { now: () => number; step: (ms: number) => void } {
  let t = start;
  return { now: () => t, step: (ms) => (t += ms) };
}

/** A deterministic random source (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const key = (name: string): string => nameToKey(name);

describe('FailureTop: memory constant whatever the traffic', () => {
  it('a million distinct random names: the sketch stays at its bound and the true heavy hitters are found', () => {
    const capacity = 256;
    const staged = 2048;
    const options: TopOptions = { capacity, intervalMs: 30_000, intervals: 10, staged, now: clock().now };
    const top = new FailureTop(options);
    const next = random(42);
    // Five names a misconfigured search path asks for, from one pod, 20,000 times each, amid a million names
    // that each fail once, from random clients: the heavy ones are above total/capacity (about 4,300).
    const heavy = ['cart.default.svc.cluster.local.', 'cart.svc.cluster.local.', 'cart.cluster.local.', 'redis.default.svc.cluster.local.', 'api.example.com.'];
    const heavyKeys = heavy.map(key);
    const heavyClient = '10.244.1.5';
    const distinct = 1_000_000;
    const perHeavy = 20_000;
    const every = distinct / perHeavy;
    let sent = 0;
    let largest = 0;
    for (let i = 0; i < distinct; i++) {
      const label = Math.floor(next() * 2 ** 52).toString(36);
      const client = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      top.record(key(`${label}.default.svc.cluster.local.`), Rcode.NXDOMAIN, client);
      sent++;
      if (i % every === 0) {
        for (const heavyKey of heavyKeys) top.record(heavyKey, Rcode.NXDOMAIN, heavyClient);
        sent += heavy.length;
      }
      if (i % 997 === 0) largest = Math.max(largest, top.size);
    }
    largest = Math.max(largest, top.size);
    // Three tables (names, clients, pairs) in one interval, and the staged failures: at most 3 x capacity + staged
    // keys; once a read has folded what was staged, the sketches' counters are all used.
    expect(largest).toBeLessThanOrEqual(3 * capacity + staged);
    expect(largest).toBeGreaterThan(3 * capacity);

    const report = top.report(5);
    expect(top.size).toBe(3 * capacity);
    expect(report.failures).toBe(sent);
    expect(report.names.map((row) => row.name).sort()).toEqual([...heavy].sort());
    for (const row of report.names) {
      expect(row.rcode).toBe('NXDOMAIN');
      // Space-saving never counts low: the true 20,000 lies within the error below the count.
      expect(row.count).toBeGreaterThanOrEqual(perHeavy);
      expect(row.count - row.error).toBeLessThanOrEqual(perHeavy);
    }
    expect(report.clients[0]).toMatchObject({ client: heavyClient });
    expect(report.clients[0]!.count).toBeGreaterThanOrEqual(perHeavy * heavy.length);
    expect(report.pairs.map((row) => `${row.client} ${row.name}`).sort()).toEqual(heavy.map((name) => `${heavyClient} ${name}`).sort());
  });
});

describe('FailureTop: the sliding window, stepped with an injected clock', () => {
  const make = (): { top: FailureTop; time: ReturnType<typeof clock> } => {
    // Start on an interval boundary, so the test's steps land where it says.
    const time = clock(1_700_000_010_000);
    return { top: new FailureTop({ capacity: 8, intervalMs: 10_000, intervals: 3, staged: 4, now: time.now }), time };
  };

  it('counts only NXDOMAIN and SERVFAIL, each its own row, and sums a name over the intervals', () => {
    const { top, time } = make();
    top.record(key('gone.default.svc.cluster.local.'), Rcode.NXDOMAIN, '10.0.0.1');
    top.record(key('gone.default.svc.cluster.local.'), Rcode.NOERROR, '10.0.0.1');
    top.record(key('gone.default.svc.cluster.local.'), Rcode.REFUSED, '10.0.0.1');
    time.step(10_000);
    top.record(key('gone.default.svc.cluster.local.'), Rcode.NXDOMAIN, '10.0.0.2');
    top.record(key('slow.example.com.'), Rcode.SERVFAIL, '10.0.0.2');
    const report = top.report();
    expect(report.failures).toBe(3);
    expect(report.names).toEqual([
      { name: 'gone.default.svc.cluster.local.', rcode: 'NXDOMAIN', count: 2, error: 0 },
      { name: 'slow.example.com.', rcode: 'SERVFAIL', count: 1, error: 0 },
    ]);
    expect(report.clients).toEqual([{ client: '10.0.0.2', count: 2, error: 0 }, { client: '10.0.0.1', count: 1, error: 0 }]);
    expect(report.pairs).toEqual([
      { client: '10.0.0.1', name: 'gone.default.svc.cluster.local.', rcode: 'NXDOMAIN', count: 1, error: 0 },
      { client: '10.0.0.2', name: 'gone.default.svc.cluster.local.', rcode: 'NXDOMAIN', count: 1, error: 0 },
      { client: '10.0.0.2', name: 'slow.example.com.', rcode: 'SERVFAIL', count: 1, error: 0 },
    ]);
    expect(report.window).toEqual({ seconds: 30, intervalSeconds: 10, since: new Date(1_700_000_010_000).toISOString() });
  });

  it('an IPv6 client and a name with a space in a label: the pair splits where the client ends', () => {
    const { top } = make();
    const spaced = '\x05a b c\x07example\x00';
    top.record(spaced, Rcode.NXDOMAIN, 'fd00::1');
    expect(top.report().pairs).toEqual([{ client: 'fd00::1', name: 'a\\032b\\032c.example.', rcode: 'NXDOMAIN', count: 1, error: 0 }]);
  });

  it('an interval leaves the window once the clock is past it, and its slot is reused', () => {
    const { top, time } = make();
    top.record(key('old.default.svc.cluster.local.'), Rcode.NXDOMAIN, '10.0.0.1');
    time.step(20_000);
    top.record(key('new.default.svc.cluster.local.'), Rcode.NXDOMAIN, '10.0.0.1');
    expect(top.report().names.map((row) => row.name)).toEqual(['new.default.svc.cluster.local.', 'old.default.svc.cluster.local.']);
    // 30 s after the first: its interval is out of the 3-interval window, read or written.
    time.step(10_000);
    expect(top.report().names.map((row) => row.name)).toEqual(['new.default.svc.cluster.local.']);
    expect(top.report().failures).toBe(1);
    top.record(key('newer.default.svc.cluster.local.'), Rcode.NXDOMAIN, '10.0.0.1');
    expect(top.report().names.map((row) => row.name)).toEqual(['new.default.svc.cluster.local.', 'newer.default.svc.cluster.local.']);
    // Long quiet: everything gone, and the window starts now.
    time.step(3_600_000);
    expect(top.report()).toMatchObject({ failures: 0, names: [], clients: [], pairs: [], window: { since: new Date(time.now()).toISOString() } });
  });

  it('a name an interval\'s full sketch lost has that sketch\'s floor in its error', () => {
    const { top, time } = make();
    const hot = key('hot.example.com.');
    for (let i = 0; i < 5; i++) top.record(hot, Rcode.NXDOMAIN, '10.0.0.1');
    time.step(10_000);
    // The next interval: more distinct names than counters, and hot only once, early, so it is pushed out.
    top.record(hot, Rcode.NXDOMAIN, '10.0.0.1');
    for (let i = 0; i < 20; i++) top.record(key(`n${i}.example.com.`), Rcode.NXDOMAIN, '10.0.0.1');
    const row = top.report().names.find((entry) => entry.name === 'hot.example.com.')!;
    // 5 from the first interval; the second holds it no more, and its floor says how much it may have missed.
    expect(row.count).toBe(5);
    expect(row.error).toBeGreaterThanOrEqual(1);
    expect(row.count + row.error).toBeGreaterThanOrEqual(6);
  });
});

describe('FailureTop: staged counts', () => {
  it('every failure counted before a fold, across folds and interval ends, is in the report exactly', () => {
    const time = clock(1_700_000_010_000);
    // Room in the sketches for every key (8 names x 2 rcodes x 3 clients = 48 pairs), and folds every 3 distinct.
    const top = new FailureTop({ capacity: 64, intervalMs: 10_000, intervals: 3, staged: 3, now: time.now });
    const next = random(7);
    const names = new Map<string, number>();
    const clients = new Map<string, number>();
    const pairs = new Map<string, number>();
    const bump = (table: Map<string, number>, at: string): void => void table.set(at, (table.get(at) ?? 0) + 1);
    for (let i = 0; i < 600; i++) {
      if (i === 200 || i === 400) time.step(10_000);
      const name = `n${Math.floor(next() * 8)}.example.com.`;
      const rcode = next() < 0.5 ? Rcode.NXDOMAIN : Rcode.SERVFAIL;
      const client = `10.0.0.${1 + Math.floor(next() * 3)}`;
      top.record(key(name), rcode, client);
      bump(names, `${rcodeName(rcode)} ${name}`);
      bump(clients, client);
      bump(pairs, `${client} ${rcodeName(rcode)} ${name}`);
    }
    const report = top.report(100);
    expect(report.failures).toBe(600);
    expect(new Map(report.names.map((row) => [`${row.rcode} ${row.name}`, row.count]))).toEqual(names);
    expect(new Map(report.clients.map((row) => [row.client, row.count]))).toEqual(clients);
    expect(new Map(report.pairs.map((row) => [`${row.client} ${row.rcode} ${row.name}`, row.count]))).toEqual(pairs);
    expect([...report.names, ...report.clients, ...report.pairs].every((row) => row.error === 0)).toBe(true);
  });

  it('refuses a staged bound that is not a positive integer', () => {
    expect(() => new FailureTop({ capacity: 8, intervalMs: 1000, intervals: 1, staged: 0, now: Date.now })).toThrow(/staged must be a positive integer/);
  });
});

describe('presentName', () => {
  it.each([
    ['web.default.svc.cluster.local.', 'web.default.svc.cluster.local.'],
    ['.', '.'],
  ])('%s', (name, shown) => expect(presentName(nameToKey(name))).toBe(shown));

  it('a dot or backslash inside a label is escaped', () => {
    expect(presentName('\x03a.b\x03c\\d\x07example\x00')).toBe('a\\.b.c\\\\d.example.');
  });

  it('bytes a terminal would act on are shown as \\DDD', () => {
    // ESC [2J (clear screen), a space and a byte above ASCII in one label.
    const label = '\x1b[2J x\xff';
    const wire = String.fromCharCode(label.length) + label + '\x07example\x00';
    expect(presentName(wire)).toBe('\\027[2J\\032x\\255.example.');
  });
});
