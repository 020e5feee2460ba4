/**
 * A client that asks `web.default.svc.cluster.local A` over UDP every `intervalMs` until stopped, and counts the
 * queries that got no answer (within `graceMs` of the stop) or an rcode other than NOERROR: what the reload and
 * rolling-update tests hold at 0 while the server changes under it. Loopback only.
 */
import { createSocket } from 'node:dgram';
import { decodeMessage, encodeQuery, nameToKey } from '../../src/wire/index.js';

export interface SteadyClient {
  stop(): Promise<{ sent: number; lost: number; notNoerror: number }>;
}

export function steadyClient(port: number, intervalMs: number, graceMs: number): SteadyClient {
  const socket = createSocket('udp4');
  const pending = new Set<number>();
  let sent = 0;
  let notNoerror = 0;
  socket.on('message', (packet) => {
    const reply = decodeMessage(packet);
    pending.delete(reply.id);
    if (reply.rcode !== 0) notNoerror++;
  });
  const key = nameToKey('web.default.svc.cluster.local');
  let id = 0;
  const timer = setInterval(() => {
    id = (id + 1) & 0xffff;
    pending.add(id);
    sent++;
    socket.send(encodeQuery({ id, key, qtype: 1, qclass: 1, dnssecOk: false, checkingDisabled: false }, 1232), port, '127.0.0.1');
  }, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await new Promise((resolve) => setTimeout(resolve, graceMs));
      socket.close();
      return { sent, lost: pending.size, notNoerror };
    },
  };
}
