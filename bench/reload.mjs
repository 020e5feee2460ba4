// bench/reload.mjs — queries lost and latency while the Corefile is reloaded: dnsperf at a fixed BENCH_QPS
// (default 20k) on cluster names, once with no reload and once while the Corefile changes BENCH_RELOADS times
// (default 10, one a second) in ways that rebuild the chain: a hosts entry added and removed, the cache size
// changed, a stub-domain block added and removed. The targets (issue "Drop-in for CoreDNS"): 0 queries lost, and
// the p99 with reloads within 2x of the p99 without, in the same run.
//
// Owns: the clusterdns and dnsperf it starts (stopped by PID), bench/out/reload.*. Must not touch: anything else.
// Traffic only to 127.0.0.1. Run it through bench/cluster.sh (`bash bench/cluster.sh reload`), which pins this
// driver (and dnsperf) to BENCH_CLIENT_CPU; clusterdns is pinned to BENCH_SERVER_CPU.

import { spawn } from 'node:child_process';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OUT, ROOT, envInt, freePort, httpGet, log, median, overallDeadline, track } from './cluster-lib.mjs';

const QPS = envInt('BENCH_QPS', 20_000);
const SECONDS = envInt('BENCH_SECONDS', 12); // one dnsperf run; the reloads happen inside it
const RELOADS = envInt('BENCH_RELOADS', 10);
const ROUNDS = envInt('BENCH_ROUNDS', 3);
const SERVER_CPU = envInt('BENCH_SERVER_CPU', 1);
const CLIENT_CPU = envInt('BENCH_CLIENT_CPU', 0);
const P99_LIMIT = 2;
overallDeadline(envInt('BENCH_DEADLINE', 600));
if (SECONDS < RELOADS + 2) throw new Error(`BENCH_SECONDS (${SECONDS}) must leave a second before and after the ${RELOADS} reloads`);

const port = await freePort();
const stubPort = await freePort();
const corefile = join(OUT, 'reload.Corefile');
const manifests = join(ROOT, 'examples', 'demo-cluster.yaml');

/** The Corefile after `step` changes: each step differs from the one before in something that rebuilds a chain. */
function corefileAt(step) {
  const hosts = step % 2 === 1 ? '        192.0.2.1 reloaded.example\n' : '';
  const stub = step % 4 >= 2 ? `corp.example:${port} {\n    bind 127.0.0.1\n    forward . 127.0.0.1:${stubPort}\n}\n` : '';
  return `.:${port} {
    bind 127.0.0.1
    errors
    ready 127.0.0.1:0
    prometheus 127.0.0.1:0
    reload 2s
    hosts {
${hosts}        fallthrough
    }
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        manifests ${manifests}
        fallthrough in-addr.arpa ip6.arpa
    }
    cache ${1000 + step * 100}
}
${stub}`;
}

/** As the kubelet and editors write it: a whole new file renamed into place. */
function writeCorefile(step) {
  writeFileSync(`${corefile}.new`, corefileAt(step));
  renameSync(`${corefile}.new`, corefile);
}

writeCorefile(0);
const names = ['web.default.svc.cluster.local A', 'db.default.svc.cluster.local A', 'kubernetes.default.svc.cluster.local A',
  'web.default.svc.cluster.local AAAA', 'nope.default.svc.cluster.local A'];
const data = join(OUT, 'reload.queries');
writeFileSync(data, `${names.join('\n')}\n`);

const lines = [];
const child = track(spawn('taskset', ['-c', String(SERVER_CPU), process.execPath, join(ROOT, 'dist', 'cli.js'), '-conf', corefile],
  { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] }));
child.stderr.setEncoding('utf8');
let partial = '';
child.stderr.on('data', (chunk) => {
  partial += chunk;
  const parts = partial.split('\n');
  partial = parts.pop();
  lines.push(...parts);
});
const started = Date.now();
let metricsAddress;
while (metricsAddress === undefined) {
  if (Date.now() - started > 30_000) throw new Error(`clusterdns did not start:\n${lines.join('\n')}`);
  for (const line of lines) {
    try {
      const parsed = JSON.parse(line);
      if (parsed.msg === 'serving') metricsAddress = parsed.http.metrics;
    } catch {
      // not a log line
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
}
const reloadsLogged = () => lines.filter((line) => line.includes('reloaded the Corefile')).length;
const failuresLogged = () => lines.filter((line) => line.includes('reload failed')).length;

/** One dnsperf run at QPS for SECONDS, with per-query latencies; `during` runs while it does. */
function dnsperf(during) {
  return new Promise((resolve, reject) => {
    const run = track(spawn('taskset', ['-c', String(CLIENT_CPU), 'dnsperf', '-s', '127.0.0.1', '-p', String(port), '-d', data,
      '-l', String(SECONDS), '-Q', String(QPS), '-t', '2', '-c', '8', '-v'], { stdio: ['ignore', 'pipe', 'pipe'] }));
    const latencies = [];
    let rest = '';
    let summary = '';
    run.stdout.setEncoding('utf8');
    run.stdout.on('data', (chunk) => {
      rest += chunk;
      const parts = rest.split('\n');
      rest = parts.pop();
      for (const line of parts) {
        if (line.startsWith('> ')) latencies.push(Number(line.slice(line.lastIndexOf(' ') + 1)));
        else summary += `${line}\n`;
      }
    });
    run.stderr.on('data', (chunk) => (summary += chunk));
    const timer = setTimeout(() => run.kill('SIGKILL'), (SECONDS + 30) * 1000);
    const done = during?.();
    run.once('exit', async (code) => {
      clearTimeout(timer);
      await done;
      const lost = Number(/Queries lost:\s+(\d+)/.exec(summary)?.[1]);
      const sent = Number(/Queries sent:\s+(\d+)/.exec(summary)?.[1]);
      if (code !== 0 || !Number.isFinite(lost)) return reject(new Error(`dnsperf failed (${code}):\n${summary}`));
      latencies.sort((a, b) => a - b);
      const at = (p) => latencies[Math.min(latencies.length - 1, Math.ceil(latencies.length * p) - 1)] * 1000;
      resolve({ sent, lost, p50: at(0.5), p99: at(0.99), max: latencies.at(-1) * 1000 });
    });
  });
}

let step = 0;
/** RELOADS changes, one a second from the first second on; resolves when the last has been applied. */
async function reloads() {
  const before = reloadsLogged();
  for (let i = 0; i < RELOADS; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    writeCorefile(++step);
  }
  const deadline = Date.now() + 10_000;
  while (reloadsLogged() < before + RELOADS && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  return reloadsLogged() - before;
}

await dnsperf(); // warm-up
const rows = [];
for (let round = 1; round <= ROUNDS; round++) {
  const result = {};
  for (const mode of round % 2 === 1 ? ['quiet', 'reload'] : ['reload', 'quiet']) {
    let applied = 0;
    const outcome = await dnsperf(mode === 'reload' ? async () => (applied = await reloads()) : undefined);
    result[mode] = { ...outcome, applied };
    log(`round ${round} ${mode.padEnd(6)} sent ${outcome.sent} lost ${outcome.lost} p50 ${outcome.p50.toFixed(3)} p99 ${outcome.p99.toFixed(3)} max ${outcome.max.toFixed(1)} ms${mode === 'reload' ? `  reloads applied ${applied}` : ''}`);
  }
  rows.push({ round, ...result, ratio: result.reload.p99 / result.quiet.p99 });
}
const version = await httpGet(`http://${metricsAddress}/metrics`);
child.kill('SIGINT');

const lost = rows.reduce((sum, row) => sum + row.quiet.lost + row.reload.lost, 0);
const applied = rows.reduce((sum, row) => sum + row.reload.applied, 0);
const ratio = median(rows.map((row) => row.ratio));
const summary = [
  `reload: dnsperf -Q ${QPS} for ${SECONDS} s on cluster names, ${RELOADS} Corefile changes (hosts entry, cache size, stub block) a second apart, ${ROUNDS} rounds`,
  ...rows.map((row) => `round ${row.round}: p99 quiet ${row.quiet.p99.toFixed(3)} ms, during reloads ${row.reload.p99.toFixed(3)} ms (x${row.ratio.toFixed(2)}); lost ${row.quiet.lost} / ${row.reload.lost}; reloads applied ${row.reload.applied}/${RELOADS}`),
  `reloads applied ${applied} of ${RELOADS * ROUNDS}, failed ${failuresLogged()}; queries lost ${lost} (target 0); median p99 ratio ${ratio.toFixed(2)} (target <= ${P99_LIMIT}) ${lost === 0 && ratio <= P99_LIMIT && applied === RELOADS * ROUNDS ? 'MET' : 'NOT MET'}`,
  `coredns_reload_failed_total ${/^coredns_reload_failed_total (\S+)/m.exec(version)?.[1] ?? "?"}  [${process.env.BENCH_REV ?? "unknown"}]`,
].join('\n');
writeFileSync(join(OUT, 'reload.txt'), `${summary}\n`);
process.stdout.write(`${summary}\n`);
process.exit(0);
