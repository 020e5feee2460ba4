/**
 * server/ — the UDP and TCP listeners. Owns sockets and framing only: every packet goes through one
 * QueryAnswerer (answer-query.ts), which parses it once and runs the plugin chain. Each listen address gets
 * a UDP socket and a TCP server on the same port. TCP follows RFC 7766: two-byte length prefixes, several
 * queries per connection (each reply sent when it is ready, so a forwarded answer may come after a later
 * cluster one), an idle timeout and a cap on open connections.
 * Nothing a client sends can throw out of here: bad messages become rcodes, broken connections are dropped.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import type { LookupOneOptions } from 'node:dns';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ListenAddress } from '../config/index.js';
import type { HostPort } from '../ip.js';
import { frameTcp } from '../wire/index.js';
import type { Arrival, Client, QueryAnswerer } from './answer-query.js';

export { QueryAnswerer, type AnswererOptions, type ZoneRoute } from './answer-query.js';

export interface DnsServerOptions {
  readonly listen: readonly ListenAddress[];
  readonly tcpIdleTimeoutMs: number;
  readonly maxTcpConnections: number;
}

export type BoundAddress = HostPort;

/** Bursts queue in the kernel rather than drop while the event loop is busy (the kernel may cap it lower). */
const UDP_RECEIVE_BUFFER = 4 * 1024 * 1024;
/** With port 0, the UDP port picked may be taken for TCP; try a few picks before giving up. */
const EPHEMERAL_PORT_TRIES = 8;
const EMPTY: Buffer = Buffer.alloc(0);

/**
 * The UDP sockets' address "lookup": every address they see is an IP already (a validated listen address, or
 * the peer a query came from), so it is passed through at once. Node's default runs dns.lookup, which checks the
 * literal again and defers each reply to a process.nextTick: about 3% of the CPU time of a cache hit.
 */
function passThrough(address: string, _options: LookupOneOptions, callback: (error: null, address: string, family: number) => void): void {
  callback(null, address, address.includes(':') ? 6 : 4);
}

export class DnsServer {
  /** Each listen address's sockets, by its index (Arrival.listener); an index is never reused. */
  private readonly bound = new Map<number, { readonly udp: UdpSocket; readonly tcp: Server }>();
  /** Open TCP connections, and the listener each came in on. */
  private readonly connections = new Map<Socket, number>();
  /** TCP connections closed at once because the cap was reached. */
  rejectedConnections = 0;

  constructor(
    private readonly answerer: QueryAnswerer,
    private readonly options: DnsServerOptions,
    private readonly log: Logger,
  ) {}

  /** Binds every listen address; resolves with the bound addresses (the real port when 0 was asked). */
  async start(): Promise<BoundAddress[]> {
    const bound: BoundAddress[] = [];
    for (const [index, address] of this.options.listen.entries()) bound.push(await this.listen(address, index));
    return bound;
  }

  /**
   * Binds one more listen address (a reloaded Corefile's), as listener `index`: a new index, after the others.
   * Resolves with the bound address; a failure (the port is taken) leaves nothing bound.
   */
  listen(address: ListenAddress, index: number): Promise<BoundAddress> {
    if (this.bound.has(index)) throw new Error(`listener ${index} is bound already`);
    return this.bind(address, index);
  }

  /** Closes listener `index`: its sockets stop taking queries and its TCP connections close. */
  async release(index: number): Promise<void> {
    const sockets = this.bound.get(index);
    if (sockets === undefined) return;
    this.bound.delete(index);
    for (const [socket, listener] of this.connections) if (listener === index) socket.destroy();
    await Promise.all([
      new Promise<void>((done) => sockets.udp.close(() => done())),
      new Promise<void>((done) => sockets.tcp.close(() => done())),
    ]);
  }

  async close(): Promise<void> {
    await Promise.all([...this.bound.keys()].map((index) => this.release(index)));
    for (const socket of this.connections.keys()) socket.destroy();
  }

  private async bind(address: ListenAddress, listener: number): Promise<BoundAddress> {
    for (let attempt = 1; ; attempt++) {
      const udp = await this.bindUdp(address, listener);
      const port = udp.address().port;
      try {
        const tcp = await this.bindTcp(address.host, port, listener);
        this.bound.set(listener, { udp, tcp });
        return { host: address.host, port };
      } catch (error) {
        await new Promise<void>((done) => udp.close(() => done()));
        const retry = address.port === 0 && (error as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < EPHEMERAL_PORT_TRIES;
        if (!retry) throw error;
      }
    }
  }

  private bindUdp(address: ListenAddress, listener: number): Promise<UdpSocket> {
    const v6 = address.host.includes(':');
    const arrival: Arrival = { listener, overTcp: false };
    const socket = createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6, lookup: passThrough });
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(address.port, address.host, () => {
        socket.off('error', reject);
        try {
          socket.setRecvBufferSize(UDP_RECEIVE_BUFFER);
        } catch {
          // The kernel limit (net.core.rmem_max) applies; the default still works.
        }
        socket.on('error', (error) => this.log.warn({ err: error }, 'UDP socket error'));
        socket.on('message', (packet, peer) => {
          // Source port 0 cannot be answered (and Node's send throws on it): drop such packets unread.
          if (peer.port === 0) return;
          this.answerer.answer(packet, arrival, peer, (reply) => {
            try {
              socket.send(reply, peer.port, peer.address);
            } catch (error) {
              // A socket closed while an upstream answer was on its way, or an unsendable peer.
              this.log.debug({ err: error, peer: `${peer.address}:${peer.port}` }, 'cannot send a UDP reply');
            }
          });
        });
        resolve(socket);
      });
    });
  }

  private bindTcp(host: string, port: number, listener: number): Promise<Server> {
    const arrival: Arrival = { listener, overTcp: true };
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket, arrival));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, ipv6Only: host.includes(':') }, () => {
        server.off('error', reject);
        server.on('error', (error) => this.log.warn({ err: error }, 'TCP listener error'));
        resolve(server);
      });
    });
  }

  private accept(socket: Socket, arrival: Arrival): void {
    if (this.connections.size >= this.options.maxTcpConnections) {
      this.rejectedConnections++;
      socket.destroy();
      return;
    }
    this.connections.set(socket, arrival.listener);
    socket.setTimeout(this.options.tcpIdleTimeoutMs, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.connections.delete(socket));
    const client: Client = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, transport: 'tcp' };
    // Replies go out as they are ready: a forwarded answer may follow a later cluster answer (RFC 7766 §7).
    const send = (reply: Buffer): void => {
      if (socket.destroyed) return;
      if (!socket.write(frameTcp(reply))) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    };
    let pending: Buffer = EMPTY;
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let offset = 0;
      while (pending.length - offset >= 2) {
        const length = pending.readUInt16BE(offset);
        if (pending.length - offset - 2 < length) break;
        const answered = this.answerer.answer(pending.subarray(offset + 2, offset + 2 + length), arrival, client, send);
        offset += 2 + length;
        if (!answered) {
          // Not a query we can answer (no header, or a response): nothing sensible follows on this stream.
          socket.destroy();
          return;
        }
      }
      pending = offset === pending.length ? EMPTY : pending.subarray(offset);
    });
  }
}
