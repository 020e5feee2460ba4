/**
 * plugins/whoami — answers every question with who asked (CoreDNS's `whoami`): an empty answer section, and in
 * the additional section the client's address as an A or AAAA record under the question's name and its port as
 * `_<transport>.<name>. 0 IN SRV 0 0 <port> .`. A check that a listener, a route to it and a client all work.
 * Each reply is built for its client, so this is a debugging plugin, not a fast path.
 */
import { isIPv4 } from 'node:net';
import { prepareAnswer, RRType, Rcode, ROOT_KEY, type Question } from '../../wire/index.js';
import type { Client, Handler, Reply } from '../plugin.js';

export class Whoami implements Handler {
  readonly name = 'whoami';

  resolve(q: Question, client: Client): Reply {
    // A dual-stack socket reports an IPv4 client as ::ffff:a.b.c.d: it asked over IPv4.
    const mapped = client.address.startsWith('::ffff:') && isIPv4(client.address.slice(7));
    const ip = mapped ? client.address.slice(7) : client.address;
    const transport = client.transport ?? 'udp';
    const answer = prepareAnswer(q.key, {
      rcode: Rcode.NOERROR,
      authoritative: true,
      additional: [
        { owner: q.key, ttl: 0, data: { type: isIPv4(ip) ? RRType.A : RRType.AAAA, ip } },
        { owner: `\x04_${transport}${q.key}`, ttl: 0, data: { type: RRType.SRV, priority: 0, weight: 0, port: client.port, target: ROOT_KEY } },
      ],
    });
    return { answer, plugin: this.name };
  }
}
