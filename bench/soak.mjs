// bench/soak.mjs — clusterdns for SOAK_MINUTES (default 10) under mixed load while the cluster churns and the API
// server misbehaves, as issue 15's "Soak" asks. Load, at half the maximum QPS measured at the start (or SOAK_QPS):
// dnsperf (UDP, rate-limited) walks a pod's ndots:5 search path for cluster names (NXDOMAIN, then the answer) and
// for names outside the cluster (three NXDOMAINs, then forwarded to a loopback upstream that now and then stays
// silent or answers SERVFAIL); the driver adds sampled UDP queries (the latency figures), TCP queries over a few
// reused connections, and a trickle of malformed packets. Meanwhile, at the test API server: 50 EndpointSlice
// changes a second, a Service created and one deleted every second, every watch dropped once a minute, a 410
// relist every 3 minutes, and two 30 s outages (the API server stopped). Every change is checked until DNS gives it.
//
// Prints one row a minute (also to bench/out/soak-<stamp>.tsv), then verdicts; a plot in bench/out/soak-<stamp>.png.
// Exits 1 when a verdict fails.
//
// Owns: the test API server and upstream it runs in-process, the clusterdns and dnsperf processes it starts
// (stopped by PID on every exit path, cluster-lib.mjs), bench/out/soak-*. Must not touch: anything else; traffic
// only to 127.0.0.1. Run it through bench/soak.sh (which runs bench/cluster.sh soak: it compiles the test API
// server and upstream from test/support/ and pins this driver to BENCH_CLIENT_CPU).

import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import {
  DnsClient, MB, OUT, ZONE, clusterIPOf, dnsperf, encodeQuery, endpointIPOf, envInt, hasExactly, httpGet, loadFakeApiServer,
  loadTestUpstream, log, namespaceObject, overallDeadline, percentile, procMemory, serviceObject,
  sliceObject, startClusterdns, writeKubeconfig, TYPE_A,
} from './cluster-lib.mjs';

const MINUTES = envInt('SOAK_MINUTES', 10);
if (MINUTES < 2) throw new Error('SOAK_MINUTES must be at least 2 (the first minutes are the warm-up of the RSS slope)');
const FIXED_QPS = envInt('SOAK_QPS', 0); // 0: half the maximum measured at the start
const CLIENT_CPU = envInt('BENCH_CLIENT_CPU', 0);
// Every CPU by default (this driver is pinned to one, so soak.sh works the list out): --workers' default then
// starts one answering thread per CPU, as on a node without a CPU limit.
const SERVER_CPUS = process.env.SOAK_SERVER_CPUS ?? '0';
const SERVICES = 1000; // in 10 namespaces; every 5th headless, with 3 endpoints
const FORWARDED = 1000; // www<i>.example.test at the upstream, TTL 10 s: about 100 cache misses a second
const SLICE_CHANGES_PER_S = 50;
const OUTAGE_S = 30;
const QUERY_TIMEOUT_MS = 5_000; // over --upstream-timeout 2 x 2 tries: a SERVFAIL after a silent upstream is an answer
const PROBE_PER_S = 200; // the sampled UDP queries p50/p99 come from
const TCP_CONNECTIONS = 4;
const TCP_PER_S = 100;
const MALFORMED_PER_S = 5;
const VISIBLE_MS = 1_000;
const VISIBLE_AFTER_OUTAGE_MS = 2_000;
const RSS_SLOPE_MB_PER_10MIN = 1;
const WATCHED = ['namespaces', 'services', 'endpointslices'];
overallDeadline(envInt('BENCH_DEADLINE', MINUTES * 60 + 600));

const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
const file = (ext) => join(OUT, `soak-${stamp}.${ext}`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.now();

// ---- the cluster, the upstream, clusterdns ---------------------------------------------------------------------

const FakeKubeApiServer = await loadFakeApiServer();
const TestUpstream = await loadTestUpstream();
const api = new FakeKubeApiServer();
await api.start();
const fqdn = (s) => `${s.name}.${s.namespace}.svc.${ZONE}`;
const services = [];
const headless = [];
for (let n = 0; n < 10; n++) api.create('namespaces', namespaceObject(`ns${n}`));
for (let i = 0; i < SERVICES; i++) {
  const service = { name: `svc${i}`, namespace: `ns${i % 10}`, i };
  services.push(service);
  if (i % 5 !== 4) {
    api.create('services', serviceObject({ ...service, clusterIP: clusterIPOf(i) }));
    continue;
  }
  service.addresses = [0, 1, 2].map((j) => endpointIPOf(headless.length * 3 + j));
  api.create('services', serviceObject(service));
  api.create('endpointslices', sliceObject({ ...service, name: `${service.name}-abcde`, service: service.name }));
  headless.push(service);
}
const records = {};
for (let i = 0; i < FORWARDED; i++) records[`www${i}.example.test`] = { A: [`198.18.${i >> 8}.${i & 255}`], ttl: 10 };
const upstream = await TestUpstream.start({ records, negativeTtl: 10 });
// The upstream misbehaves in spells: each quarter second it answers (90%), stays silent (5%) or fails (5%).
const flaky = setInterval(() => {
  const r = Math.random();
  upstream.behaviour = r < 0.05 ? 'silent' : r < 0.1 ? 'servfail' : 'answer';
  upstream.queries.length = 0; // it records every query; the soak does not read them
}, 250);

const kubeconfig = writeKubeconfig(api, file('kubeconfig'));
const cdns = await startClusterdns({ kubeconfig, cpu: SERVER_CPUS, upstream: upstream.address, logFile: file('clusterdns.log') });
const client = await new DnsClient(cdns.port).open();
const stopAll = async () => {
  clearInterval(flaky);
  client.close();
  await cdns.stop();
  await api.stop();
  await upstream.stop();
};
await cdns.synced;
for (const r of WATCHED) await api.waitForWatch(r);
const metricsAddress = await cdns.http;

// ---- the query mix: what a pod with ndots:5 in namespace ns<k> asks -------------------------------------------

const mix = [];
for (let i = 0; i < SERVICES; i++) {
  const s = services[i];
  const podNs = `ns${(i * 7 + 3) % 10}`;
  // "svc<i>.ns<n>": first under the pod's own namespace (NXDOMAIN), then under svc.<zone> (the answer)
  mix.push(`${s.name}.${s.namespace}.${podNs}.svc.${ZONE}`, fqdn(s));
  // "www<j>.example.test": three NXDOMAINs down the search path, then forwarded
  const ext = `www${i % FORWARDED}.example.test`;
  mix.push(`${ext}.${podNs}.svc.${ZONE}`, `${ext}.svc.${ZONE}`, `${ext}.${ZONE}`, ext);
}
const mixFile = file('queries');
writeFileSync(mixFile, mix.map((name) => `${name} A\n`).join(''));

/** One dnsperf run of the mix: lost = no reply within QUERY_TIMEOUT_MS. */
const load = (seconds, args) => dnsperf({ port: cdns.port, data: mixFile, seconds, cpu: CLIENT_CPU, args: ['-t', String(QUERY_TIMEOUT_MS / 1000), ...args] });

await load(3, ['-c', '8', '-q', '500', '-T', '2']); // warm-up: JIT, the cache, prepared answers
let maxQps;
if (FIXED_QPS === 0) {
  maxQps = (await load(5, ['-c', '8', '-q', '500', '-T', '2'])).qps;
  log(`maximum measured: ${maxQps.toFixed(0)} QPS (dnsperf -c 8 -q 500 -T 2, 5 s, the soak's query mix)`);
}
const totalQps = FIXED_QPS || Math.round(maxQps / 2);
const driverQps = PROBE_PER_S + TCP_PER_S;
const dnsperfQps = Math.max(100, totalQps - driverQps);
log(`clusterdns pid ${cdns.pid} on CPUs ${SERVER_CPUS} (--workers default), port ${cdns.port}; load ${totalQps} QPS ` +
  `(dnsperf ${dnsperfQps} + driver ${driverQps}) for ${MINUTES} min`);

// ---- bookkeeping per minute ------------------------------------------------------------------------------------

/** The kernel's UDP receive-buffer overflows, machine-wide (a query dropped there never reached clusterdns). */
function udpRcvbufErrors() {
  const [names, values] = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((line) => line.startsWith('Udp:'));
  return Number(values.split(/\s+/)[names.split(/\s+/).indexOf('RcvbufErrors')]);
}
const rcvbufAtStart = udpRcvbufErrors();
const t0 = now();
const minuteOf = (t) => Math.min(MINUTES - 1, Math.floor((t - t0) / 60_000));
const rows = Array.from({ length: MINUTES }, (_, m) => ({
  minute: m + 1, dnsperf: undefined, sent: 0, answered: 0, lost: 0, latencies: [], tcpSent: 0, tcpLost: 0,
  clusterLatencies: [], malformedSent: 0, malformedAnswered: 0, changes: 0, visible: [], notes: [],
}));
const rowAt = (t = now()) => rows[minuteOf(t)];
const rssSamples = []; // [seconds since start, bytes]
const outages = []; // { start, end, reconnectMs, rightMs }
let apiDown = false;
const note = (text) => {
  rowAt().notes.push(text);
  log(`${((now() - t0) / 1000).toFixed(0)}s: ${text}`);
};

// ---- the driver's own queries: sampled UDP (latency), TCP over reused connections, malformed packets -----------

let running = true;
const lostBy = { dnsperf: 0, udp: 0, tcp: 0, check: 0 }; // which client saw the losses
const lostNames = new Set(); // of the driver's own (dnsperf does not say which)
const timers = [];
const every = (ms, fn) => timers.push(setInterval(fn, ms));

let probeIndex = 0;
every(1000 / (PROBE_PER_S / 10), () => {
  for (let k = 0; k < 10; k++) {
    const name = mix[probeIndex++ % mix.length];
    const row = rowAt();
    const sentAt = now();
    row.sent++;
    client.query(name, TYPE_A, QUERY_TIMEOUT_MS).then((reply) => {
      if (reply === undefined) {
        row.lost++;
        lostBy.udp++;
        lostNames.add(name);
      } else {
        row.answered++;
        row.latencies.push(reply.at - sentAt);
        if (name.endsWith(ZONE)) row.clusterLatencies.push(reply.at - sentAt);
      }
    });
  }
});

/** One TCP connection: a query, its answer, the next query, paced to TCP_PER_S / TCP_CONNECTIONS a second. */
async function tcpConnection(index) {
  let id = index << 12;
  let reconnects = -1;
  while (running) {
    reconnects++;
    const socket = net.connect(cdns.port, '127.0.0.1');
    socket.setNoDelay(true);
    let buffer = Buffer.alloc(0);
    let waiting;
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 2 && buffer.length >= 2 + buffer.readUInt16BE(0)) {
        const msg = buffer.subarray(2, 2 + buffer.readUInt16BE(0));
        buffer = buffer.subarray(2 + msg.length);
        waiting?.(msg);
      }
    });
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.on('error', () => undefined);
    let alive = true;
    closed.then(() => (alive = false));
    const interval = 1000 / (TCP_PER_S / TCP_CONNECTIONS);
    for (let n = 0; running && alive; n++) {
      const started = now();
      const row = rowAt(started);
      id = (id + 1) & 0xffff;
      const query = encodeQuery(id, mix[(index * 997 + n) % mix.length], TYPE_A);
      const framed = Buffer.concat([Buffer.from([query.length >> 8, query.length & 255]), query]);
      row.tcpSent++;
      const answer = await new Promise((resolve) => {
        const timer = setTimeout(() => resolve(undefined), QUERY_TIMEOUT_MS);
        waiting = (msg) => {
          if (msg.readUInt16BE(0) !== id) return;
          clearTimeout(timer);
          resolve(msg);
        };
        closed.then(() => {
          clearTimeout(timer);
          resolve(null);
        });
        socket.write(framed);
      });
      if (answer === undefined || (answer === null && running)) { // null: the server closed it with a query on it
        row.tcpLost++;
        lostBy.tcp++;
        break;
      }
      if (answer === null) break;
      await sleep(Math.max(0, interval - (now() - started)));
    }
    socket.destroy();
    await closed;
  }
  return reconnects;
}
const tcpDone = Array.from({ length: TCP_CONNECTIONS }, (_, i) => tcpConnection(i));

// Malformed: each a row of the hostile-input kinds (short header, a label past the packet, a compression loop,
// no question, a response instead of a query, random bytes); clusterdns answers FORMERR or drops them.
const malformedSocket = dgram.createSocket('udp4');
malformedSocket.on('message', () => rowAt().malformedAnswered++);
await new Promise((resolve) => malformedSocket.bind(0, '127.0.0.1', resolve));
const good = encodeQuery(0x4242, `svc0.ns0.svc.${ZONE}`, TYPE_A);
const malformed = [
  Buffer.from([0x12, 0x34, 0x01]),
  Buffer.concat([good.subarray(0, 12), Buffer.from([60, 0x61, 0x62])]),
  Buffer.concat([good.subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])]),
  Buffer.from([0x12, 0x35, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]),
  Buffer.concat([Buffer.from([0x12, 0x36, 0x81, 0x80]), good.subarray(4)]),
];
let malformedIndex = 0;
every(1000 / MALFORMED_PER_S, () => {
  const k = malformedIndex++;
  const bytes = k % 6 === 5 ? Buffer.from(Array.from({ length: 1 + (k % 200) }, () => Math.floor(Math.random() * 256))) : malformed[k % 6];
  rowAt().malformedSent++;
  malformedSocket.send(bytes, cdns.port, '127.0.0.1');
});

// ---- churn at the API server, and every change checked until DNS gives it --------------------------------------

const pending = new Map(); // name -> { expect, madeAt, duringOutage, row }: only the newest change of a name counts
let superseded = 0;
let neverVisible = 0;
const visibleRecords = []; // { ms, afterOutage }

function expectChange(name, expect) {
  if (pending.has(name)) superseded++;
  const row = rowAt();
  row.changes++;
  pending.set(name, { name, expect, madeAt: now(), duringOutage: apiDown, row, inFlight: false });
}
const isRight = (reply, expect) => (expect === 'NXDOMAIN' ? reply?.rcode === 'NXDOMAIN' : hasExactly(reply, expect));

let lastOutageEnd = -Infinity;
every(25, () => {
  if (apiDown) return; // nothing made during an outage can show before it ends
  for (const check of pending.values()) {
    if (check.inFlight) continue;
    check.inFlight = true;
    client.query(check.name, TYPE_A, QUERY_TIMEOUT_MS).then((reply) => {
      check.inFlight = false;
      if (pending.get(check.name) !== check) return; // a newer change of the same name took over
      const from = check.duringOutage ? lastOutageEnd : check.madeAt;
      if (reply === undefined) {
        check.row.lost++;
        lostBy.check++;
        lostNames.add(check.name);
      }
      if (isRight(reply, check.expect)) {
        pending.delete(check.name);
        const ms = reply.at - from;
        visibleRecords.push({ ms, afterOutage: check.duringOutage });
        check.row.visible.push(ms);
      } else if (now() - from > 30_000) {
        pending.delete(check.name);
        neverVisible++;
        visibleRecords.push({ ms: Infinity, afterOutage: check.duringOutage });
        check.row.visible.push(Infinity);
      }
    });
  }
});

let nextIP = 0;
let slicesMade = 0;
const churnStart = now();
every(20, () => {
  const due = Math.floor(((now() - churnStart) / 1000) * SLICE_CHANGES_PER_S);
  for (; slicesMade < due; slicesMade++) {
    const h = headless[slicesMade % headless.length];
    nextIP++;
    h.addresses[slicesMade % 3] = `10.200.${(nextIP >> 8) & 255}.${nextIP & 255}`;
    api.update('endpointslices', sliceObject({ ...h, name: `${h.name}-abcde`, service: h.name }));
    expectChange(fqdn(h), [...h.addresses]);
  }
});
let created = 0;
let previous;
every(1000, () => {
  const fresh = { name: `soak${++created}`, namespace: `ns${created % 10}`, clusterIP: clusterIPOf(SERVICES + (created % 50_000)) };
  api.create('services', serviceObject(fresh));
  expectChange(fqdn(fresh), [fresh.clusterIP]);
  if (previous !== undefined) {
    api.delete('services', { metadata: { name: previous.name, namespace: previous.namespace } });
    expectChange(fqdn(previous), 'NXDOMAIN');
  }
  previous = fresh;
});

// ---- faults: a watch dropped every minute, a 410 relist every 3 minutes, two outages ---------------------------

const outageStarts = [Math.round(MINUTES * 60 * 0.3), Math.round(MINUTES * 60 * 0.7)];
const nearOutage = (s) => outageStarts.some((start) => s > start - 15 && s < start + OUTAGE_S + 15);

async function outage(start) {
  const record = { start };
  outages.push(record);
  note(`API server stopped for ${OUTAGE_S} s`);
  apiDown = true;
  await api.stop();
  await sleep(OUTAGE_S * 1000);
  // The names changed behind the outage, as they are now: the answer set that must come right again.
  await api.start();
  const end = now();
  lastOutageEnd = end;
  apiDown = false;
  note('API server back');
  const expected = [...pending.values()].filter((c) => c.duringOutage).map((c) => ({ name: c.name, expect: c.expect }));
  const reconnected = api.waitUntil(() => WATCHED.every((r) => api.openWatches(r) >= 1), 'every watch open again', 60_000)
    .then(() => now() - end, () => NaN);
  for (;;) {
    const replies = await Promise.all(expected.map(({ name }) => client.query(name, TYPE_A, 200)));
    // a name changed again since the outage is judged by its newer check; here only the ones still as they were
    const right = expected.every(({ name, expect }, k) => isRight(replies[k], expect) || pending.get(name)?.expect !== expect);
    if (right) {
      record.rightMs = now() - end;
      break;
    }
    if (now() - end > 60_000) {
      record.rightMs = NaN;
      break;
    }
    await sleep(10);
  }
  record.reconnectMs = await reconnected;
  record.names = expected.length;
  note(`after the outage: every watch back in ${record.reconnectMs.toFixed(0)} ms, the ${expected.length} changed names right in ${record.rightMs.toFixed(0)} ms`);
}

const faultTimers = [];
const at = (s, fn) => faultTimers.push(setTimeout(fn, s * 1000));
for (let s = 30; s < MINUTES * 60; s += 60) {
  at(s, () => {
    if (nearOutage(s)) return note('watch drop skipped (an outage is near)');
    const n = api.closeWatches({ abrupt: true });
    note(`${n} watches dropped`);
  });
}
for (let s = 120; s < MINUTES * 60; s += 180) {
  at(s, () => {
    if (nearOutage(s)) return note('410 skipped (an outage is near)');
    api.compact();
    api.expireWatches();
    note('410: history compacted, every watch expired');
  });
}
const outagesDone = outageStarts.map((s) => new Promise((resolve) => at(s, () => outage(s).then(resolve))));

every(5_000, () => {
  try {
    rssSamples.push([(now() - t0) / 1000, procMemory(cdns.pid).rss]);
  } catch {
    // gone: the end says so
  }
});

// ---- the bulk load: dnsperf, one run a minute, and the per-minute rows -----------------------------------------

const table = [];
const header = ['minute', 'qps', 'sent', 'lost', 'p50_ms', 'p99_ms', 'p99_zone_ms', 'rss_mb', 'heap_mb', 'eld_p99_ms', 'changes', 'visible_p99_ms', 'events'];
const fmt = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));
process.stdout.write(`${header.join('\t')}\n`);

/** A minute's row, once its last sampled queries are answered or lost; the next minute's load is already running. */
async function finish(m) {
  const row = rows[m];
  await sleep(QUERY_TIMEOUT_MS + 100);
  const text = await httpGet(`http://${metricsAddress}/metrics`).catch(() => '');
  const metric = (name) => Number(new RegExp(`^${name} ([0-9.e+-]+)`, 'm').exec(text)?.[1] ?? NaN);
  lostBy.dnsperf += row.dnsperf.lost;
  row.latencies.sort((a, b) => a - b);
  row.clusterLatencies.sort((a, b) => a - b);
  const visible = [...row.visible].sort((a, b) => a - b);
  const sent = row.dnsperf.sent + row.sent + row.tcpSent;
  const lost = row.dnsperf.lost + row.lost + row.tcpLost;
  const cells = [
    row.minute, Math.round((sent - lost) / 60), sent, lost, fmt(percentile(row.latencies, 50), 3), fmt(percentile(row.latencies, 99), 3),
    fmt(percentile(row.clusterLatencies, 99), 3), MB(procMemory(cdns.pid).rss), MB(metric('nodejs_heap_size_used_bytes')), fmt(metric('nodejs_eventloop_lag_p99_seconds') * 1000, 1),
    row.changes, fmt(percentile(visible, 99), 0), row.notes.join('; ') || '-',
  ];
  table.push(cells);
  process.stdout.write(`${cells.join('\t')}\n`);
}

const finished = [];
for (let m = 0; m < MINUTES; m++) {
  const end = t0 + (m + 1) * 60_000;
  rows[m].dnsperf = await load(Math.max(1, Math.round((end - now()) / 1000)), ['-c', '4', '-q', '500', '-T', '1', '-Q', String(dnsperfQps)]);
  if (now() < end) await sleep(end - now());
  if (m === MINUTES - 1) {
    running = false;
    for (const t of timers) clearInterval(t);
    for (const t of faultTimers) clearTimeout(t);
  }
  finished.push(finish(m));
}
await Promise.all(finished);
await Promise.all(outagesDone);
const reconnects = await Promise.all(tcpDone);
malformedSocket.close();

// ---- verdicts ----------------------------------------------------------------------------------------------------

const finalMetrics = await httpGet(`http://${metricsAddress}/metrics`).catch(() => '');
const workerRestarts = Number(/^clusterdns_worker_restarts_total ([0-9.e+]+)/m.exec(finalMetrics)?.[1] ?? 0);
const threads = new Set([...finalMetrics.matchAll(/^clusterdns_thread_responses_total\{thread="(\d+)"/gm)].map((x) => x[1])).size;
const rcvbufAtEnd = udpRcvbufErrors();
const alive = cdns.child.exitCode === null && cdns.child.signalCode === null;
await stopAll();

const totalLost = rows.reduce((n, r) => n + r.dnsperf.lost + r.lost + r.tcpLost, 0);
const totalSent = rows.reduce((n, r) => n + r.dnsperf.sent + r.sent + r.tcpSent, 0);
const warmupS = MINUTES >= 6 ? 120 : (MINUTES * 60) / 3;
const after = rssSamples.filter(([s]) => s >= warmupS);
const slope = leastSquaresSlope(after); // bytes per second
const slopePer10 = (slope * 600) / 1024 / 1024;
const late = visibleRecords.filter((v) => v.ms > (v.afterOutage ? VISIBLE_AFTER_OUTAGE_MS : VISIBLE_MS));
const sortedVisible = (afterOutage) => visibleRecords.filter((v) => v.afterOutage === afterOutage).map((v) => v.ms).sort((a, b) => a - b);
const inTime = sortedVisible(false);
const afterOut = sortedVisible(true);
const badLines = cdns.lines.filter((line) => {
  let parsed;
  try {
    parsed = JSON.parse(line);
  } catch {
    return line.trim() !== ''; // not pino's: a stack trace or a warning node printed itself
  }
  return parsed.level >= 50 || /unhandled|uncaught/i.test(line);
});
const warnings = new Map();
for (const line of cdns.lines) {
  try {
    const parsed = JSON.parse(line);
    if (parsed.level === 40) warnings.set(parsed.msg, (warnings.get(parsed.msg) ?? 0) + 1);
  } catch {
    // counted above
  }
}

const verdicts = [
  [totalLost === 0, `lost queries: ${totalLost} of ${totalSent} (every name the load asks existed before the run, so none may be lost, in an outage or not): ` +
    `${Object.entries(lostBy).map(([k, n]) => `${k} ${n}`).join(', ')}${lostNames.size ? `; e.g. ${[...lostNames].slice(0, 5).join(' ')}` : ''}; ` +
    `UDP receive-buffer overflows meanwhile (machine-wide): ${rcvbufAtEnd - rcvbufAtStart}`],
  [late.length === 0, `changes visible: ${inTime.length} made with the API server up, p50 ${fmt(percentile(inTime, 50), 0)} / p99 ${fmt(percentile(inTime, 99), 0)} / max ${fmt(inTime.at(-1), 0)} ms (bound ${VISIBLE_MS}); ` +
    `${afterOut.length} made during an outage, max ${fmt(afterOut.at(-1), 0)} ms after it ended (bound ${VISIBLE_AFTER_OUTAGE_MS}); ${late.length} late, ${neverVisible} never (30 s); ${superseded} superseded by a newer change before they showed`],
  ...outages.map((o, k) => [o.rightMs < VISIBLE_AFTER_OUTAGE_MS, `outage ${k + 1} (at ${o.start} s, ${OUTAGE_S} s): last watch reconnected ${fmt(o.reconnectMs, 0)} ms after it ended, ` +
    `first fully right answer set (${o.names} names changed during it) ${fmt(o.rightMs, 0)} ms after (bound ${VISIBLE_AFTER_OUTAGE_MS})`]),
  [Number.isFinite(slopePer10) && slopePer10 < RSS_SLOPE_MB_PER_10MIN, `RSS after the ${warmupS.toFixed(0)} s warm-up: ${MB(after[0]?.[1] ?? NaN)} -> ${MB(after.at(-1)?.[1] ?? NaN)} MB, ` +
    `least-squares slope ${fmt(slopePer10, 3)} MB per 10 min over ${after.length} samples (bound < ${RSS_SLOPE_MB_PER_10MIN})`],
  [badLines.length === 0 && alive && workerRestarts === 0, `server log: ${badLines.length} error/unhandled lines, ${workerRestarts} worker restarts, ${alive ? 'alive at the end' : 'DIED'}; ` +
    `warnings: ${[...warnings].map(([msg, n]) => `${n}x "${msg}"`).join(', ') || 'none'}`],
];

const summary = [
  '',
  `soak: ${MINUTES} min, clusterdns ${process.env.BENCH_REV ?? ''} (node ${process.version}), ${threads} answering thread(s) (--workers default, CPUs ${SERVER_CPUS}), ` +
    `${SERVICES} services (${headless.length} headless) in 10 namespaces`,
  `load ${totalQps} QPS = half the measured maximum ${maxQps === undefined ? '(SOAK_QPS given)' : `${maxQps.toFixed(0)}`}: dnsperf ${dnsperfQps}/s ` +
    `(a pod's ndots:5 search walk: 1 cluster answer, 4 NXDOMAIN, 1 forwarded in 6), sampled UDP ${PROBE_PER_S}/s (p50/p99), TCP ${TCP_PER_S}/s on ${TCP_CONNECTIONS} ` +
    `reused connections (${reconnects.reduce((a, b) => a + b, 0)} reconnects), malformed ${MALFORMED_PER_S}/s (${rows.reduce((n, r) => n + r.malformedAnswered, 0)} of ${rows.reduce((n, r) => n + r.malformedSent, 0)} answered)`,
  `churn: ${slicesMade} EndpointSlice changes (${SLICE_CHANGES_PER_S}/s), ${created} services created and ${created - 1} deleted; lost = no reply within ${QUERY_TIMEOUT_MS / 1000} s`,
  '',
  ...verdicts.map(([ok, text]) => `${ok ? 'ok  ' : 'FAIL'}  ${text}`),
  ...badLines.slice(0, 10).map((line) => `      ${line.slice(0, 300)}`),
  '',
  `rows: ${file('tsv')}  plot: ${file('png')}  log: ${file('clusterdns.log')}`,
  '',
].join('\n');
process.stdout.write(summary);
writeFileSync(file('tsv'), `${header.join('\t')}\n${table.map((cells) => cells.join('\t')).join('\n')}\n`);
writeFileSync(file('txt'), `${header.join('\t')}\n${table.map((cells) => cells.join('\t')).join('\n')}\n${summary}`);
plot(table, file('svg'), file('png'));
process.exitCode = verdicts.every(([ok]) => ok) ? 0 : 1;

function leastSquaresSlope(points) {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return num / den;
}

/** Three stacked panels (RSS, QPS, p99) per minute as an SVG, rendered to PNG by headless chromium if present. */
function plot(cells, svgFile, pngFile) {
  const W = 900;
  const H = 220;
  const pad = { l: 70, r: 20, t: 28, b: 30 };
  const panels = [['RSS (MB)', 7, 'rgb(31,119,180)'], ['QPS', 1, 'rgb(44,160,44)'], ['p99 (ms, sampled UDP, every name)', 5, 'rgb(214,39,40)']];
  const x = (m) => pad.l + ((m - 1) / Math.max(1, cells.length - 1)) * (W - pad.l - pad.r);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H * panels.length}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`];
  panels.forEach(([title, column, color], p) => {
    const ys = cells.map((c) => Number(c[column]));
    const lo = Math.min(0, ...ys);
    const hi = Math.max(...ys) * 1.1 || 1;
    const y = (v) => p * H + pad.t + (1 - (v - lo) / (hi - lo)) * (H - pad.t - pad.b);
    parts.push(`<text x="${pad.l}" y="${p * H + 18}" font-weight="bold">${title}</text>`,
      `<line x1="${pad.l}" y1="${y(lo)}" x2="${W - pad.r}" y2="${y(lo)}" stroke="black"/>`,
      `<line x1="${pad.l}" y1="${y(hi)}" x2="${pad.l}" y2="${y(lo)}" stroke="black"/>`);
    for (let k = 0; k <= 4; k++) {
      const v = lo + ((hi - lo) * k) / 4;
      parts.push(`<text x="${pad.l - 6}" y="${y(v) + 4}" text-anchor="end">${v >= 100 ? v.toFixed(0) : v.toFixed(2)}</text>`,
        `<line x1="${pad.l}" y1="${y(v)}" x2="${W - pad.r}" y2="${y(v)}" stroke="#ddd"/>`);
    }
    cells.forEach((c) => parts.push(`<text x="${x(c[0])}" y="${p * H + H - 12}" text-anchor="middle">${c[0]}</text>`));
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${cells.map((c, k) => `${x(c[0])},${y(ys[k])}`).join(' ')}"/>`);
  });
  parts.push(`<text x="${W / 2}" y="${H * panels.length - 2}" text-anchor="middle">minute</text></svg>`);
  writeFileSync(svgFile, parts.join('\n'));
  const chromium = spawnSync('chromium', ['--headless', '--no-sandbox', '--disable-gpu', `--screenshot=${pngFile}`,
    `--window-size=${W},${H * panels.length}`, `file://${svgFile}`], { timeout: 60_000, stdio: 'ignore' });
  if (chromium.status !== 0) log(`no PNG (chromium ${chromium.error?.message ?? `exit ${chromium.status}`}): the SVG is ${svgFile}`);
}
