/**
 * The userspace proxy as a whole process (`clusterdns proxy`, in --proxy-vip cluster-ip mode), in network
 * namespaces made for the test (support/netlab.ts): the VIPs local to the proxy's namespace, a client
 * namespace routed through it, backends on their own addresses in a third. Clients and backends are helper
 * processes there (support/netns-agent.mjs). Services come from a manifest file the tests rewrite, so every change
 * goes source → store → proxy as it would from a cluster. Needs root and `ip` (iproute2): skipped, saying so, without root.
 */
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseMetrics, value } from './support/http.js';
import { availableOrCiFails } from './support/ci.js';
import { canCreateNetns } from './support/netns.js';
import { BLACKHOLE_IP, CLIENT_IPS, NetLab, PROXY_CLIENT_SIDE, type Agent } from './support/netlab.js';
import { startServer, type ServerProcess } from './support/server-process.js';

const HTTP_PORT = 8080;
const BULK_PORT = 9100;
/** Backends that read nothing for 2 s, that send without end, and that reset every connection. */
const STALL_PORT = 9200;
const FLOOD_PORT = 9300;
const RESET_PORT = 9400;
const BULK_BYTES = 200 * 1024 * 1024;
/** Backends with a server; `b15` has an address and nothing listening (it refuses). */
const LIVE = ['10.2.0.11', '10.2.0.12', '10.2.0.13', '10.2.0.14'];
const VICTIMS = ['10.2.0.16', '10.2.0.17', '10.2.0.18'];
const REFUSING = '10.2.0.15';
const name = (ip: string): string => `b${ip.split('.').pop()}`;

const VIP = { web: '10.96.0.10', empty: '10.96.0.11', sticky: '10.96.0.12', flaky: '10.96.0.14', drain: '10.96.0.15', victim: '10.96.0.16', late: '10.96.0.17', capped: '10.96.0.20' };

interface Outcome {
  readonly name?: string;
  readonly error?: string;
  readonly ms?: number;
  readonly startedAt?: number;
}

// ---- manifests ---------------------------------------------------------------------------------------------------

interface EndpointSpec {
  readonly ip: string;
  readonly ready?: boolean;
  readonly serving?: boolean;
  readonly terminating?: boolean;
}

interface ServiceSpec {
  readonly name: string;
  readonly vip: string;
  readonly ports: ReadonlyArray<{ name: string; port: number; targetPort?: number | string }>;
  readonly slicePorts: ReadonlyArray<{ name: string; port: number }>;
  readonly endpoints: ReadonlyArray<EndpointSpec | string>;
  readonly affinitySeconds?: number;
}

function manifest(services: readonly ServiceSpec[]): string {
  return services.map((service) => JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: service.name, namespace: 'default' },
        spec: {
          clusterIP: service.vip,
          selector: { app: service.name },
          ports: service.ports.map((port) => ({ protocol: 'TCP', ...port })),
          ...(service.affinitySeconds !== undefined && {
            sessionAffinity: 'ClientIP',
            sessionAffinityConfig: { clientIP: { timeoutSeconds: service.affinitySeconds } },
          }),
        },
      },
      {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: `${service.name}-1`, namespace: 'default', labels: { 'kubernetes.io/service-name': service.name } },
        addressType: 'IPv4',
        ports: service.slicePorts.map((port) => ({ protocol: 'TCP', ...port })),
        endpoints: service.endpoints.map((endpoint) => {
          const { ip, ready = true, serving = ready, terminating = false } = typeof endpoint === 'string' ? { ip: endpoint } : endpoint;
          return { addresses: [ip], conditions: { ready, serving, terminating } };
        }),
      },
    ],
  })).join('\n---\n');
}

const http = (vip: string, endpoints: ServiceSpec['endpoints'], extra: Partial<ServiceSpec> & { name: string }): ServiceSpec => ({
  vip,
  ports: [{ name: 'http', port: 80, targetPort: 'web' }],
  slicePorts: [{ name: 'http', port: HTTP_PORT }],
  endpoints,
  ...extra,
});

const BASE: readonly ServiceSpec[] = [
  http(VIP.web, LIVE, {
    name: 'web',
    // `bulk` is found by its slice port; `plain` has no slice port, so its numeric targetPort applies.
    ports: [
      { name: 'http', port: 80, targetPort: 'web' },
      { name: 'bulk', port: 9000, targetPort: 'bulk' },
      { name: 'plain', port: 81, targetPort: HTTP_PORT },
      { name: 'stall', port: 9002, targetPort: STALL_PORT },
      { name: 'flood', port: 9003, targetPort: FLOOD_PORT },
      { name: 'reset', port: 9004, targetPort: RESET_PORT },
    ],
    slicePorts: [{ name: 'http', port: HTTP_PORT }, { name: 'bulk', port: BULK_PORT }],
  }),
  http(VIP.empty, [{ ip: LIVE[0]!, ready: false }, { ip: LIVE[1]!, ready: false, serving: true, terminating: true }], { name: 'empty' }),
  http(VIP.sticky, LIVE, { name: 'sticky', affinitySeconds: 2 }),
  http(VIP.flaky, [REFUSING, BLACKHOLE_IP, LIVE[2]!, LIVE[3]!], { name: 'flaky' }),
  http(VIP.drain, LIVE, { name: 'drain' }),
  http(VIP.victim, VICTIMS, { name: 'victim' }),
];

/** Network namespaces need CAP_SYS_ADMIN: CI runs as root; an unprivileged `npm test` skips this file and says why. */
const IS_ROOT = availableOrCiFails(await canCreateNetns(), 'root with ip');

describe.skipIf(!IS_ROOT)('proxy in network namespaces (needs root; skipped without it)', () => {
  // ---- the lab -----------------------------------------------------------------------------------------------------

  let lab: NetLab;
  let dir: string;
  let file: string;
  let proxy: ServerProcess;
  let client: Agent;
  const backends = new Map<string, Agent>();

  beforeAll(async () => {
    lab = await NetLab.create();
    dir = await mkdtemp(join(tmpdir(), 'clusterdns-proxy-'));
    file = join(dir, 'cluster.yaml');
    for (const vip of Object.values(VIP)) await lab.addVip(vip);
    for (const ip of [...LIVE, REFUSING, ...VICTIMS]) await lab.addBackendAddress(ip);
    for (const ip of [...LIVE, ...VICTIMS]) {
      const agent = await lab.agent('backend');
      await agent.call('serve', { host: ip, port: HTTP_PORT, name: name(ip) });
      await agent.call('serveBulk', { host: ip, port: BULK_PORT, bytes: BULK_BYTES });
      await agent.call('serveStall', { host: ip, port: STALL_PORT, ms: 2000 });
      await agent.call('serveFlood', { host: ip, port: FLOOD_PORT });
      await agent.call('serveReset', { host: ip, port: RESET_PORT });
      backends.set(ip, agent);
    }
    client = await lab.agent('client');
    await writeFile(file, manifest(BASE));
    proxy = await startProxy(['--manifests', file, '--proxy-drain', '2']);
    await waitForListeners(proxy, 11);
  }, 60_000);

  afterAll(async () => {
    await proxy?.stop();
    await lab?.destroy();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  async function startProxy(args: readonly string[]): Promise<ServerProcess> {
    const started = await startServer([...args, '--metrics', `${PROXY_CLIENT_SIDE}:0`], '127.0.0.1', {
      command: 'proxy',
      netns: lab.names.proxy,
    });
    lab.track(started.child);
    return started;
  }

  async function waitForListeners(server: ServerProcess, count: number): Promise<void> {
    await vi.waitFor(() => expect(server.logs.filter((line) => line.msg === 'proxying').length).toBeGreaterThanOrEqual(count), { timeout: 10_000, interval: 20 });
  }

  /** Rewrites the manifest (by rename, as editors save) and waits until the proxy process has reloaded it. */
  async function reload(services: readonly ServiceSpec[]): Promise<void> {
    const before = proxy.logs.filter((line) => line.msg === 'reloaded manifests').length;
    await writeFile(`${file}.tmp`, manifest(services));
    await rename(`${file}.tmp`, file);
    await vi.waitFor(() => expect(proxy.logs.filter((line) => line.msg === 'reloaded manifests').length).toBeGreaterThan(before), { timeout: 10_000, interval: 20 });
  }

  async function metric(server: ServerProcess, metricName: string, labels: Record<string, string> = {}): Promise<number | undefined> {
    const text = await client.call<string>('http', { url: `http://${server.http.metrics}/metrics` });
    return value(parseMetrics(text), metricName, labels);
  }

  const connect = (vip: string, count: number, extra: Record<string, unknown> = {}): Promise<Outcome[]> =>
    client.call<Outcome[]>('connect', { host: vip, port: 80, count, ...extra });

  function tally(outcomes: readonly Outcome[]): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const outcome of outcomes) {
      const key = outcome.name ?? `error ${outcome.error}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  }

  // ---- tests -------------------------------------------------------------------------------------------------------

  describe('clusterdns proxy: choosing a backend', () => {
    it('spreads new connections round-robin over the ready endpoints, within ±1 of an even share', async () => {
      const counts = tally(await connect(VIP.web, 400, { concurrency: 8 }));
      expect(Object.keys(counts).sort()).toEqual(LIVE.map(name));
      for (const count of Object.values(counts)) expect(Math.abs(count - 100)).toBeLessThanOrEqual(1);
    });

    it('resolves a named targetPort per endpoint from the slice ports, and falls back to a numeric one', async () => {
      const named = tally(await connect(VIP.web, 8));
      const plain = tally(await client.call<Outcome[]>('connect', { host: VIP.web, port: 81, count: 8 }));
      expect(Object.keys(named).sort()).toEqual(LIVE.map(name));
      expect(Object.keys(plain).sort()).toEqual(LIVE.map(name));
    });

    it('sessionAffinity ClientIP: one client keeps its backend, another gets its own, and it lapses after timeoutSeconds', async () => {
      const [a, b] = CLIENT_IPS;
      const first = tally(await connect(VIP.sticky, 12, { localAddress: a }));
      const second = tally(await connect(VIP.sticky, 12, { localAddress: b }));
      expect(Object.values(first)).toEqual([12]);
      expect(Object.values(second)).toEqual([12]);
      expect(Object.keys(second)).not.toEqual(Object.keys(first));

      // timeoutSeconds is 2, counted from the client's last connection (kube-proxy's rule): after it, the next
      // connection takes its turn in the rotation, which has moved past the first client's old backend.
      await new Promise((resolve) => setTimeout(resolve, 2300));
      const after = tally(await connect(VIP.sticky, 3, { localAddress: a }));
      expect(Object.values(after)).toEqual([3]);
      expect(Object.keys(after)).not.toEqual(Object.keys(first));
    });

    it('a backend that refuses and one that never answers are retried elsewhere: every connection succeeds', async () => {
      const counts = tally(await connect(VIP.flaky, 40, { concurrency: 2 }));
      expect(Object.keys(counts).sort()).toEqual([name(LIVE[2]!), name(LIVE[3]!)]);
      for (const count of Object.values(counts)) expect(Math.abs(count - 20)).toBeLessThanOrEqual(1);
      // Each dead endpoint costs one failed attempt, then sits out a penalty instead of being tried per connection.
      const labels = { namespace: 'default', service: 'flaky' };
      const failures = await metric(proxy, 'clusterdns_proxy_connect_failures_total', labels);
      expect(failures).toBeGreaterThanOrEqual(2);
      expect(failures).toBeLessThanOrEqual(4);
      expect(await metric(proxy, 'clusterdns_proxy_retries_total', labels)).toBe(failures);
    });

    it('no ready endpoint (not ready, terminating): the client is reset at once, and it is counted', async () => {
      const [outcome] = await connect(VIP.empty, 1);
      expect(outcome?.error).toBe('ECONNRESET');
      expect(outcome?.ms).toBeLessThan(1000);
      expect(await metric(proxy, 'clusterdns_proxy_no_endpoint_resets_total', { namespace: 'default', service: 'empty' })).toBe(1);
    });
  });

  describe('clusterdns proxy: streams', () => {
    it('moves 200 MB each way at once, byte for byte (sha256 on both ends), beside short connections, and counts the bytes', async () => {
      const labels = { namespace: 'default', service: 'web' };
      const clientBytes = (await metric(proxy, 'clusterdns_proxy_client_bytes_total', labels)) ?? 0;
      // Short connections come and go meanwhile: their read buffers are reused, and must never be the bulk one.
      const [result, churn] = await Promise.all([
        client.call<{ ok: boolean; detail: unknown }>('bulk', { host: VIP.web, port: 9000, bytes: BULK_BYTES }),
        client.call<Outcome[]>('connectFor', { host: VIP.web, port: 80, ms: 1000, concurrency: 4 }),
      ]);
      expect(result.detail).toMatchObject({ count: BULK_BYTES + 64 });
      expect(result.ok).toBe(true);
      expect(churn.filter((outcome) => outcome.error !== undefined)).toEqual([]);
      expect((await metric(proxy, 'clusterdns_proxy_client_bytes_total', labels))! - clientBytes).toBe(BULK_BYTES);
      expect(await metric(proxy, 'clusterdns_proxy_backend_bytes_total', labels)).toBeGreaterThanOrEqual(BULK_BYTES + 64);
    }, 120_000);

    it("passes a half-close through: after the client's FIN the backend still answers, then closes", async () => {
      const { received } = await client.call<{ received: string }>('halfClose', { host: VIP.web, port: 80, payload: 'hello' });
      const [first, rest] = [received.slice(0, received.indexOf('\n')), received.slice(received.indexOf('\n') + 1)];
      expect(LIVE.map(name)).toContain(first);
      expect(rest).toBe('hellobye 5\n');
    });

    it('backpressure both ways: a side that does not read stops the other side from being read', async () => {
      const labels = { namespace: 'default', service: 'web' };
      const read = async (): Promise<[number, number]> => [
        (await metric(proxy, 'clusterdns_proxy_backend_bytes_total', labels)) ?? 0,
        (await metric(proxy, 'clusterdns_proxy_client_bytes_total', labels)) ?? 0,
      ];
      // Unchecked, either would move gigabytes in 1.5 s on this path; what may sit in the kernel's socket buffers
      // along the way is a few MB, so 64 MB is a generous bound.
      const LIMIT = 64 * 1024 * 1024;
      const [fromBackends, fromClients] = await read();
      await client.call('stall', { host: VIP.web, port: 9003, ms: 1500 });
      const pushed = await client.call<number>('push', { host: VIP.web, port: 9002, ms: 1500 });
      const [backendsAfter, clientsAfter] = await read();
      expect(backendsAfter - fromBackends).toBeGreaterThan(0);
      expect(backendsAfter - fromBackends).toBeLessThan(LIMIT);
      expect(clientsAfter - fromClients).toBeGreaterThan(0);
      expect(clientsAfter - fromClients).toBeLessThan(LIMIT);
      expect(pushed).toBeLessThan(LIMIT);
      // The pushing client reset while the proxy was not reading it (Node cannot see a reset on a paused socket);
      // once the backend reads again, the proxy reads on, sees the reset and closes both sides.
      await vi.waitFor(async () => expect(await metric(proxy, 'clusterdns_proxy_connections_active', labels)).toBe(0), { timeout: 5000, interval: 100 });
    });

    it('a reset is passed on as a reset, both ways', async () => {
      const [outcome] = await client.call<Outcome[]>('connect', { host: VIP.web, port: 9004, count: 1 });
      expect(outcome?.error).toBe('ECONNRESET');

      for (const ip of LIVE) await backends.get(ip)!.call('closes');
      await client.call('reset', { host: VIP.web, port: 80 });
      const seen: string[] = [];
      await vi.waitFor(async () => {
        for (const ip of LIVE) seen.push(...await backends.get(ip)!.call<string[]>('closes'));
        expect(seen).toEqual(['ECONNRESET']);
      }, { timeout: 5000, interval: 50 });
    });

    it('holds 1,000 concurrent connections, each still carrying data, and reports them active', async () => {
      const held = await client.call<Array<{ id: number; name: string }>>('hold', { host: VIP.web, port: 80, count: 1000 });
      try {
        expect(Object.values(tally(held))).toEqual([250, 250, 250, 250]);
        const pings = await client.call<string[]>('ping', { ids: held.map((entry) => entry.id) });
        expect(tally(pings.map((ping) => ({ name: ping })))).toEqual({ ok: 1000 });
        expect(await metric(proxy, 'clusterdns_proxy_connections_active', { namespace: 'default', service: 'web' })).toBe(1000);
      } finally {
        await client.call('release', { ids: held.map((entry) => entry.id) });
      }
      await vi.waitFor(async () => expect(await metric(proxy, 'clusterdns_proxy_connections_active', { namespace: 'default', service: 'web' })).toBe(0), { timeout: 5000, interval: 100 });
    }, 60_000);
  });

  describe('clusterdns proxy: live changes', () => {
    it('an endpoint that leaves: new connections avoid it at once, its open ones drain for --proxy-drain, then close', async () => {
      const held = await client.call<Array<{ id: number; name: string }>>('hold', { host: VIP.drain, port: 80, count: 4 });
      expect(held.map((entry) => entry.name).sort()).toEqual(LIVE.map(name));
      const leaving = held.find((entry) => entry.name === name(LIVE[0]!))!;
      try {
        await reload(BASE.map((service) => (service.name === 'drain' ? { ...service, endpoints: LIVE.slice(1) } : service)));
        expect(Object.keys(tally(await connect(VIP.drain, 12))).sort()).toEqual(LIVE.slice(1).map(name));
        // Still carrying data while draining...
        expect(await client.call('ping', { ids: held.map((entry) => entry.id) })).toEqual(['ok', 'ok', 'ok', 'ok']);
        // ...and closed once the 2 s drain is over; the others are untouched.
        await new Promise((resolve) => setTimeout(resolve, 2500));
        const after = await client.call<string[]>('ping', { ids: held.map((entry) => entry.id) });
        held.forEach((entry, i) => expect(after[i] === 'ok', entry.name).toBe(entry !== leaving));
      } finally {
        await client.call('release', { ids: held.map((entry) => entry.id) });
        await reload(BASE);
      }
    });

    it('a service that appears, changes its port and goes away: listeners open and close with it', async () => {
      const late = http(VIP.late, LIVE.slice(0, 2), { name: 'late' });
      const opened = proxy.logs.filter((line) => line.msg === 'proxying').length;
      await reload([...BASE, late]);
      await waitForListeners(proxy, opened + 1);
      expect(Object.keys(tally(await connect(VIP.late, 4))).sort()).toEqual(LIVE.slice(0, 2).map(name));

      await reload([...BASE, { ...late, ports: [{ name: 'http', port: 82, targetPort: 'web' }] }]);
      await waitForListeners(proxy, opened + 2);
      expect(tally(await client.call<Outcome[]>('connect', { host: VIP.late, port: 82, count: 2 }))).toEqual({ [name(LIVE[0]!)]: 1, [name(LIVE[1]!)]: 1 });
      expect(tally(await connect(VIP.late, 1))).toEqual({ 'error ECONNREFUSED': 1 });

      await reload(BASE);
      expect(tally(await client.call<Outcome[]>('connect', { host: VIP.late, port: 82, count: 1 }))).toEqual({ 'error ECONNREFUSED': 1 });
    });

    it('a backend killed mid-run: new connections all succeed on the others', async () => {
      const run = client.call<Outcome[]>('connectFor', { host: VIP.victim, port: 80, ms: 1500, concurrency: 4 });
      await new Promise((resolve) => setTimeout(resolve, 400));
      await backends.get(VICTIMS[0]!)!.kill();
      const killedAt = Date.now();
      const outcomes = await run;
      // Connections already spliced to the victim when it died may fail (nothing can save those); none started after.
      const later = outcomes.filter((outcome) => outcome.startedAt! > killedAt + 50);
      expect(later.length).toBeGreaterThan(20);
      expect(later.filter((outcome) => outcome.error !== undefined)).toEqual([]);
      expect(later.filter((outcome) => outcome.name === name(VICTIMS[0]!))).toEqual([]);
      expect(outcomes.filter((outcome) => outcome.error !== undefined).length).toBeLessThanOrEqual(4);
      expect(await metric(proxy, 'clusterdns_proxy_connect_failures_total', { namespace: 'default', service: 'victim' })).toBeGreaterThanOrEqual(1);
    });
  });

  describe('clusterdns proxy: limits', () => {
    let capped: ServerProcess;
    const cappedFile = (): string => join(dir, 'capped.yaml');

    beforeAll(async () => {
      await writeFile(cappedFile(), manifest([http(VIP.capped, LIVE, { name: 'capped' })]));
      capped = await startProxy(['--manifests', cappedFile(), '--proxy-max-connections', '3', '--proxy-idle-timeout', '1']);
      await waitForListeners(capped, 1);
    });

    afterAll(async () => {
      await capped?.stop();
    });

    it('--proxy-max-connections: the connection over the cap is reset at once and counted; --proxy-idle-timeout closes idle ones', async () => {
      const held = await client.call<Array<{ id: number; name: string }>>('hold', { host: VIP.capped, port: 80, count: 3 });
      const [over] = await connect(VIP.capped, 1);
      expect(over?.error).toBe('ECONNRESET');
      expect(await metric(capped, 'clusterdns_proxy_connections_rejected_total')).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 1600));
      expect(await client.call('ping', { ids: held.map((entry) => entry.id) })).toEqual(['closed', 'closed', 'closed']);
      await client.call('release', { ids: held.map((entry) => entry.id) });
    });
  });
});
