// The kubeconfig as clusterdns reads it without @kubernetes/client-node's KubeConfig class: each credential and TLS
// setting a user may rely on ends up in the request's agent or headers, as the client's applyToHTTPSOptions put it.
// Nothing here connects anywhere: the agents are inspected, not used.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpsProxyAgent } from 'hpagent';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { kubeConfigFromText, loadKubeConfig } from '../src/source/kube-config.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  vi.unstubAllEnvs();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'clusterdns-kubeconfig-'));
  dirs.push(dir);
  return dir;
}

/** A one-context kubeconfig; `cluster` and `user` are YAML flow mappings. */
const kubeconfig = (cluster: string, user: string, name = 'c'): string => `apiVersion: v1
kind: Config
clusters: [{ name: ${name}, cluster: ${cluster} }]
users: [{ name: ${name}, user: ${user} }]
contexts: [{ name: ${name}, context: { cluster: ${name}, user: ${name} } }]
current-context: ${name}
`;

const b64 = (text: string): string => Buffer.from(text).toString('base64');

async function optionsOf(text: string) {
  const { agent, headers } = await kubeConfigFromText(text).requestOptions();
  agent.destroy();
  return { agent, headers, tls: (agent as https.Agent).options };
}

describe('kubeconfig credentials', () => {
  it('bearer token, CA data, client certificate and key, tls-server-name, impersonation', async () => {
    const { agent, headers, tls } = await optionsOf(kubeconfig(
      `{ server: "https://api.example:6443", certificate-authority-data: ${b64('CA')}, tls-server-name: kubernetes }`,
      `{ token: abc, client-certificate-data: ${b64('CERT')}, client-key-data: ${b64('KEY')}, as: admin }`,
    ));
    expect(agent).toBeInstanceOf(https.Agent);
    expect(headers).toEqual({ Authorization: 'Bearer abc', 'Impersonate-User': 'admin' });
    expect(String(tls.ca)).toBe('CA');
    expect(String(tls.cert)).toBe('CERT');
    expect(String(tls.key)).toBe('KEY');
    expect(tls.servername).toBe('kubernetes');
    expect(tls.rejectUnauthorized).toBeUndefined(); // verification stays on (and NODE_TLS_REJECT_UNAUTHORIZED applies)
  });

  it('basic auth; insecure-skip-tls-verify turns verification off; http:// gets a plain agent', async () => {
    const basic = await optionsOf(kubeconfig('{ server: "https://h", insecure-skip-tls-verify: true }', '{ username: u, password: p }'));
    expect(basic.headers.Authorization).toBe(`Basic ${b64('u:p')}`);
    expect(basic.tls.rejectUnauthorized).toBe(false);
    const plain = await optionsOf(kubeconfig('{ server: "http://127.0.0.1:1", insecure-skip-tls-verify: true }', '{}'));
    expect(plain.agent).not.toBeInstanceOf(https.Agent);
    expect(plain.agent).toBeInstanceOf(http.Agent);
  });

  it('files named in a kubeconfig are read relative to it, and a token file is read', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'ca.crt'), 'CA-FILE');
    writeFileSync(join(dir, 'token'), 'from-file');
    const file = join(dir, 'config');
    writeFileSync(file, kubeconfig('{ server: "https://h", certificate-authority: ca.crt }',
      `{ auth-provider: { name: tokenFile, config: { tokenFile: ${join(dir, 'token')} } } }`));
    const { agent, headers } = await loadKubeConfig(file).requestOptions();
    agent.destroy();
    expect(String((agent as https.Agent).options.ca)).toBe('CA-FILE');
    expect(headers.Authorization).toBe('Bearer from-file');
  });

  it('runs an exec credential plugin and sends its token', async () => {
    const credential = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'from-exec' } });
    const exec = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: ['-e', `console.log(${JSON.stringify(credential)})`] });
    const { headers } = await optionsOf(kubeconfig('{ server: "https://h" }', `{ exec: ${exec} }`));
    expect(headers.Authorization).toBe('Bearer from-exec');
  });

  it('a proxy-url gets the proxy agent', async () => {
    const { agent } = await optionsOf(kubeconfig('{ server: "https://h", proxy-url: "http://proxy:3128" }', '{ token: t }'));
    expect(agent).toBeInstanceOf(HttpsProxyAgent);
  });

  it('in-cluster: the service account token and CA, the API at KUBERNETES_SERVICE_HOST/PORT (IPv6 in brackets)', () => {
    vi.stubEnv('KUBERNETES_SERVICE_HOST', 'fd00::1');
    vi.stubEnv('KUBERNETES_SERVICE_PORT', '443');
    const access = loadKubeConfig();
    expect(access.server).toBe('https://[fd00::1]:443');
    expect(access.cluster.caFile).toBe('/var/run/secrets/kubernetes.io/serviceaccount/ca.crt');
    expect(access.user?.authProvider).toEqual({ name: 'tokenFile', config: { tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token' } });
  });

  it('$KUBECONFIG files are merged: a later current-context wins, a name defined twice is an error', () => {
    const dir = tempDir();
    const one = join(dir, 'one');
    const two = join(dir, 'two');
    writeFileSync(one, kubeconfig('{ server: "https://one" }', '{}', 'one'));
    writeFileSync(two, kubeconfig('{ server: "https://two" }', '{}', 'two'));
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '');
    vi.stubEnv('KUBECONFIG', `${one}:${two}`);
    expect(loadKubeConfig().server).toBe('https://two');
    vi.stubEnv('KUBECONFIG', `${one}:${one}`);
    expect(() => loadKubeConfig()).toThrow(/Duplicate cluster: one/);
  });

  it('refuses at start what no request could succeed with, naming the origin', () => {
    expect(() => kubeConfigFromText('clusters: []\n', 'x')).toThrow(ConfigError);
    expect(() => kubeConfigFromText(kubeconfig('{ server: "ftp://h" }', '{}'), 'x')).toThrow(/is not http\(s\)/);
    expect(() => kubeConfigFromText(kubeconfig('{ server: "http://h" }', '{}'), 'x')).toThrow(/needs insecure-skip-tls-verify/);
    expect(() => kubeConfigFromText(kubeconfig('{ server: "http://10.0.0.1:8001" }', '{}'), 'x')).toThrow(/needs insecure-skip-tls-verify/);
    expect(() => kubeConfigFromText(kubeconfig('{ server: "http://127.0.0.2.example:8001" }', '{}'), 'x')).toThrow(/needs insecure-skip-tls-verify/);
    expect(() => kubeConfigFromText('clusters: [{ name: a }]\n', 'x')).toThrow(/clusters\[0\]\.cluster is missing/);
  });
});
