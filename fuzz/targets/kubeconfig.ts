/**
 * Target `kubeconfig`: kubeconfig text (YAML or JSON) through the kubeconfig reader (kubeConfigFromText,
 * src/source/kube-config.ts, with the client's own schema functions). Invariant: it either fails with a
 * ConfigError that says where the kubeconfig came from, or gives the current context's cluster with a server
 * URL that parses and is http(s), plain http only to loopback or with insecure-skip-tls-verify. Credentials are
 * never used here: a fuzzed caFile or exec plugin must not be read or run.
 */
import { ConfigError } from '../../src/errors.js';
import { isPlainLoopback, kubeConfigFromText } from '../../src/source/kube-config.js';
import { assert, type FuzzTarget } from '../harness.js';

export const target: FuzzTarget = {
  name: 'kubeconfig',
  check(data) {
    let access;
    try {
      access = kubeConfigFromText(data.toString('utf8'), 'fuzz');
    } catch (error) {
      assert(error instanceof ConfigError, `fails only with a ConfigError, not ${(error as Error)?.name}: ${(error as Error)?.message}`);
      assert(/kubeconfig from fuzz/.test(error.message), `the message says where: ${error.message}`);
      return;
    }
    const url = new URL(access.server);
    assert(url.protocol === 'https:' || (url.protocol === 'http:' && (access.cluster.skipTLSVerify || isPlainLoopback(access.cluster))), `server ${access.server}`);
    assert(typeof access.cluster.name === 'string', 'the cluster has a name');
  },
  dictionary: ['\n', ': ', '- ', '  ', '{', '}', '"', '&a', '*a', '~', 'apiVersion: v1', 'kind: Config', 'clusters:', 'cluster:', 'server: ',
    'https://127.0.0.1:6443', 'http://127.0.0.1:8001', 'http://[::1]:8001', 'http://example.com', 'https://[fd00::1]:6443', 'unix:///x', 'name: kind',
    'insecure-skip-tls-verify: true', 'certificate-authority-data: ', 'tls-server-name: ', 'proxy-url: socks5://127.0.0.1:1080', 'users:',
    'user:', 'token: abc', 'exec:', 'command: ', 'auth-provider:', 'contexts:', 'context:', 'current-context: kind', 'namespace: '],
};
