// bench/cluster-lib.mjs — what the live-cluster benchmarks (propagation.mjs, scale.mjs, memlimit.mjs, ...) share:
// the synthetic cluster's objects and the scale fixture built from them, a raw UDP DNS client, starting and
// stopping clusterdns against the test API server (optionally inside a memory cgroup), memory readings from /proc,
// /metrics and the cgroup, and percentiles.
//
// Owns: the clusterdns processes it starts (stopped by PID, on every exit path), the memory cgroups it creates
// (removed on every exit path) and files under bench/out/.
// Must not touch: anything else. Traffic goes only to 127.0.0.1. No dependencies beyond Node and the test API
// server, which bench/cluster.sh compiles from test/support/k8s-api-server.ts into bench/out/fake/ (tsc only;
// nothing of clusterdns is built here: dist/ must come from `npm run build`).

import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const OUT = process.env.BENCH_OUT ?? join(ROOT, 'bench', 'out');
export const ZONE = 'cluster.local';

/**
 * The node flags the image runs clusterdns with (the Dockerfile's ENTRYPOINT), so the figures are the image's: none
 * today, as clusterdns sets its heap flags itself (src/runtime/heap.ts).
 */
export const IMAGE_NODE_FLAGS = JSON.parse(/^ENTRYPOINT (.*)$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))[1]).slice(1, -1);

/** Extra node flags for clusterdns (diagnosis: `--cpu-prof --cpu-prof-dir bench/out/prof`, `--heap-prof`, ...). */
export const NODE_ARGS = (process.env.BENCH_CLUSTERDNS_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== '');

export const log = (msg) => process.stderr.write(`bench: ${msg}\n`);

/** The compiled FakeKubeApiServer: bench/cluster.sh puts it in bench/out/fake/ (whatever BENCH_OUT is), inside the
 * repository, so its import of @kubernetes/client-node resolves to node_modules/. */
export async function loadFakeApiServer() {
  return (await loadCompiled('k8s-api-server.js')).FakeKubeApiServer;
}

/** The compiled TestUpstream (test/support/upstream.ts), the DNS server the soak forwards to. */
export async function loadTestUpstream() {
  return (await loadCompiled('upstream.js')).TestUpstream;
}

async function loadCompiled(name) {
  const file = join(ROOT, 'bench', 'out', 'fake', name);
  try {
    return await import(pathToFileURL(file).href);
  } catch (error) {
    throw new Error(`cannot load ${file} (run the benchmark through bench/cluster.sh, which compiles it): ${error.message}`);
  }
}

export function envInt(name, fallback) {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got '${text}'`);
  return n;
}

// ---- processes: only the ones started here, by PID -----------------------------------------------------------

const children = new Set();

/** Registers a child process to be killed (by its PID) if the benchmark exits or is interrupted. */
export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function killAll() {
  for (const child of children) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

/** Ends the whole benchmark (and every clusterdns it started) after `seconds`, whatever it is doing. */
export function overallDeadline(seconds) {
  setTimeout(() => {
    log(`giving up: the run took longer than ${seconds}s (BENCH_DEADLINE)`);
    process.exit(3);
  }, seconds * 1000).unref();
}

/** A port free for UDP and TCP on 127.0.0.1, for clusterdns's --listen (it must be known before it starts). */
export async function freePort() {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await new Promise((resolve, reject) => {
      const tcp = net.createServer().listen(0, '127.0.0.1', () => {
        const p = tcp.address().port;
        const udp = dgram.createSocket('udp4');
        udp.once('error', () => tcp.close(() => resolve(0)));
        udp.bind(p, '127.0.0.1', () => udp.close(() => tcp.close(() => resolve(p))));
      }).once('error', reject);
    });
    if (port !== 0) return port;
  }
  throw new Error('no free port on 127.0.0.1');
}

/**
 * Starts `node <IMAGE_NODE_FLAGS> <nodeArgs> dist/cli.js serve --kubeconfig FILE --listen 127.0.0.1:PORT --upstream
 * UPSTREAM ...` (no forwarding unless `upstream` is given) pinned to `cpu` (a taskset CPU list such as '0,1').
 * Resolves once spawned (not once ready) with `{ child, pid, port, startedAt, http, synced }`: `http` resolves to
 * the /metrics address from the 'serving' log line, `synced` to the 'synced' line (with clusterdns's own `ms`).
 * With `cgroup` (a MemoryCgroup), the process joins it before node starts: a shell writes its own PID into
 * cgroup.procs and execs the rest, so the PID stays clusterdns's (as it does through clusterdns's own re-exec with
 * its heap flags) and none of its memory is charged elsewhere. `node`: another node binary (see privateNodeCopy).
 */
export async function startClusterdns({ kubeconfig, cpu, args = [], nodeArgs = NODE_ARGS, logFile, upstream = 'none', cgroup, node = process.execPath }) {
  const port = await freePort();
  const argv = ['-c', String(cpu), node, ...IMAGE_NODE_FLAGS, ...nodeArgs, join(ROOT, 'dist', 'cli.js'), 'serve',
    '--kubeconfig', kubeconfig, '--listen', `127.0.0.1:${port}`, '--upstream', upstream,
    '--health', '127.0.0.1:0', '--ready', '127.0.0.1:0', '--metrics', '127.0.0.1:0',
    // info, not warn: the 'serving' and 'synced' lines are info; clusterdns logs only state changes at info.
    '--log-level', 'info', '--lameduck', '0', ...args];
  const startedAt = performance.now();
  // stdout (where node's --trace-gc and the like write) goes next to the log, when there is one.
  const stdout = logFile ? openSync(logFile.replace(/(\.log)?$/, '.stdout'), 'w') : 'ignore';
  const [command, commandArgs] = cgroup
    ? ['sh', ['-c', 'echo $$ > "$0" && exec "$@"', cgroup.procsFile, 'taskset', ...argv]]
    : ['taskset', argv];
  const child = track(spawn(command, commandArgs, { cwd: ROOT, stdio: ['ignore', stdout, 'pipe'] }));
  if (typeof stdout === 'number') closeSync(stdout);
  let stderr = '';
  const lines = [];
  let onLine = () => {};
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
    let i;
    while ((i = stderr.indexOf('\n')) >= 0) {
      const line = stderr.slice(0, i);
      stderr = stderr.slice(i + 1);
      lines.push(line);
      onLine(line);
    }
  });
  const waitLine = (msg, timeoutMs) => new Promise((resolve, reject) => {
    const match = (line) => {
      try {
        const parsed = JSON.parse(line);
        return parsed.msg === msg ? parsed : undefined;
      } catch {
        return undefined;
      }
    };
    for (const line of lines) {
      const hit = match(line);
      if (hit) return resolve(hit);
    }
    const timer = setTimeout(() => reject(new Error(`clusterdns logged no '${msg}' within ${timeoutMs} ms`)), timeoutMs);
    const previous = onLine;
    onLine = (line) => {
      previous(line);
      const hit = match(line);
      if (hit) {
        clearTimeout(timer);
        resolve(hit);
      }
    };
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`clusterdns exited (${signal ?? code}) before '${msg}':\n${lines.slice(-10).join('\n')}`));
    });
  });
  const serving = waitLine('serving', 60_000);
  const synced = waitLine('synced: every watched kind is listed', 120_000);
  serving.catch(() => undefined);
  synced.catch(() => undefined);
  const handle = {
    child,
    pid: child.pid,
    port,
    startedAt,
    http: serving.then((line) => line.http.metrics),
    synced,
    lines,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGINT'); // clusterdns: SIGINT closes at once (no lame duck)
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      if (logFile) writeFileSync(logFile, `${lines.join('\n')}\n`);
    },
  };
  return handle;
}

/** One dnsperf run pinned to `cpu` against 127.0.0.1:`port` (`args` as dnsperf takes them, -t included): its QPS,
 * queries sent and lost, and the response-code line. Killed if it runs 30 s past its length. */
export function dnsperf({ port, data, seconds, cpu, args }) {
  return new Promise((resolve, reject) => {
    const child = track(spawn('taskset', ['-c', String(cpu), 'dnsperf', '-s', '127.0.0.1', '-p', String(port), '-d', data,
      '-l', String(seconds), ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (out += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const num = (re) => Number(re.exec(out)?.[1]);
      const result = { qps: num(/Queries per second:\s+([\d.]+)/), sent: num(/Queries sent:\s+(\d+)/), lost: num(/Queries lost:\s+(\d+)/),
        rcodes: /Response codes:\s+(.*)/.exec(out)?.[1] ?? '' };
      if (code !== 0 || !Number.isFinite(result.qps)) reject(new Error(`dnsperf failed (${code}):\n${out}`));
      else resolve(result);
    });
  });
}

/** Writes the API server's kubeconfig (http:// with insecure-skip-tls-verify, as the client requires). */
export function writeKubeconfig(api, file) {
  writeFileSync(file, api.kubeconfigYaml());
  return file;
}

// ---- memory --------------------------------------------------------------------------------------------------

/** VmRSS and VmHWM (peak RSS) of a process, in bytes, from /proc/PID/status. */
export function procMemory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** The process's own memory breakdown from prom-client's default metrics on /metrics. */
export async function metricsMemory(address) {
  const text = await httpGet(`http://${address}/metrics`);
  const value = (name) => Number(new RegExp(`^${name} ([0-9.e+]+)`, 'm').exec(text)?.[1] ?? NaN);
  const spaces = {};
  for (const m of text.matchAll(/^nodejs_heap_space_size_used_bytes\{space="([^"]+)"\} ([0-9.e+]+)/gm)) spaces[m[1]] = Number(m[2]);
  return {
    rss: value('process_resident_memory_bytes'),
    heapTotal: value('nodejs_heap_size_total_bytes'),
    heapUsed: value('nodejs_heap_size_used_bytes'),
    external: value('nodejs_external_memory_bytes'),
    spaces,
  };
}

export function httpGet(url, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

export const MB = (bytes) => (bytes / 1024 / 1024).toFixed(1);

const sleepSync = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const readNumber = (file) => {
  try {
    return Number(readFileSync(file, 'utf8').trim());
  } catch {
    return NaN; // a kernel without this file (memory.peak before Linux 5.19, say)
  }
};
const readKey = (file, key) => {
  try {
    return Number(new RegExp(`^${key} (\\d+)`, 'm').exec(readFileSync(file, 'utf8'))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
};

/**
 * A copy of this node binary at `file` whose pages are in no page cache (written with O_DIRECT): a process run from
 * it faults its code in itself, so a memory cgroup it is in is charged for that code, as a container's is for the
 * node of its own image. From the shared binary, those pages would be charged to whoever read them first.
 */
export function privateNodeCopy(file) {
  const dd = spawnSync('dd', [`if=${process.execPath}`, `of=${file}`, 'bs=1M', 'oflag=direct', 'status=none'], { encoding: 'utf8' });
  if (dd.status !== 0) throw new Error(`dd could not copy ${process.execPath} to ${file}: ${dd.stderr}`);
  chmodSync(file, 0o755);
  return file;
}

/**
 * A memory cgroup of its own, child of this process's, limited to `limitBytes` with no swap: cgroup v2
 * (memory.max, memory.swap.max = 0) where /sys/fs/cgroup is the unified hierarchy, else v1's memory controller
 * (memory.limit_in_bytes, memory.memsw.limit_in_bytes = the same, so no swap either). Needs root. Removed by
 * remove(), and, whatever happens, when this process exits (after its children are killed: see killAll).
 * Readings: anon() (what reclaim cannot take back without swap, so what an OOM kill
 * follows: memory.stat anon / rss), peak() (the kernel's high-water mark of usage, page cache included: memory.peak / memory.max_usage_in_bytes), oomKills()
 * (memory.events / memory.oom_control oom_kill).
 */
export class MemoryCgroup {
  constructor(name, limitBytes) {
    const lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
    this.version = existsSync('/sys/fs/cgroup/cgroup.controllers') ? 2 : 1;
    const own = this.version === 2
      ? lines.find((l) => l.startsWith('0::'))?.slice(3)
      : lines.map((l) => l.split(':')).find((f) => f[1]?.split(',').includes('memory'))?.[2];
    if (own === undefined) throw new Error(`no memory cgroup in /proc/self/cgroup (cgroup v${this.version})`);
    const parent = join(this.version === 2 ? '/sys/fs/cgroup' : '/sys/fs/cgroup/memory', own);
    if (this.version === 2 && !readFileSync(join(parent, 'cgroup.subtree_control'), 'utf8').split(/\s+/).includes('memory')) {
      // A v2 cgroup with processes of its own cannot enable controllers for children (the no-internal-process rule).
      try {
        writeFileSync(join(parent, 'cgroup.subtree_control'), '+memory');
      } catch (error) {
        throw new Error(`cannot enable the memory controller under ${parent} (${error.code}): run the benchmark from a ` +
          "cgroup without other processes, e.g. 'systemd-run --scope -p Delegate=yes bash bench/cluster.sh memlimit'");
      }
    }
    this.path = join(parent, name);
    this.procsFile = join(this.path, 'cgroup.procs');
    this.limitBytes = limitBytes;
    mkdirSync(this.path);
    process.on('exit', () => this.remove());
    const files = this.version === 2
      ? [['memory.max', limitBytes], ['memory.swap.max', 0]]
      : [['memory.limit_in_bytes', limitBytes], ['memory.memsw.limit_in_bytes', limitBytes]];
    for (const [file, value] of files) {
      // No swap accounting (memory.memsw.* or memory.swap.* absent): then there is no swap to turn off.
      if (existsSync(join(this.path, file))) writeFileSync(join(this.path, file), String(value));
    }
  }

  anon() {
    return readKey(join(this.path, 'memory.stat'), this.version === 2 ? 'anon' : 'rss');
  }

  peak() {
    return readNumber(join(this.path, this.version === 2 ? 'memory.peak' : 'memory.max_usage_in_bytes'));
  }

  oomKills() {
    return this.version === 2 ? readKey(join(this.path, 'memory.events'), 'oom_kill') : readKey(join(this.path, 'memory.oom_control'), 'oom_kill');
  }

  /** Removes the cgroup once its processes are gone (they are killed first); synchronous, for the exit path. */
  remove() {
    for (let tries = 0; existsSync(this.path); tries++) {
      try {
        rmdirSync(this.path);
      } catch (error) {
        if (error.code !== 'EBUSY' || tries >= 100) throw new Error(`cannot remove the cgroup ${this.path}: ${error.message}`);
        sleepSync(50); // a killed process leaves its cgroup only once it has exited
      }
    }
  }
}

// ---- statistics ----------------------------------------------------------------------------------------------

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

// ---- a raw UDP DNS client ------------------------------------------------------------------------------------

export const TYPE_A = 1;
export const RCODE = { 0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED' };

/** Queries over one unconnected socket (no ICMP errors while the server is not up yet), told apart by ID, so
 * callers may keep many in flight (the soak's change checks do; the other benchmarks ask one at a time). */
export class DnsClient {
  #socket;
  #id = Math.floor(Math.random() * 0xffff);
  #pending = new Map();

  constructor(port) {
    this.port = port;
  }

  async open() {
    this.#socket = dgram.createSocket('udp4');
    this.#socket.on('message', (msg) => {
      const p = msg.length < 12 ? undefined : this.#pending.get(msg.readUInt16BE(0));
      if (p === undefined) return; // late reply to a query already given up on
      this.#pending.delete(p.id);
      clearTimeout(p.timer);
      p.resolve(parseReply(msg, performance.now()));
    });
    await new Promise((resolve) => this.#socket.bind(0, '127.0.0.1', resolve));
    return this;
  }

  /** Resolves to `{ at, rcode, tc, addresses }` (at: performance.now() when the reply arrived), or undefined on timeout. */
  query(name, type = TYPE_A, timeoutMs = 100) {
    do this.#id = (this.#id + 1) & 0xffff; while (this.#pending.has(this.#id));
    const id = this.#id;
    const packet = encodeQuery(id, name, type);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.#pending.set(id, { id, resolve, timer });
      this.#socket.send(packet, this.port, '127.0.0.1');
    });
  }

  close() {
    this.#socket?.close();
  }
}

/** A query with RD and an EDNS OPT record (4096-byte UDP payload), so 100-address answers are not truncated. */
export function encodeQuery(id, name, type) {
  const labels = name.replace(/\.$/, '').split('.');
  const qname = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')])), Buffer.from([0])]);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(1, 10);
  const question = Buffer.alloc(4);
  question.writeUInt16BE(type, 0);
  question.writeUInt16BE(1, 2);
  const opt = Buffer.from([0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, qname, question, opt]);
}

function skipName(msg, offset) {
  for (;;) {
    const len = msg[offset];
    if (len === undefined) throw new Error('truncated name');
    if ((len & 0xc0) === 0xc0) return offset + 2;
    if (len === 0) return offset + 1;
    offset += len + 1;
  }
}

export function parseReply(msg, at) {
  const flags = msg.readUInt16BE(2);
  const qd = msg.readUInt16BE(4);
  const an = msg.readUInt16BE(6);
  let offset = 12;
  for (let i = 0; i < qd; i++) offset = skipName(msg, offset) + 4;
  const addresses = [];
  for (let i = 0; i < an; i++) {
    offset = skipName(msg, offset);
    const type = msg.readUInt16BE(offset);
    const rdlength = msg.readUInt16BE(offset + 8);
    offset += 10;
    if (type === TYPE_A && rdlength === 4) addresses.push(`${msg[offset]}.${msg[offset + 1]}.${msg[offset + 2]}.${msg[offset + 3]}`);
    offset += rdlength;
  }
  return { at, rcode: RCODE[flags & 0xf] ?? String(flags & 0xf), tc: (flags & 0x0200) !== 0, addresses };
}

/** True when the reply is NOERROR and its A records are exactly `expected` (order-free); a truncated reply (TC,
 * as for 100 addresses over UDP, which clusterdns caps below 4096 bytes) passes with a non-empty subset of them. */
export function hasExactly(reply, expected) {
  if (reply === undefined || reply.rcode !== 'NOERROR') return false;
  if (reply.tc ? reply.addresses.length === 0 : reply.addresses.length !== expected.length) return false;
  const want = new Set(expected);
  return reply.addresses.every((a) => want.has(a));
}

// ---- the synthetic cluster ------------------------------------------------------------------------------------
// Objects shaped like a real cluster's (labels, owner references, targetRefs, node names, container specs), so
// clusterdns parses what it would parse in production; managedFields are left out, so real objects are larger.

const ip4 = (a, n) => `${a}.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
/** Service virtual IPs: 10.96.0.0/12 style, from the service index. */
export const clusterIPOf = (i) => ip4(10, (96 << 16) + i);
/** Endpoint k's address, which is also pod k's address: 10.128.0.0/10 style. */
export const endpointIPOf = (k) => ip4(10, (128 << 16) + k);
export const dashed = (ip) => ip.replaceAll('.', '-');
const uid = (kind, n) => `${kind.toString(16).padStart(8, '0')}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

export function namespaceObject(name) {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'kubernetes.io/metadata.name': name } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } };
}

export function serviceObject({ name, namespace, clusterIP }) {
  const ips = [clusterIP ?? 'None'];
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, labels: { app: name, 'app.kubernetes.io/part-of': 'bench' } },
    spec: {
      type: 'ClusterIP',
      clusterIP: ips[0],
      clusterIPs: ips,
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
      selector: { app: name },
      ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
      sessionAffinity: 'None',
      internalTrafficPolicy: 'Cluster',
    },
    status: { loadBalancer: {} },
  };
}

/** One EndpointSlice of `service` with the addresses given; endpoint j targets pod `<service>-<first+j>`. */
export function sliceObject({ name, namespace, service, addresses, firstPod = 0 }) {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name,
      namespace,
      labels: { 'kubernetes.io/service-name': service, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: service, uid: uid(1, 0), controller: true, blockOwnerDeletion: true }],
    },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: addresses.map((address, j) => ({
      addresses: [address],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: `node-${(firstPod + j) % 100}`,
      zone: `zone-${(firstPod + j) % 3}`,
      targetRef: { kind: 'Pod', name: `${service}-${firstPod + j}`, namespace, uid: uid(2, firstPod + j) },
    })),
  };
}

export function podObject({ name, namespace, app, ip, n }) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      labels: { app, 'pod-template-hash': '7d4b9c8f6d' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${app}-7d4b9c8f6d`, uid: uid(3, 0), controller: true, blockOwnerDeletion: true }],
    },
    spec: {
      nodeName: `node-${n % 100}`,
      containers: [{
        name: 'app',
        image: 'registry.example.com/bench/app:1.0.0',
        ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
        resources: { requests: { cpu: '10m', memory: '16Mi' } },
      }],
      restartPolicy: 'Always',
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: 'default',
    },
    status: {
      phase: 'Running',
      podIP: ip,
      podIPs: [{ ip }],
      hostIP: `192.168.${Math.floor((n % 100) / 250)}.${(n % 100) + 1}`,
      qosClass: 'Burstable',
      startTime: '2026-01-01T00:00:00Z',
    },
  };
}

// ---- the scale fixture ------------------------------------------------------------------------------------------

export const fqdnOf = (s) => `${s.name}.${s.namespace}.svc.${ZONE}`;

/** Whether a reply is what `expected` says: `{ name, addresses }` (exactly those A records, see hasExactly) or
 * `{ name, rcode }`. Plain data, so a prober in a worker thread can check it too. */
export const answersRight = (reply, expected) => (expected.addresses ? hasExactly(reply, expected.addresses) : reply?.rcode === expected.rcode);

/**
 * The scale cluster (bench/README.md, "Scale"): `services` Services over `namespaces` namespaces, every
 * (services / headless)-th headless with one EndpointSlice of `endpoints` addresses, the rest ClusterIP; and `pods`
 * Running Pods, pod k with endpoint k's address, in its service's namespace. Each part is created in the API server
 * when asked, so a run can see the services without the pods.
 */
export class ScaleFixture {
  services = []; // { name, namespace, ip } or { name, namespace, addresses, first }
  pods = []; // { ip, namespace }

  constructor(api, { services, headless, endpoints, namespaces, pods }) {
    if (headless > services || (headless > 0 && services % headless !== 0)) throw new Error('the headless services must divide the services');
    Object.assign(this, { api, size: { services, headless, endpoints, namespaces, pods } });
  }

  get endpointCount() {
    return this.services.reduce((n, s) => n + (s.addresses?.length ?? 0), 0);
  }

  /** Creates the namespaces, services and slices; returns the ms it took. */
  loadServices() {
    const { services, headless, endpoints, namespaces } = this.size;
    const t0 = performance.now();
    const step = headless === 0 ? Infinity : services / headless;
    for (let n = 0; n < namespaces; n++) this.api.create('namespaces', namespaceObject(`ns${n}`));
    let endpoint = 0;
    for (let i = 0; i < services; i++) {
      const name = `svc${i}`;
      const namespace = `ns${i % namespaces}`;
      if (i % step === step - 1) {
        const first = endpoint;
        const addresses = Array.from({ length: endpoints }, () => endpointIPOf(endpoint++));
        this.api.create('services', serviceObject({ name, namespace }));
        this.api.create('endpointslices', sliceObject({ name: `${name}-x7k2p`, namespace, service: name, addresses, firstPod: first }));
        this.services.push({ name, namespace, addresses, first });
      } else {
        const ip = clusterIPOf(i);
        this.api.create('services', serviceObject({ name, namespace, clusterIP: ip }));
        this.services.push({ name, namespace, ip });
      }
    }
    return performance.now() - t0;
  }

  /** Creates the pods (after loadServices: each belongs to a headless service); returns the ms it took. */
  loadPods() {
    const { endpoints, pods } = this.size;
    const t0 = performance.now();
    const headless = this.services.filter((s) => s.addresses);
    for (let k = 0; k < pods; k++) {
      const owner = headless[Math.floor(k / endpoints) % Math.max(1, headless.length)] ?? { name: 'app', namespace: 'ns0', first: 0 };
      const ip = endpointIPOf(k);
      this.api.create('pods', podObject({ name: `${owner.name}-${k - owner.first}`, namespace: owner.namespace, app: owner.name, ip, n: k }));
      this.pods.push({ ip, namespace: owner.namespace });
    }
    return performance.now() - t0;
  }

  /** About `count` services spread over the cluster, each headless one with its last endpoint's name too, and a
   * name that does not exist. */
  serviceExpectations(count = 200) {
    const out = [];
    for (let i = 0; i < this.services.length; i += Math.max(1, Math.floor(this.services.length / count))) {
      const s = this.services[i];
      out.push({ name: fqdnOf(s), addresses: s.addresses ?? [s.ip] });
      if (s.addresses) {
        const last = s.addresses[s.addresses.length - 1];
        out.push({ name: `${dashed(last)}.${fqdnOf(s)}`, addresses: [last] });
      }
    }
    out.push({ name: `nosuch.ns0.svc.${ZONE}`, rcode: 'NXDOMAIN' });
    return out;
  }

  /** About `count` pod names spread over the pods, and an address no pod has (NXDOMAIN with --pods verified). */
  podExpectations(count = 100) {
    const out = [];
    for (let k = 0; k < this.pods.length; k += Math.max(1, Math.floor(this.pods.length / count))) {
      out.push({ name: `${dashed(this.pods[k].ip)}.${this.pods[k].namespace}.pod.${ZONE}`, addresses: [this.pods[k].ip] });
    }
    out.push({ name: `10-255-255-1.ns0.pod.${ZONE}`, rcode: 'NXDOMAIN' });
    return out;
  }
}
