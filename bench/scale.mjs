// bench/scale.mjs — clusterdns at scale: 10,000 Services and 100,000 endpoints (1,000 headless services with one
// EndpointSlice of 100 endpoints each, 9,000 ClusterIP services, over 50 namespaces) already in the API server
// when clusterdns starts; then the same plus 100,000 Pods with `--pods verified`. Prints the time from process
// start to a correct answer, RSS ten seconds after sync, peak RSS, memory per endpoint and per pod, with the
// targets; the baselines come from the same run: the same clusterdns serving an empty cluster, and the time the
// test API server itself needs to serve every list.
//
// Owns: the test API server it runs in-process, the clusterdns processes it starts (stopped by PID),
// bench/out/scale.*. Must not touch: anything else. Run it through bench/cluster.sh.

import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import {
  DnsClient, MB, NODE_ARGS, OUT, ScaleFixture, ZONE, answersRight, envInt, fqdnOf, loadFakeApiServer, log, median, metricsMemory,
  overallDeadline, procMemory, startClusterdns, track, writeKubeconfig, TYPE_A,
} from './cluster-lib.mjs';

const SERVICES = envInt('BENCH_SCALE_SERVICES', 10_000);
const HEADLESS = envInt('BENCH_SCALE_HEADLESS', 1_000);
const ENDPOINTS = envInt('BENCH_SCALE_ENDPOINTS', 100); // per headless service, in one slice
const NAMESPACES = envInt('BENCH_SCALE_NAMESPACES', 50);
const PODS = envInt('BENCH_SCALE_PODS', 100_000); // 0: skip the pods run
const ROUNDS = Math.max(1, envInt('BENCH_SCALE_ROUNDS', 3));
const SETTLE_S = envInt('BENCH_SCALE_SETTLE', 10); // RSS is read this long after the first correct answer
const SERVER_CPU = envInt('BENCH_SERVER_CPU', 1);
const SNAPSHOT = envInt('BENCH_SCALE_HEAPSNAPSHOT', 0) === 1; // diagnosis: see run() and bench/README.md
// More serve flags for every run, e.g. BENCH_SCALE_ARGS='--workers 2' for what each worker thread adds.
const EXTRA_ARGS = (process.env.BENCH_SCALE_ARGS ?? '').split(/\s+/).filter((arg) => arg !== '');
const PAGE = 500; // what clusterdns asks for (KUBE_DEFAULTS.pageSize)
const POD_FIELD_SELECTOR = 'status.phase!=Succeeded,status.phase!=Failed'; // what clusterdns sends
const TARGET = { answerMs: 3000, rssMB: 120, peakMB: 200 };
const COREDNS = 'CoreDNS 1.10 (kubernetes plugin, same objects, issue 3): 2.5 s to answer, about 140-150 MB';
overallDeadline(envInt('BENCH_DEADLINE', 1200));

if (SNAPSHOT) mkdirSync(join(OUT, 'prof'), { recursive: true });
const FakeKubeApiServer = await loadFakeApiServer();
// Periodic bookmarks off: a run lasts seconds, and they would only add noise.
const api = new FakeKubeApiServer({ bookmarkIntervalMs: 0 });
await api.start();
const kubeconfig = writeKubeconfig(api, join(OUT, 'scale.kubeconfig'));

// ---- the cluster (created only when asked, so the first runs see an empty API server) ----
const fixture = new ScaleFixture(api, { services: SERVICES, headless: HEADLESS, endpoints: ENDPOINTS, namespaces: NAMESPACES, pods: PODS });

// ---- the API server's own cost: a full paged list of each kind, as clusterdns asks for it ----
function get(path) {
  return new Promise((resolve, reject) => {
    http.get(`${api.url}${path}`, { agent: false, headers: { Accept: 'application/json' } }, (res) => {
      let bytes = 0;
      let head = '';
      res.on('data', (chunk) => {
        bytes += chunk.length;
        if (head.length < 4096) head += chunk.toString('latin1', 0, Math.min(chunk.length, 4096));
      });
      res.on('end', () => resolve({ status: res.statusCode, bytes, head }));
      res.on('error', reject);
    }).on('error', reject);
  });
}
async function timeList(path, fieldSelector) {
  const t0 = performance.now();
  let token;
  let pages = 0;
  let bytes = 0;
  do {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (fieldSelector) q.set('fieldSelector', fieldSelector);
    if (token) q.set('continue', token);
    const page = await get(`${path}?${q}`);
    if (page.status !== 200) throw new Error(`GET ${path}: HTTP ${page.status}`);
    pages++;
    bytes += page.bytes;
    // The list's metadata comes before its items (kind, apiVersion, metadata, items).
    token = /"continue":"([^"]+)"/.exec(page.head)?.[1];
  } while (token);
  return { ms: performance.now() - t0, pages, bytes };
}

// ---- one clusterdns run ----
async function run(label, { probe, checks, args = [] }) {
  const nodeArgs = SNAPSHOT ? [...NODE_ARGS, '--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${join(OUT, 'prof')}`] : NODE_ARGS;
  const cdns = await startClusterdns({ kubeconfig, cpu: SERVER_CPU, args: [...args, ...EXTRA_ARGS], nodeArgs, logFile: join(OUT, `scale.${label}.clusterdns.log`) });
  const client = await new DnsClient(cdns.port).open();
  try {
    // Poll the probe (the last service created) from process start: a query every ~2 ms, one in flight.
    let answerMs = NaN;
    let peak = 0;
    let peakAt = 0;
    const sample = () => {
      try {
        const m = procMemory(cdns.pid);
        if (m.rss > peak) {
          peak = m.rss;
          peakAt = performance.now() - cdns.startedAt;
        }
      } catch {
        // not started yet, or gone
      }
    };
    const sampler = setInterval(sample, 50);
    const deadline = cdns.startedAt + envInt('BENCH_SCALE_TIMEOUT', 120) * 1000;
    let reply;
    while (performance.now() < deadline) {
      reply = await client.query(probe.name, TYPE_A, 20);
      if (probe.ok(reply)) {
        answerMs = reply.at - cdns.startedAt;
        break;
      }
      if (cdns.child.exitCode !== null) throw new Error(`clusterdns exited:\n${cdns.lines.slice(-10).join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    if (Number.isNaN(answerMs)) throw new Error(`${label}: no correct answer for ${probe.name} within ${envInt('BENCH_SCALE_TIMEOUT', 120)} s; the last reply: ${JSON.stringify(reply)}`);
    const synced = await cdns.synced;
    const atAnswer = procMemory(cdns.pid);
    await new Promise((resolve) => setTimeout(resolve, SETTLE_S * 1000 - (performance.now() - cdns.startedAt - answerMs)));
    clearInterval(sampler);
    const settled = procMemory(cdns.pid);
    const breakdown = await metricsMemory(await cdns.http);
    let afterGc;
    if (SNAPSHOT) {
      // Diagnosis: a heap snapshot makes V8 collect everything first, so RSS and heapUsed after it are the live
      // data; the snapshot (bench/out/prof/) says what holds it. clusterdns answers again once it is written.
      process.kill(cdns.pid, 'SIGUSR2');
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (!(await client.query(probe.name, TYPE_A, 120_000))) throw new Error(`${label}: no answer after the heap snapshot`);
      afterGc = { ...procMemory(cdns.pid), breakdown: await metricsMemory(await cdns.http) };
      log(`${label}: after the heap snapshot's full GC: RSS ${MB(afterGc.rss)} MB, heapUsed ${MB(afterGc.breakdown.heapUsed)} MB, ` +
        `heapTotal ${MB(afterGc.breakdown.heapTotal)} MB, external ${MB(afterGc.breakdown.external)} MB`);
    }
    let wrong = 0;
    for (const check of checks) {
      const reply = await client.query(check.name, TYPE_A, 500);
      if (!check.ok(reply)) {
        wrong++;
        if (wrong <= 3) log(`${label}: wrong answer for ${check.name}: ${JSON.stringify(reply)}`);
      }
    }
    return {
      answerMs, syncedMs: synced.ms, atAnswerRss: atAnswer.rss, rss: settled.rss, hwm: settled.hwm, peakSampled: peak, peakAt,
      breakdown, afterGc, checked: checks.length, wrong,
    };
  } finally {
    client.close();
    await cdns.stop();
  }
}

async function rounds(label, spec) {
  const results = [];
  for (let r = 1; r <= ROUNDS; r++) {
    const result = await run(label, spec);
    log(`${label} round ${r}: answer ${result.answerMs.toFixed(0)} ms (synced ${result.syncedMs} ms after the source started), ` +
      `RSS ${MB(result.rss)} MB after ${SETTLE_S}s, peak ${MB(result.hwm)} MB, heapUsed ${MB(result.breakdown.heapUsed)} MB, ` +
      `${result.wrong}/${result.checked} sampled answers wrong`);
    results.push(result);
  }
  const pick = (f) => median(results.map(f));
  return {
    runs: results,
    answerMs: pick((x) => x.answerMs),
    syncedMs: pick((x) => x.syncedMs),
    rss: pick((x) => x.rss),
    hwm: pick((x) => x.hwm),
    maxHwm: Math.max(...results.map((x) => x.hwm)),
    heapUsed: pick((x) => x.breakdown.heapUsed),
    heapTotal: pick((x) => x.breakdown.heapTotal),
    external: pick((x) => x.breakdown.external),
    oldSpace: pick((x) => x.breakdown.spaces.old_space ?? NaN),
    wrong: results.reduce((n, x) => n + x.wrong, 0),
    checked: results.reduce((n, x) => n + x.checked, 0),
  };
}

/** RSS of `node -e <idle>` pinned like clusterdns, one second after start. */
async function bareNode() {
  const child = track(spawn('taskset', ['-c', String(SERVER_CPU), process.execPath, '-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' }));
  try {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    return procMemory(child.pid).rss;
  } finally {
    child.kill('SIGKILL');
  }
}

const check = (expected) => ({ name: expected.name, ok: (reply) => answersRight(reply, expected) });
const nxdomain = (name) => check({ name, rcode: 'NXDOMAIN' });

const report = [];
try {
  // 0. Context: a bare node process on the same CPU (what any Node.js server starts from).
  const bare = await bareNode();
  // 1. The baseline: an empty cluster (no objects at all).
  log(`empty cluster: ${ROUNDS} run(s)`);
  const empty = await rounds('empty', { probe: nxdomain(`svc0.ns0.svc.${ZONE}`), checks: [nxdomain(`kubernetes.default.svc.${ZONE}`)] });

  // 2. 10k services, 100k endpoints.
  const loadMs = fixture.loadServices();
  const endpoints = fixture.endpointCount;
  log(`loaded ${SERVICES} services, ${HEADLESS} slices, ${endpoints} endpoints into the API server in ${loadMs.toFixed(0)} ms`);
  const lists = {
    namespaces: await timeList('/api/v1/namespaces'),
    services: await timeList('/api/v1/services'),
    endpointslices: await timeList('/apis/discovery.k8s.io/v1/endpointslices'),
  };
  const last = fixture.services[fixture.services.length - 1];
  const probe = check({ name: fqdnOf(last), addresses: last.addresses ?? [last.ip] });
  const checks = fixture.serviceExpectations().map(check);
  log(`services and endpoints: ${ROUNDS} run(s); probe ${probe.name} (the last service created)`);
  const full = await rounds('services', { probe, checks });

  // 3. The same plus pods, with --pods verified.
  let withPods;
  if (PODS > 0) {
    const podLoadMs = fixture.loadPods();
    log(`loaded ${PODS} pods into the API server in ${podLoadMs.toFixed(0)} ms`);
    lists.pods = await timeList('/api/v1/pods', POD_FIELD_SELECTOR);
    const podChecks = [...checks, ...fixture.podExpectations().map(check)];
    log(`services, endpoints and pods (--pods verified): ${ROUNDS} run(s)`);
    withPods = await rounds('pods', { probe, checks: podChecks, args: ['--pods', 'verified'] });
  }

  // ---- report ----
  const verdict = (ok) => (ok ? 'ok' : 'MISS');
  const listTotal = Object.values(lists).reduce((n, l) => n + l.ms, 0);
  const perEndpoint = (full.rss - empty.rss) / endpoints;
  const head = (label, r) => `  ${label.padEnd(34)} ${(r.answerMs / 1000).toFixed(2).padStart(7)} s ${MB(r.rss).padStart(8)} ${MB(r.hwm).padStart(8)}` +
    ` ${MB(r.heapUsed).padStart(8)} ${MB(r.heapTotal).padStart(8)} ${MB(r.external).padStart(8)}`;
  report.push(
    '',
    `scale: clusterdns ${process.env.BENCH_REV ?? ''} (CPU ${SERVER_CPU}) watching the test API server (CPU ${process.env.BENCH_CLIENT_CPU ?? '?'}); medians of ${ROUNDS} run(s) per row; node ${process.version}`,
    `cluster: ${SERVICES} services in ${NAMESPACES} namespaces (${SERVICES - HEADLESS} ClusterIP, ${HEADLESS} headless with one ` +
      `EndpointSlice of ${ENDPOINTS}), ${endpoints} endpoints${PODS ? `; then ${PODS} Running pods (one per endpoint) with --pods verified` : ''}`,
    '',
    `  ${''.padEnd(34)} ${'answer'.padStart(9)} ${'RSS+10s'.padStart(8)} ${'peak'.padStart(8)} ${'heapUsed'.padStart(8)} ${'heapTot'.padStart(8)} ${'external'.padStart(8)}   (MB)`,
    `  ${'bare node process (context)'.padEnd(34)} ${''.padStart(9)} ${MB(bare).padStart(8)}`,
    head('empty cluster (baseline)', empty),
    head(`${SERVICES} services, ${endpoints} endpoints`, full),
    ...(withPods ? [head(`  + ${PODS} pods, --pods verified`, withPods)] : []),
    '',
    `  time to a correct answer for the last service: ${(full.answerMs / 1000).toFixed(2)} s from process start ` +
      `(the empty cluster's: ${(empty.answerMs / 1000).toFixed(2)} s; clusterdns logged sync ${(full.syncedMs / 1000).toFixed(2)} s after its source started)` +
      `   target <= ${TARGET.answerMs / 1000} s: ${verdict(full.answerMs <= TARGET.answerMs)}`,
    `  RSS ${SETTLE_S} s after sync: ${MB(full.rss)} MB   target <= ${TARGET.rssMB} MB: ${verdict(full.rss <= TARGET.rssMB * 2 ** 20)}`,
    `  peak RSS (VmHWM): ${MB(full.hwm)} MB (highest run ${MB(full.maxHwm)} MB)   target <= ${TARGET.peakMB} MB: ${verdict(full.maxHwm <= TARGET.peakMB * 2 ** 20)}`,
    `  memory per endpoint (RSS minus the empty cluster's, / ${endpoints}; services included): ${perEndpoint.toFixed(0)} bytes`,
    ...(withPods ? [
      `  extra memory per pod (RSS with pods minus without, / ${PODS}): ${((withPods.rss - full.rss) / PODS).toFixed(0)} bytes; ` +
        `heapUsed ${((withPods.heapUsed - full.heapUsed) / PODS).toFixed(0)} bytes; with pods: answer ${(withPods.answerMs / 1000).toFixed(2)} s, ` +
        `peak ${MB(withPods.maxHwm)} MB`,
      ...(lists.pods.ms > withPods.answerMs / 2 ? [`    (that run's time is bounded by the test API server: its pod list alone takes ` +
        `${(lists.pods.ms / 1000).toFixed(1)} s, see below; its peak RSS may be lower than with a faster server)`] : []),
    ] : []),
    `  sampled answers wrong: ${full.wrong + (withPods?.wrong ?? 0) + empty.wrong} of ${full.checked + (withPods?.checked ?? 0) + empty.checked}`,
    `  for context: ${COREDNS}`,
    '',
    `  the test API server's own time for a full paged list (limit=${PAGE}), alone, in this process:`,
    ...Object.entries(lists).map(([kind, l]) => `    ${kind.padEnd(15)} ${l.ms.toFixed(0).padStart(6)} ms  ${String(l.pages).padStart(4)} pages  ${MB(l.bytes).padStart(7)} MB`),
    `    ${'all kinds'.padEnd(15)} ${listTotal.toFixed(0).padStart(6)} ms (clusterdns lists them concurrently; the server serves one request at a time)`,
    '',
  );
  const text = report.join('\n');
  process.stdout.write(text);
  writeFileSync(join(OUT, 'scale.txt'), text);
  writeFileSync(join(OUT, 'scale.json'), JSON.stringify({ empty, full, withPods, lists }, null, 2));
} finally {
  await api.stop();
}
