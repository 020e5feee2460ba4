/**
 * One `VIP:port` of one service: the listening socket, its balancer, and the open connections filed by
 * backend, so that a backend leaving the ready set can have its connections drained (left to finish for the
 * drain period, then closed) while new connections go elsewhere at once. A bind that fails (the VIP is not on
 * any interface yet, the port is taken) is retried with backoff for as long as the listener is wanted.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { formatHostPort } from '../ip.js';
import { Balancer, type Target } from './balancer.js';
import { CONNECT_TIMEOUTS_MS, Connection, type ConnectionContext, type Dialer, type ServiceStats } from './connection.js';

export interface ListenerSettings {
  readonly drainMs: number;
  readonly idleTimeoutMs: number;
  readonly dialer?: Dialer;
}

/** What a listener asks of the proxy as a whole. */
export interface ListenerOwner {
  /** May one more connection open (the cap across all services)? Counts it when so. */
  admit(): boolean;
  /** A connection admitted earlier has closed. */
  released(): void;
  /** A retired listener's last connection has closed. */
  retired(listener: PortListener): void;
}

const BIND_RETRY_BASE_MS = 1000;
const BIND_RETRY_CAP_MS = 30_000;
const PROBE_HOLD_MS = Math.max(...CONNECT_TIMEOUTS_MS);

export class PortListener implements ConnectionContext {
  readonly balancer: Balancer;
  /** True while the socket is bound; false while a bind is failing (and being retried). */
  bound = false;
  private server: Server | undefined;
  private bindRetryMs = 0;
  private bindTimer: NodeJS.Timeout | undefined;
  private lastBindError: string | undefined;
  /** Every open connection, and the spliced ones again by backend (for draining). */
  private readonly connections = new Set<Connection>();
  private readonly byTarget = new Map<string, Set<Connection>>();
  private readonly drainTimers = new Map<string, NodeJS.Timeout>();
  private retiring = false;

  constructor(
    readonly namespace: string,
    readonly vip: string,
    readonly port: number,
    readonly stats: ServiceStats,
    private readonly owner: ListenerOwner,
    private readonly settings: ListenerSettings,
    private readonly log: Logger,
    now?: () => number,
  ) {
    this.balancer = new Balancer(undefined, PROBE_HOLD_MS, now);
  }

  get idleTimeoutMs(): number {
    return this.settings.idleTimeoutMs;
  }

  get dialer(): Dialer | undefined {
    return this.settings.dialer;
  }

  get address(): string {
    return formatHostPort({ host: this.vip, port: this.port });
  }

  /** New ready targets: connections to a target that left are drained, a target that came back stops draining. */
  setTargets(targets: readonly Target[], affinityMs: number | undefined): void {
    this.balancer.update(targets, affinityMs);
    const current = new Set(targets.map((target) => target.key));
    for (const key of this.byTarget.keys()) {
      if (current.has(key)) this.stopDraining(key);
      else this.drain(key);
    }
  }

  open(): void {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 }, (socket) =>
      this.accept(socket));
    this.server = server;
    const bindFailed = (error: NodeJS.ErrnoException): void => {
      this.server = undefined;
      server.close();
      if (this.retiring) return;
      const reason = error.code ?? error.message;
      // Logged when the reason changes, not on every retry: a VIP missing for an hour is one line.
      if (reason !== this.lastBindError) this.log.warn({ listen: this.address, reason }, 'cannot listen on the service address; retrying');
      this.lastBindError = reason;
      this.bindRetryMs = Math.min(BIND_RETRY_CAP_MS, this.bindRetryMs === 0 ? BIND_RETRY_BASE_MS : this.bindRetryMs * 2);
      this.bindTimer = setTimeout(() => this.open(), this.bindRetryMs);
    };
    server.once('error', bindFailed);
    server.listen({ host: this.vip, port: this.port, ipv6Only: this.vip.includes(':') }, () => {
      server.off('error', bindFailed);
      server.on('error', (error) => this.log.warn({ err: error, listen: this.address }, 'proxy listener error'));
      if (this.server !== server) {
        server.close();
        return;
      }
      this.bound = true;
      this.bindRetryMs = 0;
      this.log.info({ listen: this.address, ...(this.lastBindError !== undefined && { after: this.lastBindError }) }, 'proxying');
      this.lastBindError = undefined;
    });
  }

  /**
   * The service port is gone: stop accepting, and drain the open connections. `owner.retired` is called once
   * the last one has closed.
   */
  retire(): void {
    this.retiring = true;
    this.stopListening();
    for (const key of this.byTarget.keys()) this.drain(key);
    if (this.connections.size === 0) this.owner.retired(this);
  }

  /** Stop everything now: the proxy is shutting down. */
  close(): void {
    this.retiring = true;
    this.stopListening();
    for (const timer of this.drainTimers.values()) clearTimeout(timer);
    this.drainTimers.clear();
    for (const connection of this.connections) connection.close();
  }

  attached(connection: Connection): void {
    const key = connection.target!.key;
    let connections = this.byTarget.get(key);
    if (connections === undefined) this.byTarget.set(key, (connections = new Set()));
    connections.add(connection);
    // The backend may have left the ready set while this connection was being set up.
    if (this.retiring || !this.balancer.has(key)) this.drain(key);
  }

  closed(connection: Connection): void {
    this.owner.released();
    this.connections.delete(connection);
    const key = connection.target?.key;
    const ofTarget = key === undefined ? undefined : this.byTarget.get(key);
    if (ofTarget?.delete(connection) && ofTarget.size === 0) {
      this.byTarget.delete(key!);
      this.stopDraining(key!);
    }
    if (this.retiring && this.connections.size === 0) this.owner.retired(this);
  }

  private accept(socket: Socket): void {
    if (!this.owner.admit()) {
      socket.on('error', () => undefined);
      socket.resetAndDestroy();
      return;
    }
    const connection = new Connection(socket, this);
    this.connections.add(connection);
    void connection.start();
  }

  private drain(key: string): void {
    if (this.drainTimers.has(key)) return;
    this.drainTimers.set(key, setTimeout(() => {
      this.drainTimers.delete(key);
      for (const connection of this.byTarget.get(key) ?? []) connection.close();
    }, this.settings.drainMs));
  }

  private stopDraining(key: string): void {
    const timer = this.drainTimers.get(key);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.drainTimers.delete(key);
  }

  private stopListening(): void {
    clearTimeout(this.bindTimer);
    this.server?.close();
    this.server = undefined;
    this.bound = false;
  }
}
