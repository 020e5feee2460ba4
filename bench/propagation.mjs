// bench/propagation.mjs — how long after the API server emits a Service or EndpointSlice change clusterdns
// answers the new data: p50/p90/p99/max over BENCH_CHANGES changes, next to the floor measured in the same run
// (the same polling loop on a name whose answer is already there: one query round trip).
//
// Owns: the test API server it runs in-process, the clusterdns it starts (stopped by PID), bench/out/propagation.*.
// Must not touch: anything else. Run it through bench/cluster.sh, which compiles the test API server and pins
// this driver to BENCH_CLIENT_CPU; clusterdns is pinned to BENCH_SERVER_CPU.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DnsClient, OUT, ZONE, clusterIPOf, endpointIPOf, envInt, hasExactly, loadFakeApiServer, log, namespaceObject, overallDeadline,
  percentile, serviceObject, sliceObject, startClusterdns, writeKubeconfig, TYPE_A,
} from './cluster-lib.mjs';

const CHANGES = envInt('BENCH_CHANGES', 1000);
const WARMUP = envInt('BENCH_PROP_WARMUP', 100);
const SERVICES = envInt('BENCH_PROP_SERVICES', 1000);
const NAMESPACES = envInt('BENCH_PROP_NAMESPACES', 10);
const ENDPOINTS = envInt('BENCH_PROP_ENDPOINTS', 10); // per headless service (every 10th service is headless)
const GAP_MS = envInt('BENCH_PROP_GAP_MS', 2); // idle time before each change (and its floor)
const BOUND_MS = envInt('BENCH_PROP_BOUND_MS', 2000); // per change: give up polling after this
const SERVER_CPU = envInt('BENCH_SERVER_CPU', 1);
const TARGET_P99_MS = 10;
overallDeadline(envInt('BENCH_DEADLINE', 600));

const FakeKubeApiServer = await loadFakeApiServer();
const api = new FakeKubeApiServer();
await api.start();

// ---- the cluster: every 10th service headless, with one slice of ENDPOINTS addresses ----
const clusterIP = [];
const headless = [];
for (let n = 0; n < NAMESPACES; n++) api.create('namespaces', namespaceObject(`ns${n}`));
for (let i = 0; i < SERVICES; i++) {
  const name = `svc${i}`;
  const namespace = `ns${i % NAMESPACES}`;
  if (i % 10 === 9) {
    const addresses = Array.from({ length: ENDPOINTS }, (_, j) => endpointIPOf(headless.length * ENDPOINTS + j));
    api.create('services', serviceObject({ name, namespace }));
    api.create('endpointslices', sliceObject({ name: `${name}-abcde`, namespace, service: name, addresses }));
    headless.push({ name, namespace, addresses });
  } else {
    const ip = clusterIPOf(i);
    api.create('services', serviceObject({ name, namespace, clusterIP: ip }));
    clusterIP.push({ name, namespace, ip });
  }
}
const kubeconfig = writeKubeconfig(api, join(OUT, 'propagation.kubeconfig'));

const cdns = await startClusterdns({ kubeconfig, cpu: SERVER_CPU, logFile: join(OUT, 'propagation.clusterdns.log') });
const client = await new DnsClient(cdns.port).open();
const fqdn = (s) => `${s.name}.${s.namespace}.svc.${ZONE}`;

/** Polls `name` back to back (one query in flight; the next leaves as soon as a reply is in) until its A
 * records are exactly `expected` and include `mustHave`; returns ms from t0 to that reply, or NaN after BOUND_MS. */
async function until(name, expected, t0, mustHave) {
  let queries = 0;
  for (;;) {
    const reply = await client.query(name, TYPE_A, 50);
    queries++;
    // A truncated reply (over ~70 addresses) must still show the changed address to count.
    if (hasExactly(reply, expected) && (mustHave === undefined || reply.addresses.includes(mustHave))) return { ms: reply.at - t0, queries };
    if (performance.now() - t0 > BOUND_MS) return { ms: NaN, queries, last: reply };
  }
}

try {
  await cdns.synced;
  const probe = clusterIP[clusterIP.length - 1];
  const ready = await until(fqdn(probe), [probe.ip], performance.now());
  if (Number.isNaN(ready.ms)) throw new Error(`clusterdns does not answer ${fqdn(probe)} with ${probe.ip} after sync`);
  await api.waitForWatch('services');
  await api.waitForWatch('endpointslices');
  log(`clusterdns (pid ${cdns.pid}, cpu ${SERVER_CPU}) synced ${SERVICES} services; ${WARMUP} warm-up changes, then ${CHANGES} measured`);

  let nextIP = 0;
  const freshIP = () => {
    nextIP++;
    return `10.${200 + (nextIP >> 16)}.${(nextIP >> 8) & 255}.${nextIP & 255}`;
  };
  const samples = [];
  for (let c = 0; c < WARMUP + CHANGES; c++) {
    const kind = c % 2 === 0 ? 'service' : 'slice';
    let name;
    let expected;
    let change;
    let previous;
    if (kind === 'service') {
      const s = clusterIP[(c / 2) % clusterIP.length];
      previous = [s.ip];
      s.ip = freshIP();
      name = fqdn(s);
      expected = [s.ip];
      change = () => api.update('services', serviceObject({ name: s.name, namespace: s.namespace, clusterIP: s.ip }));
    } else {
      const h = headless[((c - 1) / 2) % headless.length];
      previous = [...h.addresses];
      h.addresses[0] = freshIP();
      name = fqdn(h);
      expected = [...h.addresses];
      change = () => api.update('endpointslices', sliceObject({ name: `${h.name}-abcde`, namespace: h.namespace, service: h.name, addresses: h.addresses }));
    }
    if (GAP_MS > 0) await new Promise((resolve) => setTimeout(resolve, GAP_MS));
    // The floor: the same loop on the same name while its answer is there and nothing changes: one round trip.
    const floor = await until(name, previous, performance.now());
    // t0 just before the update: the fake server writes the watch event to the socket inside update().
    const t0 = performance.now();
    change();
    const emitMs = performance.now() - t0;
    const seen = await until(name, expected, t0, expected[0]);
    // The same once more right after the change: does clusterdns still have work left from it?
    const after = await until(name, expected, performance.now());
    if (c >= WARMUP) samples.push({ kind, ms: seen.ms, queries: seen.queries, floorMs: floor.ms, afterMs: after.ms, emitMs });
    if (Number.isNaN(seen.ms)) log(`change ${c} (${kind} ${name}): no new answer within ${BOUND_MS} ms; last reply ${JSON.stringify(seen.last)}`);
  }

  // ---- report ----
  writeFileSync(join(OUT, 'propagation.tsv'), `kind\tms\tqueries\tfloor_ms\tafter_ms\temit_ms\n${samples.map((s) =>
    `${s.kind}\t${s.ms.toFixed(4)}\t${s.queries}\t${s.floorMs.toFixed(4)}\t${s.afterMs.toFixed(4)}\t${s.emitMs.toFixed(4)}`).join('\n')}\n`);
  const missed = samples.filter((s) => Number.isNaN(s.ms)).length;
  const sorted = (xs) => xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  const row = (label, xs) => {
    const s = sorted(xs);
    return `  ${label.padEnd(30)} ${[50, 90, 99, 100].map((p) => percentile(s, p).toFixed(3).padStart(8)).join('')}`;
  };
  const all = samples.map((s) => s.ms);
  const floors = samples.map((s) => s.floorMs);
  const p99 = percentile(sorted(all), 99);
  const p50 = percentile(sorted(all), 50);
  const floor50 = percentile(sorted(floors), 50);
  const firstTry = samples.filter((s) => s.queries === 1).length;
  const maxQueries = Math.max(...samples.map((s) => s.queries));
  const out = [
    '',
    `propagation: API server watch event -> clusterdns answers the new data, ${samples.length} changes ` +
      `(${WARMUP} unmeasured before), one after another`,
    `cluster: ${SERVICES} services in ${NAMESPACES} namespaces, ${headless.length} headless with ${ENDPOINTS} endpoints each; ` +
      `changes alternate a Service's clusterIP and an address in a headless service's EndpointSlice`,
    `clusterdns ${process.env.BENCH_REV ?? ''} pinned to CPU ${SERVER_CPU}; the driver (test API server + UDP poller) to CPU ${process.env.BENCH_CLIENT_CPU ?? '?'}; node ${process.version}`,
    '',
    `  ${'ms'.padEnd(30)} ${['p50', 'p90', 'p99', 'max'].map((h) => h.padStart(8)).join('')}`,
    row('change -> new answer', all),
    row('  Service clusterIP', samples.filter((s) => s.kind === 'service').map((s) => s.ms)),
    row('  EndpointSlice address', samples.filter((s) => s.kind === 'slice').map((s) => s.ms)),
    row('floor: answer already there', floors),
    row('same, right after the change', samples.map((s) => s.afterMs)),
    row('update() call (emits event)', samples.map((s) => s.emitMs)),
    '',
    `  p50 minus the floor's p50: ${(p50 - floor50).toFixed(3)} ms; p50 = ${(p50 / floor50).toFixed(1)}x the floor`,
    `  polling: the first query, sent right after the event, already got the new answer in ${firstTry} of ${samples.length} ` +
      `changes (most queries for one change: ${maxQueries})`,
    `  target p99 < ${TARGET_P99_MS} ms: ${p99 < TARGET_P99_MS && missed === 0 ? 'ok' : 'MISS'} (p99 ${p99.toFixed(3)} ms` +
      `${missed ? `, ${missed} changes not seen within ${BOUND_MS} ms` : ''})`,
    `  raw samples: ${join(OUT, 'propagation.tsv')}`,
    '',
  ].join('\n');
  process.stdout.write(out);
  writeFileSync(join(OUT, 'propagation.txt'), out);
} finally {
  client.close();
  await cdns.stop();
  await api.stop();
}
