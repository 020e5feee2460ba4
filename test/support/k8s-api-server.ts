// A Kubernetes API server for tests: the list/watch protocol of kube-apiserver over plain HTTP on 127.0.0.1,
// for Namespaces, Services, discovery.k8s.io/v1 EndpointSlices and Pods, so the real @kubernetes/client-node
// runs against it unchanged (or over HTTPS requiring a client certificate, with the `tls` option). It owns an
// in-memory store with one global resourceVersion (like etcd), the event history, and fault injection. It must not
// import anything from src/: it is the outside world.
//
// HOW @kubernetes/client-node 1.4.0 SURFACES EACH CASE (read from dist/watch.js, dist/gen/apis/*.js,
// dist/gen/http/isomorphic-fetch.js and dist/config.js, and pinned by test/k8s-api-server.test.ts):
//
// Connecting
// - An http:// server needs `insecure-skip-tls-verify: true` on the cluster, or every call throws
//   `Error('HTTP protocol is not allowed when skipTLSVerify is not set or false')` (config.js createAgent).
//   kubeconfigYaml() and kubeConfig() set it. Every call makes a fresh http.Agent (Connection: close).
// - List calls send `Accept: application/json, */*;q=0.8` and only the params you pass (`_continue` in the
//   object API goes out as `continue`). Watch.watch() sets `watch=true` plus every defined entry of
//   queryParams via toString(); allowWatchBookmarks is sent only if you pass it. List items arrive without
//   kind/apiVersion (as from a real server) and with creationTimestamp deserialised to a Date; watch objects
//   are raw JSON (kind/apiVersion present, timestamps are strings).
//
// Lists (CoreV1Api / DiscoveryV1Api object-param methods)
// - Any non-2xx rejects with `ApiException` (exported by the client): `err.code` is the HTTP status (number),
//   `err.body` the raw response text (a string: the JSON `Status`; JSON.parse it for `reason`), `err.headers`
//   a plain object; err.message starts `HTTP-Code: 500\nMessage: Unknown API Status Code!`. Same for 403, 500,
//   503, 400 (bad selector) and 410 on a continue token from before compaction (JSON.parse(err.body).reason
//   === 'Expired'). Only 401 differs: err.body is undefined (message `HTTP-Code: 401\nMessage: Unauthorized`).
// - Server down (connection refused): rejects with node-fetch `FetchError`, err.name 'FetchError',
//   err.code === 'ECONNREFUSED', err.type === 'system'; not an ApiException, no status.
// - Hang: the promise never settles; the client sets no timeout. The caller must race it against a deadline.
//
// Watch.watch(path, query, callback, done) -> Promise<AbortController>
// - The promise resolves only once response headers arrive; until then there is no controller to abort.
//   Its AbortSignal.timeout(30000) is overwritten on the next line (dead code): there is NO client timeout.
// - HTTP status != 200 (410 in watchTooOld 'http' mode, 401, 403, 500, 503, ...): done(err) with a plain Error,
//   `err.statusCode` the status (number), `err.message` the status text ('Gone', 'Forbidden',
//   'Internal Server Error', 'Service Unavailable'); the Status body is not read. The promise still resolves,
//   to an already-aborted controller.
// - ERROR event in a 200 stream (a real server's answer to a too-old resourceVersion; this server's default,
//   and expireWatches()): callback('ERROR', status, event) with status = {kind: 'Status', apiVersion: 'v1',
//   metadata: {}, status: 'Failure', reason: 'Expired', code: 410, message: 'too old resource version: X (Y)'};
//   then the server ends the stream and done(null) follows. done never sees the 410: the watch loop must
//   remember it from the callback (as the client's own ListWatch does) and relist.
// - Clean end of the chunked stream (closeWatches(), timeoutSeconds, stop({graceful: true})): done(null).
// - Abrupt close, FIN without the terminating chunk (closeWatches({abrupt: true}), stop()): done(err) with a
//   plain Error, err.message 'Premature close', err.code 'ERR_STREAM_PREMATURE_CLOSE' (node-fetch).
// - TCP reset (closeWatches({abrupt: 'reset'})): done(err), err.code 'ECONNRESET' (message 'read ECONNRESET'),
//   once the client has the headers; a reset that overtakes the headers may surface as 'Premature close'.
// - Server down before the request: done(FetchError) with err.code 'ECONNREFUSED'.
// - Hang with the watch open (hang(), or hang({sendWatchHeaders: true}) then watch): no callback, no BOOKMARK,
//   no done, ever. A watchdog (no event or BOOKMARK for N bookmark periods) must call controller.abort().
// - Hang before the headers (hang() then Watch.watch()): the watch() promise stays pending; the caller must
//   stop waiting on its own timer (the request stays open until the server answers or goes away).
// - controller.abort() by the caller, on a healthy or hung stream: done(err) with err.name 'AbortError',
//   err.type 'aborted' (message 'The user aborted a request.').
// - BOOKMARK: callback('BOOKMARK', {kind, apiVersion, metadata: {resourceVersion}}, event). Lines that are not
//   JSON are silently dropped by the client. done is called at most once per watch.
//
// Semantics kept from kube-apiserver: list metadata.resourceVersion is the global revision at the read; a
// paged list reads one snapshot (continue token = base64 JSON {v, rv, start}); watch from resourceVersion R
// replays events with rv > R; watch without resourceVersion (or "0") first sends ADDED for every current
// object; with selectors, an object that starts matching arrives as ADDED and one that stops matching as
// DELETED; a DELETED object carries the deletion's new resourceVersion; R older than the compaction point
// gives 410 Expired. One liberty: timeoutSeconds may be fractional, so tests of a server-side timeout stay short.
//
// Port-forward (the pods/portforward subresource, as kubectl port-forward and client-node's PortForward use it):
// a WebSocket upgrade of GET /api/v1/namespaces/<ns>/pods/<pod>/portforward?ports=<port>, subprotocol
// v4.channel.k8s.io (the channel protocol the kubelet speaks). Every message is one channel byte then payload;
// channel 0 carries data, channel 1 errors, and each starts with the port as a little-endian uint16. The data is
// bridged to a TCP address on this machine that the test names per pod and port (`forwardPorts`). A pod that does
// not exist is a 404 on the upgrade; a pod with no address named for it is a 400 ("not running"); a named address
// that refuses is an error message on channel 1, then the WebSocket closes, as from the kubelet.
//
// Control handle: start() -> port, stop({graceful?}), url, kubeconfigYaml(), kubeConfig();
// forwardPorts((namespace, pod, port) => {host, port} | undefined);
// create/update/upsert/delete(resource, obj), get(), resourceVersion, compact(rv?);
// closeWatches({abrupt?: true | 'reset', resource?}), expireWatches(), sendBookmarks();
// failNext(n, code, {resource?, verb?}), failAll(code, filter?), clearFaults(); hang({sendWatchHeaders?}),
// resume({answerHeld?});
// requests[], requestCount(path | predicate), openWatches(resource?), waitForWatch(resource, {count?}),
// waitForRequests(predicate, {count?}), waitUntil(cond, what).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import { WebSocketServer, type WebSocket } from 'ws';

export type ResourceName = 'namespaces' | 'services' | 'endpointslices' | 'pods';

/** The shape of any API object this server stores; everything beyond metadata is kept as given. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
    uid?: string;
    creationTimestamp?: string;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
export type Verb = 'list' | 'watch' | 'get' | 'other';

export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  resource?: ResourceName;
  namespace?: string;
  verb: Verb;
  /** With `tls`: the CN of the client certificate the request came with. */
  clientCN?: string;
}

export interface FaultFilter {
  resource?: ResourceName;
  verb?: Verb;
}

export interface FakeKubeApiServerOptions {
  /** Port for the first start(); 0 (the default) picks an ephemeral one, reused by later start() calls. */
  port?: number;
  /** How a watch from a compacted resourceVersion is refused: a 200 stream with one ERROR event (what the
   * real server does), or an HTTP 410 Status. Default 'event'. */
  watchTooOld?: 'event' | 'http';
  /** Period of BOOKMARK events on watches that asked for them; 0 turns periodic bookmarks off. Default 60 s. */
  bookmarkIntervalMs?: number;
  /** When set, requests without `Authorization: Bearer <token>` get 401, and kubeconfigYaml() carries it. */
  token?: string;
  /**
   * When set, HTTPS with this certificate and key, and a client certificate signed by `ca` is required: a client
   * without one fails its TLS handshake, as kube-apiserver's with --client-ca-file and no other authentication.
   * The client certificate's subject CN of each request is in `requests[].clientCN`.
   */
  tls?: { cert: Buffer; key: Buffer; ca: Buffer };
  /** Clock for creationTimestamp. */
  now?: () => Date;
}

interface ResourceDef {
  name: ResourceName;
  group: string;
  version: string;
  kind: string;
  namespaced: boolean;
  /** Field labels the real server accepts in fieldSelector for this resource, with their accessors. */
  fields: Record<string, (o: KubeObject) => string>;
}

const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));
const dig = (o: KubeObject, ...keys: string[]): unknown => {
  let cur: unknown = o;
  for (const k of keys) cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[k] : undefined;
  return cur;
};
const nameField = (o: KubeObject): string => o.metadata.name;
const namespaceField = (o: KubeObject): string => str(o.metadata.namespace);

const RESOURCES: Record<ResourceName, ResourceDef> = {
  namespaces: {
    name: 'namespaces', group: '', version: 'v1', kind: 'Namespace', namespaced: false,
    fields: { 'metadata.name': nameField, 'status.phase': (o) => str(dig(o, 'status', 'phase')) },
  },
  services: {
    name: 'services', group: '', version: 'v1', kind: 'Service', namespaced: true,
    fields: {
      'metadata.name': nameField,
      'metadata.namespace': namespaceField,
      'spec.clusterIP': (o) => str(dig(o, 'spec', 'clusterIP')),
      'spec.type': (o) => str(dig(o, 'spec', 'type')),
    },
  },
  endpointslices: {
    name: 'endpointslices', group: 'discovery.k8s.io', version: 'v1', kind: 'EndpointSlice', namespaced: true,
    fields: {
      'metadata.name': nameField,
      'metadata.namespace': namespaceField,
      addressType: (o) => str(o['addressType']),
    },
  },
  pods: {
    name: 'pods', group: '', version: 'v1', kind: 'Pod', namespaced: true,
    fields: {
      'metadata.name': nameField,
      'metadata.namespace': namespaceField,
      'spec.nodeName': (o) => str(dig(o, 'spec', 'nodeName')),
      'spec.hostNetwork': (o) => String(dig(o, 'spec', 'hostNetwork') === true),
      'status.phase': (o) => str(dig(o, 'status', 'phase')),
      'status.podIP': (o) => str(dig(o, 'status', 'podIP')),
    },
  },
};

const apiVersionOf = (def: ResourceDef): string => (def.group ? `${def.group}/${def.version}` : def.version);

interface StoredEvent {
  rv: number;
  resource: ResourceName;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: KubeObject;
  previous: KubeObject | undefined;
}

// ---- selectors ---------------------------------------------------------------------------------------------

class BadRequest extends Error {}

type LabelRequirement =
  | { key: string; op: 'eq' | 'neq'; value: string }
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'notexists' };

const LABEL_KEY = '[A-Za-z0-9][-A-Za-z0-9_./]*';
const LABEL_VALUE = '[-A-Za-z0-9_.]*';

/** Splits on commas outside parentheses: `a in (x,y),b` -> [`a in (x,y)`, `b`]. */
function splitTerms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out.map((t) => t.trim()).filter((t) => t !== '');
}

export function parseLabelSelector(selector: string): LabelRequirement[] {
  return splitTerms(selector).map((term): LabelRequirement => {
    let m = new RegExp(`^!\\s*(${LABEL_KEY})$`).exec(term);
    if (m) return { key: m[1]!, op: 'notexists' };
    m = new RegExp(`^(${LABEL_KEY})\\s+(in|notin)\\s*\\(([^)]*)\\)$`).exec(term);
    if (m) return { key: m[1]!, op: m[2] as 'in' | 'notin', values: m[3]!.split(',').map((v) => v.trim()) };
    m = new RegExp(`^(${LABEL_KEY})\\s*(==|=|!=)\\s*(${LABEL_VALUE})$`).exec(term);
    if (m) return { key: m[1]!, op: m[2] === '!=' ? 'neq' : 'eq', value: m[3]! };
    m = new RegExp(`^(${LABEL_KEY})$`).exec(term);
    if (m) return { key: m[1]!, op: 'exists' };
    throw new BadRequest(`unable to parse requirement: ${term}`);
  });
}

function labelsMatch(reqs: LabelRequirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case 'eq': return has && v === r.value;
      case 'neq': return !has || v !== r.value;
      case 'in': return has && r.values.includes(v!);
      case 'notin': return !has || !r.values.includes(v!);
      case 'exists': return has;
      case 'notexists': return !has;
    }
  });
}

interface FieldRequirement {
  get: (o: KubeObject) => string;
  negate: boolean;
  value: string;
}

export function parseFieldSelector(selector: string, def: ResourceDef): FieldRequirement[] {
  return splitTerms(selector).map((term) => {
    const m = /^([^=!]+?)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw new BadRequest(`invalid selector: '${selector}'; can't understand '${term}'`);
    const get = def.fields[m[1]!];
    if (!get) throw new BadRequest(`field label not supported: ${m[1]}`);
    return { get, negate: m[2] === '!=', value: m[3]! };
  });
}

const fieldsMatch = (reqs: FieldRequirement[], o: KubeObject): boolean =>
  reqs.every((r) => (r.get(o) === r.value) !== r.negate);

// ---- watches -----------------------------------------------------------------------------------------------

interface Watcher {
  def: ResourceDef;
  namespace: string | undefined;
  labels: LabelRequirement[];
  fields: FieldRequirement[];
  res: ServerResponse;
  /** Lines held back while the server hangs; flushed by resume(). */
  pending: string[];
  timers: NodeJS.Timeout[];
  bookmarks: boolean;
  /** timeoutSeconds ran out while hanging: end at resume(). */
  endAtResume: boolean;
  closed: boolean;
}

interface HeldRequest {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  record: RequestRecord;
}

interface Fault {
  remaining: number;
  code: number;
  filter: FaultFilter;
}

const STATUS_REASONS: Record<number, string> = {
  400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 405: 'MethodNotAllowed',
  409: 'AlreadyExists', 410: 'Expired', 429: 'TooManyRequests', 500: 'InternalError', 503: 'ServiceUnavailable',
  504: 'Timeout',
};

export function statusObject(code: number, message: string, reason = STATUS_REASONS[code] ?? 'Unknown') {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

const CONTINUE_EXPIRED =
  'The provided continue parameter is too old to display a consistent list result. You can start a new list ' +
  'without the continue parameter, or use the continue token in this response to retrieve the remainder of the ' +
  'results. Continuing with the provided token results in an inconsistent list - objects that were created, ' +
  'modified, or deleted between the time the first chunk was returned and now may show up in the list.';

const parseBool = (v: string | null): boolean => v !== null && ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v);

function parseRv(v: string | null): number | undefined {
  if (v === null || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new BadRequest(`invalid resource version: ${v}`);
  return Number(v);
}

const keyOf = (o: KubeObject): string => (o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name);

const timestamp = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export class FakeKubeApiServer {
  private readonly options: Required<Omit<FakeKubeApiServerOptions, 'token' | 'tls'>> & Pick<FakeKubeApiServerOptions, 'token' | 'tls'>;
  private server: Server | undefined;
  private port: number | undefined;
  private readonly sockets = new Set<Socket>();

  private rv = 100;
  private compactedRv = 0;
  private uidCounter = 0;
  private readonly objects = new Map<ResourceName, Map<string, KubeObject>>(
    (Object.keys(RESOURCES) as ResourceName[]).map((r) => [r, new Map()]),
  );
  private history: StoredEvent[] = [];

  private readonly watchers = new Set<Watcher>();
  private readonly held: HeldRequest[] = [];
  private hanging: { sendWatchHeaders: boolean } | undefined;
  private faults: Fault[] = [];
  private readonly waiters = new Set<() => void>();
  private portTargets: PortTargets = () => undefined;
  private readonly webSockets = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => (offered.has(PORT_FORWARD_PROTOCOL) ? PORT_FORWARD_PROTOCOL : false),
  });

  /** Every request received, in order (including failed and held ones). */
  readonly requests: RequestRecord[] = [];

  constructor(options: FakeKubeApiServerOptions = {}) {
    this.options = {
      port: options.port ?? 0,
      watchTooOld: options.watchTooOld ?? 'event',
      bookmarkIntervalMs: options.bookmarkIntervalMs ?? 60_000,
      token: options.token,
      tls: options.tls,
      now: options.now ?? (() => new Date()),
    };
  }

  // ---- lifecycle ---------------------------------------------------------------------------------------------

  /** Listens on 127.0.0.1 (the same port again after stop()); resolves to the port. */
  async start(): Promise<number> {
    if (this.server) return this.port!;
    const tls = this.options.tls;
    const server = tls === undefined
      ? createServer((req, res) => this.onRequest(req, res))
      : createHttpsServer({ ...tls, requestCert: true, rejectUnauthorized: true }, (req, res) => this.onRequest(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port ?? this.options.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('unexpected server address');
    this.port = addr.port;
    return this.port;
  }

  /** The API server goes down: abrupt by default (sockets destroyed mid-stream), or with every watch ended
   * cleanly first (`graceful`). The store survives, like etcd, for a later start(). */
  async stop(opts: { graceful?: boolean } = {}): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const w of [...this.watchers]) this.endWatch(w, !opts.graceful);
    for (const h of this.held.splice(0)) h.res.socket?.destroy();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
    this.changed();
  }

  get url(): string {
    if (this.port === undefined) throw new Error('FakeKubeApiServer: start() first');
    return `${this.options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${this.port}`;
  }

  /** A kubeconfig for the server; `insecure-skip-tls-verify: true` is required by the client for http://. */
  kubeconfigYaml(): string {
    const user = this.options.token ? `{ token: "${this.options.token}" }` : '{}';
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: fake',
      '  cluster:',
      `    server: ${this.url}`,
      this.options.tls === undefined ? '    insecure-skip-tls-verify: true' : `    certificate-authority-data: ${this.options.tls.ca.toString('base64')}`,
      'users:',
      '- name: fake',
      `  user: ${user}`,
      'contexts:',
      '- name: fake',
      '  context: { cluster: fake, user: fake }',
      'current-context: fake',
      '',
    ].join('\n');
  }

  /** Where port-forwards to a pod's port go; undefined for a pod that is not running. */
  forwardPorts(targets: PortTargets): void {
    this.portTargets = targets;
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromString(this.kubeconfigYaml());
    return kc;
  }

  // ---- store -------------------------------------------------------------------------------------------------

  /** The current global resourceVersion. */
  get resourceVersion(): string {
    return String(this.rv);
  }

  create(resource: ResourceName, obj: KubeObject): KubeObject {
    if (this.objects.get(resource)!.has(this.key(resource, obj))) {
      throw new Error(`${resource} "${keyOf(obj)}" already exists`);
    }
    return this.write(resource, obj);
  }

  update(resource: ResourceName, obj: KubeObject): KubeObject {
    if (!this.objects.get(resource)!.has(this.key(resource, obj))) {
      throw new Error(`${resource} "${keyOf(obj)}" not found`);
    }
    return this.write(resource, obj);
  }

  upsert(resource: ResourceName, obj: KubeObject): KubeObject {
    return this.write(resource, obj);
  }

  /** Deletes by name (and namespace); returns the deleted object at the deletion's resourceVersion. */
  delete(resource: ResourceName, ref: { metadata: { name: string; namespace?: string } }): KubeObject {
    const map = this.objects.get(resource)!;
    const key = this.key(resource, ref as KubeObject);
    const prev = map.get(key);
    if (!prev) throw new Error(`${resource} "${key}" not found`);
    const rv = ++this.rv;
    const object = structuredClone(prev);
    object.metadata.resourceVersion = String(rv);
    map.delete(key);
    this.record({ rv, resource, type: 'DELETED', object, previous: prev });
    return structuredClone(object);
  }

  get(resource: ResourceName, name: string, namespace?: string): KubeObject | undefined {
    const o = this.objects.get(resource)!.get(namespace ? `${namespace}/${name}` : name);
    return o && structuredClone(o);
  }

  /** Drops history up to `rv` (default: now): a watch or continue token from before it gets 410 Expired. */
  compact(rv: number | string = this.rv): void {
    this.compactedRv = Math.max(this.compactedRv, Number(rv));
    this.history = this.history.filter((e) => e.rv > this.compactedRv);
  }

  private key(resource: ResourceName, obj: KubeObject): string {
    if (!obj.metadata?.name) throw new Error(`${resource}: metadata.name is required`);
    const namespaced = RESOURCES[resource].namespaced;
    if (namespaced && !obj.metadata.namespace) throw new Error(`${resource}: metadata.namespace is required`);
    return namespaced ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;
  }

  private write(resource: ResourceName, input: KubeObject): KubeObject {
    const def = RESOURCES[resource];
    const map = this.objects.get(resource)!;
    const key = this.key(resource, input);
    const prev = map.get(key);
    const rv = ++this.rv;
    const object = structuredClone(input);
    object.apiVersion = apiVersionOf(def);
    object.kind = def.kind;
    if (!def.namespaced) delete object.metadata.namespace;
    object.metadata.resourceVersion = String(rv);
    object.metadata.uid = prev?.metadata.uid ?? this.nextUid();
    object.metadata.creationTimestamp = prev?.metadata.creationTimestamp ?? timestamp(this.options.now());
    map.set(key, object);
    this.record({ rv, resource, type: prev ? 'MODIFIED' : 'ADDED', object, previous: prev });
    return structuredClone(object);
  }

  private nextUid(): string {
    return `00000000-0000-4000-8000-${(++this.uidCounter).toString(16).padStart(12, '0')}`;
  }

  private record(event: StoredEvent): void {
    this.history.push(event);
    for (const w of this.watchers) {
      if (w.def.name === event.resource) this.deliver(w, event);
    }
  }

  /** The objects of `resource` as they were at `rv` (which must not be older than the compaction point). */
  private snapshot(resource: ResourceName, rv: number): Map<string, KubeObject> {
    const state = new Map(this.objects.get(resource)!);
    for (let i = this.history.length - 1; i >= 0; i--) {
      const e = this.history[i]!;
      if (e.rv <= rv) break;
      if (e.resource !== resource) continue;
      const key = keyOf(e.object);
      if (e.previous) state.set(key, e.previous);
      else state.delete(key);
    }
    return state;
  }

  // ---- faults and observation --------------------------------------------------------------------------------

  /** The next `count` requests matching `filter` are answered with `code` and a `Status` body. */
  failNext(count: number, code: number, filter: FaultFilter = {}): void {
    this.faults.push({ remaining: count, code, filter });
  }

  /** Every request matching `filter` is answered with `code` until clearFaults(). */
  failAll(code: number, filter: FaultFilter = {}): void {
    this.faults.push({ remaining: Infinity, code, filter });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Accept connections but answer nothing: new requests are held, open watches stop sending (events are
   * queued). With `sendWatchHeaders`, held watch requests still get their 200 headers, so Watch.watch()
   * resolves and the stream then stays silent. */
  hang(opts: { sendWatchHeaders?: boolean } = {}): void {
    this.hanging = { sendWatchHeaders: opts.sendWatchHeaders ?? false };
  }

  /** Ends hang(): queued watch lines are flushed, then held requests are answered. With `answerHeld: false`
   * they are not, ever (until the client gives up or stop()): a network that lost them, as a black-holed
   * address does; only requests made from now on are served. */
  resume(opts: { answerHeld?: boolean } = {}): void {
    if (!this.hanging) return;
    this.hanging = undefined;
    for (const w of [...this.watchers]) {
      for (const line of w.pending.splice(0)) w.res.write(line);
      if (w.endAtResume) this.endWatch(w, false);
    }
    if (opts.answerHeld === false) return;
    for (const h of this.held.splice(0)) {
      if (!h.res.destroyed) this.dispatch(h.req, h.res, h.url, h.record);
    }
  }

  /** Ends open watches (all, or those on `resource`): by default a clean end of the chunked response;
   * `abrupt: true` closes the socket (FIN) with no terminating chunk; `abrupt: 'reset'` sends a TCP RST. */
  closeWatches(opts: { abrupt?: boolean | 'reset'; resource?: ResourceName } = {}): number {
    let n = 0;
    for (const w of [...this.watchers]) {
      if (opts.resource && w.def.name !== opts.resource) continue;
      this.endWatch(w, opts.abrupt ?? false);
      n++;
    }
    return n;
  }

  /** Sends `{"type":"ERROR","object":<Status 410 Expired>}` on open watches and ends them, as the real server
   * does when a watcher falls out of its window mid-stream. */
  expireWatches(opts: { resource?: ResourceName } = {}): void {
    for (const w of [...this.watchers]) {
      if (opts.resource && w.def.name !== opts.resource) continue;
      this.writeEvent(w, 'ERROR', statusObject(410, `too old resource version: ${this.rv} (${this.rv})`));
      if (this.hanging) w.endAtResume = true;
      else this.endWatch(w, false);
    }
  }

  /** Writes `text` as it is on open watches (all, or those on `resource`): bytes no real server sends. */
  sendRaw(text: string, opts: { resource?: ResourceName } = {}): void {
    for (const w of this.watchers) if (!w.closed && (!opts.resource || w.def.name === opts.resource)) w.res.write(text);
  }

  /** Sends a BOOKMARK now on every open watch that allowed them (what the periodic timer does). */
  sendBookmarks(opts: { resource?: ResourceName } = {}): void {
    for (const w of this.watchers) {
      if (w.bookmarks && (!opts.resource || w.def.name === opts.resource)) this.bookmark(w);
    }
  }

  /** Requests received so far, optionally only those matching a path or a predicate. */
  requestCount(filter?: string | ((r: RequestRecord) => boolean)): number {
    if (filter === undefined) return this.requests.length;
    const pred = typeof filter === 'string' ? (r: RequestRecord) => r.path === filter : filter;
    return this.requests.filter(pred).length;
  }

  /** Watches currently open (streaming), optionally only on `resource`. */
  openWatches(resource?: ResourceName): number {
    let n = 0;
    for (const w of this.watchers) if (!resource || w.def.name === resource) n++;
    return n;
  }

  /** Resolves once at least `count` watches are open on `resource`. */
  waitForWatch(resource: ResourceName, opts: { count?: number; timeoutMs?: number } = {}): Promise<void> {
    const count = opts.count ?? 1;
    return this.waitUntil(() => this.openWatches(resource) >= count, `${count} open watch(es) on ${resource}`, opts.timeoutMs);
  }

  /** Resolves once `count` requests matching `pred` have been received. */
  waitForRequests(pred: (r: RequestRecord) => boolean, opts: { count?: number; timeoutMs?: number } = {}): Promise<void> {
    const count = opts.count ?? 1;
    return this.waitUntil(() => this.requestCount(pred) >= count, `${count} matching request(s)`, opts.timeoutMs);
  }

  /** Resolves when `cond()` holds after some change on the server (request, watch opened or closed, write). */
  waitUntil(cond: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!cond()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`FakeKubeApiServer: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }

  private changed(): void {
    for (const w of [...this.waiters]) w();
  }

  // ---- HTTP --------------------------------------------------------------------------------------------------

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const route = parsePath(url.pathname);
    const watch = parseBool(url.searchParams.get('watch'));
    const record: RequestRecord = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: { ...req.headers },
      verb: route?.resource ? (route.name ? 'get' : watch ? 'watch' : 'list') : 'other',
    };
    if (route?.resource) record.resource = route.resource.name;
    if (req.socket instanceof TLSSocket) record.clientCN = String(req.socket.getPeerCertificate().subject?.CN ?? '');
    if (route?.namespace) record.namespace = route.namespace;
    this.requests.push(record);
    if (this.hanging) {
      this.held.push({ req, res, url, record });
      if (this.hanging.sendWatchHeaders && record.verb === 'watch') {
        res.writeHead(200, watchHeaders());
        res.flushHeaders();
      }
      res.on('close', () => {
        const i = this.held.findIndex((h) => h.res === res);
        if (i >= 0) this.held.splice(i, 1);
      });
    } else {
      this.dispatch(req, res, url, record);
    }
    this.changed();
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    this.requests.push({ method: req.method ?? 'GET', path: url.pathname, query: Object.fromEntries(url.searchParams), headers: { ...req.headers }, verb: 'other' });
    this.changed();
    const refuse = (status: number, reason: string): void => {
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    };
    const match = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/portforward$/.exec(url.pathname);
    const port = Number(url.searchParams.get('ports'));
    if (match === null || !Number.isInteger(port) || port < 1 || port > 65535) return refuse(404, 'Not Found');
    if (this.options.token && req.headers.authorization !== `Bearer ${this.options.token}`) return refuse(401, 'Unauthorized');
    const [, namespace, pod] = match as unknown as [string, string, string];
    if (this.get('pods', pod, namespace) === undefined) return refuse(404, 'Not Found');
    const target = this.portTargets(namespace, pod, port);
    if (target === undefined) return refuse(400, 'Bad Request');
    this.webSockets.handleUpgrade(req, socket, head, (ws) => bridgePortForward(ws, port, target));
  }

  private dispatch(req: IncomingMessage, res: ServerResponse, url: URL, record: RequestRecord): void {
    const fault = this.faults.find(
      (f) => f.remaining > 0 && (!f.filter.resource || f.filter.resource === record.resource) &&
        (!f.filter.verb || f.filter.verb === record.verb),
    );
    if (fault) {
      fault.remaining--;
      this.faults = this.faults.filter((f) => f.remaining > 0);
      this.sendStatus(res, fault.code, faultMessage(fault.code, record));
      return;
    }
    if (this.options.token && req.headers.authorization !== `Bearer ${this.options.token}`) {
      this.sendStatus(res, 401, 'Unauthorized');
      return;
    }
    if (req.method !== 'GET') {
      this.sendStatus(res, 405, `the server does not allow this method on the requested resource`);
      return;
    }
    switch (url.pathname) {
      case '/healthz':
      case '/readyz':
      case '/livez':
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end('ok');
        return;
      case '/version':
        this.sendJson(res, 200, { major: '1', minor: '33', gitVersion: 'v1.33.0-fake', platform: 'linux/amd64' });
        return;
    }
    const route = parsePath(url.pathname);
    if (!route) {
      this.sendStatus(res, 404, 'the server could not find the requested resource');
      return;
    }
    try {
      if (route.name !== undefined) this.serveGet(res, route.resource, route.name, route.namespace);
      else if (record.verb === 'watch') this.serveWatch(res, route.resource, route.namespace, url.searchParams);
      else this.serveList(res, route.resource, route.namespace, url.searchParams);
    } catch (err) {
      if (!(err instanceof BadRequest)) throw err;
      this.sendStatus(res, 400, err.message);
    }
  }

  private serveGet(res: ServerResponse, def: ResourceDef, name: string, namespace: string | undefined): void {
    const o = this.objects.get(def.name)!.get(namespace ? `${namespace}/${name}` : name);
    if (!o) {
      this.sendJson(res, 404, {
        ...statusObject(404, `${def.name} "${name}" not found`),
        details: { name, kind: def.name, ...(def.group ? { group: def.group } : {}) },
      });
      return;
    }
    this.sendJson(res, 200, o);
  }

  private serveList(res: ServerResponse, def: ResourceDef, namespace: string | undefined, q: URLSearchParams): void {
    const labels = parseLabelSelector(q.get('labelSelector') ?? '');
    const fields = parseFieldSelector(q.get('fieldSelector') ?? '', def);
    const limit = Number(q.get('limit') ?? '0') || 0;
    let readRv = this.rv;
    let start = '';
    const token = q.get('continue');
    if (token) {
      const c = decodeContinue(token);
      if (c.rv < this.compactedRv) {
        this.sendJson(res, 410, {
          ...statusObject(410, CONTINUE_EXPIRED),
          metadata: { continue: encodeContinue(this.rv, c.start) },
        });
        return;
      }
      readRv = c.rv;
      start = c.start;
    } else if (q.get('resourceVersionMatch') === 'Exact') {
      const rv = parseRv(q.get('resourceVersion'));
      if (rv === undefined) throw new BadRequest('resourceVersionMatch "Exact" requires a resourceVersion');
      if (rv < this.compactedRv) {
        this.sendStatus(res, 410, 'The resourceVersion for the provided list is too old.');
        return;
      }
      readRv = Math.min(rv, this.rv);
    } else {
      parseRv(q.get('resourceVersion'));
    }
    const state = readRv === this.rv ? this.objects.get(def.name)! : this.snapshot(def.name, readRv);
    const matching = [...state.entries()]
      .filter(([key, o]) => key >= start && this.selects(def, namespace, labels, fields, o))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const page = limit > 0 ? matching.slice(0, limit) : matching;
    const metadata: Record<string, unknown> = { resourceVersion: String(readRv) };
    if (page.length < matching.length) {
      metadata['continue'] = encodeContinue(readRv, `${page[page.length - 1]![0]}\u0000`);
      if (labels.length === 0 && fields.length === 0) metadata['remainingItemCount'] = matching.length - page.length;
    }
    this.sendJson(res, 200, {
      kind: `${def.kind}List`,
      apiVersion: apiVersionOf(def),
      metadata,
      // Items of a typed list carry no kind/apiVersion on the wire.
      items: page.map(([, o]) => {
        const { kind: _k, apiVersion: _a, ...rest } = o;
        return rest;
      }),
    });
  }

  private serveWatch(res: ServerResponse, def: ResourceDef, namespace: string | undefined, q: URLSearchParams): void {
    const labels = parseLabelSelector(q.get('labelSelector') ?? '');
    const fields = parseFieldSelector(q.get('fieldSelector') ?? '', def);
    const fromRv = parseRv(q.get('resourceVersion'));
    const tooOld = fromRv !== undefined && fromRv !== 0 && fromRv < this.compactedRv;
    if (tooOld && this.options.watchTooOld === 'http') {
      this.sendStatus(res, 410, `too old resource version: ${fromRv} (${this.compactedRv})`);
      return;
    }
    if (!res.headersSent) res.writeHead(200, watchHeaders());
    res.flushHeaders();
    const w: Watcher = {
      def, namespace, labels, fields, res,
      pending: [], timers: [], bookmarks: parseBool(q.get('allowWatchBookmarks')), endAtResume: false, closed: false,
    };
    if (tooOld) {
      res.end(jsonLine('ERROR', statusObject(410, `too old resource version: ${fromRv} (${this.compactedRv})`)));
      return;
    }
    this.watchers.add(w);
    res.on('close', () => this.endWatch(w, false));
    if (fromRv === undefined || fromRv === 0) {
      // No resourceVersion (or "0"): the current state as synthetic ADDED events, then live events.
      const current = [...this.objects.get(def.name)!.values()].filter((o) => this.selects(def, namespace, labels, fields, o));
      for (const o of current) this.writeEvent(w, 'ADDED', o);
      if (w.bookmarks && parseBool(q.get('sendInitialEvents'))) {
        this.writeEvent(w, 'BOOKMARK', {
          kind: def.kind, apiVersion: apiVersionOf(def),
          metadata: { resourceVersion: String(this.rv), annotations: { 'k8s.io/initial-events-end': 'true' } },
        });
      }
    } else {
      for (const e of this.history) {
        if (e.rv > fromRv && e.resource === def.name) this.deliver(w, e);
      }
    }
    const timeout = Number(q.get('timeoutSeconds') ?? '0');
    if (timeout > 0) {
      w.timers.push(setTimeout(() => {
        if (this.hanging) w.endAtResume = true;
        else this.endWatch(w, false);
      }, timeout * 1000));
    }
    if (w.bookmarks && this.options.bookmarkIntervalMs > 0) {
      w.timers.push(setInterval(() => this.bookmark(w), this.options.bookmarkIntervalMs));
    }
    this.changed();
  }

  private selects(def: ResourceDef, ns: string | undefined, labels: LabelRequirement[], fields: FieldRequirement[], o: KubeObject): boolean {
    return (!ns || !def.namespaced || o.metadata.namespace === ns) && labelsMatch(labels, o.metadata.labels) && fieldsMatch(fields, o);
  }

  /** Writes one stored event to a watcher as a watch cache would: selector transitions become ADDED/DELETED. */
  private deliver(w: Watcher, e: StoredEvent): void {
    const now = this.selects(w.def, w.namespace, w.labels, w.fields, e.object);
    const before = e.previous !== undefined && this.selects(w.def, w.namespace, w.labels, w.fields, e.previous);
    switch (e.type) {
      case 'ADDED':
        if (now) this.writeEvent(w, 'ADDED', e.object);
        return;
      case 'MODIFIED':
        if (now) this.writeEvent(w, before ? 'MODIFIED' : 'ADDED', e.object);
        else if (before) this.writeEvent(w, 'DELETED', e.object);
        return;
      case 'DELETED':
        if (before) this.writeEvent(w, 'DELETED', e.object);
        return;
    }
  }

  private bookmark(w: Watcher): void {
    if (this.hanging) return; // a silent server sends nothing, not even bookmarks
    this.writeEvent(w, 'BOOKMARK', { kind: w.def.kind, apiVersion: apiVersionOf(w.def), metadata: { resourceVersion: String(this.rv) } });
  }

  private writeEvent(w: Watcher, type: WatchEventType, object: unknown): void {
    if (w.closed) return;
    const line = jsonLine(type, object);
    if (this.hanging) w.pending.push(line);
    else w.res.write(line);
  }

  private endWatch(w: Watcher, abrupt: boolean | 'reset'): void {
    if (w.closed) return;
    w.closed = true;
    for (const t of w.timers) clearTimeout(t);
    this.watchers.delete(w);
    if (abrupt === 'reset') w.res.socket?.resetAndDestroy();
    else if (abrupt) w.res.socket?.destroy();
    else w.res.end();
    this.changed();
  }

  private sendJson(res: ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    if (res.headersSent) {
      // hang({sendWatchHeaders}) already promised a 200 stream: all that is left is to end it.
      res.end();
      return;
    }
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private sendStatus(res: ServerResponse, code: number, message: string): void {
    if (code === 429) res.setHeader('Retry-After', '1');
    this.sendJson(res, code, statusObject(code, message));
  }
}

function watchHeaders(): Record<string, string> {
  return { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' };
}

const jsonLine = (type: WatchEventType, object: unknown): string => `${JSON.stringify({ type, object })}\n`;

function faultMessage(code: number, r: RequestRecord): string {
  const what = r.resource ?? r.path;
  switch (code) {
    case 403:
      return `${what} is forbidden: User "system:serviceaccount:kube-system:clusterdns" cannot ${r.verb} resource ` +
        `"${what}" in API group "" ${r.namespace ? `in the namespace "${r.namespace}"` : 'at the cluster scope'}`;
    case 429:
      return 'storage is (re)initializing';
    case 500:
      return 'Internal error occurred: injected fault';
    case 503:
      return 'service unavailable';
    default:
      return `injected fault ${code}`;
  }
}

function encodeContinue(rv: number, start: string): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv, start })).toString('base64url');
}

function decodeContinue(token: string): { rv: number; start: string } {
  try {
    const c = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { v?: unknown; rv?: unknown; start?: unknown };
    if (c.v === 'meta.k8s.io/v1' && typeof c.rv === 'number' && typeof c.start === 'string') return { rv: c.rv, start: c.start };
  } catch {
    // fall through
  }
  throw new BadRequest(`continue key is not valid: ${token}`);
}

/** The address a pod's port is forwarded to, or undefined when the pod is not running. */
export type PortTargets = (namespace: string, pod: string, port: number) => { host: string; port: number } | undefined;

const PORT_FORWARD_PROTOCOL = 'v4.channel.k8s.io';

/** One port-forward stream, as the kubelet runs it: the port on both channels first, then data both ways. */
function bridgePortForward(ws: WebSocket, port: number, target: { host: string; port: number }): void {
  const portBytes = Buffer.alloc(2);
  portBytes.writeUInt16LE(port);
  const frame = (channel: number, payload: Buffer): Buffer => Buffer.concat([Buffer.from([channel]), payload]);
  ws.send(frame(0, portBytes));
  ws.send(frame(1, portBytes));
  const tcp = connect(target);
  tcp.on('data', (chunk: Buffer) => ws.send(frame(0, chunk)));
  tcp.on('end', () => ws.close());
  tcp.on('error', (error: NodeJS.ErrnoException) => {
    ws.send(frame(1, Buffer.from(`error forwarding port ${port} to pod: ${error.code ?? error.message}`)));
    ws.close();
  });
  ws.on('message', (data: Buffer) => {
    if (data[0] === 0) tcp.write(data.subarray(1));
  });
  ws.on('close', () => tcp.destroy());
}

/** Maps a URL path to a resource collection (and optional namespace and object name); undefined if unknown. */
function parsePath(pathname: string): { resource: ResourceDef; namespace?: string; name?: string } | undefined {
  const segs = pathname.split('/').filter((s) => s !== '');
  let rest: string[];
  let group: string;
  if (segs[0] === 'api' && segs[1] === 'v1') {
    group = '';
    rest = segs.slice(2);
  } else if (segs[0] === 'apis' && segs.length >= 3) {
    group = segs[1]!;
    rest = segs.slice(3);
    if (segs[2] !== 'v1') return undefined;
  } else {
    return undefined;
  }
  const find = (plural: string | undefined): ResourceDef | undefined => {
    const def = plural === undefined ? undefined : RESOURCES[plural as ResourceName];
    return def && def.group === group ? def : undefined;
  };
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    const def = find(rest[2]);
    if (!def?.namespaced || rest.length > 4) return undefined;
    return rest.length === 4 ? { resource: def, namespace: rest[1]!, name: rest[3]! } : { resource: def, namespace: rest[1]! };
  }
  const def = find(rest[0]);
  if (!def || rest.length > 2) return undefined;
  if (rest.length === 2) return def.namespaced ? undefined : { resource: def, name: rest[1]! };
  return { resource: def };
}
