// The proxy benchmark driver (run it through bench/proxy.sh). In one run it measures the same backends three
// ways: directly, through haproxy in TCP mode, and through `clusterdns proxy`, with both proxies pinned to one
// core (one haproxy thread) and the backends and load client on the other. Rounds alternate the order of the
// three, and the summary gives medians over rounds with clusterdns's figures as ratios to haproxy's.
//
// Everything listens on loopback addresses (127.0.20.x backends, 127.0.30.1 haproxy, 127.0.40.1 the clusterdns
// service VIP, in --proxy-vip cluster-ip mode: every 127/8 address is local). It starts its processes itself,
// stops exactly those PIDs on every exit path, and every wait has a deadline.
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IMAGE_NODE_FLAGS } from './cluster-lib.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const env = (name, fallback) => process.env[name] ?? fallback;
const int = (name, fallback) => {
  const value = Number(env(name, fallback));
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer`);
  return value;
};
const OUT = env('BENCH_OUT', join(ROOT, 'bench/out/proxy'));
const ROUNDS = int('BENCH_ROUNDS', '3');
const BULK_BYTES = int('BENCH_BULK_BYTES', String(1e9));
const SECONDS = int('BENCH_SECONDS', '5');
const RATE = int('BENCH_RATE', '1000');
const CONCURRENCY = int('BENCH_CONCURRENCY', '16');
const PROXY_CPU = env('BENCH_PROXY_CPU', '1');
/** nice value of every process the bench starts (the same for all three), so other work on a shared host waits. */
const NICE = Number(env('BENCH_NICE', '0'));
const CLIENT_CPU = env('BENCH_CLIENT_CPU', '0');
const BACKENDS = ['127.0.20.1', '127.0.20.2'];
const HAPROXY_VIP = '127.0.30.1';
const CLUSTERDNS_VIP = '127.0.40.1';
const HZ = Number(execFileSync('getconf', ['CLK_TCK']).toString());

const started = new Set();
function cleanup() {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

function start(name, command, args, options = {}) {
  const child = spawn('nice', ['-n', String(NICE), 'taskset', '-c', options.cpu, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  started.add(child);
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  child.once('exit', () => started.delete(child));
  return { child, name, output: () => output };
}

async function waitFor(what, test, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await test()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const freePort = () => new Promise((resolve, reject) => {
  const server = createServer().once('error', reject).listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    server.close(() => resolve(port));
  });
});

const cpuTicks = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return Number(fields[11]) + Number(fields[12]);
};

async function load(target, args) {
  const runner = start('load', process.execPath, [join(ROOT, 'bench/proxy-load.mjs'), '--target', target, ...args], { cpu: CLIENT_CPU });
  const [code] = await once(runner.child, 'exit');
  if (code !== 0) throw new Error(`load ${args.join(' ')} against ${target} failed:\n${runner.output()}`);
  return JSON.parse(runner.output().trim().split('\n').pop());
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

mkdirSync(OUT, { recursive: true });
const port = await freePort();
const backend = start('backends', process.execPath, [join(ROOT, 'bench/proxy-backend.mjs'), '--port', String(port), ...BACKENDS], { cpu: CLIENT_CPU });
await waitFor('the backends', () => backend.output().includes('ready'));

writeFileSync(join(OUT, 'haproxy.cfg'), [
  '# written by bench/proxy.mjs: TCP mode, one thread, round-robin over the same backends',
  'global', '  nbthread 1', '  maxconn 4096',
  'defaults', '  mode tcp', '  timeout connect 2s', '  timeout client 1h', '  timeout server 1h', '  maxconn 4096',
  'frontend bench', `  bind ${HAPROXY_VIP}:${port}`, '  default_backend backends',
  'backend backends', '  balance roundrobin', ...BACKENDS.map((ip, i) => `  server b${i} ${ip}:${port}`), '',
].join('\n'));
const haproxy = start('haproxy', 'haproxy', ['-db', '-f', join(OUT, 'haproxy.cfg')], { cpu: PROXY_CPU });

writeFileSync(join(OUT, 'cluster.yaml'), `# written by bench/proxy.mjs: one service over the same backends
apiVersion: v1
kind: Service
metadata: {name: bench, namespace: default}
spec:
  clusterIP: ${CLUSTERDNS_VIP}
  ports: [{name: tcp, port: ${port}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: bench-1, namespace: default, labels: {kubernetes.io/service-name: bench}}
addressType: IPv4
ports: [{name: tcp, port: ${port}}]
endpoints:
${BACKENDS.map((ip) => `  - addresses: [${ip}]`).join('\n')}
`);
// With the image's node flags (the Dockerfile's ENTRYPOINT): the figures are those of what ships.
const clusterdns = start('clusterdns', process.execPath, [
  ...IMAGE_NODE_FLAGS, join(ROOT, 'dist/cli.js'), 'proxy', '--manifests', join(OUT, 'cluster.yaml'), '--log-level', 'info',
  '--health', '127.0.0.1:0', '--ready', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--lameduck', '0',
], { cpu: PROXY_CPU });
await waitFor('clusterdns to listen', () => clusterdns.output().includes('"msg":"proxying"'));

const targets = {
  direct: { address: `${BACKENDS[0]}:${port}` },
  haproxy: { address: `${HAPROXY_VIP}:${port}`, pid: haproxy.child.pid },
  clusterdns: { address: `${CLUSTERDNS_VIP}:${port}`, pid: clusterdns.child.pid },
};
const allScenarios = {
  down: ['--mode', 'down', '--bytes', String(BULK_BYTES)],
  up: ['--mode', 'up', '--bytes', String(BULK_BYTES)],
  connect: ['--mode', 'connect', '--seconds', String(SECONDS), '--concurrency', String(CONCURRENCY)],
  latency: ['--mode', 'latency', '--seconds', String(SECONDS), '--rate', String(RATE), '--connections', '8'],
};
const chosen = env('BENCH_SCENARIOS', Object.keys(allScenarios).join(',')).split(',');
for (const name of chosen) if (!(name in allScenarios)) throw new Error(`BENCH_SCENARIOS: unknown scenario ${name}`);
const scenarios = Object.fromEntries(chosen.map((name) => [name, allScenarios[name]]));
await waitFor('haproxy to answer', async () => {
  try {
    await load(targets.haproxy.address, ['--mode', 'down', '--bytes', '1']);
    return true;
  } catch {
    return haproxy.child.exitCode !== null ? Promise.reject(new Error(`haproxy exited:\n${haproxy.output()}`)) : false;
  }
});

// Warm-up (JIT, caches), unmeasured.
for (const { address } of Object.values(targets)) await load(address, ['--mode', 'connect', '--seconds', '2', '--concurrency', String(CONCURRENCY)]);

const results = [];
const names = Object.keys(targets);
for (let round = 1; round <= ROUNDS; round++) {
  const order = names.map((_, i) => names[(i + round - 1) % names.length]);
  for (const [scenario, args] of Object.entries(scenarios)) {
    for (const name of order) {
      const { address, pid } = targets[name];
      const before = pid === undefined ? 0 : cpuTicks(pid);
      const wall = Date.now();
      const result = await load(address, args);
      const seconds = (Date.now() - wall) / 1000;
      const cpu = pid === undefined ? undefined : (cpuTicks(pid) - before) / HZ / seconds;
      results.push({ round, scenario, target: name, cpu, ...result });
      process.stderr.write(`bench: round ${round} ${scenario.padEnd(8)} ${name.padEnd(10)} ${describe(result)}${cpu === undefined ? '' : `  proxy cpu ${(cpu * 100).toFixed(0)}%`}\n`);
    }
  }
}
writeFileSync(join(OUT, 'results.json'), JSON.stringify(results, null, 1));

function describe(result) {
  if (result.mode.startsWith('bulk')) return `${result.mbps.toFixed(0)} MB/s`;
  if (result.mode === 'connect') return `${result.cps.toFixed(0)} conn/s (${result.errors} errors)`;
  return `p50 ${result.p50_ms.toFixed(3)} p99 ${result.p99_ms.toFixed(3)} ms (${result.sent} sent, ${result.skipped} skipped)`;
}

// ---- summary ----
const pick = (scenario, target, field) => results.filter((r) => r.scenario === scenario && r.target === target).map((r) => r[field]);
const med = (scenario, target, field) => median(pick(scenario, target, field));
/** Work per proxy CPU-second, clusterdns over haproxy: the cost of each byte or connection, less host noise. */
const perCpu = (scenario, field) => {
  const efficiency = (target) => median(results.filter((r) => r.scenario === scenario && r.target === target).map((r) => r[field] / r.cpu));
  return efficiency('clusterdns') / efficiency('haproxy');
};
const revision = (() => {
  try {
    return execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']).toString().trim();
  } catch {
    return 'unknown';
  }
})();
const haproxyVersion = execFileSync('haproxy', ['-v']).toString().split('\n')[0].replace(/^HAProxy version (\S+).*/, '$1');
const lines = [
  `clusterdns proxy vs haproxy (TCP mode) on loopback: medians of ${ROUNDS} rounds; proxies on CPU ${PROXY_CPU}, backends and client on CPU ${CLIENT_CPU}`,
  `clusterdns ${revision}, node ${process.version}, haproxy ${haproxyVersion}, ${new Date().toISOString().slice(0, 16)}Z`,
  '',
  'scenario                      direct    haproxy  clusterdns   ratio  per-cpu  target',
];
for (const [scenario, field, unit] of [['down', 'mbps', 'MB/s'], ['up', 'mbps', 'MB/s'], ['connect', 'cps', 'conn/s']]) {
  if (!(scenario in scenarios)) continue;
  const [d, h, c] = names.map((name) => med(scenario, name, field));
  const ratio = c / h;
  const label = scenario === 'connect' ? `new connections (${unit})` : `bulk ${scenario} ${BULK_BYTES / 1e9} GB (${unit})`;
  lines.push(`${label.padEnd(28)}${d.toFixed(0).padStart(8)} ${h.toFixed(0).padStart(10)} ${c.toFixed(0).padStart(11)} ${ratio.toFixed(2).padStart(6)}x ${perCpu(scenario, field).toFixed(2).padStart(7)}x  >=0.7x ${ratio >= 0.7 ? 'ok' : 'MISS'}`);
}
if ('latency' in scenarios) {
  const p99 = Object.fromEntries(names.map((name) => [name, med('latency', name, 'p99_ms')]));
  const p50 = Object.fromEntries(names.map((name) => [name, med('latency', name, 'p50_ms')]));
  const added = p99.clusterdns - p99.direct;
  lines.push(`p50 ms at ${RATE} req/s`.padEnd(28) + names.map((name, i) => p50[name].toFixed(3).padStart(i === 0 ? 8 : i === 1 ? 11 : 12)).join(''));
  lines.push(`p99 ms at ${RATE} req/s`.padEnd(28) + names.map((name, i) => p99[name].toFixed(3).padStart(i === 0 ? 8 : i === 1 ? 11 : 12)).join(''));
  lines.push(`added p99 (ms, vs direct)`.padEnd(28) + `${'-'.padStart(8)} ${(p99.haproxy - p99.direct).toFixed(3).padStart(10)} ${added.toFixed(3).padStart(11)}                 <0.5ms ${added < 0.5 ? 'ok' : 'MISS'}`);
}
const errors = results.filter((r) => r.errors > 0 || r.skipped > 0).map((r) => `${r.target} ${r.scenario} round ${r.round}: ${r.errors ?? 0} errors, ${r.skipped ?? 0} skipped`);
lines.push('', errors.length === 0 ? 'no connection errors, no skipped requests' : `errors: ${errors.join('; ')}`);
const summary = lines.join('\n');
writeFileSync(join(OUT, 'summary.txt'), `${summary}\n`);
process.stdout.write(`\n${summary}\nper-run figures: ${join(OUT, 'results.json')}\n`);
process.exit(0);
