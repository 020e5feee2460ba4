/**
 * The two calls the Kubernetes source makes: one page of a list, and a watch, as plain HTTP GETs with node's own
 * http/https and the agent and credentials of the kubeconfig (kube-config.ts). Owns the one small vocabulary the
 * loop in kube-stream.ts sees: a `KubeApiError` with a status, or any other error as a transport failure, and a
 * watch that ends as `closed`, `expired` or `failed`. Every request can be abandoned at any point, before or after
 * its headers, through its AbortSignal.
 *
 * Not through @kubernetes/client-node's generated API clients, which deserialise every item into model classes (a
 * second copy of each page), nor its `Watch`: that is node-fetch under a readline, and importing it costs +11 MB
 * RSS after GC (node 20, bare process: 45 → 56 MB with node:https already loaded) for a loop of 40 lines here. It
 * also gave no way to abort a watch before its headers arrived (no controller until then, no timeout), which took
 * a per-request agent-capturing KubeConfig view to work around.
 */
import http from 'node:http';
import https from 'node:https';
import { ClusterDnsError } from '../errors.js';
import type { KubeAccess } from './kube-config.js';

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
  /** Length of the JSON text (characters: bytes for the ASCII that API objects mostly are). */
  readonly size: number;
  readonly resourceVersion: string;
  readonly continueToken: string | undefined;
}

/**
 * Sends a GET and resolves with the response once its headers are in. The agent is made for this one request
 * (fresh credentials each time, as the client does) and destroyed with `done`, which the caller must call.
 */
async function get(
  access: KubeAccess,
  path: string,
  query: Readonly<Record<string, string | undefined>>,
  signal: AbortSignal,
): Promise<{ response: http.IncomingMessage; done: () => void }> {
  const url = new URL(access.server + path);
  for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, value);
  const { agent, headers } = await access.requestOptions();
  const done = (): void => agent.destroy();
  try {
    signal.throwIfAborted();
    const send = url.protocol === 'http:' ? http.request : https.request;
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const request = send(url, { method: 'GET', agent, headers: { ...headers, Accept: 'application/json' }, signal }, resolve);
      request.on('error', reject);
      request.end();
    });
    return { response, done };
  } catch (error) {
    done();
    throw error;
  }
}

/** GET one page of a collection as raw JSON; the caller's signal ends the request and its socket. */
export async function listPage(
  access: KubeAccess,
  path: string,
  query: Readonly<Record<string, string | undefined>>,
  signal: AbortSignal,
): Promise<ListPage> {
  const { response, done } = await get(access, path, query, signal);
  try {
    const body = await new Promise<string>((resolve, reject) => {
      // Decoded chunk by chunk: each socket read's Buffer (malloc'ed, outside the JS heap) is garbage at once and
      // goes in the next scavenge. Kept until the page ended, 12 MB of them survived into the old generation and
      // held up to 50 MB of malloc arena that glibc never gave back.
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('error', reject);
      response.on('end', () => resolve(text));
      response.on('close', () => {
        if (!response.complete) reject(new Error('the connection closed before the list response ended'));
      });
    });
    const status = response.statusCode ?? 0;
    if (status < 200 || status > 299) throw apiError(status, body);
    return parseList(body, path);
  } finally {
    done();
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
  return { items: list.items, size: body.length, resourceVersion, continueToken: typeof token === 'string' && token !== '' ? token : undefined };
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

/** What one line of a watch stream says. */
export type WatchLine =
  | { readonly kind: 'event'; readonly type: string; readonly object: Json }
  /** An ERROR event: the server ends the stream after it. */
  | { readonly kind: 'end'; readonly end: WatchEnd }
  /** Not an event (a blank keep-alive line); the client ignored these too. */
  | { readonly kind: 'none' };

const NOT_AN_EVENT: WatchLine = { kind: 'none' };

/** One line of newline-delimited JSON events (without its newline). */
export function parseWatchLine(line: string): WatchLine {
  let event: { type?: unknown; object?: unknown };
  try {
    event = JSON.parse(line) as typeof event;
  } catch {
    return NOT_AN_EVENT;
  }
  // `null`, a number, an array: JSON, but no event. (Reading `.type` of null threw out of the stream's data
  // handler, an uncaught exception that ended the process.)
  if (!isObject(event)) return NOT_AN_EVENT;
  const type = String(event.type);
  if (type === 'ERROR') {
    // A Status in the stream, which is how a real server says 410 to a watch.
    const status = (event.object ?? {}) as { code?: unknown; reason?: unknown; message?: unknown };
    if (status.code === 410) return { kind: 'end', end: { type: 'expired' } };
    return { kind: 'end', end: { type: 'failed', reason: `ERROR event ${String(status.code)} ${String(status.reason)}: ${String(status.message)}` } };
  }
  // The stream loop reads `metadata` of the object: an event whose object is not one is no event either.
  if (event.object !== undefined && event.object !== null && !isObject(event.object)) return NOT_AN_EVENT;
  return { kind: 'event', type, object: (event.object ?? {}) as Json };
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The lines of a text stream as its chunks arrive: a line may be split across chunks anywhere. */
export class LineSplitter {
  private pending = '';

  /** Hands each line that `chunk` completes to `each` (without its newline); stops when `each` returns false. */
  push(chunk: string, each: (line: string) => boolean): void {
    let from = 0;
    for (let newline = chunk.indexOf('\n'); newline >= 0; newline = chunk.indexOf('\n', from)) {
      const line = this.pending + chunk.slice(from, newline);
      this.pending = '';
      from = newline + 1;
      if (!each(line)) return;
    }
    this.pending += chunk.slice(from);
  }
}

/**
 * Starts a watch on `path` (newline-delimited JSON events) and reports its events and its end; `abandon()` stops
 * it at any point, before or after the headers, and frees its socket.
 */
export function startWatch(access: KubeAccess, path: string, query: Readonly<Record<string, string>>, callbacks: WatchCallbacks): WatchRequest {
  const controller = new AbortController();
  let live = true;
  const end = (result: WatchEnd): void => {
    if (!live) return;
    live = false;
    controller.abort();
    callbacks.onEnd(result);
  };
  const onLine = (line: string): void => {
    const parsed = parseWatchLine(line);
    if (parsed.kind === 'end') return end(parsed.end);
    if (parsed.kind === 'none') return;
    try {
      callbacks.onEvent(parsed.type, parsed.object);
    } catch (error) {
      end({ type: 'failed', reason: `handling a ${parsed.type} event: ${(error as Error).message}` });
    }
  };

  get(access, path, { ...query, watch: 'true' }, controller.signal).then(({ response, done }) => {
    response.once('close', done);
    if (!live) return void response.destroy();
    const status = response.statusCode ?? 0;
    if (status !== 200) {
      response.resume();
      if (status === 410) end({ type: 'expired' });
      else end({ type: 'failed', reason: `HTTP ${status} ${http.STATUS_CODES[status] ?? ''}`.trim() });
      return;
    }
    // A peer that vanishes without a FIN is found by TCP keep-alive (the client set the same 30 s).
    response.socket.setKeepAlive(true, 30_000);
    callbacks.onOpen();
    const lines = new LineSplitter();
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      if (!live) return;
      lines.push(chunk, (line) => {
        onLine(line);
        return live;
      });
    });
    // Node reports a stream cut short (FIN without the last chunk, or a reset) as an 'aborted' error, or only a close.
    const abrupt = (code?: string): void => end({ type: 'failed', reason: `the watch stream ended abruptly${code ? ` (${code})` : ''}` });
    response.on('error', (error: NodeJS.ErrnoException) => abrupt(error.code));
    response.on('end', () => end({ type: 'closed' }));
    response.on('close', () => {
      if (!response.complete) abrupt();
    });
  }, (error: unknown) => end({ type: 'failed', reason: describeError(error) }));

  return {
    abandon: () => {
      live = false;
      controller.abort();
    },
  };
}

/** A short, stable description of a failed request for logs and state. */
export function describeError(error: unknown): string {
  const e = error as { message?: unknown };
  return typeof e.message === 'string' && e.message !== '' ? e.message : String(error);
}

/** 410 Gone on a list: a continue token from before a compaction. */
export const isExpiredList = (error: unknown): boolean => error instanceof KubeApiError && error.status === 410;
