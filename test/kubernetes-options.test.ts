// The kubernetes plugin's CoreDNS options that change which records exist (noendpoints, ignore empty_service,
// endpoint_pod_names), on the whole process: `clusterdns -conf Corefile` (dist/cli.js, a real child process)
// serving test/fixtures/k8s-options.yaml, asked by real `dig`. Each block asks the same names of a server without
// the option and of one with it, so a row fails when the option stops making its difference.
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig, type DigResult } from './support/dig.js';
import { freePort, runCli, startServer, type ServerProcess } from './support/server-process.js';

const CLUSTER = new URL('./fixtures/k8s-options.yaml', import.meta.url).pathname;
const SVC = 'default.svc.cluster.local.';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clusterdns-k8sopts-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A Corefile serving `cluster` on a free loopback port, with `options` inside the kubernetes block. */
async function corefile(options: string, cluster = CLUSTER): Promise<string> {
  const file = join(dir, `Corefile-${options.replace(/\W+/g, '-') || 'plain'}`);
  await writeFile(file, `.:${await freePort()} {
    bind 127.0.0.1
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        manifests ${cluster}
        ${options}
    }
}
`);
  return file;
}

/** A server without the option and one with it, set before the block's tests run and stopped after them. */
function servers(plainOptions: string, options: string): { plain: ServerProcess; option: ServerProcess } {
  const pair = {} as { plain: ServerProcess; option: ServerProcess };
  const start = async (set: string): Promise<ServerProcess> => startServer([], '127.0.0.1', { corefile: await corefile(set) });
  beforeAll(async () => {
    pair.plain = await start(plainOptions);
    pair.option = await start(options);
  });
  afterAll(async () => {
    await pair.plain?.stop();
    await pair.option?.stop();
  });
  return pair;
}

type Answer = { readonly status: string; readonly answer: readonly string[]; readonly ede: readonly string[] };

/** What a row compares: the status, the answer section and the EDE text dig printed. */
async function ask(server: ServerProcess, name: string, type: string): Promise<Answer> {
  const result: DigResult = await dig(server.port, [name, type]);
  return {
    status: result.status,
    answer: [...result.answer].sort(),
    ede: [...result.raw.matchAll(/^; EDE: 0 \(Other\): \((.*)\)$/gm)].map((match) => match[1]!),
  };
}

/** Asks each row's name and type (name, type, answer without the option, answer with it) of both servers. */
function askBoth(pair: { plain: ServerProcess; option: ServerProcess }, rows: ReadonlyArray<readonly [string, string, Answer, Answer]>): void {
  it.each(rows)('%s %s', async (name, type, without, withOption) => {
    expect(await ask(pair.plain, name, type)).toEqual(without);
    expect(await ask(pair.option, name, type)).toEqual(withOption);
  });
}

const ok = (...answer: string[]): Answer => ({ status: 'NOERROR', answer: answer.sort(), ede: [] });
const nxdomain = (ede: string): Answer => ({ status: 'NXDOMAIN', answer: [], ede: [ede] });

describe('noendpoints', () => {
  const pair = servers('', 'noendpoints');
  // name, type, without the option, with it.
  const rows = [
    [`web.${SVC}`, 'A', ok(`web.${SVC} 5 IN A 10.96.0.50`), ok(`web.${SVC} 5 IN A 10.96.0.50`)],
    [`10-244-1-5.web.${SVC}`, 'A', ok(`10-244-1-5.web.${SVC} 5 IN A 10.244.1.5`),
      nxdomain('service "web": endpoint records are not served (noendpoints)')],
    [`web-b.web.${SVC}`, 'A', ok(`web-b.web.${SVC} 5 IN A 10.244.1.6`),
      nxdomain('service "web": endpoint records are not served (noendpoints)')],
    [`db.${SVC}`, 'A', ok(`db.${SVC} 5 IN A 10.244.2.7`, `db.${SVC} 5 IN A 10.244.2.8`, `db.${SVC} 5 IN A 10.244.2.9`),
      nxdomain('headless service "db": endpoint records are not served (noendpoints)')],
    [`_pg._tcp.db.${SVC}`, 'SRV', ok(
      `_pg._tcp.db.${SVC} 5 IN SRV 0 33 5432 10-244-2-7.db.${SVC}`,
      `_pg._tcp.db.${SVC} 5 IN SRV 0 33 5432 10-244-2-8.db.${SVC}`,
      `_pg._tcp.db.${SVC} 5 IN SRV 0 33 5432 10-244-2-9.db.${SVC}`,
    ), nxdomain('headless service "db": endpoint records are not served (noendpoints)')],
    ['5.1.244.10.in-addr.arpa.', 'PTR', ok(`5.1.244.10.in-addr.arpa. 5 IN PTR 10-244-1-5.web.${SVC}`), { status: 'NXDOMAIN', answer: [], ede: [] }],
    ['50.0.96.10.in-addr.arpa.', 'PTR', ok(`50.0.96.10.in-addr.arpa. 5 IN PTR web.${SVC}`), ok(`50.0.96.10.in-addr.arpa. 5 IN PTR web.${SVC}`)],
  ] as const;
  askBoth(pair, rows);

  it('says nothing about the readiness of endpoints it does not serve', async () => {
    expect((await ask(pair.plain, `orders.${SVC}`, 'A')).ede).toEqual(['service "orders" has no ready endpoints: connections to 10.96.0.60 will fail']);
    expect(await ask(pair.option, `orders.${SVC}`, 'A')).toEqual(ok(`orders.${SVC} 5 IN A 10.96.0.60`));
  });
});

describe('ignore empty_service', () => {
  const pair = servers('', 'ignore empty_service');
  const noReady = 'service "orders" has no ready endpoints (ignore empty_service)';
  // name, type, without the option, with it. Only a ClusterIP service without a ready endpoint changes.
  const rows = [
    [`orders.${SVC}`, 'A', { ...ok(`orders.${SVC} 5 IN A 10.96.0.60`), ede: ['service "orders" has no ready endpoints: connections to 10.96.0.60 will fail'] }, nxdomain(noReady)],
    [`_http._tcp.orders.${SVC}`, 'SRV', { ...ok(`_http._tcp.orders.${SVC} 5 IN SRV 0 100 80 orders.${SVC}`), ede: ['service "orders" has no ready endpoints: connections to 10.96.0.60 will fail'] }, nxdomain(noReady)],
    [`web.${SVC}`, 'A', ok(`web.${SVC} 5 IN A 10.96.0.50`), ok(`web.${SVC} 5 IN A 10.96.0.50`)],
    [`db.${SVC}`, 'A', ok(`db.${SVC} 5 IN A 10.244.2.7`, `db.${SVC} 5 IN A 10.244.2.8`, `db.${SVC} 5 IN A 10.244.2.9`),
      ok(`db.${SVC} 5 IN A 10.244.2.7`, `db.${SVC} 5 IN A 10.244.2.8`, `db.${SVC} 5 IN A 10.244.2.9`)],
    [`legacy.${SVC}`, 'CNAME', ok(`legacy.${SVC} 5 IN CNAME legacy.example.org.`), ok(`legacy.${SVC} 5 IN CNAME legacy.example.org.`)],
    // CoreDNS's reverse lookup does not look at endpoints: the cluster IP keeps its PTR.
    ['60.0.96.10.in-addr.arpa.', 'PTR', ok(`60.0.96.10.in-addr.arpa. 5 IN PTR orders.${SVC}`), ok(`60.0.96.10.in-addr.arpa. 5 IN PTR orders.${SVC}`)],
  ] as const;
  askBoth(pair, rows);

  it('serves the service again as soon as an endpoint is ready, and hides it again when none is', async () => {
    const cluster = join(dir, 'k8s-options.yaml');
    await copyFile(CLUSTER, cluster);
    const server = await startServer([], '127.0.0.1', { corefile: await corefile('ignore empty_service', cluster) });
    try {
      await ask(server, `orders.${SVC}`, 'A'); // prepared, so the change must drop it
      const original = await readFile(cluster, 'utf8');
      await writeFile(cluster, original.replace('conditions: {ready: false}', 'conditions: {ready: true}'));
      await expect.poll(() => ask(server, `orders.${SVC}`, 'A'), { timeout: 5000 }).toEqual(ok(`orders.${SVC} 5 IN A 10.96.0.60`));
      await writeFile(cluster, original);
      await expect.poll(() => ask(server, `orders.${SVC}`, 'A'), { timeout: 5000 }).toEqual(nxdomain(noReady));
    } finally {
      await server.stop();
    }
  });
});

describe('endpoint_pod_names', () => {
  const pair = servers('', 'endpoint_pod_names');
  const noEndpoint = (name: string): Answer => nxdomain(`service "web" has no endpoint named "${name}"`);
  // name, type, without the option, with it.
  const rows = [
    [`web-6f7c9-abcde.web.${SVC}`, 'A', noEndpoint('web-6f7c9-abcde'), ok(`web-6f7c9-abcde.web.${SVC} 5 IN A 10.244.1.5`)],
    // The pod name replaces the dashed IP: the dashed name is gone, as in CoreDNS.
    [`10-244-1-5.web.${SVC}`, 'A', ok(`10-244-1-5.web.${SVC} 5 IN A 10.244.1.5`), noEndpoint('10-244-1-5')],
    // A hostname wins over the pod name.
    [`web-b.web.${SVC}`, 'A', ok(`web-b.web.${SVC} 5 IN A 10.244.1.6`), ok(`web-b.web.${SVC} 5 IN A 10.244.1.6`)],
    [`web-6f7c9-fghij.web.${SVC}`, 'A', noEndpoint('web-6f7c9-fghij'), noEndpoint('web-6f7c9-fghij')],
    // SRV targets of a headless service: a pod name too long for a label, and no targetRef, keep the dashed IP.
    [`_pg._tcp.db.${SVC}`, 'SRV', ok(
      `_pg._tcp.db.${SVC} 5 IN SRV 0 33 5432 10-244-2-7.db.${SVC}`,
      `_pg._tcp.db.${SVC} 5 IN SRV 0 33 5432 10-244-2-8.db.${SVC}`,
      `_pg._tcp.db.${SVC} 5 IN SRV 0 33 5432 10-244-2-9.db.${SVC}`,
    ), ok(
      `_pg._tcp.db.${SVC} 5 IN SRV 0 33 5432 db-7d4b8-xk2lq.db.${SVC}`,
      `_pg._tcp.db.${SVC} 5 IN SRV 0 33 5432 10-244-2-8.db.${SVC}`,
      `_pg._tcp.db.${SVC} 5 IN SRV 0 33 5432 10-244-2-9.db.${SVC}`,
    )],
    ['7.2.244.10.in-addr.arpa.', 'PTR', ok(`7.2.244.10.in-addr.arpa. 5 IN PTR 10-244-2-7.db.${SVC}`), ok(`7.2.244.10.in-addr.arpa. 5 IN PTR db-7d4b8-xk2lq.db.${SVC}`)],
    [`orders-5c8d7-q9w8e.orders.${SVC}`, 'A', nxdomain('service "orders" has no endpoint named "orders-5c8d7-q9w8e"'),
      nxdomain('endpoint "orders-5c8d7-q9w8e" of service "orders" is not ready')],
  ] as const;
  askBoth(pair, rows);

  it('puts the pod-named targets\' addresses in the additional section', async () => {
    const { additional } = await dig(pair.option.port, [`_pg._tcp.db.${SVC}`, 'SRV']);
    expect(additional).toContain(`db-7d4b8-xk2lq.db.${SVC} 5 IN A 10.244.2.7`);
  });
});

describe('setup', () => {
  it.each([
    ['ignore without its argument', 'ignore', /Corefile-\S+:5: plugin "kubernetes": option "ignore" wants 1 argument, got 0 \(usage: ignore empty_service\)/],
    ['ignore with another argument', 'ignore empty_pods', /Corefile-\S+:5: plugin "kubernetes": option "ignore": "empty_pods" is not one of empty_service/],
    ['endpoint_pod_names with an argument', 'endpoint_pod_names on', /Corefile-\S+:5: plugin "kubernetes": option "endpoint_pod_names" wants 0 arguments, got 1 \(usage: endpoint_pod_names\)/],
    ['noendpoints with an argument', 'noendpoints yes', /Corefile-\S+:5: plugin "kubernetes": option "noendpoints" wants 0 arguments, got 1 \(usage: noendpoints\)/],
  ])('refuses %s', async (_what, options, message) => {
    const { code, stderr } = await runCli(['-conf', await corefile(options)]);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });
});
