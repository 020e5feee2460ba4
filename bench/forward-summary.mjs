#!/usr/bin/env node
// bench/forward-summary.mjs — prints the summary of a bench/forward.sh run from the files it wrote.
//
// Owns nothing; reads DIR/checks.txt (the run's facts, one "key value" a line), DIR/results.tsv (one dnsperf run
// a row) and DIR/runs/lookups.<on|off>.<round>.tsv (one pod-style lookup a line), and prints to stdout.
// QPS figures are medians over rounds; lookup percentiles are over all measured lookups of all rounds.
//
// Usage: node bench/forward-summary.mjs bench/out/forward

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2] ?? 'bench/out/forward';
const facts = Object.fromEntries(readFileSync(join(dir, 'checks.txt'), 'utf8').split('\n').filter(Boolean)
  .map((line) => [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1)]));

const median = (values) => {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p) - 1))];
const ratio = (a, b) => (b > 0 ? `${(a / b).toFixed(2)}x` : '-');
const out = [];
const say = (line = '') => out.push(line);

// ---- part 1: dnsperf ----
const [header, ...rows] = readFileSync(join(dir, 'results.tsv'), 'utf8').split('\n').filter(Boolean).map((line) => line.split('\t'));
const col = Object.fromEntries(header.map((name, i) => [name, i]));
const runs = { unbound: [], clusterdns: [] };
for (const row of rows) runs[row[col.server]]?.push({
  qps: Number(row[col.qps]),
  sent: Number(row[col.sent]),
  lost: Number(row[col.lost]),
  cpu: Number(row[col.server_cpu_pct]),
  client: Number(row[col.client_cpu_pct]),
  rcodes: row[col.rcodes],
});
/** "NOERROR 1234 (100.0%)": every round's rcodes (dnsperf's "NOERROR:1234,NXDOMAIN:5" per row) added up. */
const rcodeCounts = (list) => {
  const counts = new Map();
  for (const run of list) {
    for (const part of run.rcodes === '-' ? [] : run.rcodes.split(',')) {
      const [code, n] = part.split(':');
      counts.set(code, (counts.get(code) ?? 0) + Number(n));
    }
  }
  const sent = list.reduce((n, r) => n + r.sent, 0);
  return [...counts].map(([code, n]) => `${code} ${n} (${((100 * n) / sent).toFixed(1)}%)`).join(', ') || 'none';
};
const fig = (server) => {
  const list = runs[server];
  return {
    qps: median(list.map((r) => r.qps)),
    lost: list.reduce((n, r) => n + r.lost, 0),
    sent: list.reduce((n, r) => n + r.sent, 0),
    cpu: median(list.map((r) => r.cpu)),
    client: median(list.map((r) => r.client)),
    // queries per server CPU-second, per round, then the median: the cost per query, steadier on a shared machine
    perCpu: median(list.filter((r) => r.cpu > 0).map((r) => (r.qps * 100) / r.cpu)),
    rcodes: rcodeCounts(list),
  };
};
const u = fig('unbound');
const c = fig('clusterdns');
const target = Number(facts.target);
const met = c.qps / u.qps >= target;

say(`clusterdns vs unbound: forwarded names answered from the cache, on 127.0.0.1; medians of ${facts.rounds} rounds x ${facts.seconds}s (lost: summed)`);
say(facts.meta);
say(Number(facts.diffs) === 0
  ? `answers: same rcode and answer section for all ${facts.checked} names (dig; ${facts.answered} NOERROR with records)`
  : `answers: ${facts.diffs} of ${facts.checked} names DIFFER (see the log above and answers.*.txt)`);
say(`from the cache: clusterdns +${facts.hits} cache hits, +${facts.misses} misses, +${facts.forwarded} upstream queries during the rounds;`);
say(`  unbound, all its life: ${facts.unbound_stats} (the cache pass needs one recursion per name: ${facts.names});`);
say(`  nsd (the upstream) used ${facts.nsd_cpu_s} CPU-s during the rounds`);
say();
const row = (...cells) => say(cells.map((cell, i) => (i === 0 ? String(cell).padEnd(10) : String(cell).padStart([0, 11, 10, 7, 14, 11, 10, 11, 15][i] ?? 10))).join(' '));
row('scenario', 'unbound qps', 'cdns qps', 'ratio', 'target', 'lost u/c', 'cpu% u/c', 'perf% u/c', 'q/cpu-s ratio');
row('cached', Math.round(u.qps), Math.round(c.qps), ratio(c.qps, u.qps), `>=${target}x ${met ? 'ok' : 'MISS'}`,
  `${u.lost}/${c.lost}`, `${Math.round(u.cpu)}/${Math.round(c.cpu)}`, `${Math.round(u.client)}/${Math.round(c.client)}`, ratio(c.perCpu, u.perCpu));
if (Math.min(u.cpu, c.cpu) < 90) {
  say(`note: a server had less than 90% of its core (median ${Math.round(u.cpu)}% / ${Math.round(c.cpu)}%): the machine took time away, ` +
    'so the QPS ratio carries its noise; q/cpu-s compares the cost per query');
}
say(`rcodes, all rounds: unbound sent ${u.sent}: ${u.rcodes}; clusterdns sent ${c.sent}: ${c.rcodes}`);

// ---- part 2: pod-style lookups ----
const lookups = { off: [], on: [] };
for (const file of readdirSync(join(dir, 'runs')).filter((f) => /^lookups\.(on|off)\.\d+\.tsv$/.test(f))) {
  for (const line of readFileSync(join(dir, 'runs', file), 'utf8').split('\n').filter(Boolean)) {
    const [mode, , , queries, ms, outcome] = line.split('\t');
    lookups[mode].push({ queries: Number(queries), ms: Number(ms), ok: outcome === 'ok' });
  }
}
const look = (list) => {
  const sorted = list.map((l) => l.ms).sort((a, b) => a - b);
  return {
    n: list.length,
    queries: list.reduce((n, l) => n + l.queries, 0) / list.length,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    failed: list.filter((l) => !l.ok).length,
  };
};
const off = look(lookups.off);
const on = look(lookups.on);
say();
say(`pod-style lookup of www<i>.example.test from ${facts.pod_ip} (a pod of namespace default): glibc's walk of`);
say(`search ${facts.search}, ndots:5, A and AAAA together per candidate;`);
say(`${facts.lookups} lookups per round, one at a time, caches warm; percentiles over all ${off.n} / ${on.n} lookups`);
say();
const lrow = (...cells) => say(cells.map((cell, i) => (i === 0 ? String(cell).padEnd(16) : String(cell).padStart(i === 1 ? 15 : 9))).join(' '));
lrow('', 'queries/lookup', 'p50 ms', 'p99 ms', 'failed');
lrow('completion off', off.queries.toFixed(2), off.p50.toFixed(3), off.p99.toFixed(3), off.failed);
lrow('completion on', on.queries.toFixed(2), on.p50.toFixed(3), on.p99.toFixed(3), on.failed);
lrow('on/off', ratio(on.queries, off.queries), ratio(on.p50, off.p50), ratio(on.p99, off.p99), '');
say(`completions counted by clusterdns (coredns_autopath_success_count_total): ${facts.completions_on} with --autopath ` +
  `(A and AAAA of every lookup, the first round's unmeasured pass over ${facts.names} names included), ${facts.completions_off} without`);
process.stdout.write(out.join('\n') + '\n');
