/**
 * One proxied TCP connection: the accepted client socket, the connect to a backend with bounded retries, and
 * the two streams spliced together. Half-close passes through because both sockets allow half-open, so a
 * client's FIN becomes a FIN to the backend and the reply still flows back; a reset on one side becomes a
 * reset on the other. Backpressure both ways: a socket with a write in flight stops its source from reading.
 *
 * A backend reached through a `Dialer` instead (`clusterdns dev`: the API server's pod port-forward) is any
 * stream, and is piped both ways.
 *
 * Client to backend is `pipe()`. Backend to client reads into one 64 KiB buffer per connection (`onread`)
 * instead of a fresh buffer per read: measured on loopback, the fresh buffers cost about 3.6 page faults per
 * read (glibc hands freed ones back to the kernel), and reusing one halves the proxy's system time per byte.
 * Only the connecting side can do this: Node's server offers no `onread` for accepted sockets.
 */
import { connect, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Balancer, Target } from './balancer.js';

/**
 * Timeouts of the successive connect attempts of one client connection: kube-proxy's userspace mode used
 * these four (its EndpointDialTimeouts), so a client waits at most 3.75 s before its connection is reset.
 */
export const CONNECT_TIMEOUTS_MS = [250, 500, 1000, 2000] as const;
/** The backend read buffer: 16 KiB and 32 KiB reads cost measurably more CPU per byte than 64 KiB ones. */
const READ_BUFFER_BYTES = 64 * 1024;
/**
 * Read buffers of closed connections, kept for the next ones: without them, short connections (thousands a
 * second) allocated 64 KiB each and garbage collection took a tenth of the proxy's time. At most this many
 * (16 MiB) wait here; more are left to the garbage collector.
 */
const SPARE_BUFFERS_MAX = 256;
const spareBuffers: Buffer[] = [];

function takeBuffer(): Buffer {
  return spareBuffers.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
}

/** Only once nothing can read into the buffer or write out of it: both sockets that used it are closed. */
function giveBack(buffer: Buffer): void {
  if (spareBuffers.length < SPARE_BUFFERS_MAX) spareBuffers.push(buffer);
}

/** Counters of one service, plain fields on the connection path; metrics.ts turns them into series. */
export class ServiceStats {
  active = 0;
  total = 0;
  connectFailures = 0;
  retries = 0;
  noEndpointResets = 0;
  /** Bytes of connections that have closed; live connections' bytes are read from their sockets at scrape. */
  closedClientBytes = 0;
  closedBackendBytes = 0;
  readonly live = new Set<Connection>();

  get clientBytes(): number {
    let bytes = this.closedClientBytes;
    for (const connection of this.live) bytes += connection.client.bytesRead;
    return bytes;
  }

  /** Counted as written to clients, which works for a backend of any kind. */
  get backendBytes(): number {
    let bytes = this.closedBackendBytes;
    for (const connection of this.live) bytes += connection.client.bytesWritten;
    return bytes;
  }
}

/**
 * Another way than TCP straight to the target to reach it (`clusterdns dev` goes through the API server's pod
 * port-forward): a connected stream, or how the attempt failed.
 */
export type Dialer = (target: Target, timeoutMs: number, namespace: string) => Promise<Duplex | 'timeout' | 'error'>;

export interface ConnectionContext {
  readonly balancer: Balancer;
  readonly stats: ServiceStats;
  readonly idleTimeoutMs: number;
  /** Undefined: TCP to the target's address. */
  readonly dialer: Dialer | undefined;
  /** The service's namespace (a dialer may need it to find the pod behind an address). */
  readonly namespace: string;
  /** The backend is connected: the listener files the connection under its target, for draining. */
  attached(connection: Connection): void;
  /** Both sockets are closed. */
  closed(connection: Connection): void;
}

/** A connected socket, or how the attempt failed: no answer in time, or an error (refused, unreachable). */
type Outcome = Socket | 'timeout' | 'error';

export class Connection {
  backend: Duplex | undefined;
  target: Target | undefined;
  private readBuffer: Buffer | undefined;
  private open = 1;

  constructor(readonly client: Socket, private readonly context: ConnectionContext) {
    const { stats } = context;
    stats.total++;
    stats.active++;
    stats.live.add(this);
    client.on('error', () => this.reset(this.backend));
    client.once('close', () => this.socketClosed());
  }

  /** Connects to a backend, trying others on failure, and splices; resets the client when none answers. */
  async start(): Promise<void> {
    const { balancer, stats } = this.context;
    // The peer's address costs a system call; only affinity needs it.
    const clientIp = balancer.usesAffinity ? (this.client.remoteAddress ?? '') : '';
    if (balancer.size === 0) {
      stats.noEndpointResets++;
      this.reset(this.client);
      return;
    }
    const tried = new Set<string>();
    const errored = new Set<string>();
    for (const [attempt, timeoutMs] of CONNECT_TIMEOUTS_MS.entries()) {
      if (this.client.destroyed) return;
      // Targets this connection has not tried come first; one that only timed out may get a longer second try.
      const target = balancer.pick(clientIp, tried, attempt > 0) ?? balancer.pick(clientIp, errored, true);
      if (target === undefined) break;
      if (attempt > 0) stats.retries++;
      const { dialer, namespace } = this.context;
      let buffer: Buffer | undefined;
      let outcome: Duplex | 'timeout' | 'error';
      if (dialer === undefined) {
        const readBuffer = (buffer = takeBuffer());
        outcome = await connectTo(target, timeoutMs, readBuffer, (length) => this.fromBackend(length, readBuffer));
      } else {
        outcome = await dialer(target, timeoutMs, namespace);
      }
      if (typeof outcome !== 'string') {
        balancer.succeeded(target);
        this.splice(target, outcome, buffer);
        return;
      }
      stats.connectFailures++;
      balancer.failed(target);
      tried.add(target.key);
      if (outcome === 'error') errored.add(target.key);
    }
    this.reset(this.client);
  }

  /** Closes both sides (idle timeout, drain over, proxy stopping). */
  close(): void {
    this.client.destroy();
    this.backend?.destroy();
  }

  /** `buffer` is the backend socket's read buffer, undefined for a dialed stream. */
  private splice(target: Target, backend: Duplex, buffer: Buffer | undefined): void {
    const { client } = this;
    if (client.destroyed) {
      if (buffer !== undefined) backend.once('close', () => giveBack(buffer));
      backend.destroy();
      return;
    }
    this.target = target;
    this.backend = backend;
    this.readBuffer = buffer;
    this.open++;
    backend.on('error', () => this.reset(client));
    backend.once('close', () => this.socketClosed());
    // Any traffic either way is a write or a read on the client socket, so its timer alone measures idleness.
    client.setTimeout(this.context.idleTimeoutMs, () => this.close());
    this.context.attached(this);
    client.pipe(backend);
    if (buffer === undefined) backend.pipe(client);
    else backend.once('end', () => client.end());
  }

  /**
   * Bytes from the backend, in its one read buffer. When the write cannot complete at once, the socket still
   * points into that buffer, so the backend pauses until the write is done: nothing is read over it meanwhile.
   */
  private fromBackend(length: number, buffer: Buffer): true {
    const { client, backend } = this;
    if (backend === undefined || client.destroyed) return true;
    client.write(buffer.subarray(0, length), this.resumeBackend);
    if (client.writableLength > 0) backend.pause();
    return true;
  }

  private readonly resumeBackend = (): void => {
    if (this.backend?.isPaused() === true) this.backend.resume();
  };

  /** A reset on one side is passed on as a reset: a FIN would tell the peer the stream ended cleanly. */
  private reset(stream: Duplex | undefined): void {
    if (stream === undefined || stream.destroyed) return;
    if (stream instanceof Socket) stream.resetAndDestroy();
    else stream.destroy();
  }

  private socketClosed(): void {
    if (--this.open > 0) return;
    const { stats } = this.context;
    stats.active--;
    stats.live.delete(this);
    stats.closedClientBytes += this.client.bytesRead;
    stats.closedBackendBytes += this.client.bytesWritten;
    if (this.readBuffer !== undefined) giveBack(this.readBuffer);
    this.context.closed(this);
  }
}

/** Connects with `buffer` as the socket's read buffer; a failed attempt hands the buffer back once its socket is closed. */
function connectTo(target: Target, timeoutMs: number, buffer: Buffer, onData: (length: number) => true): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect({
      host: target.ip,
      port: target.port,
      allowHalfOpen: true,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: 60_000,
      onread: { buffer, callback: onData },
    });
    let connected = false;
    socket.once('close', () => {
      if (!connected) giveBack(buffer);
    });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('timeout');
    }, timeoutMs);
    const failed = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve('error');
    };
    socket.once('error', failed);
    socket.once('connect', () => {
      connected = true;
      clearTimeout(timer);
      socket.off('error', failed);
      resolve(socket);
    });
  });
}
