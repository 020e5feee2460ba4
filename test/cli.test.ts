/**
 * The `clusterdns` command as a user meets it: help and version, exit codes (2 for usage and configuration,
 * 1 for anything else), error messages that name the flag, file, line or object at fault, manifest loading from a
 * directory, and a bad edit to the manifests while running (logged, last good state kept, next good edit applied).
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVE_FLAGS } from '../src/config/index.js';
import { resolverSetupCommand } from '../src/system-resolver.js';
import { dig } from './support/dig.js';
import { runCli, startServer } from './support/server-process.js';

const DEMO = 'examples/demo-cluster.yaml';
const WEB = 'web.default.svc.cluster.local';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clusterdns-cli-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `text` to a fresh file under the test's temp dir and returns its path. */
let fileCount = 0;
async function tempFile(name: string, text: string): Promise<string> {
  const path = join(dir, `${fileCount++}-${name}`);
  await writeFile(path, text);
  return path;
}

describe('help and version', () => {
  it('serve --help exits 0 and documents every flag in SERVE_FLAGS, each with its help text', async () => {
    const { code, stdout, stderr } = await runCli(['serve', '--help']);
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout.split('\n')[0]).toBe('Usage: clusterdns serve [flags]');
    const flagLines = stdout.split('\n').filter((line) => line.startsWith('  --'));
    expect(flagLines.map((line) => /^ {2}--([a-z-]+)/.exec(line)?.[1])).toEqual(Object.keys(SERVE_FLAGS));
    for (const [name, spec] of Object.entries(SERVE_FLAGS)) {
      const line = flagLines.find((candidate) => candidate.startsWith(`  --${name} `) || candidate === `  --${name}`);
      expect(line, `--${name}`).toBeDefined();
      expect(line, `--${name}`).toContain(spec.help);
      if (spec.default !== undefined) expect(line, `--${name}`).toContain(`(default ${spec.default})`);
    }
  });

  it('proxy --help lists the source, endpoint, logging and proxy flags, and no DNS ones', async () => {
    const { code, stdout } = await runCli(['proxy', '--help']);
    expect(code).toBe(0);
    expect(stdout.split('\n')[0]).toBe('Usage: clusterdns proxy [flags]');
    const flags = stdout.split('\n').flatMap((line) => /^ {2}--([a-z-]+)/.exec(line)?.[1] ?? []);
    expect(flags).toEqual(['manifests', 'kubeconfig', 'namespaces', 'health', 'ready', 'metrics', 'lameduck', 'log-level',
      'proxy-vip', 'proxy-range', 'proxy-drain', 'proxy-idle-timeout', 'proxy-max-connections', 'help']);
  });

  it.each(['serve', 'dev', 'proxy', 'resolve', 'doctor'])('%s --help: every flag has at least two spaces before its text, in one column', async (command) => {
    const { code, stdout } = await runCli([command, '--help']);
    expect(code).toBe(0);
    const rows = stdout.split('\n').filter((line) => line.startsWith('  --')).map((line) => /^( {2}--\S+(?: \S+)?)( {2,})(\S.*)$/.exec(line));
    expect(rows.length).toBeGreaterThan(3);
    for (const row of rows) expect(row, 'a flag, two or more spaces, its text').not.toBeNull();
    expect(new Set(rows.map((row) => row![1]!.length + row![2]!.length)).size, 'the texts start in one column').toBe(1);
  });

  it('help exits 0 and lists the commands on stdout', async () => {
    const { code, stdout, stderr } = await runCli(['help']);
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout.split('\n')[0]).toBe('Usage: clusterdns <command> [flags]');
    expect(stdout.match(/^ {2}(\w+) /gm)?.map((line) => line.trim())).toEqual(['serve', 'resolve', 'doctor', 'top', 'proxy', 'dev', 'version', 'help']);
  });

  it('no command at all: usage on stderr, exit 2', async () => {
    const { code, stdout, stderr } = await runCli([]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.split('\n')[0]).toBe('Usage: clusterdns <command> [flags]');
  });

  it("version prints package.json's version", async () => {
    const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    const { code, stdout, stderr } = await runCli(['version']);
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout).toBe(`${version}\n`);
  });
});

describe('usage errors: exit 2, one line naming the command or flag', () => {
  it('an unknown command', async () => {
    const { code, stdout, stderr } = await runCli(['frobnicate']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe(`clusterdns: unknown command "frobnicate"; run 'clusterdns help'\n`);
  });

  it('an unknown flag --nope', async () => {
    const { code, stdout, stderr } = await runCli(['serve', '--nope']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^clusterdns: .*'--nope'.*\n$/);
    expect(stderr).toContain("see 'clusterdns serve --help'");
    expect(stderr.split('\n')).toHaveLength(2);
  });

  it('a value starting with a dash (--ttl -1) is refused by the argument parser, naming --ttl', async () => {
    const { code, stdout, stderr } = await runCli(['serve', '--listen', '127.0.0.1:0', '--manifests', DEMO, '--ttl', '-1']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe(
      "clusterdns: Option '--ttl' argument is ambiguous. Did you forget to specify the option argument for '--ttl'? " +
      "To specify an option argument starting with a dash use '--ttl=-XYZ'; see 'clusterdns serve --help'\n",
    );
  });

  it('a positional argument names it', async () => {
    const { code, stdout, stderr } = await runCli(['serve', '--listen', '127.0.0.1:0', '--manifests', DEMO, 'extra']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe("clusterdns: Unexpected argument 'extra'. This command does not take positional arguments; see 'clusterdns serve --help'\n");
  });

  // Each row: the arguments, and the start of the one error line (flag and value first, then why).
  const badValues: Array<[string[], string]> = [
    [['--ttl', 'abc'], '--ttl abc: expected a whole number from 0 to 3600'],
    [['--ttl', '99999'], '--ttl 99999: expected a whole number from 0 to 3600'],
    [['--ttl=-1'], '--ttl -1: expected a whole number from 0 to 3600'],
    [['--pods', 'maybe'], '--pods maybe: expected one of insecure, verified, disabled'],
    [['--listen', 'nope'], '--listen nope: expected HOST:PORT'],
    [['--listen', '127.0.0.1:70000'], '--listen 127.0.0.1:70000: port 70000 is above 65535'],
    [['--listen', '[127.0.0.1]:53'], '--listen [127.0.0.1]:53: only IPv6 addresses go in brackets'],
    [['--listen', 'localhost:53'], '--listen localhost:53: "localhost" is not an IP address'],
    [['--zone', 'a..b'], '--zone a..b: '],
    [['--log-level', 'loud'], '--log-level loud: expected one of fatal, error, warn, info, debug, trace, silent'],
    [['--tcp-idle-timeout', '0'], '--tcp-idle-timeout 0: expected a whole number from 1 to 3600'],
    [['--max-tcp-connections', '1.5'], '--max-tcp-connections 1.5: expected a whole number from 1 to 1000000'],
    [['--proxy-drain', '5'], "--proxy-drain applies only with --proxy (or 'clusterdns proxy')"],
    [['--proxy', '--proxy-vip', 'node-ip'], '--proxy-vip node-ip: expected one of cluster-ip, loopback'],
    [['--proxy', '--proxy-range', '127.32.0.0/16'], '--proxy-range applies only with --proxy-vip loopback'],
    [['--proxy', '--proxy-vip', 'loopback', '--proxy-range', '10.96.0.0/16'], '--proxy-range 10.96.0.0/16: must lie inside the loopback range 127.0.0.0/8'],
    [['--proxy', '--proxy-vip', 'loopback', '--proxy-range', '127.32.0.1/16'], '--proxy-range 127.32.0.1/16: 127.32.0.1 is not the first address of a /16'],
    [['--proxy', '--proxy-vip', 'loopback', '--proxy-range', '127.32.0.0/31'], '--proxy-range 127.32.0.0/31: too small'],
    [['--proxy', '--proxy-vip', 'loopback', '--proxy-range', '127.32.0.0'], '--proxy-range 127.32.0.0: expected an IPv4 CIDR'],
    [['--proxy', '--proxy-drain', 'soon'], '--proxy-drain soon: expected a whole number from 0 to 3600'],
    [['--proxy', '--proxy-idle-timeout', '0'], '--proxy-idle-timeout 0: expected a whole number from 1 to 604800'],
    [['--proxy', '--proxy-max-connections', '0'], '--proxy-max-connections 0: expected a whole number from 1 to 1000000'],
  ];
  it.each(badValues)('serve %j', async (args, message) => {
    const { code, stdout, stderr } = await runCli(['serve', '--listen', '127.0.0.1:0', '--manifests', DEMO, ...args]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.startsWith(`clusterdns: ${message}`), stderr).toBe(true);
    expect(stderr.split('\n'), stderr).toHaveLength(2);
  });
});

describe('clusterdns dev: flags', () => {
  it('--help lists its flags with its own defaults (loopback, free ports)', async () => {
    const { code, stdout } = await runCli(['dev', '--help']);
    expect(code).toBe(0);
    const flags = stdout.split('\n').flatMap((line) => /^ {2}--([a-z-]+)/.exec(line)?.[1] ?? []);
    expect(flags).toEqual(['listen', 'kubeconfig', 'namespaces', 'metrics', 'log-level', 'resolv-conf', 'upstream', 'stub-domain',
      'upstream-timeout', 'cache-size', 'proxy-range', 'proxy-drain', 'proxy-idle-timeout', 'proxy-max-connections', 'direct', 'help']);
    expect(stdout).toContain('(default 127.0.0.1:5353)');
  });

  it('it watches a cluster: --manifests is not one of its flags, and --direct is not one of serve\'s', async () => {
    expect((await runCli(['dev', '--manifests', DEMO])).stderr).toBe("clusterdns: Unknown option '--manifests'; see 'clusterdns dev --help'\n");
    expect((await runCli(['serve', '--direct'])).stderr).toBe("clusterdns: Unknown option '--direct'; see 'clusterdns serve --help'\n");
  });

  it('the resolver command routes only the cluster zone: systemd-resolved drop-in, macOS /etc/resolver', () => {
    expect(resolverSetupCommand({ host: '127.0.0.1', port: 5353 }, 'cluster.local', 'linux')).toBe(
      `sudo sh -c 'mkdir -p /etc/systemd/resolved.conf.d && printf "[Resolve]\\nDNS=127.0.0.1:5353\\nDomains=~cluster.local\\n" > /etc/systemd/resolved.conf.d/clusterdns.conf && systemctl restart systemd-resolved'`,
    );
    expect(resolverSetupCommand({ host: '::1', port: 5353 }, 'cluster.local', 'linux')).toContain('DNS=[::1]:5353');
    expect(resolverSetupCommand({ host: '127.0.0.1', port: 5353 }, 'corp.example', 'darwin')).toBe(
      `sudo sh -c 'mkdir -p /etc/resolver && printf "nameserver 127.0.0.1\\nport 5353\\n" > /etc/resolver/corp.example'`,
    );
  });
});

describe('clusterdns proxy: usage errors name the flag', () => {
  it('a DNS flag is not one of its flags', async () => {
    const { code, stderr } = await runCli(['proxy', '--manifests', DEMO, '--ttl', '5']);
    expect(code).toBe(2);
    expect(stderr).toBe("clusterdns: Unknown option '--ttl'; see 'clusterdns proxy --help'\n");
  });

  it('a bad proxy value is named as in serve', async () => {
    const { code, stderr } = await runCli(['proxy', '--manifests', DEMO, '--proxy-vip', 'loopback', '--proxy-range', '127.0.0.0/4']);
    expect(code).toBe(2);
    expect(stderr).toBe('clusterdns: --proxy-range 127.0.0.0/4: must lie inside the loopback range 127.0.0.0/8\n');
  });
});

describe('startup failures: exit 1, the message names the file, line or object', () => {
  async function serveFails(manifests: string): Promise<string> {
    const { code, stdout, stderr } = await runCli(['serve', '--listen', '127.0.0.1:0', '--manifests', manifests]);
    expect(code, stderr).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.split('\n'), stderr).toHaveLength(2);
    return stderr;
  }

  it('--manifests /does/not/exist', async () => {
    const stderr = await serveFails('/does/not/exist');
    expect(stderr.startsWith('clusterdns: /does/not/exist: cannot read: '), stderr).toBe(true);
    expect(stderr).toContain('ENOENT');
  });

  it('YAML indented with a tab: file and line 4', async () => {
    const path = await tempFile('tab.yaml', 'apiVersion: v1\nkind: Service\nmetadata:\n\tname: x\n');
    const stderr = await serveFails(path);
    expect(stderr.startsWith(`clusterdns: ${path}:4:1: invalid YAML: `), stderr).toBe(true);
  });

  it('YAML with an unclosed flow mapping in the second document: file and line', async () => {
    const path = await tempFile('unclosed.yaml', 'apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b\n');
    const stderr = await serveFails(path);
    expect(stderr, stderr).toMatch(new RegExp(`^clusterdns: ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:8:1: invalid YAML: `));
  });

  it('invalid JSON names the file', async () => {
    const path = await tempFile('broken.json', '{"apiVersion": "v1", "kind": ');
    const stderr = await serveFails(path);
    expect(stderr.startsWith(`clusterdns: ${path}: invalid JSON: `), stderr).toBe(true);
  });

  it('a Service without clusterIP: file, document number and Service default/x', async () => {
    const path = await tempFile('no-ip.yaml', [
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: default}',
      'apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports: [{port: 80}]',
    ].join('\n---\n'));
    const stderr = await serveFails(path);
    expect(stderr.startsWith(`clusterdns: ${path}: document 2: Service default/x: no spec.clusterIP`), stderr).toBe(true);
  });

  it('an EndpointSlice with a bad address: file, document, the slice and the address', async () => {
    const path = await tempFile('bad-slice.yaml', [
      'apiVersion: discovery.k8s.io/v1',
      'kind: EndpointSlice',
      'metadata: {name: x-1, namespace: shop, labels: {kubernetes.io/service-name: x}}',
      'addressType: IPv4',
      'endpoints:',
      '  - addresses: [10.0.0.1]',
      '  - addresses: [10.0.0.300]',
    ].join('\n'));
    const stderr = await serveFails(path);
    expect(stderr).toBe(`clusterdns: ${path}: document 1: EndpointSlice shop/x-1: endpoints[1].addresses[0] "10.0.0.300" is not an IPv4 address\n`);
  });

  describe('a port already in use', () => {
    let udp: UdpSocket;
    let tcp: Server;
    let udpPort: number;
    let tcpPort: number;

    beforeAll(async () => {
      udp = createSocket('udp4');
      await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', () => resolve()));
      udpPort = udp.address().port;
      tcp = createServer();
      await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', () => resolve()));
      tcpPort = (tcp.address() as { port: number }).port;
    });

    afterAll(async () => {
      await new Promise<void>((resolve) => udp.close(() => resolve()));
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    });

    it.each([
      ['UDP', () => udpPort],
      ['TCP', () => tcpPort],
    ])('taken for %s', async (_transport, port) => {
      const { code, stdout, stderr } = await runCli(['serve', '--listen', `127.0.0.1:${port()}`, '--manifests', DEMO, '--log-level', 'warn']);
      expect(code, stderr).toBe(1);
      expect(stdout).toBe('');
      expect(stderr).toBe(`clusterdns: cannot listen on 127.0.0.1:${port()}: the address is already in use\n`);
    });
  });
});

describe('manifests that load', () => {
  it('a directory: a kind: List in YAML, a JSON file, a subdirectory; hidden and other files are not read', async () => {
    const root = await mkdtemp(join(dir, 'dir-'));
    await mkdir(join(root, 'sub'));
    await writeFile(join(root, 'list.yaml'), [
      'apiVersion: v1',
      'kind: List',
      'items:',
      '  - {apiVersion: v1, kind: Namespace, metadata: {name: default}}',
      '  - apiVersion: v1',
      '    kind: Service',
      '    metadata: {name: from-list, namespace: default}',
      '    spec: {clusterIP: 10.96.1.1}',
    ].join('\n'));
    await writeFile(join(root, 'svc.json'), JSON.stringify({
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'from-json', namespace: 'default' }, spec: { clusterIP: '10.96.1.2' },
    }));
    await writeFile(join(root, 'sub', 'nested.yml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: from-sub, namespace: default}\nspec: {clusterIP: 10.96.1.3}\n');
    // Neither is a manifest: were either read, startup would fail on it.
    await writeFile(join(root, '.hidden.yaml'), 'not: [valid\n');
    await writeFile(join(root, 'notes.txt'), 'apiVersion: v1\nkind: Service\nmetadata: {name: bad}\n');

    const server = await startServer(['--manifests', root]);
    try {
      for (const [name, ip] of [['from-list', '10.96.1.1'], ['from-json', '10.96.1.2'], ['from-sub', '10.96.1.3']] as const) {
        const result = await dig(server.port, [`${name}.default.svc.cluster.local`, 'A']);
        expect(result.status, name).toBe('NOERROR');
        expect(result.answer).toEqual([`${name}.default.svc.cluster.local. 5 IN A ${ip}`]);
      }
      expect((await server.waitForLog((line) => line.msg === 'loaded manifests')).services).toBe(3);
    } finally {
      await server.stop();
    }
  });

  it('kinds clusterdns does not use (ConfigMap, Deployment) are ignored, logged at debug, and the server starts', async () => {
    const path = await tempFile('mixed.yaml', [
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: default}\ndata: {a: "1"}',
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\nspec: {replicas: 2}',
      'apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec: {clusterIP: 10.96.2.2}',
    ].join('\n---\n'));
    const server = await startServer(['--manifests', path]);
    try {
      const result = await dig(server.port, [WEB, 'A']);
      expect(result.status).toBe('NOERROR');
      expect(result.answer).toEqual([`${WEB}. 5 IN A 10.96.2.2`]);
      const ignored = server.logs.filter((line) => line.msg === 'ignoring an object of a kind clusterdns does not use');
      expect(ignored.map(({ kind, document, level }) => ({ kind, document, level }))).toEqual([
        { kind: 'ConfigMap', document: 1, level: 20 },
        { kind: 'Deployment', document: 2, level: 20 },
      ]);
    } finally {
      await server.stop();
    }
  });
});

describe('a bad edit to the manifests while running', () => {
  it('is logged with file and line, the last good answers stay, and the next good edit is applied', async () => {
    const path = join(await mkdtemp(join(dir, 'reload-')), 'cluster.yaml');
    const demo = await readFile(DEMO, 'utf8');
    await writeFile(path, demo);
    const server = await startServer(['--manifests', path]);
    try {
      expect((await dig(server.port, [WEB, 'A'])).answer).toEqual([`${WEB}. 5 IN A 10.96.100.10`]);

      await writeFile(path, 'apiVersion: v1\nkind: Service\nmetadata:\n\tname: web\n');
      const error = await server.waitForLog((line) => line.level === 50, 5000);
      expect(error.msg).toMatch(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4:1: invalid YAML: .*; still serving the last good manifests$`));
      expect(error.code).toBe('E_MANIFEST');
      const kept = await dig(server.port, [WEB, 'A']);
      expect(kept.status).toBe('NOERROR');
      expect(kept.answer).toEqual([`${WEB}. 5 IN A 10.96.100.10`]);

      await writeFile(path, demo.replaceAll('10.96.100.10', '10.96.100.99'));
      let answer: readonly string[] = [];
      for (const deadline = Date.now() + 5000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 100))) {
        answer = (await dig(server.port, [WEB, 'A'])).answer;
        if (answer[0]?.endsWith('10.96.100.99')) break;
      }
      expect(answer).toEqual([`${WEB}. 5 IN A 10.96.100.99`]);
      expect(server.child.exitCode).toBeNull();
    } finally {
      await server.stop();
    }
  });
});
