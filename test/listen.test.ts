/** Listening: IPv6 loopback on UDP and TCP, and the cap on open TCP connections (RFC 7766 §6.2.2). */
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { dig } from './support/dig.js';
import { startServer, type ServerProcess } from './support/server-process.js';

let server: ServerProcess | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

/** One framed TCP query for web.default.svc.cluster.local A; resolves with the reply's rcode, or 'closed'. */
function tcpQuery(socket: Socket, id: number): Promise<number | 'closed'> {
  const name = Buffer.concat('web.default.svc.cluster.local'.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])));
  const message = Buffer.concat([Buffer.from([id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), name, Buffer.from([0, 0, 1, 0, 1])]);
  const framed = Buffer.concat([Buffer.from([message.length >> 8, message.length & 0xff]), message]);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('closed'), 3000);
    socket.once('data', (data: Buffer) => { clearTimeout(timer); resolve(data.readUInt16BE(4) & 0xf); });
    socket.once('close', () => { clearTimeout(timer); resolve('closed'); });
    socket.write(framed);
  });
}

describe('listening', () => {
  it('answers on IPv6 loopback over UDP and TCP', async () => {
    server = await startServer(['--manifests', 'examples/demo-cluster.yaml'], '::1');
    for (const transport of ['+notcp', '+tcp']) {
      const result = await dig(server.port, ['web.default.svc.cluster.local', 'AAAA', transport], '::1');
      expect(result.answer).toEqual(['web.default.svc.cluster.local. 5 IN AAAA fd00:10:96::100:10']);
    }
  });

  it('closes TCP connections past --max-tcp-connections at once and keeps serving the others', async () => {
    server = await startServer(['--manifests', 'examples/demo-cluster.yaml', '--max-tcp-connections', '2']);
    const open = async (): Promise<Socket> => {
      const socket = connect(server!.port, '127.0.0.1');
      // A connection the server cuts may end in a reset: that is the outcome under test, not an error.
      socket.on('error', () => undefined);
      await once(socket, 'connect');
      return socket;
    };
    const first = await open();
    const second = await open();
    expect(await tcpQuery(first, 1)).toBe(0);
    const third = await open();
    expect(await tcpQuery(third, 3)).toBe('closed');
    expect(await tcpQuery(second, 2)).toBe(0);
    first.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const fourth = await open();
    expect(await tcpQuery(fourth, 4)).toBe(0);
    for (const socket of [second, third, fourth]) socket.destroy();
    const metrics = await (await fetch(`http://${server.http.metrics}/metrics`)).text();
    expect(metrics).toMatch(/^clusterdns_tcp_connections_rejected_total 1$/m);
  });
});
