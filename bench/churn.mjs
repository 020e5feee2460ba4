// bench/churn.mjs — cluster-zone QPS while EndpointSlices change, against the same server with no change, in
// the same run: BENCH_CHURN_RATE slice updates a second (each moves one endpoint's address), all on 1% of the
// services, while dnsperf asks every service's name at its maximum rate. The target (issue "Drop-in for CoreDNS"):
// QPS under churn at least 0.9x QPS without.
//
// Owns: the test API server it runs in-process, the clusterdns and dnsperf it starts (stopped by PID), and
// bench/out/churn.*. Must not touch: anything else. Traffic only to 127.0.0.1. Run it through bench/cluster.sh,
// which compiles the test API server and pins this driver (and dnsperf) to BENCH_CLIENT_CPU; clusterdns is pinned
// to BENCH_SERVER_CPU.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  OUT, ZONE, clusterIPOf, dnsperf, endpointIPOf, envInt, loadFakeApiServer, log, median, namespaceObject, overallDeadline,
  serviceObject, sliceObject, startClusterdns, writeKubeconfig,
} from './cluster-lib.mjs';

const SERVICES = envInt('BENCH_CHURN_SERVICES', 1000);
const NAMESPACES = envInt('BENCH_CHURN_NAMESPACES', 10);
const RATE = envInt('BENCH_CHURN_RATE', 200); // slice updates per second
const SECONDS = envInt('BENCH_SECONDS', 10); // one measured dnsperf run
const ROUNDS = envInt('BENCH_ROUNDS', 3); // each: one run without churn and one with, in alternating order
const SERVER_CPU = envInt('BENCH_SERVER_CPU', 1);
const CLIENT_CPU = envInt('BENCH_CLIENT_CPU', 0);
const DNSPERF_ARGS = (process.env.BENCH_DNSPERF_ARGS ?? '-c 8 -q 500 -T 2').split(/\s+/).filter(Boolean);
const TARGET = 0.9;
overallDeadline(envInt('BENCH_DEADLINE', 600));

const FakeKubeApiServer = await loadFakeApiServer();
const api = new FakeKubeApiServer();
await api.start();

// ---- the cluster: SERVICES ClusterIP services, each with a slice of 3 ready endpoints ----
const services = [];
for (let n = 0; n < NAMESPACES; n++) api.create('namespaces', namespaceObject(`ns${n}`));
for (let i = 0; i < SERVICES; i++) {
  const service = { name: `svc${i}`, namespace: `ns${i % NAMESPACES}`, index: i };
  api.create('services', serviceObject({ ...service, clusterIP: clusterIPOf(i) }));
  api.create('endpointslices', sliceObject({ name: `${service.name}-abcde`, namespace: service.namespace, service: service.name, addresses: endpointsOf(i, 0) }));
  services.push(service);
}
/** 1% of the services, spread over the namespaces: the ones whose endpoints move. */
const churned = services.filter((service) => service.index % 100 === 0);

function endpointsOf(i, version) {
  return [0, 1, 2].map((j) => endpointIPOf(i * 3 + j + (j === 0 ? (version % 2) * SERVICES * 3 : 0)));
}

const kubeconfig = writeKubeconfig(api, join(OUT, 'churn.kubeconfig'));
const cdns = await startClusterdns({ kubeconfig, cpu: SERVER_CPU, logFile: join(OUT, 'churn.clusterdns.log') });
await cdns.synced;
const data = join(OUT, 'churn.queries');
writeFileSync(data, services.map((service) => `${service.name}.${service.namespace}.svc.${ZONE} A\n`).join(''));

/** One dnsperf run at full rate; its QPS and lost count. */
const measure = (seconds) => dnsperf({ port: cdns.port, data, seconds, cpu: CLIENT_CPU, args: ['-t', '2', ...DNSPERF_ARGS] });

/** Updates RATE slices a second, in ticks of 10 ms, until stopped; returns how many it made. */
function churn() {
  let version = 0;
  let made = 0;
  const started = performance.now();
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) / 1000) * RATE);
    for (; made < due; made++) {
      const service = churned[made % churned.length];
      if (made % churned.length === 0) version++;
      api.update('endpointslices', sliceObject({ name: `${service.name}-abcde`, namespace: service.namespace, service: service.name, addresses: endpointsOf(service.index, version) }));
    }
  }, 10);
  return () => {
    clearInterval(timer);
    return { made, seconds: (performance.now() - started) / 1000 };
  };
}

await measure(3); // warm-up: JIT and prepared answers
const rows = [];
for (let round = 1; round <= ROUNDS; round++) {
  const order = round % 2 === 1 ? ['quiet', 'churn'] : ['churn', 'quiet'];
  const result = {};
  for (const mode of order) {
    const stop = mode === 'churn' ? churn() : () => ({ made: 0, seconds: SECONDS });
    const { qps, lost } = await measure(SECONDS);
    const { made, seconds } = stop();
    result[mode] = { qps, lost, rate: made / seconds };
    log(`round ${round} ${mode.padEnd(5)} ${qps.toFixed(0).padStart(7)} qps  lost ${lost}  updates ${(made / seconds).toFixed(0)}/s`);
  }
  rows.push({ round, ...result, ratio: result.churn.qps / result.quiet.qps });
}
await cdns.stop();
await api.stop();

const ratio = median(rows.map((row) => row.ratio));
const summary = [
  `churn: ${SERVICES} services, ${churned.length} of them (1%) with a slice update ${RATE}/s in all; dnsperf ${DNSPERF_ARGS.join(' ')}, ${SECONDS} s x ${ROUNDS} rounds`,
  ...rows.map((row) => `round ${row.round}: quiet ${row.quiet.qps.toFixed(0)} qps, churn ${row.churn.qps.toFixed(0)} qps (${row.churn.rate.toFixed(0)} updates/s, lost ${row.churn.lost}), ratio ${row.ratio.toFixed(3)}`),
  `median ratio churn/quiet: ${ratio.toFixed(3)} (target >= ${TARGET}) ${ratio >= TARGET ? 'MET' : 'NOT MET'}  [${process.env.BENCH_REV ?? 'unknown'}]`,
].join('\n');
writeFileSync(join(OUT, 'churn.txt'), `${summary}\n`);
process.stdout.write(`${summary}\n`);
