// bench/memlimit.mjs — clusterdns under CoreDNS's memory limit (170 MiB, its Deployment's): the scale fixture
// (10k services, 100k endpoints, 100k pods, `--pods verified`) already in the test API server, clusterdns alone
// in a memory cgroup of MEMLIMIT_MIB with swap off, through its first sync, a 410 Gone on every watch (a full
// relist), and the API server stopped and started again on the same port with its history compacted (as a
// restarted kube-apiserver's watch cache starts at the current resourceVersion: every watch gets 410, a full
// relist again). A prober thread asks a sample of names every BENCH_MEMLIMIT_PERIOD_MS throughout. Per run: the
// cgroup's peak, its anonymous memory's peak, VmHWM, major page faults (thrashing), OOM kills, answers wrong and
// lost, seconds to sync and to every kind listed again after each fault. Then the same for each worker count at
// growing sizes (BENCH_MEMLIMIT_FACTORS times the fixture), up to the first that fails: the largest cluster that
// fits. Exits 1 if the 1x run with one worker is OOM-killed or loses or gets wrong a single answer.
//
// Owns: the test API servers it runs in-process, the clusterdns it starts (stopped by PID), the cgroups it creates
// (removed on every exit path; bench/cluster.sh removes them too if this process is killed), bench/out/memlimit.*.
// Must not touch: anything else. Needs root. Run it through bench/cluster.sh (`bash bench/cluster.sh memlimit`).

import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  MB, MemoryCgroup, OUT, ScaleFixture, envInt, loadFakeApiServer, log, overallDeadline, privateNodeCopy, procMemory,
  startClusterdns, writeKubeconfig,
} from './cluster-lib.mjs';

const LIMIT_MIB = envInt('MEMLIMIT_MIB', 170);
const list = (name, fallback) => (process.env[name] || fallback).split(',').map(Number);
const FACTORS = list('BENCH_MEMLIMIT_FACTORS', '0.25,0.5,0.75,1,1.25,1.5,2').sort((a, b) => a - b);
const WORKERS = list('BENCH_MEMLIMIT_WORKERS', '1,2');
const BUDGET_S = envInt('BENCH_MEMLIMIT_BUDGET', 600); // no larger size is started once this much has passed
// Each wait (the sync, each relist): about 3x what 2x the fixture takes without a limit, so that a clusterdns
// thrashing at the limit (its code paged out and in again, no OOM kill) fails the size in bounded time.
const BOUND_S = envInt('BENCH_MEMLIMIT_BOUND', 60);
const DOWN_S = envInt('BENCH_MEMLIMIT_DOWN_S', 5); // the API server's restart: how long it is down
const SETTLE_S = envInt('BENCH_MEMLIMIT_SETTLE', 3); // between phases, answers still counted
const PERIOD_MS = envInt('BENCH_MEMLIMIT_PERIOD_MS', 50);
const TIMEOUT_MS = envInt('BENCH_MEMLIMIT_TIMEOUT_MS', 1000); // a probe without a reply this long is lost
const SERVER_CPU = envInt('BENCH_SERVER_CPU', 1);
const BASE = { services: 10_000, headless: 1_000, endpoints: 100, namespaces: 50, pods: 100_000 };
const WATCHED = ['namespaces', 'services', 'endpointslices', 'pods'];
overallDeadline(envInt('BENCH_DEADLINE', 1200));
for (const f of FACTORS) if (!(f > 0) || !Number.isInteger(BASE.headless * f)) throw new Error(`BENCH_MEMLIMIT_FACTORS: ${f} does not give whole services`);
for (const w of WORKERS) if (!Number.isInteger(w) || w < 1) throw new Error(`BENCH_MEMLIMIT_WORKERS: ${w} is not a worker count`);
if (process.getuid?.() !== 0) throw new Error('memlimit needs root: it creates a memory cgroup');

const FakeKubeApiServer = await loadFakeApiServer();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const started = performance.now();
/** One worker: the CPU the other benchmarks give clusterdns. More: every CPU (the driver shares them; see README). */
const cpusFor = (workers) => (workers === 1 ? String(SERVER_CPU) : `0-${cpus().length - 1}`);

/** Page faults that read from disk (field 12 of /proc/PID/stat): code paged in again when the cgroup reclaims it. */
const majorFaults = (pid) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[9]);

function startProber(port, expectations) {
  const worker = new Worker(new URL('./answer-prober.mjs', import.meta.url), { workerData: { port, expectations, periodMs: PERIOD_MS, timeoutMs: TIMEOUT_MS } });
  const done = new Promise((resolve, reject) => {
    worker.once('message', (message) => resolve(message.phases));
    worker.once('error', reject);
  });
  return {
    phase: (label) => worker.postMessage({ phase: label }),
    async stop() {
      worker.postMessage({ stop: true });
      const phases = await done;
      await worker.terminate();
      return phases;
    },
  };
}

/** One clusterdns in its own cgroup through sync, a 410 and an API server restart. */
async function run(api, fixture, factor, workers) {
  const label = `x${factor}.w${workers}`;
  const cgroup = new MemoryCgroup(`${process.env.BENCH_CGROUP_TAG ?? `clusterdns-bench-${process.pid}`}-${label}`, LIMIT_MIB * 2 ** 20);
  const result = { factor, workers, cpus: cpusFor(workers), cgroupVersion: cgroup.version, hwm: NaN, anonPeak: 0, majorFaults: NaN };
  // A fresh copy per run: the last run's pages of it stay cached, charged to the cgroup that read them.
  const node = privateNodeCopy(join(OUT, `memlimit.${label}.node`));
  let cdns;
  let prober;
  let sampler;
  const gone = () => cdns.child.exitCode !== null || cdns.child.signalCode !== null;
  const relists = () => cdns.lines.filter((line) => line.includes('"listed again; reconciled by difference"')).length;
  const watching = () => WATCHED.every((r) => api.openWatches(r) >= 1);
  /** Polls `cond` until true; fails if clusterdns exits or BOUND_S passes. Returns the seconds it took. */
  const until = async (cond, what) => {
    const t0 = performance.now();
    while (!cond()) {
      if (gone()) throw new Error(`clusterdns exited (${cdns.child.signalCode ?? cdns.child.exitCode}) waiting for ${what}`);
      if (performance.now() - t0 > BOUND_S * 1000) throw new Error(`no ${what} within ${BOUND_S} s`);
      await sleep(20);
    }
    return (performance.now() - t0) / 1000;
  };
  try {
    const kubeconfig = writeKubeconfig(api, join(OUT, 'memlimit.kubeconfig'));
    cdns = await startClusterdns({
      kubeconfig, cpu: result.cpus, args: ['--pods', 'verified', '--workers', String(workers)], cgroup, node,
      logFile: join(OUT, `memlimit.${label}.clusterdns.log`),
    });
    sampler = setInterval(() => {
      try {
        result.hwm = procMemory(cdns.pid).hwm; // VmHWM only grows; the last reading before exit is the peak
        result.majorFaults = majorFaults(cdns.pid);
      } catch {
        // gone
      }
      result.anonPeak = Math.max(result.anonPeak, cgroup.anon() || 0);
    }, 50);
    let settled = false; // the 'synced' line logged, or clusterdns gone before it (then until() says which)
    cdns.synced.finally(() => (settled = true)).catch(() => undefined);
    result.syncS = await until(() => settled, "the 'synced' log line");
    await cdns.synced; // its error, if it failed
    await until(watching, 'watch on every kind');
    const kinds = cdns.lines.filter((line) => line.includes('"msg":"listed"')).length;
    const expectations = [...fixture.serviceExpectations(), ...fixture.podExpectations()];
    result.probed = expectations.length;
    prober = startProber(cdns.port, expectations);
    prober.phase('synced');
    await sleep(SETTLE_S * 1000);

    prober.phase('410 relist');
    let before = relists();
    api.expireWatches();
    result.relistS = await until(() => relists() >= before + kinds && watching(), 'relist of every kind after the 410');
    await sleep(SETTLE_S * 1000);

    prober.phase('API server restart');
    before = relists();
    await api.stop();
    api.update('namespaces', api.get('namespaces', 'ns0')); // one write, so that compacting expires every watch
    api.compact();
    await sleep(DOWN_S * 1000);
    await api.start();
    result.restartS = await until(() => relists() >= before + kinds && watching(), 'relist of every kind after the restart');
    prober.phase('after');
    await sleep(SETTLE_S * 1000);
    if (gone()) throw new Error(`clusterdns exited (${cdns.child.signalCode ?? cdns.child.exitCode})`);
  } catch (error) {
    result.error = error.message.split('\n')[0];
  } finally {
    clearInterval(sampler);
    result.phases = (await prober?.stop()) ?? {};
    await api.start(); // if a failure left it stopped
    await cdns?.stop();
    Object.assign(result, { peak: cgroup.peak(), oomKills: cgroup.oomKills() });
    cgroup.remove();
    rmSync(node);
  }
  const sum = (key) => Object.values(result.phases).reduce((n, p) => n + p[key], 0);
  Object.assign(result, { asked: sum('asked'), wrong: sum('wrong'), lost: sum('lost'), maxMs: Math.max(0, ...Object.values(result.phases).map((p) => p.maxMs)) });
  result.ok = result.error === undefined && !(result.oomKills > 0) && result.wrong === 0 && result.lost === 0 && result.asked > 0;
  log(`${label}: ${result.ok ? 'ok' : `FAILED${result.error ? `: ${result.error}` : ''}`}; cgroup peak ${MB(result.peak)} MB, anon ${MB(result.anonPeak)} MB, VmHWM ${MB(result.hwm)} MB, ` +
    `OOM kills ${result.oomKills}, answers wrong ${result.wrong} / lost ${result.lost} of ${result.asked}`);
  for (const [phase, p] of Object.entries(result.phases)) if (p.firstBad) log(`${label} ${phase}: first bad answer: ${JSON.stringify(p.firstBad)}`);
  return result;
}

const results = [];
const failedAt = new Map(); // workers -> the first factor that failed
let api;
try {
  for (const factor of FACTORS) {
    const pending = WORKERS.filter((w) => !failedAt.has(w));
    if (pending.length === 0) break;
    if ((performance.now() - started) / 1000 > BUDGET_S) {
      log(`stopping before ${factor}x: ${BUDGET_S} s (BENCH_MEMLIMIT_BUDGET) spent`);
      break;
    }
    await api?.stop();
    api = new FakeKubeApiServer({ bookmarkIntervalMs: 0 });
    await api.start();
    const size = Object.fromEntries(Object.entries(BASE).map(([k, v]) => [k, k === 'endpoints' || k === 'namespaces' ? v : v * factor]));
    const fixture = new ScaleFixture(api, size);
    const loadMs = fixture.loadServices() + fixture.loadPods();
    log(`${factor}x: ${size.services} services, ${fixture.endpointCount} endpoints, ${size.pods} pods loaded in ${(loadMs / 1000).toFixed(1)} s`);
    for (const workers of pending) {
      const result = await run(api, fixture, factor, workers);
      results.push({ ...result, size: { ...size, endpointsTotal: fixture.endpointCount } });
      if (!result.ok) failedAt.set(workers, factor);
    }
  }
} finally {
  await api?.stop();
}

// ---- report ----
const secs = (s) => (s === undefined ? '-' : s.toFixed(1));
const row = (r) => [
  `${r.factor}x`.padStart(5), String(r.workers).padStart(7), r.cpus.padStart(4),
  `${r.size.services / 1000}k/${r.size.endpointsTotal / 1000}k/${r.size.pods / 1000}k`.padStart(16),
  secs(r.syncS).padStart(6), secs(r.relistS).padStart(7), secs(r.restartS).padStart(8),
  MB(r.peak).padStart(8), MB(r.anonPeak).padStart(7), MB(r.hwm).padStart(7), String(r.majorFaults).padStart(7), String(r.oomKills).padStart(4),
  `${r.wrong}/${r.lost}/${r.asked}`.padStart(15), r.maxMs.toFixed(0).padStart(6), `  ${r.ok ? 'ok' : `FAIL${r.error ? `: ${r.error}` : ''}`}`,
].join(' ');
const fits = WORKERS.map((w) => {
  const good = results.filter((r) => r.workers === w && r.ok).map((r) => r.factor);
  const best = good.length ? Math.max(...good) : undefined;
  const size = best === undefined ? undefined : results.find((r) => r.workers === w && r.factor === best).size;
  const next = failedAt.get(w);
  return `  workers ${w}: ${best === undefined ? 'none of the sizes tried' : `${best}x (${size.services} services, ${size.endpointsTotal} endpoints, ${size.pods} pods)`}` +
    `${next !== undefined ? `; ${next}x failed` : FACTORS.some((f) => f > (best ?? 0)) ? '; larger sizes not tried (time budget)' : `; ${best}x was the largest size tried`}`;
});
const headline = results.find((r) => r.factor === 1 && r.workers === 1);
const out = [
  '',
  `memlimit: clusterdns ${process.env.BENCH_REV ?? ''} alone in a ${LIMIT_MIB} MiB memory cgroup (v${results[0]?.cgroupVersion ?? '?'}, swap off), --pods verified, ` +
    `the image's node flags; the driver (test API server + prober thread) on CPU ${process.env.BENCH_CLIENT_CPU ?? '?'}; node ${process.version}`,
  `per run: first sync, a 410 Gone on every watch (full relist), the API server down ${DOWN_S} s and back with its history compacted (full relist);`,
  `a prober asks ${results[0]?.probed ?? '?'} names (services, endpoints, pods, NXDOMAIN) one every ${PERIOD_MS} ms throughout, lost = no reply in ${TIMEOUT_MS} ms`,
  '',
  `  ${'size'.padStart(5)} ${'workers'.padStart(7)} ${'CPUs'.padStart(4)} ${'svc/endp/pods'.padStart(16)} ${'sync s'.padStart(6)} ${'410 s'.padStart(7)} ${'restart s'.padStart(8)}` +
    ` ${'cg peak'.padStart(8)} ${'anon'.padStart(7)} ${'VmHWM'.padStart(7)} ${'majflt'.padStart(7)} ${'OOM'.padStart(4)} ${'wrong/lost/asked'.padStart(15)} ${'max ms'.padStart(6)}`,
  ...results.map(row),
  '',
  `  (MB = MiB; cg peak: the cgroup's high-water mark, page cache included (node's binary is a private copy, so its pages are charged`,
  `   here, as in a container); anon: the peak of its anonymous memory, sampled every 50 ms: what an OOM kill follows; VmHWM: peak RSS;`,
  `   majflt: clusterdns's page faults read from disk (its code paged in again after the kernel reclaimed it); 410 s / restart s: from the fault (the API server's return) to every kind listed again)`,
  `  the largest cluster that fits ${LIMIT_MIB} MiB through sync, 410 and restart, by worker count:`,
  ...fits,
  `  1x with one worker: ${headline === undefined ? 'not run' : headline.ok ? 'no OOM kill, every answer right' : 'FAILED'}`,
  '',
].join('\n');
process.stdout.write(out);
writeFileSync(join(OUT, 'memlimit.txt'), out);
writeFileSync(join(OUT, 'memlimit.json'), JSON.stringify(results, null, 2));
// The 1x run with one worker is the claim: it must have run (no smaller size failed first) and passed.
process.exitCode = headline?.ok || !(FACTORS.includes(1) && WORKERS.includes(1)) ? 0 : 1;
