#!/usr/bin/env node
// bench/prof-summary.mjs — reads a profile that the live-cluster benchmarks make clusterdns write, and prints
// where the time or the memory goes.
//
//   node bench/prof-summary.mjs FILE.cpuprofile [N]            top N functions by self and by inclusive time
//   node --max-old-space-size=12000 bench/prof-summary.mjs FILE.heapsnapshot [Class ...]
//       self size by class, then for each named class (say RecordStore NameTable ClusterResolver): what each
//       instance retains, and what each of its properties retains on its own (its dominated set)
//
// Owns nothing; reads one file. Big snapshots (300 MB for 100k endpoints) need a few GB of heap and ~15 s.

import { readFileSync } from 'node:fs';

const [file, ...rest] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node bench/prof-summary.mjs FILE.cpuprofile [N] | FILE.heapsnapshot [Class ...]\n');
  process.exit(2);
}
const MB = (b) => (b / 1048576).toFixed(1);
const data = JSON.parse(readFileSync(file, 'utf8'));
if (file.endsWith('.cpuprofile')) cpu(data, Number(rest[0] ?? 30));
else heap(data, rest);

function cpu(profile, top) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfById = new Map();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    selfById.set(id, (selfById.get(id) ?? 0) + dt);
  });
  const key = ({ callFrame: f }) => `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules\/|dist\/)/, '$1')}:${f.lineNumber + 1}`;
  const self = new Map();
  const inclusive = new Map();
  for (const [id, t] of selfById) {
    const k = key(byId.get(id));
    self.set(k, (self.get(k) ?? 0) + t);
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const ck = key(byId.get(cur));
      if (seen.has(ck)) continue; // recursion counts once
      seen.add(ck);
      inclusive.set(ck, (inclusive.get(ck) ?? 0) + t);
    }
  }
  const show = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([k, t]) => `${(t / 1000).toFixed(1).padStart(9)} ms ${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`).join('\n');
  console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled\n--- self\n${show(self)}\n--- inclusive\n${show(inclusive)}`);
}

function heap(snap, classes) {
  const m = snap.snapshot.meta;
  const F = m.node_fields.length;
  const EF = m.edge_fields.length;
  const ntypes = m.node_types[0];
  const etypes = m.edge_types[0];
  const { strings: S, nodes: N, edges: E } = snap;
  const count = N.length / F;
  const [iType, iName, iSize, iEdges] = ['type', 'name', 'self_size', 'edge_count'].map((f) => m.node_fields.indexOf(f));
  const first = new Uint32Array(count + 1);
  for (let n = 0, e = 0; n < count; n++) {
    first[n] = e;
    e += N[n * F + iEdges] * EF;
    first[n + 1] = e;
  }
  const type = (n) => ntypes[N[n * F + iType]];
  const name = (n) => S[N[n * F + iName]];
  const size = (n) => N[n * F + iSize];
  const skipEdge = new Set([etypes.indexOf('weak'), etypes.indexOf('shortcut')]);
  const queue = new Uint32Array(count);
  const reach = (from, skip, mark) => {
    let head = 0;
    let tail = 0;
    queue[tail++] = from;
    mark[from] = 1;
    while (head < tail) {
      const n = queue[head++];
      for (let e = first[n]; e < first[n + 1]; e += EF) {
        if (skipEdge.has(E[e])) continue;
        const to = E[e + 2] / F;
        if (to === skip || mark[to]) continue;
        mark[to] = 1;
        queue[tail++] = to;
      }
    }
  };
  /** What `x` alone keeps alive: reachable from it, and not from the root without passing through it. */
  const retained = (x) => {
    const fromRoot = new Uint8Array(count);
    reach(0, x, fromRoot);
    const mine = new Uint8Array(count);
    reach(x, -1, mine);
    let bytes = 0;
    let objects = 0;
    for (let n = 0; n < count; n++) {
      if (mine[n] && !fromRoot[n]) {
        bytes += size(n);
        objects++;
      }
    }
    return { bytes, objects };
  };

  const byClass = new Map();
  let total = 0;
  for (let n = 0; n < count; n++) {
    const t = type(n);
    const k = t.includes('string') ? '(strings)' : t === 'code' ? '(code)' : `${t} ${name(n).slice(0, 60)}`;
    const a = byClass.get(k) ?? { bytes: 0, objects: 0 };
    a.bytes += size(n);
    a.objects++;
    byClass.set(k, a);
    total += size(n);
  }
  console.log(`${file}: ${MB(total)} MB live in ${count} objects (a snapshot is taken after a full GC)\n--- self size by class`);
  for (const [k, a] of [...byClass].sort((x, y) => y[1].bytes - x[1].bytes).slice(0, 25)) {
    console.log(`${MB(a.bytes).padStart(8)} MB ${String(a.objects).padStart(9)}  ${k}`);
  }
  // ("array" without a name is mostly the hash tables behind Maps and Sets; "(object elements)" the backing
  // stores of arrays, which V8 sizes for growth: a 1-element array made by push() has room for 17.)
  for (let n = 0; n < count; n++) {
    if (type(n) !== 'object' || !classes.includes(name(n))) continue;
    const r = retained(n);
    console.log(`--- ${name(n)} @${n}: retains ${MB(r.bytes)} MB in ${r.objects} objects; of which, on their own:`);
    for (let e = first[n]; e < first[n + 1]; e += EF) {
      if (etypes[E[e]] !== 'property') continue;
      const to = E[e + 2] / F;
      const p = retained(to);
      if (p.bytes >= 256 * 1024) console.log(`   .${String(S[E[e + 1]]).padEnd(24)} ${MB(p.bytes).padStart(8)} MB ${String(p.objects).padStart(9)} objects  (${name(to)})`);
    }
  }
}
