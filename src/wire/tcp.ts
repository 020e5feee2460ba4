/**
 * DNS over TCP framing (RFC 1035 §4.2.2, RFC 7766): each message behind its two-byte length. Used by the
 * server's reading of queries and its replies, the forwarder's retries of truncated answers, and `clusterdns
 * resolve`.
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

const EMPTY: Buffer = Buffer.alloc(0);

/**
 * The messages of a TCP stream as its bytes arrive, in chunks of any size: a length prefix or a message may be
 * split anywhere, and one chunk may hold several. The messages handed out share memory with the chunks.
 */
export class TcpDeframer {
  private pending: Buffer = EMPTY;

  /**
   * Adds `chunk` and hands each whole message in it to `each`, in order; when `each` returns false (nothing
   * sensible follows on this stream) stops there and returns false.
   */
  push(chunk: Buffer, each: (message: Buffer) => boolean): boolean {
    const pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let offset = 0;
    while (pending.length - offset >= 2) {
      const length = pending.readUInt16BE(offset);
      if (pending.length - offset - 2 < length) break;
      const more = each(pending.subarray(offset + 2, offset + 2 + length));
      offset += 2 + length;
      if (!more) {
        this.pending = EMPTY;
        return false;
      }
    }
    this.pending = offset === pending.length ? EMPTY : pending.subarray(offset);
    return true;
  }
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
