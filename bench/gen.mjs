#!/usr/bin/env node
// bench/gen.mjs — writes the benchmark's input data: one synthetic cluster, described twice.
//
// Owns: cluster.yaml (Kubernetes manifests for clusterdns), zone.db (the same names and answers for nsd),
// existing.txt and mixed.txt (dnsperf query files), probe.txt (one name and its expected answer).
// Must not touch: anything outside the output directory. No dependencies, no randomness: the same
// arguments give byte-identical files, so runs on different days compare like with like.
//
// Usage: node bench/gen.mjs [--out bench/out] [--services 1000] [--namespaces 10]

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'bench/out' },
    services: { type: 'string', default: '1000' },
    namespaces: { type: 'string', default: '10' },
  },
});
const SERVICES = positiveInt('services', values.services);
const NAMESPACES = positiveInt('namespaces', values.namespaces);
const OUT = values.out;

const ZONE = 'cluster.local';
const TTL = 5;
const ENDPOINTS_PER_HEADLESS = 3;
const PORT = { name: 'http', port: 80, protocol: 'TCP' };

function positiveInt(name, text) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${text}"`);
  return n;
}

/** Every 10th block of ten services is headless: i = 30..39, 130..139, ... — 10%, spread over all namespaces. */
const isHeadless = (i) => Math.floor(i / 10) % 10 === 3;

// ---- the model: plain data both renderers read ----
const namespaces = Array.from({ length: NAMESPACES }, (_, n) => `ns${n}`);
const services = [];
let headlessCount = 0;
for (let i = 0; i < SERVICES; i++) {
  const svc = { name: `svc${i}`, ns: namespaces[i % NAMESPACES] };
  if (isHeadless(i)) {
    const h = headlessCount++;
    // 10.244.<h/250>.<...>: three addresses per service, unique across the cluster.
    const base = h * ENDPOINTS_PER_HEADLESS;
    svc.endpoints = Array.from({ length: ENDPOINTS_PER_HEADLESS }, (_, k) => {
      const n = base + k;
      return `10.244.${Math.floor(n / 250)}.${(n % 250) + 1}`;
    });
  } else {
    // 10.96.1.1 upwards: clear of 10.96.0.1 (kubernetes) and 10.96.0.10 (kube-dns).
    svc.clusterIP = `10.96.${1 + Math.floor(i / 250)}.${(i % 250) + 1}`;
  }
  services.push(svc);
}

const fqdn = (svc) => `${svc.name}.${svc.ns}.svc.${ZONE}.`;
const dashed = (ip) => ip.replaceAll('.', '-');

// ---- cluster.yaml ----
function renderManifests() {
  const docs = namespaces.map((ns) => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`);
  for (const svc of services) {
    const headless = svc.endpoints !== undefined;
    docs.push(
      [
        'apiVersion: v1',
        'kind: Service',
        'metadata:',
        `  name: ${svc.name}`,
        `  namespace: ${svc.ns}`,
        'spec:',
        '  type: ClusterIP',
        `  clusterIP: ${headless ? 'None' : svc.clusterIP}`,
        ...(headless ? [] : [`  clusterIPs: [${svc.clusterIP}]`]),
        `  selector: {app: ${svc.name}}`,
        '  ports:',
        `    - name: ${PORT.name}`,
        `      port: ${PORT.port}`,
        `      targetPort: ${PORT.port}`,
        `      protocol: ${PORT.protocol}`,
        '',
      ].join('\n'),
    );
    if (headless) {
      docs.push(
        [
          'apiVersion: discovery.k8s.io/v1',
          'kind: EndpointSlice',
          'metadata:',
          `  name: ${svc.name}-abcde`,
          `  namespace: ${svc.ns}`,
          '  labels:',
          `    kubernetes.io/service-name: ${svc.name}`,
          'addressType: IPv4',
          'ports:',
          `  - name: ${PORT.name}`,
          `    port: ${PORT.port}`,
          `    protocol: ${PORT.protocol}`,
          'endpoints:',
          ...svc.endpoints.flatMap((ip) => [`  - addresses: ["${ip}"]`, '    conditions:', '      ready: true']),
          '',
        ].join('\n'),
      );
    }
  }
  return docs.map((d) => `---\n${d}`).join('');
}

// ---- zone.db: what clusterdns should answer, written as a static zone ----
function renderZone() {
  const srv = `_${PORT.name}._${PORT.protocol.toLowerCase()}`;
  const lines = [
    `$ORIGIN ${ZONE}.`,
    `$TTL ${TTL}`,
    `${ZONE}. ${TTL} IN SOA ns.dns.${ZONE}. hostmaster.${ZONE}. 1 7200 1800 86400 ${TTL}`,
    `${ZONE}. ${TTL} IN NS ns.dns.${ZONE}.`,
    `ns.dns.${ZONE}. ${TTL} IN A 127.0.0.1`,
    `dns-version.${ZONE}. 28800 IN TXT "1.1.0"`,
  ];
  for (const svc of services) {
    const name = fqdn(svc);
    if (svc.clusterIP !== undefined) {
      lines.push(`${name} ${TTL} IN A ${svc.clusterIP}`);
      lines.push(`${srv}.${name} ${TTL} IN SRV 0 100 ${PORT.port} ${name}`);
    } else {
      const weight = Math.floor(100 / svc.endpoints.length);
      for (const ip of svc.endpoints) {
        const target = `${dashed(ip)}.${name}`;
        lines.push(`${name} ${TTL} IN A ${ip}`);
        lines.push(`${target} ${TTL} IN A ${ip}`);
        lines.push(`${srv}.${name} ${TTL} IN SRV 0 ${weight} ${PORT.port} ${target}`);
      }
    }
  }
  return lines.join('\n') + '\n';
}

// ---- query files ----
/** Deterministic Fisher–Yates (mulberry32), so dnsperf does not walk namespaces in order. */
function shuffle(items, seed) {
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

function existingQueries() {
  const q = [];
  services.forEach((svc, i) => {
    const name = fqdn(svc).slice(0, -1);
    q.push(`${name} A`); // every service
    if (i % 4 === 0) q.push(`_${PORT.name}._${PORT.protocol.toLowerCase()}.${name} SRV`); // a quarter: SRV
    if (svc.endpoints !== undefined && i % 2 === 0) q.push(`${dashed(svc.endpoints[0])}.${name} A`); // endpoint names
  });
  return shuffle(q, 1);
}

/** Names that exist nowhere in the zone (NXDOMAIN from both): unknown services and unknown namespaces. */
function missingQueries(count) {
  return Array.from({ length: count }, (_, k) =>
    k % 3 === 2
      ? `svc${k % SERVICES}.nosuchns${k % NAMESPACES}.svc.${ZONE} A`
      : `nosuch${k}.${namespaces[k % NAMESPACES]}.svc.${ZONE} A`,
  );
}

const existing = existingQueries();
const missing = missingQueries(existing.length);
const mixed = existing.flatMap((q, k) => [q, missing[k]]); // strictly alternating: exactly 50/50

mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, 'cluster.yaml'), renderManifests());
writeFileSync(join(OUT, 'zone.db'), renderZone());
writeFileSync(join(OUT, 'existing.txt'), existing.join('\n') + '\n');
writeFileSync(join(OUT, 'mixed.txt'), mixed.join('\n') + '\n');
// One ClusterIP service and its address: run.sh waits for this answer before measuring.
const probe = services.find((s) => s.clusterIP !== undefined);
writeFileSync(join(OUT, 'probe.txt'), `${fqdn(probe)} ${probe.clusterIP}\n`);

console.log(
  `gen: ${NAMESPACES} namespaces, ${SERVICES} services (${headlessCount} headless), ` +
    `${existing.length} existing + ${missing.length} missing queries -> ${OUT}`,
);
