// The documentation held to the code, in both directions, so neither can drift alone: the error codes and classes
// in src/ against docs/errors.md; every plugin folder's README against CoreDNS's layout and its own metrics.ts; and
// the README's metrics table against what a real running server (dist/cli.js) exposes on /metrics. Everything
// is read from the source files and the running process, never from a list kept here.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PLUGINS as ORDER } from '../src/plugins/order.js';
import { dig } from './support/dig.js';
import { get, parseMetrics } from './support/http.js';
import { FakeKubeApiServer } from './support/k8s-api-server.js';
import { freePort, startServer, type ServerProcess } from './support/server-process.js';
import { TestUpstream } from './support/upstream.js';

const ROOT = new URL('../', import.meta.url).pathname;
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

function tsFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(join(ROOT, path)).isDirectory()) return tsFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

const SOURCES = tsFiles('src').map((path) => ({ path, text: read(path) }));

/** The codes raised: `super('E_X', ...)` in a ClusterDnsError subclass, or `new ClusterDnsError('E_X', ...)`. */
function codesInSource(): Set<string> {
  return new Set(SOURCES.flatMap(({ text }) => [...text.matchAll(/(?:super|new ClusterDnsError)\(\s*'(E_[A-Z0-9_]+)'/g)].map((m) => m[1]!)));
}

/** Every error class: ClusterDnsError and each class that extends it, directly or through another. */
function errorClassesInSource(): { coded: Set<string>; all: Set<string> } {
  const parents = new Map<string, string>();
  for (const { text } of SOURCES) for (const m of text.matchAll(/class (\w+Error) extends (\w+)/g)) parents.set(m[1]!, m[2]!);
  const coded = new Set(['ClusterDnsError']);
  for (let grew = true; grew;) {
    grew = false;
    for (const [name, parent] of parents) {
      if (coded.has(parent) && !coded.has(name)) {
        coded.add(name);
        grew = true;
      }
    }
  }
  return { coded, all: new Set([...parents.keys(), 'ClusterDnsError']) };
}

describe('docs/errors.md and the error codes in src/', () => {
  const doc = read('docs/errors.md');
  const documentedCodes = new Set([...doc.matchAll(/^## `(E_[A-Z0-9_]+)`$/gm)].map((m) => m[1]!));

  it('finds codes in the source (the scan itself works)', () => {
    expect(codesInSource()).toContain('E_CONFIG');
    expect(codesInSource().size).toBeGreaterThan(3);
  });

  it('documents every code the source raises', () => {
    expect([...codesInSource()].filter((code) => !documentedCodes.has(code))).toEqual([]);
  });

  it('documents no code the source does not raise', () => {
    expect([...documentedCodes].filter((code) => !codesInSource().has(code))).toEqual([]);
  });

  it('names every coded error class, and only classes that exist', () => {
    const { coded, all } = errorClassesInSource();
    const named = new Set([...doc.matchAll(/`([A-Z]\w*Error)`/g)].map((m) => m[1]!));
    expect([...coded].filter((name) => !named.has(name))).toEqual([]);
    expect([...named].filter((name) => !all.has(name))).toEqual([]);
  });
});

const PLUGIN_DIR = 'src/plugins';
const PLUGINS = readdirSync(join(ROOT, PLUGIN_DIR)).filter((entry) => statSync(join(ROOT, PLUGIN_DIR, entry)).isDirectory()).sort();
/** CoreDNS's README layout, in its order. */
const SECTIONS = ['Name', 'Description', 'Syntax', 'Metrics', 'Ready', 'Examples'];
/** A metric's full name; a family written `coredns_dns_*` is not one. */
const METRIC_NAME = /\b((?:coredns|clusterdns)_[a-z0-9_]*[a-z0-9])\b/g;

/** The text of one `## Title` section of a markdown file, up to the next `## `. */
function section(markdown: string, title: string): string {
  const start = markdown.search(new RegExp(`^## ${title}$`, 'm'));
  if (start < 0) return '';
  const rest = markdown.slice(start).split('\n').slice(1).join('\n');
  const end = rest.search(/^## /m);
  return end < 0 ? rest : rest.slice(0, end);
}

describe('the README\'s "Running from a Corefile" against src/plugins/order.ts', () => {
  const readme = read('README.md');
  const corefileSection = readme.slice(readme.indexOf('## Running from a Corefile'), readme.indexOf('\n## ', readme.indexOf('## Running from a Corefile') + 3));

  it('the chain order it shows is the declared one', () => {
    const shown = /### Chain order[\s\S]*?```\n(.*)\n```/.exec(corefileSection)?.[1];
    expect(shown?.split(', ')).toEqual(ORDER.map((setup) => setup.name));
  });

  it('its plugin table links every plugin, in name order', () => {
    const rows = [...corefileSection.matchAll(/^\| \[([a-z0-9_]+)\]\(src\/plugins\/([a-z0-9_]+)\/README\.md\) \|/gm)];
    for (const [, name, folder] of rows) expect(folder).toBe(name);
    expect(rows.map((row) => row[1])).toEqual(ORDER.map((setup) => setup.name).sort());
  });
});

describe('every plugin folder has a README in CoreDNS\'s layout', () => {
  it('finds the plugin folders', () => expect(PLUGINS).toContain('kubernetes'));

  it.each(PLUGINS)('%s/README.md: "# name", then the six sections in order', (plugin) => {
    const path = join(ROOT, PLUGIN_DIR, plugin, 'README.md');
    expect(existsSync(path), `${PLUGIN_DIR}/${plugin}/README.md is missing`).toBe(true);
    const text = readFileSync(path, 'utf8');
    expect(text.split('\n')[0]).toBe(`# ${plugin}`);
    const headings = [...text.matchAll(/^## (.+)$/gm)].map((m) => m[1]!).filter((title) => SECTIONS.includes(title));
    expect(headings).toEqual(SECTIONS);
    for (const title of SECTIONS) expect(section(text, title).trim(), `${plugin}: ## ${title} is empty`).not.toBe('');
  });

  it.each(PLUGINS)('%s/README.md: its Metrics section names exactly the metrics its metrics.ts registers', (plugin) => {
    const metricsFile = join(PLUGIN_DIR, plugin, 'metrics.ts');
    const registered = existsSync(join(ROOT, metricsFile))
      ? new Set([...read(metricsFile).matchAll(/'((?:coredns|clusterdns)_[a-z0-9_]+)'/g)].map((m) => m[1]!))
      : new Set<string>();
    const readme = join(ROOT, PLUGIN_DIR, plugin, 'README.md');
    const documented = new Set(existsSync(readme) ? [...section(readFileSync(readme, 'utf8'), 'Metrics').matchAll(METRIC_NAME)].map((m) => m[1]!) : []);
    expect([...documented].sort()).toEqual([...registered].sort());
  });
});

interface DocumentedMetric {
  readonly histogram: boolean;
  readonly labels: readonly string[];
}

/**
 * The README's "## Metrics" table: each metric named in a row's first cell, whether the row says histogram, and
 * the label names of its second cell (before any ":" explanation, values in parentheses left out; `a`; `b, c`
 * gives each metric of the row its own labels, in order).
 */
function readmeMetrics(): { metrics: Map<string, DocumentedMetric>; prefixes: string[] } {
  const text = section(read('README.md'), 'Metrics');
  const metrics = new Map<string, DocumentedMetric>();
  for (const row of text.split('\n').filter((line) => line.startsWith('| `'))) {
    const [, first = '', second = ''] = row.split('|');
    const names = [...first.matchAll(METRIC_NAME)].map((m) => m[1]!);
    const parts = second.replace(/\([^)]*\)/g, '').split(':')[0]!.split(';');
    if (parts.length !== 1 && parts.length !== names.length) throw new Error(`README metrics row with ${names.length} metrics and ${parts.length} label lists: ${row}`);
    names.forEach((name, i) => {
      const labels = [...(parts[parts.length === 1 ? 0 : i] ?? '').matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!).sort();
      metrics.set(name, { histogram: /histogram/.test(first), labels });
    });
  }
  // Families documented as a whole in the text: "prom-client's `process_*` and `nodejs_*` metrics".
  const prefixes = [...text.matchAll(/`([a-z]+_)\*`/g)].map((m) => m[1]!);
  return { metrics, prefixes };
}

interface ExposedMetric {
  readonly type: string;
  /** The label names its samples carry (a histogram's `le` left out); empty when it has no sample yet. */
  readonly labels: Set<string>;
}

/** Every metric a /metrics page declares (`# TYPE name type`), with its type and its samples' label names. */
async function exposed(server: ServerProcess): Promise<Map<string, ExposedMetric>> {
  const { status, body } = await get(server, '/metrics');
  expect(status).toBe(200);
  const metrics = new Map([...body.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, { type: m[2]!, labels: new Set<string>() }]));
  for (const sample of parseMetrics(body)) {
    const metric = metrics.get(sample.name) ?? metrics.get(sample.name.replace(/_(bucket|sum|count)$/, ''));
    for (const label of Object.keys(sample.labels)) if (label !== 'le') metric?.labels.add(label);
  }
  return metrics;
}

describe('the README\'s metrics table against a running server\'s /metrics', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  const seen = new Map<string, ExposedMetric>();
  let withMetrics: string[] = [];
  let unloaded: string[] = [];

  beforeAll(async () => {
    // Every plugin that has metrics, over a watched cluster (the watch metrics need one), forwarding to a loopback
    // upstream; and the flag path with the proxy, whose metrics only it has.
    const api = new FakeKubeApiServer();
    await api.start();
    cleanups.push(() => api.stop());
    api.create('namespaces', { metadata: { name: 'default' } });
    api.create('services', { metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.96.0.10', selector: { app: 'web' }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } });
    const upstream = await TestUpstream.start({ records: { 'www.example.test': { A: ['192.0.2.10'], ttl: 300 } } });
    cleanups.push(() => upstream.stop());
    const dir = await mkdtemp(join(tmpdir(), 'clusterdns-docs-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'kubeconfig'), api.kubeconfigYaml());
    await writeFile(join(dir, 'hosts'), '192.0.2.20 hosts.example.test\n');
    // The stanza that loads each plugin with metrics (hosts and template as CoreDNS writes them, used once their
    // folders have a metrics.ts); a plugin folder with a metrics.ts and no stanza here fails the first test below,
    // so a new plugin's metrics cannot go unchecked.
    const stanzas: Readonly<Record<string, string>> = {
      kubernetes: `kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig ${join(dir, 'kubeconfig')}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }`,
      autopath: 'autopath @kubernetes',
      forward: `forward . ${upstream.address}`,
      cache: 'cache 30',
      reload: 'reload',
      hosts: `hosts ${join(dir, 'hosts')} hosts.example.test {
        fallthrough
    }`,
      template: `template IN TXT template.example.test {
        answer "{{ .Name }} 60 IN TXT ok"
    }`,
    };
    withMetrics = PLUGINS.filter((plugin) => existsSync(join(ROOT, PLUGIN_DIR, plugin, 'metrics.ts')));
    await writeFile(join(dir, 'Corefile'), `.:${await freePort()} {
    bind 127.0.0.1
    errors
    health 127.0.0.1:0
    ready 127.0.0.1:0
    prometheus 127.0.0.1:0
    ${withMetrics.flatMap((plugin) => stanzas[plugin] ?? []).join('\n    ')}
}
`);
    unloaded = withMetrics.filter((plugin) => stanzas[plugin] === undefined);
    const corefile = await startServer([], '127.0.0.1', { corefile: join(dir, 'Corefile') });
    cleanups.push(() => corefile.stop());
    await vi.waitFor(async () => expect((await get(corefile, '/ready')).status).toBe(200), { timeout: 10_000, interval: 50 });
    // One forwarded name, twice: a cache hit and an upstream answer, so every per-query series exists.
    for (let i = 0; i < 2; i++) await dig(corefile.port, ['www.example.test', 'A']);
    const manifests = join(ROOT, 'examples/demo-cluster.yaml');
    const proxy = await startServer(['--manifests', manifests, '--proxy', '--proxy-vip', 'loopback']);
    cleanups.push(() => proxy.stop());
    for (const server of [corefile, proxy]) for (const [name, metric] of await exposed(server)) seen.set(name, metric);
  });

  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('loads every plugin that has a metrics.ts', () => {
    expect(withMetrics).toEqual(expect.arrayContaining(['autopath', 'cache', 'forward', 'kubernetes', 'reload']));
    expect(unloaded, 'plugins with metrics.ts but no stanza in this test').toEqual([]);
  });

  it('lists every metric the server exposes (or its family)', () => {
    const { metrics, prefixes } = readmeMetrics();
    expect(prefixes.length).toBeGreaterThan(0);
    const missing = [...seen.keys()].filter((name) => !metrics.has(name) && !prefixes.some((prefix) => name.startsWith(prefix)));
    expect(missing).toEqual([]);
  });

  it('lists no metric the server does not expose', () => {
    expect([...readmeMetrics().metrics.keys()].filter((name) => !seen.has(name))).toEqual([]);
  });

  it('gives each metric the labels its samples carry', () => {
    // Only metrics with a labelled sample show their labels; most have one after the queries above.
    const compared = [...readmeMetrics().metrics]
      .filter(([name]) => (seen.get(name)?.labels.size ?? 0) > 0)
      .map(([name, { labels }]) => ({ name, documented: labels, exposed: [...seen.get(name)!.labels].sort() }));
    expect(compared.length).toBeGreaterThan(10);
    expect(compared.filter(({ documented, exposed: labels }) => documented.join() !== labels.join())).toEqual([]);
  });

  it('marks exactly the histograms as histograms', () => {
    const wrong = [...readmeMetrics().metrics].filter(([name, { histogram }]) => seen.has(name) && histogram !== (seen.get(name)!.type === 'histogram'));
    expect(wrong.map(([name]) => name)).toEqual([]);
  });
});
