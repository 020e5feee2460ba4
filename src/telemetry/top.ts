/**
 * Which names fail, and who asks: bounded heavy-hitter counts of the names answered NXDOMAIN or SERVFAIL, of the
 * client addresses they were answered to, and of the (client, name) pairs, over a sliding window. CoreDNS keeps
 * no per-name metrics (label cardinality, coredns/coredns#7196); this keeps a fixed number of counters instead,
 * whatever the traffic, and serves them on /debug/top (http.ts), which `clusterdns top` reads.
 *
 * Each count is a space-saving sketch (Metwally, Agrawal, El Abbadi, "Efficient computation of frequent and top-k
 * elements in data streams", 2005): `capacity` counters; an unseen key takes over the smallest counter and
 * inherits its count as its possible error. Every key seen more than total/capacity times holds a counter, and no
 * count is low. The window is a ring of per-interval sketches, chosen by the clock's interval number, so nothing
 * runs on a timer: an interval's sketch is cleared when the clock first reaches it again, and a read merges the
 * intervals still inside the window.
 *
 * A failure is first counted exactly in a small table of the current interval (rcode → client → name → count), and
 * that table goes into the interval's sketches, as weighted adds, when it fills, when the interval ends or when a
 * report is read. Counting into the sketches directly cost 0.9 µs a failure when more names fail than the sketch
 * holds (every add evicts), with two string concatenations and their hashing each time: a tenth of the whole
 * server's throughput on bench/run.sh's NXDOMAIN mix. The table costs two Map lookups of strings already hashed
 * and makes no string; the keys the sketches need are built once per distinct (client, name) per fold.
 *
 * Owns no socket and reads no part: the answerer calls record() for failures only (one comparison decides that on
 * the hot path), and the HTTP endpoint calls report().
 */
import { Rcode, rcodeName } from '../wire/index.js';

/**
 * A fixed-size space-saving sketch. Counters sit in typed arrays with a min-heap of counter slots over them, so
 * an add is one Map lookup and at most log2(capacity) swaps, and memory is `capacity` keys however many are seen.
 */
export class SpaceSaving {
  private readonly keys: Array<string | undefined>;
  private readonly counts: Float64Array;
  private readonly errors: Float64Array;
  /** heap[i]: a slot; the slot with the smallest count is heap[0]. */
  private readonly heap: Int32Array;
  /** position[slot]: where that slot is in heap. */
  private readonly position: Int32Array;
  private readonly slots = new Map<string, number>();
  private used = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, not ${capacity}`);
    this.keys = new Array<string | undefined>(capacity).fill(undefined);
    this.counts = new Float64Array(capacity);
    this.errors = new Float64Array(capacity);
    this.heap = new Int32Array(capacity);
    this.position = new Int32Array(capacity);
  }

  /** Keys holding a counter: never more than capacity. */
  get size(): number {
    return this.slots.size;
  }

  /** The smallest count held once every counter is taken (what a key missing from the sketch may have had); else 0. */
  get floor(): number {
    return this.used < this.capacity ? 0 : this.counts[this.heap[0]!]!;
  }

  /** `weight` occurrences of `key` at once (weighted space-saving: the same bounds, in occurrences). */
  add(key: string, weight = 1): void {
    let slot = this.slots.get(key);
    let fresh = false;
    if (slot === undefined) {
      if (this.used < this.capacity) {
        slot = this.used;
        this.heap[slot] = slot;
        this.position[slot] = slot;
        this.used++;
        this.counts[slot] = 0;
        this.errors[slot] = 0;
        fresh = true;
      } else {
        // The smallest counter changes hands: its count stays as the newcomer's possible overcount.
        slot = this.heap[0]!;
        this.slots.delete(this.keys[slot]!);
        this.errors[slot] = this.counts[slot]!;
      }
      this.keys[slot] = key;
      this.slots.set(key, slot);
    }
    this.counts[slot]! += weight;
    if (fresh) this.rise(this.position[slot]!);
    else this.sink(this.position[slot]!);
  }

  has(key: string): boolean {
    return this.slots.has(key);
  }

  /** Every held key with its count and possible overcount. */
  forEach(visit: (key: string, count: number, error: number) => void): void {
    for (let slot = 0; slot < this.used; slot++) visit(this.keys[slot]!, this.counts[slot]!, this.errors[slot]!);
  }

  clear(): void {
    this.slots.clear();
    this.keys.fill(undefined, 0, this.used);
    this.used = 0;
  }

  /** A new counter at the heap's end moves up past every larger parent. */
  private rise(at: number): void {
    const { heap, counts, position } = this;
    const slot = heap[at]!;
    const count = counts[slot]!;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (counts[heap[parent]!]! <= count) break;
      heap[at] = heap[parent]!;
      position[heap[at]!] = at;
      at = parent;
    }
    heap[at] = slot;
    position[slot] = at;
  }

  /** A count only grows: the slot at heap position `at` moves down past every smaller child. */
  private sink(at: number): void {
    const { heap, counts, position } = this;
    const slot = heap[at]!;
    const count = counts[slot]!;
    for (;;) {
      const left = 2 * at + 1;
      if (left >= this.used) break;
      const right = left + 1;
      const child = right < this.used && counts[heap[right]!]! < counts[heap[left]!]! ? right : left;
      if (counts[heap[child]!]! >= count) break;
      heap[at] = heap[child]!;
      position[heap[at]!] = at;
      at = child;
    }
    heap[at] = slot;
    position[slot] = at;
  }
}

export interface TopOptions {
  /** Counters per sketch and interval. */
  readonly capacity: number;
  readonly intervalMs: number;
  /** Intervals in the window. */
  readonly intervals: number;
  /** Distinct (rcode, client, name) counted exactly before they go into the sketches. */
  readonly staged: number;
  /** Milliseconds; Date.now in production, a stepped clock in tests. */
  readonly now: () => number;
}

/**
 * 256 counters × 10 intervals of 30 s: the last five minutes in at most 7,680 keys, and 2,048 staged (2.5 MB of
 * heap for 253-byte names). 2,048 staged holds the distinct failures of a busy cluster's interval (bench/run.sh's
 * mix has 1,300), so the sketches see each once per fold.
 */
export const TOP_DEFAULTS: Omit<TopOptions, 'now'> = Object.freeze({ capacity: 256, intervalMs: 30_000, intervals: 10, staged: 2048 });
/** Rows per table in a report: what a person reads; the sketch keeps more so that these are right. */
export const TOP_ROWS = 20;

export interface TopName {
  /** Presentation form, absolute; bytes outside printable ASCII as \DDD (RFC 1035 §5.1). */
  readonly name: string;
  readonly rcode: string;
  /** Failures in the window, as counted: the true number is within `error` of it (0: exact). */
  readonly count: number;
  readonly error: number;
}

export interface TopClient {
  readonly client: string;
  readonly count: number;
  readonly error: number;
}

export type TopPair = TopName & TopClient;

export interface TopReport {
  /** The window the counts cover: from `since` (ISO time) to now. */
  readonly window: { readonly seconds: number; readonly intervalSeconds: number; readonly since: string };
  /** Counters each table keeps per interval. */
  readonly capacity: number;
  /** NXDOMAIN and SERVFAIL answers in the window (exact). */
  readonly failures: number;
  readonly names: readonly TopName[];
  readonly clients: readonly TopClient[];
  readonly pairs: readonly TopPair[];
}

/** One interval of the ring. */
interface Interval {
  /** The clock's interval number it holds (-1: none yet). */
  epoch: number;
  failures: number;
  readonly names: SpaceSaving;
  readonly clients: SpaceSaving;
  readonly pairs: SpaceSaving;
}

/** Separates the client from the name in a pair key: no IP address text holds it. */
const PAIR_SEPARATOR = ' ';
/** The rcodes counted, in the order of FailureTop's staged tables. */
const STAGED_RCODES = [Rcode.NXDOMAIN, Rcode.SERVFAIL] as const;

export class FailureTop {
  private readonly ring: Interval[];
  private readonly options: TopOptions;
  /** Per STAGED_RCODES: client → wire key → failures, for the interval `stagedEpoch`. */
  private readonly staged = STAGED_RCODES.map(() => new Map<string, Map<string, number>>());
  private stagedSize = 0;
  private stagedEpoch = -1;

  constructor(options: TopOptions) {
    if (!Number.isInteger(options.intervals) || options.intervals < 1) throw new RangeError(`intervals must be a positive integer, not ${options.intervals}`);
    if (!(options.intervalMs > 0)) throw new RangeError(`intervalMs must be positive, not ${options.intervalMs}`);
    if (!Number.isInteger(options.staged) || options.staged < 1) throw new RangeError(`staged must be a positive integer, not ${options.staged}`);
    this.options = options;
    this.ring = Array.from({ length: options.intervals }, () => ({
      epoch: -1,
      failures: 0,
      names: new SpaceSaving(options.capacity),
      clients: new SpaceSaving(options.capacity),
      pairs: new SpaceSaving(options.capacity),
    }));
  }

  /**
   * One NXDOMAIN or SERVFAIL answer (other rcodes are ignored). `key` is the question's wire key (wire/names.ts),
   * kept as is: turning it into text waits for a read. Bounded work: two Map lookups, and a fold of the staged
   * counts once in `staged` distinct failures.
   */
  record(key: string, rcode: number, client: string): void {
    if (rcode !== Rcode.NXDOMAIN && rcode !== Rcode.SERVFAIL) return;
    const epoch = Math.floor(this.options.now() / this.options.intervalMs);
    if (epoch !== this.stagedEpoch || this.stagedSize >= this.options.staged) {
      this.fold();
      this.stagedEpoch = epoch;
    }
    const byClient = this.staged[rcode === Rcode.NXDOMAIN ? 0 : 1]!;
    let names = byClient.get(client);
    if (names === undefined) byClient.set(client, (names = new Map()));
    const count = names.get(key);
    if (count === undefined) {
      names.set(key, 1);
      this.stagedSize++;
    } else names.set(key, count + 1);
  }

  /** The staged counts into the sketches of the interval they were counted in. */
  private fold(): void {
    if (this.stagedSize === 0) return;
    const interval = this.ring[this.stagedEpoch % this.ring.length]!;
    if (interval.epoch !== this.stagedEpoch) {
      interval.epoch = this.stagedEpoch;
      interval.failures = 0;
      interval.names.clear();
      interval.clients.clear();
      interval.pairs.clear();
    }
    STAGED_RCODES.forEach((rcode, at) => {
      const byClient = this.staged[at]!;
      for (const [client, names] of byClient) {
        let clientTotal = 0;
        for (const [key, count] of names) {
          // The rcode rides in front of the key as one character: a name can fail both ways, and each way is its own row.
          const name = String.fromCharCode(rcode) + key;
          interval.names.add(name, count);
          interval.pairs.add(client + PAIR_SEPARATOR + name, count);
          clientTotal += count;
        }
        interval.clients.add(client, clientTotal);
        interval.failures += clientTotal;
      }
      byClient.clear();
    });
    this.stagedSize = 0;
  }

  /** Keys held, over every interval and table and staged: bounded by 3 × intervals × capacity + staged. */
  get size(): number {
    return this.ring.reduce((sum, interval) => sum + interval.names.size + interval.clients.size + interval.pairs.size, this.stagedSize);
  }

  /** The top `rows` of each table over the intervals inside the window now. */
  report(rows = TOP_ROWS): TopReport {
    this.fold();
    const { intervalMs, intervals, capacity } = this.options;
    const current = Math.floor(this.options.now() / intervalMs);
    const live = this.ring.filter((interval) => interval.epoch > current - intervals && interval.epoch <= current);
    const oldest = Math.min(current, ...live.map((interval) => interval.epoch));
    const names = largest(merged(live, (interval) => interval.names).map(({ key, count, error }) => ({ ...nameOf(key), count, error })), rows);
    const clients = largest(merged(live, (interval) => interval.clients).map(({ key, count, error }) => ({ client: key, count, error })), rows);
    const pairs = largest(merged(live, (interval) => interval.pairs).map(({ key, count, error }) => {
      const at = key.indexOf(PAIR_SEPARATOR);
      return { client: key.slice(0, at), ...nameOf(key.slice(at + 1)), count, error };
    }), rows);
    return {
      window: { seconds: (intervals * intervalMs) / 1000, intervalSeconds: intervalMs / 1000, since: new Date(oldest * intervalMs).toISOString() },
      capacity,
      failures: live.reduce((sum, interval) => sum + interval.failures, 0),
      names,
      clients,
      pairs,
    };
  }
}

/** The `rows` largest counts; equal counts in the order a person looks them up (client, then name, then rcode). */
function largest<Row extends { count: number; client?: string; name?: string; rcode?: string }>(all: Row[], rows: number): Row[] {
  const text = (row: Row): string => `${row.client ?? ''} ${row.name ?? ''} ${row.rcode ?? ''}`;
  return all.sort((a, b) => b.count - a.count || (text(a) < text(b) ? -1 : text(a) > text(b) ? 1 : 0)).slice(0, rows);
}

/**
 * One table's counters summed over the intervals. A key that an interval's full sketch does not hold
 * may have had up to that sketch's floor there: those floors join the key's error, so what it really had stays
 * within `error` of `count` (space-saving's own counts can only be high, a missed interval's only low).
 */
function merged(intervals: readonly Interval[], table: (interval: Interval) => SpaceSaving): Array<{ key: string; count: number; error: number }> {
  const sums = new Map<string, { key: string; count: number; error: number }>();
  for (const interval of intervals) {
    table(interval).forEach((key, count, error) => {
      const sum = sums.get(key);
      if (sum === undefined) sums.set(key, { key, count, error });
      else {
        sum.count += count;
        sum.error += error;
      }
    });
  }
  const full = intervals.map(table).filter((sketch) => sketch.floor > 0);
  for (const sum of sums.values()) {
    for (const sketch of full) if (!sketch.has(sum.key)) sum.error += sketch.floor;
  }
  return [...sums.values()];
}

/** A recorded name key (rcode character, then the wire key) as its rcode and presentation text. */
function nameOf(key: string): { name: string; rcode: string } {
  return { name: presentName(key.slice(1)), rcode: rcodeName(key.charCodeAt(0)) };
}

/**
 * A wire key as text for a person and a terminal: labels joined by dots, a dot or backslash inside a label escaped,
 * and every byte outside printable ASCII as \DDD, so a hostile name cannot move a terminal's cursor.
 */
export function presentName(key: string): string {
  if (key.charCodeAt(0) === 0) return '.';
  let text = '';
  for (let i = 0; i < key.length && key.charCodeAt(i) !== 0; ) {
    const length = key.charCodeAt(i);
    for (let j = i + 1; j <= i + length && j < key.length; j++) {
      const code = key.charCodeAt(j);
      if (code === 0x2e || code === 0x5c) text += `\\${key[j]}`;
      else if (code <= 0x20 || code >= 0x7f) text += `\\${String(code).padStart(3, '0')}`;
      else text += key[j];
    }
    text += '.';
    i += length + 1;
  }
  return text;
}

/**
 * Several threads' reports as one (each worker thread counts the queries it answered): counts and errors summed
 * per row. A row that one thread's top `rows` leave out is missing from that thread's sum, so a merged count can
 * be low by at most that thread's smallest listed count; rows that matter (a name failing far more than the rest)
 * are in every thread's top. `first` gives the window.
 */
export function mergeReports(first: TopReport, others: readonly TopReport[], rows = TOP_ROWS): TopReport {
  if (others.length === 0) return first;
  const all = [first, ...others];
  const sum = <Row extends { count: number; error: number }>(pick: (report: TopReport) => readonly Row[], key: (row: Row) => string): Row[] => {
    const sums = new Map<string, Row>();
    for (const report of all) {
      for (const row of pick(report)) {
        const have = sums.get(key(row));
        sums.set(key(row), have === undefined ? { ...row } : { ...have, count: have.count + row.count, error: have.error + row.error });
      }
    }
    return largest([...sums.values()], rows);
  };
  return {
    window: first.window,
    capacity: first.capacity,
    failures: all.reduce((total, report) => total + report.failures, 0),
    names: sum((report) => report.names, (row) => `${row.rcode} ${row.name}`),
    clients: sum((report) => report.clients, (row) => row.client),
    pairs: sum((report) => report.pairs, (row) => `${row.client} ${row.rcode} ${row.name}`),
  };
}
