#!/usr/bin/env node
// bench/forward-gen.mjs — writes the input data of bench/forward.sh: an external zone for the loopback upstream,
// and a tiny cluster with one pod whose address is a loopback address, so a client can send "from the pod".
//
// Owns: example.test.db (NSD's zone), forward.txt (dnsperf queries: A for every name), zipf.txt (with --zipf N: N A
// queries whose names follow a Zipf law, s = 1, as a cluster's external names do), names.txt (the names the
// pod-style client looks up), cluster.yaml (clusterdns's manifests), resolv.conf (clusterdns's --resolv-conf:
// no search line, so --autopath walks exactly the pod's cluster search path), probe.txt (one name, its address).
// Must not touch: anything outside the output directory. No randomness: the same arguments give the same bytes.
//
// Usage: node bench/forward-gen.mjs [--out bench/out/forward] [--names 1000] [--pod-ip 127.0.0.11] [--ttl 3600]
//        [--zipf 0]

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'bench/out/forward' },
    names: { type: 'string', default: '1000' },
    'pod-ip': { type: 'string', default: '127.0.0.11' },
    ttl: { type: 'string', default: '3600' },
    zipf: { type: 'string', default: '0' },
  },
});
const NAMES = Number(values.names);
if (!Number.isInteger(NAMES) || NAMES < 1 || NAMES > 60000) throw new Error(`--names must be 1..60000, got "${values.names}"`);
const POD_IP = values['pod-ip'];
if (!/^127\.\d+\.\d+\.\d+$/.test(POD_IP)) throw new Error(`--pod-ip must be a loopback address (127.x.y.z), got "${POD_IP}"`);
const OUT = values.out;
const ZIPF = Number(values.zipf);
if (!Number.isInteger(ZIPF) || ZIPF < 0 || ZIPF > 10_000_000) throw new Error(`--zipf must be 0..10000000, got "${values.zipf}"`);

const ZONE = 'example.test';
// By default long enough that no answer expires during a run, and that clusterdns's prefetch (last 10% of the TTL)
// and unbound's (when on) never fire: the measured rounds are served from the cache alone. bench/cache-workers.sh
// sets it short, so that names expire and the caches' hit rates show.
const TTL = Number(values.ttl);
if (!Number.isInteger(TTL) || TTL < 1 || TTL > 86400) throw new Error(`--ttl must be 1..86400, got "${values.ttl}"`);

// 198.18.0.0/15 is set aside for benchmarks (RFC 2544); 250 hosts per /24, like gen.mjs.
const addressOf = (i) => `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`;
const names = Array.from({ length: NAMES }, (_, i) => `www${i}.${ZONE}`);

// The negative TTL (the SOA's minimum) is long too: the pod-style lookups ask AAAA, which is NODATA here and
// must stay cached as well.
const zone = [
  `$ORIGIN ${ZONE}.`,
  `$TTL ${TTL}`,
  `@ ${TTL} IN SOA ns.${ZONE}. hostmaster.${ZONE}. 1 7200 1800 86400 ${TTL}`,
  `@ ${TTL} IN NS ns.${ZONE}.`,
  `ns ${TTL} IN A 127.0.0.1`,
  ...names.map((name, i) => `${name}. ${TTL} IN A ${addressOf(i)}`),
].join('\n') + '\n';

// A Namespace, one Service (something in the cluster zone to answer) and the pod the client stands in for.
const cluster = `# written by bench/forward-gen.mjs: the pod has a loopback address, so a client bound to it is "the pod"
apiVersion: v1
kind: Namespace
metadata: {name: default}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.20
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default}
status: {phase: Running, podIP: ${POD_IP}}
`;

mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, `${ZONE}.db`), zone);
writeFileSync(join(OUT, 'forward.txt'), names.map((name) => `${name} A`).join('\n') + '\n');
writeFileSync(join(OUT, 'names.txt'), names.join('\n') + '\n');
if (ZIPF > 0) writeFileSync(join(OUT, 'zipf.txt'), zipfQueries(ZIPF).join('\n') + '\n');
writeFileSync(join(OUT, 'cluster.yaml'), cluster);
// clusterdns reads --resolv-conf with --autopath for the host search domains; this one has none. Its nameserver
// is never used (--upstream is given) and is not the machine's.
writeFileSync(join(OUT, 'resolv.conf'), 'nameserver 127.0.0.1\noptions ndots:5\n');
writeFileSync(join(OUT, 'probe.txt'), `${names[0]}. ${addressOf(0)}\n`);

/** `count` A queries, name i drawn with probability proportional to 1/(i+1); a fixed-seed generator (mulberry32). */
function zipfQueries(count) {
  let seed = 1;
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const cumulative = [];
  let total = 0;
  for (let i = 0; i < NAMES; i++) cumulative.push((total += 1 / (i + 1)));
  return Array.from({ length: count }, () => {
    const target = random() * total;
    let low = 0;
    for (let high = NAMES - 1; low < high; ) {
      const middle = (low + high) >> 1;
      if (cumulative[middle] < target) low = middle + 1;
      else high = middle;
    }
    return `${names[low]} A`;
  });
}

console.log(`forward-gen: zone ${ZONE} with ${NAMES} A names (TTL ${TTL}), pod ${POD_IP} in default -> ${OUT}`);
