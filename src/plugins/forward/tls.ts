/**
 * DNS over TLS to one upstream (RFC 7858): TCP's two-byte framing (RFC 7766) inside a TLS session. A handshake
 * costs round trips and CPU, so the connection is kept open and shared: every question to the upstream goes out on
 * it at once, each with an ID of its own, and the replies, in whatever order they come, are matched back by ID and
 * question (RFC 7766 §6.2.1.1 pipelining). It is closed after `expire` with nothing in flight (CoreDNS's idle
 * expiry), or when the upstream closes it; the next question opens a new one. A question sent on a connection that
 * was already open, which the upstream then closes without answering (its own idle timeout crossing our send), is
 * sent once more on a fresh connection, as CoreDNS retries a cached connection found closed.
 *
 * Owns no health state: a failed handshake or verification fails the questions waiting on it (the forwarder counts
 * each as a failed try), and is logged once per upstream until a handshake succeeds again.
 */
import { randomInt } from 'node:crypto';
import { connect, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { formatHostPort, type HostPort } from '../../ip.js';
import { encodeQuery, frameTcp, MAX_UDP_PAYLOAD, TcpDeframer, type Message } from '../../wire/index.js';
import { accept, ExchangeError, type Question } from './exchange.js';

/** The client side of TLS for a forward stanza's tls:// upstreams (CoreDNS's `tls` and `tls_servername`). */
export interface TlsClientConfig {
  /** PEM: the CAs the upstream's certificate must chain to; the system's roots when absent. */
  readonly ca?: Buffer;
  /** PEM: a client certificate and its key, when the upstream asks for one. */
  readonly cert?: Buffer;
  readonly key?: Buffer;
  /** The name sent as SNI and checked against the certificate; without it the certificate must name the IP. */
  readonly servername?: string;
}

/** CoreDNS's default `expire`. */
export const DEFAULT_EXPIRE_MS = 10_000;

interface Pending {
  readonly question: Question;
  readonly resolve: (message: Message) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
  /** Sent on a connection whose handshake was already done: a close without an answer earns one more try. */
  readonly reused: boolean;
}

/** The reused connection closed before answering: try once more on a new one. */
class ClosedBeforeAnswer extends Error {}

class Connection {
  readonly pending = new Map<number, Pending>();
  secure = false;
  /** No new question goes on it: closing, closed, or closed by the upstream. */
  done = false;
  private idle: NodeJS.Timeout | undefined;

  constructor(readonly socket: TLSSocket) {}

  /** Nothing in flight: close after `expireMs`. */
  settle(expireMs: number): void {
    if (this.done || this.pending.size > 0 || this.idle !== undefined) return;
    this.idle = setTimeout(() => this.close(), expireMs);
    this.idle.unref();
  }

  busy(): void {
    clearTimeout(this.idle);
    this.idle = undefined;
  }

  close(): void {
    this.done = true;
    this.busy();
    this.socket.destroy();
  }
}

export class DotUpstream {
  private connection: Connection | undefined;
  /** The code of the last handshake failure logged, so a broken upstream is logged once, not per question. */
  private logged: string | undefined;

  constructor(
    private readonly address: HostPort,
    /** `tls://IP:PORT`, as errors, logs and metrics name the upstream. */
    private readonly to: string,
    private readonly tls: TlsClientConfig,
    private readonly expireMs: number,
    private readonly log: Logger,
  ) {}

  async exchange(question: Question, timeoutMs: number): Promise<Message> {
    const started = Date.now();
    try {
      return await this.send(question, timeoutMs);
    } catch (error) {
      if (!(error instanceof ClosedBeforeAnswer)) throw error;
      return this.send(question, Math.max(1, timeoutMs - (Date.now() - started)));
    }
  }

  close(): void {
    this.connection?.close();
    this.connection = undefined;
  }

  private send(question: Question, timeoutMs: number): Promise<Message> {
    const connection = this.connection !== undefined && !this.connection.done ? this.connection : (this.connection = this.open(timeoutMs));
    // 16-bit IDs: at most this many questions in flight on one connection (max_concurrent keeps far below it).
    if (connection.pending.size >= 0x8000) return Promise.reject(new ExchangeError('network', `${this.to}: too many questions in flight on the TLS connection`));
    let id = randomInt(0x10000);
    while (connection.pending.has(id)) id = (id + 1) & 0xffff;
    return new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => {
        connection.pending.delete(id);
        connection.settle(this.expireMs);
        reject(new ExchangeError('timeout', `read tcp ${formatHostPort(this.address)}: i/o timeout`));
      }, timeoutMs);
      connection.busy();
      connection.pending.set(id, { question, resolve, reject, timer, reused: connection.secure });
      // Written before the handshake ends, it waits in the TLS socket until then.
      connection.socket.write(frameTcp(encodeQuery({ id, ...question }, MAX_UDP_PAYLOAD)));
    });
  }

  private open(timeoutMs: number): Connection {
    const { ca, cert, key, servername } = this.tls;
    const socket = connect({ host: this.address.host, port: this.address.port, ca, cert, key, servername });
    socket.setNoDelay(true);
    const connection = new Connection(socket);
    // A handshake that never ends would hold the questions written to it; each has its own timer, this is the socket's.
    const handshake = setTimeout(() => connection.close(), timeoutMs);
    let connected = false;
    socket.once('connect', () => (connected = true));
    socket.once('secureConnect', () => {
      clearTimeout(handshake);
      connection.secure = true;
      if (this.logged !== undefined) this.log.info({ upstream: this.to }, 'TLS handshake with upstream succeeds again');
      this.logged = undefined;
    });
    const deframer = new TcpDeframer();
    socket.on('data', (chunk: Buffer) => {
      deframer.push(chunk, (packet) => {
        if (packet.length < 12) return true;
        const id = packet.readUInt16BE(0);
        const pending = connection.pending.get(id);
        // A late answer to a question that timed out: nothing waits for it.
        if (pending === undefined) return true;
        connection.pending.delete(id);
        clearTimeout(pending.timer);
        const message = accept(packet, id, pending.question);
        if (message === undefined) pending.reject(new ExchangeError('malformed', `${this.to} answered over TLS with a message that does not match the question`));
        else pending.resolve(message);
        return true;
      });
      connection.settle(this.expireMs);
    });
    // The upstream is done with it (its idle timeout): no new question goes on it.
    socket.on('end', () => (connection.done = true));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(handshake);
      // Before the handshake ended on a TCP connection that was made: the handshake or the certificate failed.
      const tls = connected && !connection.secure;
      const code = error.code ?? 'ERROR';
      if (tls && this.logged !== code) {
        this.logged = code;
        this.log.warn({ upstream: this.to, code, err: error.message }, 'TLS handshake with upstream failed');
      }
      this.fail(connection, new ExchangeError(tls ? 'tls' : 'network', `${this.to} over TLS: ${error.message}`, code));
    });
    socket.on('close', () => {
      clearTimeout(handshake);
      this.fail(connection, new ExchangeError('network', `${this.to} over TLS: closed the connection before answering`, 'ECONNRESET'));
    });
    return connection;
  }

  /** Ends the connection, failing what waits on it (a reused connection's questions get one more try). */
  private fail(connection: Connection, error: ExchangeError): void {
    connection.close();
    if (this.connection === connection) this.connection = undefined;
    for (const pending of connection.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(pending.reused && error.reason === 'network' && error.code === 'ECONNRESET' ? new ClosedBeforeAnswer() : error);
    }
    connection.pending.clear();
  }
}
