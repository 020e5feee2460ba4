#!/usr/bin/env node
// bench/autopath-client.mjs — a pod's name lookups, as glibc's getaddrinfo makes them, timed from the client.
//
// For each name it walks the pod's resolv.conf the way glibc 2.36's res_nsearch does: a name with fewer dots than
// ndots goes through the search list first and is tried as it is last (with ndots or more dots: as it is first).
// For each candidate it sends A and AAAA together on one socket (glibc's default, no single-request), waits for
// both, and stops at the first candidate where either reply has an answer (an address or a CNAME); NXDOMAIN and
// NODATA move on to the next candidate, as glibc does. No EDNS: a pod's resolv.conf has no `options edns0`.
//
// The socket is bound to the pod's address (a loopback address here), so the server sees the query come from the
// pod. This emulates glibc instead of running it: running glibc from a pod's address would need a network
// namespace. It never uses the machine's resolver.
//
// Owns: one UDP socket and the file given by --out (one line per measured lookup). Must not touch anything else.
// Prints one JSON line (the summary) on stdout. Every wait is bounded by --timeout-ms per candidate.
//
// Usage: node bench/autopath-client.mjs --server 127.0.0.1:PORT --bind 127.0.0.11 --names FILE --lookups 2000
//          [--warm] [--search "default.svc.cluster.local svc.cluster.local cluster.local"] [--ndots 5]
//          [--timeout-ms 1000] [--out FILE] [--label TEXT]

import { createSocket } from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    server: { type: 'string' },
    bind: { type: 'string', default: '127.0.0.11' },
    names: { type: 'string' },
    lookups: { type: 'string', default: '2000' },
    warm: { type: 'boolean', default: false },
    search: { type: 'string', default: 'default.svc.cluster.local svc.cluster.local cluster.local' },
    ndots: { type: 'string', default: '5' },
    'timeout-ms': { type: 'string', default: '1000' },
    out: { type: 'string' },
    label: { type: 'string', default: '' },
  },
});
const fail = (message) => {
  process.stderr.write(`autopath-client: ${message}\n`);
  process.exit(2);
};
const [host, portText] = (values.server ?? fail('--server HOST:PORT is required')).split(':');
const PORT = Number(portText);
const LOOKUPS = Number(values.lookups);
const NDOTS = Number(values.ndots);
const TIMEOUT_MS = Number(values['timeout-ms']);
if (!Number.isInteger(PORT) || !Number.isInteger(LOOKUPS) || LOOKUPS < 1 || !Number.isInteger(NDOTS) || !(TIMEOUT_MS > 0)) {
  fail('--server port, --lookups, --ndots and --timeout-ms must be positive numbers');
}
const SEARCH = values.search.split(/\s+/).filter(Boolean);
const NAMES = readFileSync(values.names ?? fail('--names FILE is required'), 'utf8').split('\n').filter(Boolean);
if (NAMES.length === 0) fail(`no names in ${values.names}`);

const A = 1;
const AAAA = 28;
const NXDOMAIN = 3;

/** A query without EDNS, RD set, as glibc's res_mkquery makes it. */
function encodeQuery(id, name, qtype) {
  const labels = name.split('.').filter(Boolean).map((label) => Buffer.from(label, 'ascii'));
  const packet = Buffer.alloc(12 + labels.reduce((n, label) => n + 1 + label.length, 1) + 4);
  packet.writeUInt16BE(id, 0);
  packet.writeUInt16BE(0x0100, 2); // RD
  packet.writeUInt16BE(1, 4); // QDCOUNT
  let offset = 12;
  for (const label of labels) {
    packet[offset++] = label.length;
    offset += label.copy(packet, offset);
  }
  packet[offset++] = 0;
  packet.writeUInt16BE(qtype, offset);
  packet.writeUInt16BE(1, offset + 2); // IN
  return packet;
}

/** The reply's rcode and answer count, when it is a response to (id, the question's bytes); undefined otherwise. */
function decodeReply(packet, id, question) {
  if (packet.length < 12 || packet.readUInt16BE(0) !== id || (packet[2] & 0x80) === 0) return undefined;
  // Same question, compared as the bytes we sent (case-insensitively, as a resolver must accept 0x20 changes).
  const asked = packet.subarray(12, 12 + question.length);
  if (packet.readUInt16BE(4) !== 1 || asked.toString('latin1').toLowerCase() !== question.toString('latin1').toLowerCase()) return undefined;
  return { rcode: packet[3] & 0x0f, answers: packet.readUInt16BE(6) };
}

const socket = createSocket('udp4');
await new Promise((resolve, reject) => {
  socket.once('error', reject);
  socket.bind(0, values.bind, () => {
    socket.off('error', reject);
    resolve();
  });
}).catch((error) => fail(`cannot bind ${values.bind}: ${error.message}`));

/** Replies wanted, by query ID: one A/AAAA pair is in flight at a time, so IDs never collide. */
const waiting = new Map();
socket.on('message', (packet, peer) => {
  if (peer.address !== host || peer.port !== PORT || packet.length < 2) return;
  const wanted = waiting.get(packet.readUInt16BE(0));
  if (wanted === undefined) return;
  const reply = decodeReply(packet, wanted.id, wanted.question);
  if (reply === undefined) return;
  waiting.delete(wanted.id);
  wanted.done(reply);
});

let nextId = (Math.random() * 0x10000) >>> 0;
/** Sends A and AAAA for one candidate; resolves with both replies (undefined for one that timed out). */
function askBoth(name) {
  return Promise.all([A, AAAA].map((qtype) => new Promise((resolve) => {
    const id = (nextId = (nextId + 1) & 0xffff);
    const packet = encodeQuery(id, name, qtype);
    const timer = setTimeout(() => {
      waiting.delete(id);
      resolve(undefined);
    }, TIMEOUT_MS);
    waiting.set(id, { id, question: packet.subarray(12), done: (reply) => { clearTimeout(timer); resolve(reply); } });
    socket.send(packet, PORT, host);
  })));
}

function candidatesOf(name) {
  const dots = name.split('.').length - 1;
  const searched = SEARCH.map((domain) => `${name}.${domain}`);
  return dots >= NDOTS ? [name, ...searched] : [...searched, name];
}

/** One lookup: queries sent, client-observed milliseconds, and how it ended. */
async function lookup(name) {
  const started = process.hrtime.bigint();
  let queries = 0;
  let outcome = 'nxdomain';
  for (const candidate of candidatesOf(name)) {
    const replies = await askBoth(candidate);
    queries += 2;
    if (replies.some((reply) => reply === undefined)) {
      outcome = 'timeout'; // glibc would retry; a benchmark counts it and moves on
      break;
    }
    if (replies.some((reply) => reply.rcode === 0 && reply.answers > 0)) {
      outcome = 'ok';
      break;
    }
    if (replies.some((reply) => reply.rcode !== 0 && reply.rcode !== NXDOMAIN)) outcome = 'servfail';
  }
  return { queries, ms: Number(process.hrtime.bigint() - started) / 1e6, outcome };
}

if (values.warm) for (const name of NAMES) await lookup(name);
const lines = [];
const results = [];
for (let i = 0; i < LOOKUPS; i++) {
  const name = NAMES[i % NAMES.length];
  const result = await lookup(name);
  results.push(result);
  lines.push(`${values.label}\t${i}\t${name}\t${result.queries}\t${result.ms.toFixed(4)}\t${result.outcome}`);
}
socket.close();
if (values.out !== undefined) writeFileSync(values.out, lines.join('\n') + '\n');

const sorted = results.map((r) => r.ms).sort((a, b) => a - b);
const at = (p) => sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)];
const failed = results.filter((r) => r.outcome !== 'ok').length;
console.log(JSON.stringify({
  label: values.label,
  lookups: results.length,
  queriesPerLookup: results.reduce((n, r) => n + r.queries, 0) / results.length,
  p50ms: at(0.5),
  p99ms: at(0.99),
  failed,
}));
