/**
 * The two calls the Kubernetes source makes, over @kubernetes/client-node 1.4: one page of a list, and a watch.
 * Owns everything this project knows about how that client surfaces faults (pinned by
 * test/k8s-api-server.test.ts), so the loop in kube-stream.ts sees one small vocabulary: a `KubeApiError` with
 * a status, or any other error as a transport failure, and a watch that ends as `closed`, `expired` or `failed`.
 * Every request can be abandoned: the client sets no timeouts and cannot be handed an AbortSignal for a watch.
 */
import http from 'node:http';
import https from 'node:https';
import { type KubeConfig, Watch } from '@kubernetes/client-node';
import { ClusterDnsError } from '../errors.js';

/** An API answer other than 2xx; `reason` is the Status reason when the body has one (`Expired`, `Forbidden`). */
export class KubeApiError extends ClusterDnsError {
  constructor(readonly status: number, readonly reason: string | undefined, message: string) {
    super('E_KUBE_API', message);
    this.name = 'KubeApiError';
  }
}

export type Json = Record<string, unknown>;

export interface ListPage {
  readonly items: readonly unknown[];
  readonly resourceVersion: string;
  readonly continueToken: string | undefined;
}

/**
 * GET one page of a collection as raw JSON. A raw request rather than the generated clients: those deserialise
 * every item into model classes (a second copy of each page) and cannot be cancelled without middleware; here
 * the caller's signal ends the request and its socket.
 */
export async function listPage(
  kc: KubeConfig,
  path: string,
  query: Readonly<Record<string, string | undefined>>,
  signal: AbortSignal,
): Promise<ListPage> {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new ClusterDnsError('E_KUBECONFIG', 'the kubeconfig has no current cluster');
  const url = new URL(cluster.server + path);
  for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, value);
  // The same TLS, proxy and credential handling as the client's own calls (token files are re-read here).
  const options: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(options);
  const send = url.protocol === 'http:' ? http.request : https.request;
  try {
    signal.throwIfAborted();
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = send(url, {
        method: 'GET',
        agent: options.agent,
        auth: options.auth,
        headers: { ...options.headers, Accept: 'application/json' },
        signal,
      }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        response.on('close', () => {
          if (!response.complete) reject(new Error('the connection closed before the list response ended'));
        });
      });
      request.on('error', reject);
      request.end();
    });
    if (status < 200 || status > 299) throw apiError(status, body);
    return parseList(body, path);
  } finally {
    // The client makes an agent per call; ours is done with its one socket.
    (options.agent as http.Agent | undefined)?.destroy();
  }
}

function apiError(status: number, body: string): KubeApiError {
  let reason: string | undefined;
  let message = http.STATUS_CODES[status] ?? 'unknown status';
  try {
    const parsed = JSON.parse(body) as { kind?: unknown; reason?: unknown; message?: unknown };
    if (parsed.kind === 'Status') {
      if (typeof parsed.reason === 'string') reason = parsed.reason;
      if (typeof parsed.message === 'string') message = parsed.message;
    }
  } catch {
    // A body that is not a Status (a proxy's HTML page, an empty 401): the status line says enough.
  }
  return new KubeApiError(status, reason, `HTTP ${status}${reason === undefined ? '' : ` ${reason}`}: ${message}`);
}

function parseList(body: string, path: string): ListPage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new KubeApiError(200, undefined, `list of ${path}: the answer is not JSON`);
  }
  const list = parsed as { items?: unknown; metadata?: { resourceVersion?: unknown; continue?: unknown } };
  const resourceVersion = list.metadata?.resourceVersion;
  if (!Array.isArray(list.items) || typeof resourceVersion !== 'string' || resourceVersion === '') {
    throw new KubeApiError(200, undefined, `list of ${path}: the answer is not a list with a resourceVersion`);
  }
  const token = list.metadata?.continue;
  return { items: list.items, resourceVersion, continueToken: typeof token === 'string' && token !== '' ? token : undefined };
}

/** How one watch request ended. */
export type WatchEnd =
  /** The server ended the stream cleanly: resume from the last resourceVersion. */
  | { readonly type: 'closed' }
  /** 410 Gone (HTTP, or an ERROR event with code 410): the resourceVersion is compacted away; list again. */
  | { readonly type: 'expired' }
  | { readonly type: 'failed'; readonly reason: string };

export interface WatchCallbacks {
  /** Headers arrived: the watch is established. */
  onOpen(): void;
  /** Every event but ERROR; an exception here ends the watch as failed. */
  onEvent(type: string, object: Json): void;
  /** Called exactly once, unless `abandon()` came first. */
  onEnd(end: WatchEnd): void;
}

export interface WatchRequest {
  /** Stop the watch (before or after its headers) and free its socket; no callback follows. */
  abandon(): void;
}

/**
 * Starts `Watch.watch()` on `path`. The client gives no controller until headers arrive and never times out,
 * so each request runs on a KubeConfig view that records the request's own http.Agent (the client creates one
 * per call): destroying it ends a request that never got its headers, which the controller cannot.
 */
export function startWatch(kc: KubeConfig, path: string, query: Readonly<Record<string, string>>, callbacks: WatchCallbacks): WatchRequest {
  let agent: http.Agent | undefined;
  let controller: AbortController | undefined;
  let live = true;

  const view = Object.create(kc) as KubeConfig;
  view.applyToFetchOptions = async (options) => {
    const init = await kc.applyToFetchOptions(options);
    agent = (init as { agent?: http.Agent }).agent;
    if (!live) {
      // Abandoned while credentials were being prepared: never send it (the rejection is ignored below).
      agent?.destroy();
      throw new Error('watch abandoned');
    }
    return init;
  };
  const stop = (): void => {
    controller?.abort();
    agent?.destroy();
  };
  const end = (result: WatchEnd): void => {
    if (!live) return;
    live = false;
    stop();
    callbacks.onEnd(result);
  };

  new Watch(view)
    .watch(path, query, (type: string, object: unknown) => {
      if (!live) return;
      try {
        if (type === 'ERROR') {
          // A Status in the stream. A 410 arrives only this way (done() never carries it, the server just ends
          // the stream after it), so it is acted on here rather than remembered for done().
          const status = (object ?? {}) as { code?: unknown; reason?: unknown; message?: unknown };
          if (status.code === 410) end({ type: 'expired' });
          else end({ type: 'failed', reason: `ERROR event ${String(status.code)} ${String(status.reason)}: ${String(status.message)}` });
          return;
        }
        callbacks.onEvent(type, object as Json);
      } catch (error) {
        // The client swallows exceptions thrown by this callback; end the watch so the caller hears of it.
        end({ type: 'failed', reason: `handling a ${type} event: ${(error as Error).message}` });
      }
    }, (error: unknown) => {
      if (error === null || error === undefined) {
        end({ type: 'closed' });
      } else if ((error as { statusCode?: unknown }).statusCode === 410) {
        end({ type: 'expired' });
      } else {
        end({ type: 'failed', reason: describeWatchError(error) });
      }
    })
    .then((ctl) => {
      controller = ctl;
      if (!live) ctl.abort();
      else if (!ctl.signal.aborted) callbacks.onOpen();
    }, (error: unknown) => end({ type: 'failed', reason: describeWatchError(error) }));

  return {
    abandon: () => {
      live = false;
      stop();
    },
  };
}

function describeWatchError(error: unknown): string {
  const e = error as { statusCode?: unknown; code?: unknown; message?: unknown };
  if (typeof e.statusCode === 'number') return `HTTP ${e.statusCode} ${String(e.message ?? '')}`.trim();
  if (e.code === 'ERR_STREAM_PREMATURE_CLOSE') return 'the watch stream ended abruptly';
  return typeof e.message === 'string' && e.message !== '' ? e.message : String(error);
}

/** A short, stable description of a failed list for logs and state. */
export function describeListError(error: unknown): string {
  if (error instanceof KubeApiError) return error.message;
  const e = error as { message?: unknown };
  return typeof e.message === 'string' && e.message !== '' ? e.message : String(error);
}

/** 410 Gone on a list: a continue token from before a compaction. */
export const isExpiredList = (error: unknown): boolean => error instanceof KubeApiError && error.status === 410;
