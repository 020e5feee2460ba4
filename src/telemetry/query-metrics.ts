/**
 * The per-query metrics, with CoreDNS's names, labels and buckets so existing dashboards keep working:
 *
 *   coredns_dns_requests_total{server,zone,view,proto,family,type}
 *   coredns_dns_responses_total{server,zone,view,rcode,plugin}
 *   coredns_dns_request_duration_seconds{server,zone,view,type}      (histogram)
 *   coredns_dns_request_size_bytes{server,zone,view,proto}           (histogram)
 *   coredns_dns_response_size_bytes{server,zone,view,proto}          (histogram)
 *
 * Why not prom-client's own Counter/Histogram here: their `labels(...).inc()` hashes the label set on every
 * call, which costs more than answering a cluster-zone query. So the query path only bumps slots in typed
 * arrays (`observe`), and these collectors turn the arrays into Prometheus series when /metrics is scraped.
 * A series is counted per slot: one listen address and one zone of the server blocks it serves (`zone` is the
 * block's zone that answered, "." for kubeadm's single block `.:53` and for queries no block takes); `view` is
 * empty. Slots are added as listeners and zones appear (a reloaded Corefile may add both); they are never reused.
 */
import type { Registry } from 'prom-client';
import { rcodeName } from '../wire/index.js';

/** The types CoreDNS counts by name; every other type is "other". */
const MONITORED_TYPES = ['A', 'AAAA', 'MX', 'SOA', 'CNAME', 'PTR', 'TXT', 'NS', 'SRV', 'DS', 'DNSKEY', 'RRSIG', 'NSEC', 'NSEC3', 'HINFO', 'NAPTR', 'IXFR', 'AXFR', 'ANY'] as const;
const TYPE_CODES = [1, 28, 15, 6, 5, 12, 16, 2, 33, 43, 48, 46, 47, 50, 13, 35, 251, 252, 255];
const TYPE_LABELS = [...MONITORED_TYPES, 'other'];
const OTHER_TYPE = TYPE_LABELS.length - 1;
const typeIndex = new Uint8Array(256).fill(OTHER_TYPE);
TYPE_CODES.forEach((code, i) => (typeIndex[code] = i));

/** CoreDNS's plugin.TimeBuckets: 0.25 ms doubling 16 times. */
const DURATION_BUCKETS = Array.from({ length: 16 }, (_, i) => 0.00025 * 2 ** i);
/** CoreDNS's plugin.SizeBuckets. */
const SIZE_BUCKETS = [0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16e3, 32e3, 48e3, 64e3];
const RCODES = 24;
const PROTOS = ['udp', 'tcp'] as const;


export interface Listener {
  /** `dns://:53`, as CoreDNS names a server. */
  readonly server: string;
  /** CoreDNS's family label: 1 for IPv4, 2 for IPv6. */
  readonly family: 1 | 2;
}

class Histogram {
  counts: Float64Array;
  sums: Float64Array;

  constructor(public series: number, readonly buckets: readonly number[]) {
    this.counts = new Float64Array(series * (buckets.length + 1));
    this.sums = new Float64Array(series);
  }

  /** Room for `series` series, the counts so far kept. */
  grow(series: number): void {
    this.counts = grown(this.counts, series * (this.buckets.length + 1));
    this.sums = grown(this.sums, series);
    this.series = series;
  }

  observe(series: number, value: number): void {
    const buckets = this.buckets;
    let i = 0;
    while (i < buckets.length && value > buckets[i]!) i++;
    this.counts[series * (buckets.length + 1) + i]!++;
    this.sums[series]! += value;
  }

  /** Prometheus values (cumulative buckets, +Inf, sum, count) for every series that has seen something. */
  values(name: string, labelsOf: (series: number) => Record<string, string>): Array<{ metricName: string; labels: Record<string, string | number>; value: number }> {
    const out: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
    const width = this.buckets.length + 1;
    for (let series = 0; series < this.series; series++) {
      let total = 0;
      for (let i = 0; i < width; i++) total += this.counts[series * width + i]!;
      if (total === 0) continue;
      const labels = labelsOf(series);
      let cumulative = 0;
      for (let i = 0; i < width; i++) {
        cumulative += this.counts[series * width + i]!;
        out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: i < this.buckets.length ? this.buckets[i]! : '+Inf' }, value: cumulative });
      }
      out.push({ metricName: `${name}_sum`, labels, value: this.sums[series]! });
      out.push({ metricName: `${name}_count`, labels, value: total });
    }
    return out;
  }
}

/** A copy of `array` with room for `length` values. */
function grown(array: Float64Array, length: number): Float64Array {
  const copy = new Float64Array(length);
  copy.set(array);
  return copy;
}

/** Slots per (listen address, zone), and their labels. */
interface Slot {
  readonly listener: number;
  readonly zone: string;
}

export class QueryMetrics {
  private requests: Float64Array;
  private responses: Float64Array;
  private readonly duration: Histogram;
  private readonly requestSize: Histogram;
  private readonly responseSize: Histogram;

  /** Labels of each listen address by index; set again once the server has bound (port 0 becomes a real port). */
  private readonly listeners: Listener[] = [];
  private readonly slots: Slot[] = [];
  private readonly slotIndexes = new Map<string, number>();
  private capacity = 0;
  /** The `plugin` label values: '' (the server itself wrote the response), then each plugin's own name. */
  private readonly plugins: readonly string[];
  private readonly pluginIndexes: ReadonlyMap<string, number>;

  /** `plugins`: the names of the plugins that may write responses, as each names itself. */
  constructor(listeners: readonly Listener[], plugins: readonly string[]) {
    this.plugins = ['', ...new Set(plugins.filter((name) => name !== ''))];
    this.pluginIndexes = new Map(this.plugins.map((name, index) => [name, index]));
    this.requests = new Float64Array(0);
    this.responses = new Float64Array(0);
    this.duration = new Histogram(0, DURATION_BUCKETS);
    this.requestSize = new Histogram(0, SIZE_BUCKETS);
    this.responseSize = new Histogram(0, SIZE_BUCKETS);
    listeners.forEach((labels, index) => this.describeListener(index, labels));
  }

  /** Sets (or replaces) the labels of listen address `index`: its bound port, or a listener a reload added. */
  describeListener(index: number, labels: Listener): void {
    this.listeners[index] = labels;
  }

  /** The metrics slot of queries to listener `listener` answered by the block of `zone` (`.`, `corp.example.`). */
  slot(listener: number, zone: string): number {
    const key = `${listener}\0${zone}`;
    let slot = this.slotIndexes.get(key);
    if (slot !== undefined) return slot;
    slot = this.slots.length;
    this.slots.push({ listener, zone });
    this.slotIndexes.set(key, slot);
    if (slot >= this.capacity) this.grow(Math.max(4, this.capacity * 2));
    return slot;
  }

  private grow(capacity: number): void {
    this.capacity = capacity;
    this.requests = grown(this.requests, capacity * PROTOS.length * TYPE_LABELS.length);
    this.responses = grown(this.responses, capacity * RCODES * this.plugins.length);
    this.duration.grow(capacity * TYPE_LABELS.length);
    this.requestSize.grow(capacity * PROTOS.length);
    this.responseSize.grow(capacity * PROTOS.length);
  }

  /** The slot of a plugin's name for observe(); 0 (the server's own) for a name not given to the constructor. */
  pluginIndex(name: string): number {
    return this.pluginIndexes.get(name) ?? 0;
  }

  /** One answered query, in `slot` (see slot()). Called on the hot path: arithmetic on typed arrays only. */
  observe(slot: number, overTcp: boolean, qtype: number, rcode: number, plugin: number, requestBytes: number, responseBytes: number, seconds: number): void {
    const proto = overTcp ? 1 : 0;
    const type = qtype < 256 ? typeIndex[qtype]! : OTHER_TYPE;
    this.requests[(slot * PROTOS.length + proto) * TYPE_LABELS.length + type]!++;
    this.responses[(slot * RCODES + Math.min(rcode, RCODES - 1)) * this.plugins.length + plugin]!++;
    this.duration.observe(slot * TYPE_LABELS.length + type, seconds);
    this.requestSize.observe(slot * PROTOS.length + proto, requestBytes);
    this.responseSize.observe(slot * PROTOS.length + proto, responseBytes);
  }

  /** Adds the collectors to `registry`. */
  register(registry: Registry): void {
    const base = (slot: number): Record<string, string> => {
      const { listener, zone } = this.slots[slot]!;
      return { server: this.listeners[listener]!.server, zone, view: '' };
    };
    const familyOf = (slot: number): string => String(this.listeners[this.slots[slot]!.listener]!.family);
    const perProto = (series: number): Record<string, string> => ({ ...base(Math.floor(series / PROTOS.length)), proto: PROTOS[series % PROTOS.length]! });
    const collectors: ArrayCollector[] = [
      {
        name: 'coredns_dns_requests_total',
        help: 'Counter of DNS requests made per zone, protocol and family.',
        type: 'counter',
        values: () => nonZero(this.requests, (index) => {
          const type = index % TYPE_LABELS.length;
          const rest = Math.floor(index / TYPE_LABELS.length);
          const slot = Math.floor(rest / PROTOS.length);
          return { ...base(slot), proto: PROTOS[rest % PROTOS.length]!, family: familyOf(slot), type: TYPE_LABELS[type]! };
        }),
      },
      {
        name: 'coredns_dns_responses_total',
        help: 'Counter of response status codes.',
        type: 'counter',
        values: () => nonZero(this.responses, (index) => {
          const plugin = index % this.plugins.length;
          const rest = Math.floor(index / this.plugins.length);
          return { ...base(Math.floor(rest / RCODES)), rcode: rcodeName(rest % RCODES), plugin: this.plugins[plugin]! };
        }),
      },
      {
        name: 'coredns_dns_request_duration_seconds',
        help: 'Histogram of the time (in seconds) each request took per zone.',
        type: 'histogram',
        values: () => this.duration.values('coredns_dns_request_duration_seconds', (series) => ({
          ...base(Math.floor(series / TYPE_LABELS.length)),
          type: TYPE_LABELS[series % TYPE_LABELS.length]!,
        })),
      },
      {
        name: 'coredns_dns_request_size_bytes',
        help: 'Size of the request in bytes per zone and protocol.',
        type: 'histogram',
        values: () => this.requestSize.values('coredns_dns_request_size_bytes', perProto),
      },
      {
        name: 'coredns_dns_response_size_bytes',
        help: 'Size of the returned response in bytes.',
        type: 'histogram',
        values: () => this.responseSize.values('coredns_dns_response_size_bytes', perProto),
      },
    ];
    for (const collector of collectors) registry.registerMetric(asMetric(collector));
  }
}

interface ArrayCollector {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  values(): Array<{ metricName?: string; labels: Record<string, string | number>; value: number }>;
}

function nonZero(counts: Float64Array, labelsOf: (slot: number) => Record<string, string>): Array<{ labels: Record<string, string>; value: number }> {
  const out: Array<{ labels: Record<string, string>; value: number }> = [];
  counts.forEach((value, slot) => {
    if (value > 0) out.push({ labels: labelsOf(slot), value });
  });
  return out;
}

/** prom-client's registry renders anything with this shape; see its Registry.getMetricsAsString. */
function asMetric(collector: ArrayCollector): Parameters<Registry['registerMetric']>[0] {
  const metric = {
    name: collector.name,
    help: collector.help,
    type: collector.type,
    aggregator: 'sum',
    get: async () => ({ name: collector.name, help: collector.help, type: collector.type, aggregator: 'sum', values: collector.values() }),
    reset: () => undefined,
  };
  return metric as unknown as Parameters<Registry['registerMetric']>[0];
}
