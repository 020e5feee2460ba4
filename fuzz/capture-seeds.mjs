/**
 * Captures the wire seeds: real packets from dig through a recording relay to a real clusterdns (dist/cli.js,
 * serving examples/demo-cluster.yaml, forwarding nothing), all on 127.0.0.1. dig's queries (UDP datagrams) go to
 * fuzz/corpus/query/, clusterdns's replies to fuzz/corpus/reply/ (they are what the forwarder decodes when a
 * clusterdns is its upstream), and each whole TCP stream dig sent to fuzz/corpus/tcp-stream/. tcpdump and tshark
 * are not installed here, hence the relay. Run after `npm run build`: `node fuzz/capture-seeds.mjs`.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;

/** What dig asks: names of the demo cluster, negative answers, search-path style misses, EDNS and its options. */
const DIG = [
  ['web.default.svc.cluster.local', 'A'],
  ['WEB.Default.svc.cluster.local', 'A'],
  ['web.default.svc.cluster.local', 'AAAA'],
  ['db.default.svc.cluster.local', 'A'],
  ['_http._tcp.web.default.svc.cluster.local', 'SRV'],
  ['_http._tcp.db.default.svc.cluster.local', 'SRV'],
  ['kube-dns.kube-system.svc.cluster.local', 'A'],
  ['cluster.local', 'SOA'],
  ['cluster.local', 'NS'],
  ['dns-version.cluster.local', 'TXT'],
  ['10.0.96.10.in-addr.arpa', 'PTR'],
  ['10-244-1-5.default.pod.cluster.local', 'A'],
  ['nosuch.default.svc.cluster.local', 'A'],
  ['example.org.default.svc.cluster.local', 'A'],
  ['svc.cluster.local', 'A'],
  ['web.default.svc.cluster.local', 'TXT'],
  ['web.default.svc.cluster.local', 'ANY'],
  ['example.org', 'A'],
];
const VARIANTS = [[], ['+noedns'], ['+dnssec'], ['+cookie', '+nsid'], ['+bufsize=512'], ['+edns=1']];

function save(dir, data) {
  mkdirSync(`${root}fuzz/corpus/${dir}`, { recursive: true });
  writeFileSync(`${root}fuzz/corpus/${dir}/dig-${createHash('sha1').update(data).digest('hex').slice(0, 16)}`, data);
}

const server = spawn(process.execPath, [`${root}dist/cli.js`, 'serve', '--listen', '127.0.0.1:0', '--health', '127.0.0.1:0',
  '--ready', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--upstream', 'none', '--manifests', `${root}examples/demo-cluster.yaml`],
  { stdio: ['ignore', 'ignore', 'pipe'] });
const port = await new Promise((resolve, reject) => {
  let text = '';
  server.stderr.setEncoding('utf8').on('data', (chunk) => {
    text += chunk;
    const serving = text.split('\n').map((line) => { try { return JSON.parse(line); } catch { return {}; } }).find((line) => line.msg === 'serving');
    if (serving) resolve(Number(serving.listen[0].split(':').pop()));
  });
  server.once('exit', (code) => reject(new Error(`clusterdns exited with ${code}: ${text}`)));
});

// UDP relay: each datagram from dig is saved and passed on; the reply is saved and passed back.
const relay = createSocket('udp4');
relay.on('message', (query, peer) => {
  save('query', query);
  const upstream = createSocket('udp4');
  upstream.on('message', (reply) => {
    save('reply', reply);
    relay.send(reply, peer.port, peer.address);
    upstream.close();
  });
  upstream.send(query, port, '127.0.0.1');
});
await new Promise((resolve) => relay.bind(0, '127.0.0.1', resolve));

// TCP relay: the whole stream dig sent on one connection is one seed.
const tcp = createServer((client) => {
  const chunks = [];
  const upstream = connect(port, '127.0.0.1');
  client.on('data', (chunk) => { chunks.push(chunk); upstream.write(chunk); });
  upstream.on('data', (chunk) => client.write(chunk));
  client.on('end', () => { save('tcp-stream', Buffer.concat(chunks)); upstream.end(); });
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
await new Promise((resolve) => tcp.listen(relay.address().port, '127.0.0.1', resolve));

const at = ['@127.0.0.1', '-p', String(relay.address().port), '+tries=1', '+time=2'];
for (const [name, type] of DIG) for (const variant of VARIANTS) await run('dig', [...at, ...variant, name, type]);
// Over TCP: one question per connection, and several on one (+keepopen asks each name on the same connection).
for (const [name, type] of DIG.slice(0, 6)) await run('dig', [...at, '+tcp', name, type]);
await run('dig', [...at, '+tcp', '+keepopen', ...DIG.slice(0, 8).flatMap(([name, type]) => [name, type])]);

relay.close();
tcp.close();
server.kill('SIGTERM');
console.log('captured seeds into fuzz/corpus/{query,reply,tcp-stream}/');
