// bench/outage.mjs — how soon clusterdns is current again once an unreachable API server is back. Per outage of
// BENCH_OUTAGE_S seconds (the API server stopped, or answering 503 to everything, while EndpointSlices and a
// Service change behind it): ms from its return to the last watch open again (as the API server sees it) and
// to the first sweep in which every changed name answers its new data; and, for the 503 outages, the requests a
// second clusterdns sent meanwhile. The baseline of the same run: every watch closed cleanly, no outage.
//
// Owns: the test API server it runs in-process, the clusterdns it starts (stopped by PID), bench/out/outage.*.
// Must not touch: anything else. Run it through bench/cluster.sh (`bash bench/cluster.sh outage`), which compiles
// the test API server and pins this driver to BENCH_CLIENT_CPU; clusterdns is pinned to BENCH_SERVER_CPU.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DnsClient, OUT, ZONE, clusterIPOf, endpointIPOf, envInt, hasExactly, loadFakeApiServer, log, median, namespaceObject,
  overallDeadline, serviceObject, sliceObject, startClusterdns, writeKubeconfig, TYPE_A,
} from './cluster-lib.mjs';

const ROUNDS = envInt('BENCH_OUTAGE_ROUNDS', 2); // of each kind of outage
const OUTAGE_S = envInt('BENCH_OUTAGE_S', 20);
const SERVICES = envInt('BENCH_OUTAGE_SERVICES', 1000); // every 10th headless, with 4 endpoints
const CHANGES = envInt('BENCH_OUTAGE_CHANGES', 20); // EndpointSlices changed during each outage
const BOUND_MS = envInt('BENCH_OUTAGE_BOUND_MS', 60_000);
const SERVER_CPU = envInt('BENCH_SERVER_CPU', 1);
const TARGET_MS = 2_000;
const WATCHED = ['namespaces', 'services', 'endpointslices'];
overallDeadline(envInt('BENCH_DEADLINE', 600));

const FakeKubeApiServer = await loadFakeApiServer();
const api = new FakeKubeApiServer();
await api.start();

const headless = [];
for (let n = 0; n < 10; n++) api.create('namespaces', namespaceObject(`ns${n}`));
for (let i = 0; i < SERVICES; i++) {
  const service = { name: `svc${i}`, namespace: `ns${i % 10}` };
  if (i % 10 !== 9) {
    api.create('services', serviceObject({ ...service, clusterIP: clusterIPOf(i) }));
    continue;
  }
  service.addresses = [0, 1, 2, 3].map((j) => endpointIPOf(headless.length * 4 + j));
  api.create('services', serviceObject(service));
  api.create('endpointslices', sliceObject({ ...service, name: `${service.name}-abcde`, service: service.name }));
  headless.push(service);
}
if (headless.length < CHANGES) throw new Error(`BENCH_OUTAGE_CHANGES (${CHANGES}) is more than the ${headless.length} headless services`);
const kubeconfig = writeKubeconfig(api, join(OUT, 'outage.kubeconfig'));
const cdns = await startClusterdns({ kubeconfig, cpu: SERVER_CPU, logFile: join(OUT, 'outage.clusterdns.log') });
const client = await new DnsClient(cdns.port).open();
const fqdn = (s) => `${s.name}.${s.namespace}.svc.${ZONE}`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let nextIP = 0;
let added = 0;
/** Behind the fault: CHANGES slices get a new first address, and one Service is created. Returns what to expect. */
function changeBehind(round) {
  const expected = [];
  for (let c = 0; c < CHANGES; c++) {
    const h = headless[(round * CHANGES + c) % headless.length];
    h.addresses[0] = `10.200.${(++nextIP >> 8) & 255}.${nextIP & 255}`;
    api.update('endpointslices', sliceObject({ ...h, name: `${h.name}-abcde`, service: h.name }));
    expected.push({ name: fqdn(h), addresses: [...h.addresses] });
  }
  const fresh = { name: `added${++added}`, namespace: 'ns0', clusterIP: clusterIPOf(SERVICES + added) };
  api.create('services', serviceObject(fresh));
  expected.push({ name: fqdn(fresh), addresses: [fresh.clusterIP] });
  return expected;
}

/** Sweeps the expected names until one sweep finds every answer right; ms from t0 to the end of that sweep. */
async function rightAfter(expected, t0) {
  for (;;) {
    let right = true;
    for (const { name, addresses } of expected) {
      if (!hasExactly(await client.query(name, TYPE_A, 50), addresses)) right = false;
    }
    const at = performance.now();
    if (right) return at - t0;
    if (at - t0 > BOUND_MS) return NaN;
  }
}

/** One fault: begin, hold it `holdS`, change what is behind it, end it; then time both marks from the end. */
async function measure(kind, holdS, begin, end) {
  const before = api.requestCount();
  await begin();
  await sleep(holdS * 1000);
  const requests = api.requestCount() - before;
  const expected = changeBehind(rounds.length);
  await end();
  const t0 = performance.now();
  const reconnected = api.waitUntil(() => WATCHED.every((r) => api.openWatches(r) >= 1), 'every watch open again', BOUND_MS)
    .then(() => performance.now() - t0, () => NaN);
  const right = await rightAfter(expected, t0);
  const round = { kind, holdS, reconnectMs: await reconnected, rightMs: right, perSecond: requests / Math.max(holdS, 1) };
  log(`${kind}: watches back ${round.reconnectMs.toFixed(0)} ms, answers right ${round.rightMs.toFixed(0)} ms after the end`);
  return round;
}

const rounds = [];
try {
  await cdns.synced;
  for (const r of WATCHED) await api.waitForWatch(r);
  log(`clusterdns (pid ${cdns.pid}, cpu ${SERVER_CPU}) synced ${SERVICES} services; ${ROUNDS} outages of each kind, ${OUTAGE_S} s each`);
  rounds.push(await measure('baseline: watches closed', 0, () => api.closeWatches(), () => undefined));
  for (let i = 0; i < ROUNDS; i++) {
    rounds.push(await measure('API server stopped', OUTAGE_S, () => api.stop(), () => api.start()));
    rounds.push(await measure('HTTP 503 to everything', OUTAGE_S, () => {
      api.failAll(503);
      api.closeWatches({ abrupt: true });
    }, () => api.clearFaults()));
    rounds.push(await measure('baseline: watches closed', 0, () => api.closeWatches(), () => undefined));
  }

  // ---- report ----
  writeFileSync(join(OUT, 'outage.tsv'), `kind\thold_s\treconnect_ms\tright_ms\trequests_per_s\n${rounds.map((r) =>
    `${r.kind}\t${r.holdS}\t${r.reconnectMs.toFixed(1)}\t${r.rightMs.toFixed(1)}\t${r.perSecond.toFixed(2)}`).join('\n')}\n`);
  const kinds = [...new Set(rounds.map((r) => r.kind))];
  const worst = Math.max(...rounds.filter((r) => r.holdS > 0).map((r) => (Number.isNaN(r.rightMs) ? Infinity : r.rightMs)));
  const base = median(rounds.filter((r) => r.holdS === 0).map((r) => r.rightMs));
  const out = [
    '',
    `outage: from the API server's return to every watch open again and to every changed answer right (${CHANGES} EndpointSlices and a Service changed behind each fault)`,
    `cluster: ${SERVICES} services in 10 namespaces, ${headless.length} headless with 4 endpoints each; outages of ${OUTAGE_S} s`,
    `clusterdns ${process.env.BENCH_REV ?? ''} pinned to CPU ${SERVER_CPU}; the driver (test API server + UDP poller) to CPU ${process.env.BENCH_CLIENT_CPU ?? '?'}; node ${process.version}`,
    '',
    `  ${'fault'.padEnd(26)} ${'n'.padStart(3)} ${'watches back ms (median/max)'.padStart(30)} ${'answers right ms (median/max)'.padStart(31)} ${'requests/s while down'.padStart(22)}`,
    ...kinds.map((kind) => {
      const of = rounds.filter((r) => r.kind === kind);
      const pair = (xs, digits = 0) => `${median(xs).toFixed(digits)} / ${Math.max(...xs).toFixed(digits)}`;
      const rate = kind.startsWith('HTTP') ? pair(of.map((r) => r.perSecond), 1) : '-';
      return `  ${kind.padEnd(26)} ${String(of.length).padStart(3)} ${pair(of.map((r) => r.reconnectMs)).padStart(30)} ${pair(of.map((r) => r.rightMs)).padStart(31)} ${rate.padStart(22)}`;
    }),
    '',
    `  worst outage: answers right ${worst.toFixed(0)} ms after the return = ${(worst / base).toFixed(1)}x the baseline's median (${base.toFixed(0)} ms)`,
    `  target < ${TARGET_MS} ms after any outage: ${worst < TARGET_MS ? 'ok' : 'MISS'}`,
    `  raw rounds: ${join(OUT, 'outage.tsv')}`,
    '',
  ].join('\n');
  process.stdout.write(out);
  writeFileSync(join(OUT, 'outage.txt'), out);
} finally {
  client.close();
  await cdns.stop();
  await api.stop();
}
