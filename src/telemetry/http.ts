/**
 * The HTTP endpoints the kubelet and Prometheus use, with CoreDNS's paths and semantics:
 *   GET /health   200 "OK" while the process runs (also during lame duck, as CoreDNS's health plugin does)
 *   GET /ready    200 "OK" once the first sync is done (with a "warning:" line per problem that does not stop the
 *                 cluster zone, such as a forwarding loop); 503 with the reason before it and during lame duck
 *   GET /metrics  Prometheus text
 *   GET /debug/top       (on the metrics address) JSON: the names answered NXDOMAIN or SERVFAIL most in the last
 *                        minutes, the clients they went to, and the pairs (top.ts)
 *   GET /debug/top?html  the same as a page that refreshes itself (top-page.ts)
 * Each endpoint has its own listen address; endpoints that share an address share one HTTP server.
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { ListenAddress } from '../config/index.js';
import { TOP_PAGE, TOP_PAGE_POLICY } from './top-page.js';
import type { TopReport } from './top.js';

export interface Readiness {
  /** Undefined when ready; otherwise why not. */
  notReadyReason(): string | undefined;
  /** Problems that do not stop us serving the cluster zone (a forwarding loop), listed under a ready "OK". */
  warnings?(): readonly string[];
}

/** Where each endpoint listens; an endpoint not given is not served (its plugin is not in the Corefile). */
export interface EndpointAddresses {
  readonly health?: ListenAddress;
  readonly ready?: ListenAddress;
  readonly metrics?: ListenAddress;
}

type Route = '/health' | '/ready' | '/metrics' | '/debug/top';

export class TelemetryEndpoints {
  private readonly servers: Server[] = [];
  /** Where each path ended up listening (the real port when 0 was asked). */
  readonly bound = new Map<Route, ListenAddress>();

  /**
   * `gather`: the /metrics text, when it is more than `registry`'s (the worker threads' summed in); `top`: the
   * failing names served as /debug/top beside /metrics, when given.
   */
  constructor(
    private readonly registry: Registry,
    private readonly readiness: Readiness,
    private readonly gather = (): Promise<string> => registry.metrics(),
    private readonly top?: () => TopReport | Promise<TopReport>,
  ) {}

  async start(addresses: EndpointAddresses): Promise<void> {
    const groups = new Map<string, { address: ListenAddress; routes: Route[] }>();
    const entries: Array<[Route, ListenAddress | undefined]> = [
      ['/health', addresses.health],
      ['/ready', addresses.ready],
      ['/metrics', addresses.metrics],
      ['/debug/top', this.top === undefined ? undefined : addresses.metrics],
    ];
    for (const [route, address] of entries) {
      if (address === undefined) continue;
      const key = `${address.host}|${address.port}`;
      const group = groups.get(key) ?? { address, routes: [] };
      group.routes.push(route);
      groups.set(key, group);
    }
    for (const { address, routes } of groups.values()) {
      const server = createServer((request, response) => void this.handle(routes, request.method, request.url, response));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: address.host, port: address.port }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const port = (server.address() as { port: number }).port;
      for (const route of routes) this.bound.set(route, { host: address.host, port });
      this.servers.push(server);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.servers.map((server) => new Promise<void>((done) => {
      server.closeAllConnections();
      server.close(() => done());
    })));
  }

  private async handle(routes: readonly Route[], method: string | undefined, url: string | undefined, response: import('node:http').ServerResponse): Promise<void> {
    const [path, query] = (url ?? '/').split('?', 2) as [Route, string | undefined];
    if (!routes.includes(path)) return send(response, 404, 'not found\n');
    if (method !== 'GET' && method !== 'HEAD') return send(response, 405, 'method not allowed\n');
    switch (path) {
      case '/health':
        return send(response, 200, 'OK');
      case '/ready': {
        const reason = this.readiness.notReadyReason();
        if (reason !== undefined) return send(response, 503, `${reason}\n`);
        const warnings = this.readiness.warnings?.() ?? [];
        return send(response, 200, warnings.length === 0 ? 'OK' : `OK\n${warnings.map((warning) => `warning: ${warning}\n`).join('')}`);
      }
      case '/metrics':
        try {
          return send(response, 200, await this.gather(), this.registry.contentType);
        } catch (error) {
          return send(response, 500, `collecting metrics failed: ${(error as Error).message}\n`);
        }
      case '/debug/top':
        // Counts of the last minutes: a cached copy would be a wrong one.
        if (query?.split('&').includes('html')) return send(response, 200, TOP_PAGE, 'text/html; charset=utf-8', { 'Content-Security-Policy': TOP_PAGE_POLICY, 'Cache-Control': 'no-store' });
        return send(response, 200, `${JSON.stringify(await this.top!(), null, 2)}\n`, 'application/json', { 'Cache-Control': 'no-store' });
    }
  }
}

function send(response: import('node:http').ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8', headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), ...headers });
  response.end(body);
}
