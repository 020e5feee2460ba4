/**
 * The forward plugin's metrics: CoreDNS's names and labels (coredns_forward_*, coredns_proxy_request_duration_seconds)
 * plus our upstream-state and coalescing ones. The forwarder reports through the ForwardObserver returned here.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { addSource, perRegistry } from '../../telemetry/index.js';
import { rcodeName } from '../../wire/index.js';
import type { ForwardObserver, UpstreamState } from './index.js';

/**
 * Registers CoreDNS's forward metrics and ours, once per registry; returns the observer a forwarder reports to
 * (shared by every forwarder: the series are per upstream).
 */
export function registerForwardMetrics(registry: Registry, states: () => readonly UpstreamState[]): { observer: ForwardObserver; remove: () => void } {
  const shared = perRegistry(registry, 'forward', () => {
    const sources: Array<() => readonly UpstreamState[]> = [];
    return { sources, observer: register(registry, () => sources.flatMap((source) => source())) };
  });
  return { observer: shared.observer, remove: addSource(shared.sources, states) };
}

function register(registry: Registry, upstreamStates: () => readonly UpstreamState[]): ForwardObserver {
  const requests = new Counter({ name: 'coredns_forward_requests_total', help: 'Counter of requests made per upstream.', labelNames: ['to'], registers: [registry] });
  const responses = new Counter({ name: 'coredns_forward_responses_total', help: 'Counter of responses received per upstream.', labelNames: ['to', 'rcode'], registers: [registry] });
  const duration = new Histogram({
    name: 'coredns_proxy_request_duration_seconds',
    help: 'Histogram of the time each request took.',
    labelNames: ['proxy_name', 'to', 'rcode'],
    buckets: Array.from({ length: 16 }, (_, i) => 0.00025 * 2 ** i),
    registers: [registry],
  });
  const healthcheckFailures = new Counter({ name: 'coredns_forward_healthcheck_failures_total', help: 'Counter of the number of failed healthchecks.', labelNames: ['to'], registers: [registry] });
  const broken = new Counter({ name: 'coredns_forward_healthcheck_broken_total', help: 'Counter of the number of complete failures of the healthchecks.', registers: [registry] });
  const rejects = new Counter({ name: 'coredns_forward_max_concurrent_rejects_total', help: 'Counter of the number of queries rejected because the concurrent queries were at maximum.', registers: [registry] });
  const coalesced = new Counter({ name: 'clusterdns_forward_coalesced_total', help: 'Queries that joined an identical upstream query already in flight instead of sending their own.', registers: [registry] });
  new Gauge({
    name: 'clusterdns_forward_upstream_up',
    // Every worker thread holds the same state: summed over them it would count it once per thread.
    aggregator: 'max',
    help: '1 while an upstream is considered healthy, 0 while it is down and probed.',
    labelNames: ['to'],
    registers: [registry],
    collect() {
      for (const state of upstreamStates()) this.set({ to: state.to }, state.up ? 1 : 0);
    },
  });
  new Gauge({
    name: 'clusterdns_forward_loop_detected',
    // Every worker thread holds the same state: summed over them it would count it once per thread.
    aggregator: 'max',
    help: '1 for an upstream that forwards our queries back to us; it is not used.',
    labelNames: ['to'],
    registers: [registry],
    collect() {
      for (const state of upstreamStates()) this.set({ to: state.to }, state.looping ? 1 : 0);
    },
  });
  return {
    request: (to) => requests.inc({ to }),
    response: (to, rcode, seconds) => {
      const code = rcodeName(rcode);
      responses.inc({ to, rcode: code });
      duration.observe({ proxy_name: 'forward', to, rcode: code }, seconds);
    },
    healthcheckFailure: (to) => healthcheckFailures.inc({ to }),
    allDown: () => broken.inc(),
    rejected: () => rejects.inc(),
    coalesced: () => coalesced.inc(),
  };
}
