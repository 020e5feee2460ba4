/**
 * Target `manifests`: a manifest file's text through the manifest source's parser (parseManifest,
 * src/source/manifests.ts: YAML or JSON, Lists, the slim-record conversion of src/source/objects.ts) and into a
 * fresh store, as `--manifests` loads it. Invariant: it either fails with a ManifestError naming the file (and
 * for bad YAML a line:column inside the text), or gives records the store takes, reading them back by name.
 */
import { ManifestError } from '../../src/errors.js';
import { applySnapshot, parseManifest, type Snapshot } from '../../src/source/manifests.js';
import { RecordStore } from '../../src/store/index.js';
import { assert, type FuzzTarget } from '../harness.js';

function load(text: string, file: string): Snapshot | ManifestError {
  const snapshot: Snapshot = { namespace: [], service: [], endpointslice: [], pod: [] };
  try {
    parseManifest(text, file, snapshot);
    return snapshot;
  } catch (error) {
    assert(error instanceof ManifestError, `fails only with a ManifestError, not ${(error as Error)?.name}: ${(error as Error)?.message}`);
    assert(error.message.startsWith(`${file}:`), `the message names the file: ${error.message}`);
    const line = /^[^:]+:(\d+):\d+: invalid YAML/.exec(error.message)?.[1];
    // YAML breaks lines at CR as well as LF (YAML 1.2 §5.4).
    // YAML breaks lines at CR as well as LF (YAML 1.2 §5.4); js-yaml ends a text without a final newline with one.
    if (line !== undefined) assert(Number(line) <= text.split(/\r\n|\r|\n/).length + (/[\r\n]$/.test(text) ? 0 : 1), `line ${line} is inside the text`);
    return error;
  }
}

export const target: FuzzTarget = {
  name: 'manifests',
  check(data) {
    const text = data.toString('utf8');
    for (const file of text.trimStart().startsWith('{') ? ['cluster.yaml', 'cluster.json'] : ['cluster.yaml']) {
      const snapshot = load(text, file);
      if (snapshot instanceof ManifestError) continue;
      const store = new RecordStore();
      applySnapshot(store, snapshot);
      assert(store.synced, 'the store is synced after the load');
      for (const service of snapshot.service) {
        assert(store.getService(service.namespace, service.name) !== undefined, `service ${service.namespace}/${service.name} is in the store`);
        assert(store.namespaceExists(service.namespace), `namespace ${service.namespace} exists`);
      }
    }
  },
  dictionary: ['\n---\n', '\n', ': ', '- ', '  ', '{', '}', '[', ']', '"', "'", '&a', '*a', '<<: *a', '!!binary ', '!!str ', '~', 'null',
    'kind: Service', 'kind: EndpointSlice', 'kind: Pod', 'kind: Namespace', 'kind: List', 'apiVersion: v1', 'metadata:', 'name: web',
    'namespace: default', 'spec:', 'clusterIP: None', 'clusterIPs:', 'type: ExternalName', 'externalName: ', 'ports:', 'port: 80', 'protocol: TCP',
    'addressType: IPv6', 'addressType: FQDN', 'endpoints:', 'addresses:', 'ready: false', 'hostname: ', 'kubernetes.io/service-name: web',
    'status:', 'podIP: 10.244.1.5', 'podIPs:', 'hostNetwork: true', '10.96.0.10', 'fd00::10', '65536', '-1', 'publishNotReadyAddresses: true'],
};
