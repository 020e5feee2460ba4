/**
 * DNS over TCP framing (RFC 1035 §4.2.2, RFC 7766): each message behind its two-byte length. Used by the
 * server's replies, the forwarder's retries of truncated answers, and `clusterdns resolve`.
 */
import { connect } from 'node:net';
import type { HostPort } from '../ip.js';

/** `message` with its two-byte length in front. */
export function frameTcp(message: Buffer): Buffer {
  const framed = Buffer.allocUnsafe(message.length + 2);
  framed.writeUInt16BE(message.length, 0);
  message.copy(framed, 2);
  return framed;
}

/** The first whole message a server sent back, or why there is none. */
export type TcpOutcome =
  | { readonly kind: 'reply'; readonly message: Buffer }
  | { readonly kind: 'timeout' }
  /** `code` is the socket error's code (`ECONNREFUSED`...), `ECONNRESET` when the server closed first. */
  | { readonly kind: 'error'; readonly code: string; readonly detail: string };

/** Sends one query on a new connection and reads one reply, all within `timeoutMs`; never rejects. */
export function tcpExchange(server: HostPort, query: Buffer, timeoutMs: number): Promise<TcpOutcome> {
  return new Promise((resolve) => {
    const socket = connect({ host: server.host, port: server.port, noDelay: true });
    let received = Buffer.alloc(0);
    const done = (outcome: TcpOutcome): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => done({ kind: 'timeout' }), timeoutMs);
    socket.on('connect', () => socket.write(frameTcp(query)));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 2 || received.length < 2 + received.readUInt16BE(0)) return;
      done({ kind: 'reply', message: received.subarray(2, 2 + received.readUInt16BE(0)) });
    });
    socket.on('error', (error: NodeJS.ErrnoException) => done({ kind: 'error', code: error.code ?? 'ERROR', detail: error.message }));
    socket.on('end', () => done({ kind: 'error', code: 'ECONNRESET', detail: 'closed the connection before answering' }));
  });
}
