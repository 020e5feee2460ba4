/**
 * Where the Kubernetes API is and how to authenticate to it: a kubeconfig file (or several, merged) or the pod's
 * service account, read as @kubernetes/client-node's KubeConfig reads them, and turned into the agent and headers
 * of one request (what its `applyToHTTPSOptions` did).
 *
 * Built from the client's own parts: its kubeconfig schema (`config_types.js`: the same fields, defaults and
 * errors) and its authenticators (exec plugins, token files, and the azure, gcp and oidc auth providers). Not
 * from its KubeConfig class: `dist/config.js` imports the client's generated API (`dist/gen/index.js`, 2,556
 * model files) for `makeApiClient`, which clusterdns never calls, and that import alone costs +55 MB RSS and
 * 0.35 s at start (node 20, measured in a bare process: 56 → 111 MB), half the 120 MB the whole server may use
 * at 100k endpoints. Owns nothing else; knows nothing of watching or of DNS.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { isIPv4, isIPv6 } from 'node:net';
import yaml from 'js-yaml';
import type { Authenticator } from '@kubernetes/client-node/dist/auth.js';
import { newClusters, newContexts, newUsers, type Cluster, type Context, type User } from '@kubernetes/client-node/dist/config_types.js';
import { ExecAuth } from '@kubernetes/client-node/dist/exec_auth.js';
import { FileAuth } from '@kubernetes/client-node/dist/file_auth.js';
import { ConfigError } from '../errors.js';

export type { Cluster, User };

const SERVICE_ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The agent (TLS, proxy) and headers (credentials) for one request; the caller destroys the agent when done. */
export interface RequestOptions {
  readonly agent: http.Agent;
  readonly headers: Record<string, string>;
}

interface ConfigParts {
  clusters: Cluster[];
  users: User[];
  contexts: Context[];
  currentContext: string | undefined;
}

/** The current context's cluster and user, with the credentials state (cached exec tokens, re-read token files). */
export class KubeAccess {
  private authenticator: Promise<Authenticator | undefined> | undefined;

  constructor(
    /** Where the configuration came from, for messages: `--kubeconfig PATH`, `in-cluster config`, ... */
    readonly origin: string,
    readonly cluster: Cluster,
    readonly user: User | undefined,
    /** The current context's namespace, which kubectl uses when none is given. */
    readonly namespace?: string,
  ) {}

  get server(): string {
    return this.cluster.server;
  }

  /** Re-done for every request, as the client does: exec credentials expire, token files rotate. */
  async requestOptions(): Promise<RequestOptions> {
    const { cluster, user } = this;
    const tls: https.AgentOptions & { headers?: Record<string, string> } = {};
    const headers: Record<string, string> = {};
    // The cluster's TLS settings apply with or without a user (the client skips them without one).
    if (cluster.skipTLSVerify) tls.rejectUnauthorized = false;
    if (cluster.tlsServerName) tls.servername = cluster.tlsServerName;
    const ca = fileOrData(cluster.caFile, cluster.caData);
    if (ca) tls.ca = ca;
    if (user !== undefined) {
      const cert = fileOrData(user.certFile, user.certData);
      if (cert) tls.cert = cert;
      const key = fileOrData(user.keyFile, user.keyData);
      if (key) tls.key = key;
      if (user.impersonateUser) headers['Impersonate-User'] = user.impersonateUser;
      // An authenticator writes Authorization into `headers`, and an exec plugin may give a client cert and key.
      tls.headers = headers;
      await (await this.authenticatorFor(user))?.applyAuthentication(user, tls);
      delete tls.headers;
      if (user.token) headers.Authorization = `Bearer ${user.token}`;
      else if (user.username && headers.Authorization === undefined) {
        headers.Authorization = `Basic ${Buffer.from(`${user.username}:${user.password ?? ''}`).toString('base64')}`;
      }
    }
    return { agent: await createAgent(cluster, tls), headers };
  }

  /** The authenticator the client would pick for this user (the first whose isAuthProvider holds), loaded once. */
  private authenticatorFor(user: User): Promise<Authenticator | undefined> {
    this.authenticator ??= pickAuthenticator(user);
    return this.authenticator;
  }
}

/**
 * In the client's order (azure, gcp, exec, token file, oidc). The three auth providers are loaded only for a user
 * that names them: openid-client alone adds 7 MB RSS, and in-cluster config needs only the token file.
 */
async function pickAuthenticator(user: User): Promise<Authenticator | undefined> {
  const provider = (user.authProvider ?? undefined) as { name?: unknown } | undefined;
  const candidates: Array<() => Promise<Authenticator>> = [];
  if (provider?.name === 'azure') candidates.push(async () => new (await import('@kubernetes/client-node/dist/azure_auth.js')).AzureAuth());
  if (provider?.name === 'gcp') candidates.push(async () => new (await import('@kubernetes/client-node/dist/gcp_auth.js')).GoogleCloudPlatformAuth());
  candidates.push(async () => new ExecAuth(), async () => new FileAuth());
  if (provider?.name === 'oidc') candidates.push(async () => new (await import('@kubernetes/client-node/dist/oidc_auth.js')).OpenIDConnectAuth());
  for (const make of candidates) {
    const authenticator = await make();
    if (authenticator.isAuthProvider(user)) return authenticator;
  }
  return undefined;
}

async function createAgent(cluster: Cluster, options: https.AgentOptions): Promise<http.Agent> {
  const secure = cluster.server.startsWith('https:');
  if (cluster.proxyUrl) {
    // Loaded only when a proxy is configured, like the auth providers above.
    if (cluster.proxyUrl.startsWith('socks')) {
      const { SocksProxyAgent } = await import('socks-proxy-agent');
      return new SocksProxyAgent(cluster.proxyUrl, options);
    }
    const { HttpProxyAgent, HttpsProxyAgent } = await import('hpagent');
    return secure ? new HttpsProxyAgent({ ...options, proxy: cluster.proxyUrl }) : new HttpProxyAgent({ ...options, proxy: cluster.proxyUrl });
  }
  // checkCluster() allows http:// only with insecure-skip-tls-verify, or to a loopback address, as kubectl does.
  return secure ? new https.Agent(options) : new http.Agent(options);
}

function fileOrData(file: string | undefined | null, data: string | undefined | null): Buffer | undefined {
  if (file) return readFileSync(file);
  if (data) return Buffer.from(data, 'base64');
  return undefined;
}

/** What the kubernetes plugin adds to a kubeconfig (its `kubeconfig PATH CONTEXT` and `tls CERT KEY CACERT`). */
export interface KubeConfigChoices {
  /** Use this context instead of the current one; one the kubeconfig does not have is an error listing those it has. */
  readonly context?: string;
  /** With `endpoint`: the client certificate, its key and the CA of the API server, as files (read per request). */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca: string };
}

/**
 * The kubeconfig to use: `path` when given; else in-cluster (service account) when KUBERNETES_SERVICE_HOST is
 * set; else $KUBECONFIG (several files joined by the path delimiter are merged) or ~/.kube/config. `endpoint`
 * with `tls` is a configuration of its own, as CoreDNS builds it: that server, that CA, that client certificate.
 * Throws ConfigError naming what was tried when none is usable.
 */
export function loadKubeConfig(path?: string, endpoint?: string, choices: KubeConfigChoices = {}): KubeAccess {
  let origin: string;
  let parts: ConfigParts;
  const { tls } = choices;
  try {
    if (endpoint !== undefined && tls !== undefined) {
      origin = `endpoint ${endpoint} with tls ${tls.cert} ${tls.key} ${tls.ca}`;
      parts = endpointWithCertificates(endpoint, tls);
    } else if (endpoint !== undefined && path === undefined && !process.env.KUBERNETES_SERVICE_HOST) {
      // The kubernetes plugin's `endpoint` alone: an API server reached without credentials (kubectl proxy).
      origin = `endpoint ${endpoint}`;
      parts = { clusters: [{ name: 'endpoint', server: endpoint, skipTLSVerify: false }], users: [], contexts: [{ name: 'endpoint', cluster: 'endpoint', user: '' }], currentContext: 'endpoint' };
    } else if (path !== undefined) {
      origin = `--kubeconfig ${path}`;
      parts = readConfigFile(path);
    } else if (process.env.KUBERNETES_SERVICE_HOST) {
      origin = 'in-cluster config (KUBERNETES_SERVICE_HOST is set)';
      parts = inClusterConfig(process.env.KUBERNETES_SERVICE_HOST, process.env.KUBERNETES_SERVICE_PORT ?? '');
    } else if (process.env.KUBECONFIG) {
      origin = `$KUBECONFIG (${process.env.KUBECONFIG})`;
      const files = process.env.KUBECONFIG.split(delimiter).filter((file) => file !== '');
      if (files.length === 0) throw new Error('names no file');
      parts = files.map(readConfigFile).reduce(mergeConfig);
    } else {
      const file = join(homedir(), '.kube', 'config');
      origin = file;
      try {
        accessSync(file);
      } catch {
        throw new ConfigError('no Kubernetes API to watch: give --kubeconfig PATH or --manifests PATH, set $KUBECONFIG, ' +
          `or run in a cluster (KUBERNETES_SERVICE_HOST); ${file} does not exist`);
      }
      parts = readConfigFile(file);
    }
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`cannot load the kubeconfig from ${origin!}: ${(error as Error).message}`);
  }
  if (choices.context !== undefined) parts = withContext(parts, choices.context, origin);
  if (endpoint !== undefined && tls === undefined) {
    // `endpoint URL` overrides the server of the kubeconfig's (or the service account's) current cluster.
    const current = parts.contexts.find((entry) => entry.name === parts.currentContext)?.cluster;
    parts = { ...parts, clusters: parts.clusters.map((cluster) => (cluster.name === current ? { ...cluster, server: endpoint } : cluster)) };
  }
  return accessOf(parts, origin);
}

/** The named context made the current one, or a ConfigError naming it and the contexts there are. */
function withContext(parts: ConfigParts, context: string, origin: string): ConfigParts {
  if (!parts.contexts.some((entry) => entry.name === context)) {
    const known = parts.contexts.map((entry) => `"${entry.name}"`).join(', ') || 'none';
    throw new ConfigError(`kubeconfig from ${origin}: no context "${context}" (its contexts: ${known})`);
  }
  return { ...parts, currentContext: context };
}

/**
 * `endpoint` with `tls`: one cluster (the endpoint, verified against CACERT) and one user (CERT and KEY). Each
 * file must be readable now, so a missing one fails at start naming it; requestOptions() reads them again.
 */
function endpointWithCertificates(endpoint: string, tls: NonNullable<KubeConfigChoices['tls']>): ConfigParts {
  for (const [what, file] of [['client certificate', tls.cert], ['client key', tls.key], ['CA certificate', tls.ca]] as const) {
    try {
      accessSync(file, constants.R_OK);
    } catch (error) {
      throw new ConfigError(`tls: cannot read the ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  }
  return {
    clusters: [{ name: 'endpoint', server: endpoint, caFile: tls.ca, skipTLSVerify: false }],
    users: [{ name: 'tls', certFile: tls.cert, keyFile: tls.key }],
    contexts: [{ name: 'endpoint', cluster: 'endpoint', user: 'tls' }],
    currentContext: 'endpoint',
  };
}

/** A kubeconfig given as text (YAML or JSON), for tests and tools; relative file names are left as they are. */
export function kubeConfigFromText(text: string, origin = 'the given kubeconfig'): KubeAccess {
  try {
    return accessOf(parseConfig(text), origin);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`cannot load the kubeconfig from ${origin}: ${(error as Error).message}`);
  }
}

function parseConfig(text: string): ConfigParts {
  const object = (yaml.load(text) ?? {}) as { clusters?: unknown; users?: unknown; contexts?: unknown; 'current-context'?: unknown };
  if (typeof object !== 'object') throw new Error('not a kubeconfig (expected a mapping)');
  const current = object['current-context'];
  return {
    clusters: newClusters(object.clusters),
    users: newUsers(object.users),
    contexts: newContexts(object.contexts),
    currentContext: typeof current === 'string' && current !== '' ? current : undefined,
  };
}

/** As the client reads a file: file names inside it are relative to its directory. */
function readConfigFile(file: string): ConfigParts {
  const parts = parseConfig(readFileSync(file, 'utf8'));
  const absolute = (name: string | undefined): string | undefined =>
    name === undefined || name === null || name === '' || isAbsolute(name) ? name : join(dirname(file), name);
  return {
    ...parts,
    clusters: parts.clusters.map((cluster) => ({ ...cluster, caFile: absolute(cluster.caFile) })),
    users: parts.users.map((user) => ({ ...user, certFile: absolute(user.certFile), keyFile: absolute(user.keyFile) })),
  };
}

/** As the client's mergeConfig: a name defined twice is an error, and a later file's current-context wins. */
function mergeConfig(into: ConfigParts, more: ConfigParts): ConfigParts {
  const merged = (kind: string, a: ReadonlyArray<{ name: string }>, b: ReadonlyArray<{ name: string }>): void => {
    for (const entry of b) if (a.some((existing) => existing.name === entry.name)) throw new Error(`Duplicate ${kind}: ${entry.name}`);
  };
  merged('cluster', into.clusters, more.clusters);
  merged('user', into.users, more.users);
  merged('context', into.contexts, more.contexts);
  return {
    clusters: [...into.clusters, ...more.clusters],
    users: [...into.users, ...more.users],
    contexts: [...into.contexts, ...more.contexts],
    currentContext: more.currentContext ?? into.currentContext,
  };
}

/** The pod's service account, as the client's loadFromCluster: its CA, and its token re-read as it rotates. */
function inClusterConfig(host: string, port: string): ConfigParts {
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  return {
    clusters: [{ name: 'inCluster', server: `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`, caFile: `${SERVICE_ACCOUNT}/ca.crt`, skipTLSVerify: false }],
    users: [{ name: 'inClusterUser', authProvider: { name: 'tokenFile', config: { tokenFile: `${SERVICE_ACCOUNT}/token` } } }],
    contexts: [{ name: 'inClusterContext', cluster: 'inCluster', user: 'inClusterUser' }],
    currentContext: 'inClusterContext',
  };
}

/** Fails at start, not on every retry, for a kubeconfig no request could ever succeed with. */
function accessOf(parts: ConfigParts, origin: string): KubeAccess {
  const context = parts.contexts.find((entry) => entry.name === parts.currentContext);
  const cluster = context === undefined ? undefined : parts.clusters.find((entry) => entry.name === context.cluster);
  if (cluster === undefined) throw new ConfigError(`kubeconfig from ${origin}: no current context with a cluster`);
  checkCluster(cluster, origin);
  return new KubeAccess(origin, cluster, parts.users.find((entry) => entry.name === context!.user), context!.namespace || undefined);
}

/** Plain http:// to this machine (`kubectl proxy` on 127.0.0.1:8001), which kubectl accepts without insecure-skip-tls-verify. */
export function isPlainLoopback(cluster: Cluster): boolean {
  try {
    const url = new URL(cluster.server);
    return url.protocol === 'http:' && isLoopbackHost(url.hostname);
  } catch {
    return false;
  }
}

function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[(.*)\]$/, '$1');
  return host === 'localhost' || host === '::1' || (isIPv4(host) && host.startsWith('127.'));
}

export function checkCluster(cluster: Cluster, origin: string): void {
  let url: URL;
  try {
    url = new URL(cluster.server);
  } catch {
    throw new ConfigError(`kubeconfig from ${origin}: cluster "${cluster.name}" has no valid server URL (${cluster.server})`);
  }
  if (url.protocol === 'http:' && !cluster.skipTLSVerify && !isLoopbackHost(url.hostname)) {
    // As the client: plain HTTP only when the connection is declared unverified anyway, or (as kubectl takes it)
    // to this machine, where `kubectl proxy` serves.
    throw new ConfigError(`kubeconfig from ${origin}: cluster "${cluster.name}" uses http:// and needs insecure-skip-tls-verify: true`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`kubeconfig from ${origin}: cluster "${cluster.name}" server ${cluster.server} is not http(s)`);
  }
}
