/**
 * A DNS server for tests to forward to, on loopback (UDP and TCP on one port), built on dns2's Packet codec so
 * that what clusterdns decodes was encoded by someone else. It serves a small zone of its own and can be told
 * to misbehave: stay silent, answer garbage, answer with the wrong ID or question, truncate over UDP, fail, be
 * slow, or relay every query to another server (to make a forwarding loop). It records every query it gets.
 * Given a certificate, its TCP side speaks DNS over TLS instead (RFC 7858), and counts the handshakes.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import dns2 from 'dns2';

const { Packet } = dns2;

export interface UpstreamRecord {
  readonly A?: readonly string[];
  readonly AAAA?: readonly string[];
  readonly CNAME?: string;
  readonly TXT?: readonly string[];
  readonly ttl?: number;
}

export type Behaviour = 'answer' | 'silent' | 'garbage' | 'wrong-id' | 'wrong-question' | 'truncate' | 'servfail' | 'refused';

export interface SeenQuery {
  readonly name: string;
  readonly type: number;
  readonly proto: 'udp' | 'tcp' | 'tls';
}

export interface UpstreamOptions {
  readonly host?: string;
  /** 0 (a free port) unless given: resolv.conf can only name port 53. */
  readonly port?: number;
  /** name (lower case, no trailing dot) → records; names not here are NXDOMAIN. */
  readonly records?: Readonly<Record<string, UpstreamRecord>>;
  /** The SOA's TTL and MINIMUM in negative answers. */
  readonly negativeTtl?: number;
  /**
   * PEM: a certificate and its key, to serve DNS over TLS on the TCP port (UDP stays plain); with `clientCa`, a
   * client must show a certificate that CA signed.
   */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer; readonly clientCa?: Buffer };
}

export class TestUpstream {
  behaviour: Behaviour = 'answer';
  delayMs = 0;
  /** Relay every query here instead of answering (a forwarder that points back at clusterdns). */
  relayTo: { host: string; port: number } | undefined;
  readonly queries: SeenQuery[] = [];
  /** TLS handshakes completed, and TLS connections closed since (either side closing). */
  handshakes = 0;
  closedConnections = 0;
  records: Record<string, UpstreamRecord>;
  negativeTtl: number;

  private constructor(readonly host: string, readonly port: number, private readonly udp: UdpSocket, private readonly tcp: Server, options: UpstreamOptions) {
    this.records = { ...options.records };
    this.negativeTtl = options.negativeTtl ?? 60;
  }

  /** `host:port`, as `--upstream` takes it. */
  get address(): string {
    return this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
  }

  static async start(options: UpstreamOptions = {}): Promise<TestUpstream> {
    const host = options.host ?? '127.0.0.1';
    for (let attempt = 0; ; attempt++) {
      const udp = createSocket(host.includes(':') ? 'udp6' : 'udp4');
      udp.bind(options.port ?? 0, host);
      await once(udp, 'listening');
      const port = udp.address().port;
      const tcp = options.tls === undefined ? createServer() : createTlsServer({
        cert: options.tls.cert,
        key: options.tls.key,
        ...(options.tls.clientCa !== undefined && { ca: options.tls.clientCa, requestCert: true, rejectUnauthorized: true }),
      });
      try {
        tcp.listen(port, host);
        await once(tcp, 'listening');
      } catch (error) {
        udp.close();
        if (attempt < 8 && options.port === undefined) continue;
        throw error;
      }
      const upstream = new TestUpstream(host, port, udp, tcp, options);
      udp.on('message', (packet, peer) => void upstream.onQuery(packet, 'udp', (reply) => udp.send(reply, peer.port, peer.address)));
      if (options.tls === undefined) tcp.on('connection', (socket: Socket) => upstream.onConnection(socket, 'tcp'));
      else {
        tcp.on('secureConnection', (socket: Socket) => {
          upstream.handshakes++;
          socket.on('close', () => upstream.closedConnections++);
          upstream.onConnection(socket, 'tls');
        });
        // A client that fails the handshake (it rejects our certificate) is no query.
        tcp.on('tlsClientError', () => {});
      }
      return upstream;
    }
  }

  /** Names asked, in order, without clusterdns's start-up loop probes. */
  names(): string[] {
    return this.queries.map((query) => query.name).filter((name) => !name.endsWith('.loop-probe.clusterdns'));
  }

  /** Queries seen for a name (any type), in order. */
  queriesFor(name: string): SeenQuery[] {
    return this.queries.filter((query) => query.name === name);
  }

  async stop(): Promise<void> {
    this.udp.close();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((done) => this.tcp.close(() => done()));
  }

  /** Closes every open TCP or TLS connection from this side (as a server's idle timeout does). */
  dropConnections(): void {
    for (const socket of this.sockets) socket.end();
  }

  private readonly sockets = new Set<Socket>();

  private onConnection(socket: Socket, proto: 'tcp' | 'tls'): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    let pending = Buffer.alloc(0);
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const packet = pending.subarray(2, 2 + pending.readUInt16BE(0));
        pending = pending.subarray(2 + packet.length);
        void this.onQuery(packet, proto, (reply) => {
          const framed = Buffer.alloc(reply.length + 2);
          framed.writeUInt16BE(reply.length, 0);
          reply.copy(framed, 2);
          socket.write(framed);
        });
      }
    });
  }

  private async onQuery(packet: Buffer, proto: SeenQuery['proto'], reply: (bytes: Buffer) => void): Promise<void> {
    let request: InstanceType<typeof Packet>;
    try {
      request = Packet.parse(packet);
    } catch {
      return;
    }
    const question = request.questions[0];
    if (question === undefined) return;
    const name = question.name.toLowerCase().replace(/\.$/, '');
    this.queries.push({ name, type: question.type, proto });
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    if (this.relayTo !== undefined) return this.relay(packet, reply);
    switch (this.behaviour) {
      case 'silent':
        return;
      case 'garbage':
        return reply(Buffer.from([packet[0]!, packet[1]!, 0x81, 0x80, 0xff, 0xff, 1, 2, 3]));
      case 'wrong-id': {
        const response = this.answer(request, name, question.type, proto);
        response.writeUInt16BE((response.readUInt16BE(0) + 1) & 0xffff, 0);
        return reply(response);
      }
      case 'wrong-question': {
        const other = Packet.parse(packet);
        other.questions[0]!.name = `other-${question.name}`;
        return reply(this.answer(other, `other-${name}`, question.type, proto));
      }
      default:
        return reply(this.answer(request, name, question.type, proto));
    }
  }

  private answer(request: InstanceType<typeof Packet>, name: string, type: number, proto: SeenQuery['proto']): Buffer {
    const response = Packet.createResponseFromRequest(request);
    response.header.ra = 1;
    if (this.behaviour === 'servfail' || this.behaviour === 'refused') {
      response.header.rcode = this.behaviour === 'servfail' ? 2 : 5;
      return response.toBuffer();
    }
    if (this.behaviour === 'truncate' && proto === 'udp') {
      response.header.tc = 1;
      return response.toBuffer();
    }
    // dns2's typings want its Resource class; its encoder takes plain records.
    const answers = response.answers as unknown as Array<Record<string, unknown>>;
    const authorities = response.authorities as unknown as Array<Record<string, unknown>>;
    const questionName = request.questions[0]!.name;
    let owner = questionName;
    let record = this.records[name];
    if (record?.CNAME !== undefined && type !== Packet.TYPE.CNAME) {
      answers.push({ name: owner, type: Packet.TYPE.CNAME, class: 1, ttl: record.ttl ?? 300, domain: record.CNAME });
      owner = record.CNAME;
      record = this.records[record.CNAME.toLowerCase()];
    }
    if (record === undefined && answers.length === 0) {
      response.header.rcode = 3;
      authorities.push(this.soa());
      return response.toBuffer();
    }
    const ttl = record?.ttl ?? 300;
    if (type === Packet.TYPE.A) for (const address of record?.A ?? []) answers.push({ name: owner, type, class: 1, ttl, address });
    if (type === Packet.TYPE.AAAA) for (const address of record?.AAAA ?? []) answers.push({ name: owner, type, class: 1, ttl, address });
    if (type === Packet.TYPE.TXT) for (const data of record?.TXT ?? []) answers.push({ name: owner, type, class: 1, ttl, data });
    if (answers.length === 0) authorities.push(this.soa());
    return response.toBuffer();
  }

  private soa(): Record<string, unknown> {
    return {
      name: 'test',
      type: Packet.TYPE.SOA,
      class: 1,
      ttl: this.negativeTtl,
      primary: 'ns.test',
      admin: 'hostmaster.test',
      serial: 1,
      refresh: 3600,
      retry: 600,
      expiration: 86400,
      minimum: this.negativeTtl,
    };
  }

  private relay(packet: Buffer, reply: (bytes: Buffer) => void): void {
    const target = this.relayTo!;
    const socket = createSocket(target.host.includes(':') ? 'udp6' : 'udp4');
    const timer = setTimeout(() => socket.close(), 3000);
    socket.on('message', (response) => {
      clearTimeout(timer);
      socket.close();
      reply(response);
    });
    socket.send(packet, target.port, target.host);
  }
}
