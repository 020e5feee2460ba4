/**
 * Reaching a pod through the API server's port-forward (the `pods/portforward` subresource that `kubectl
 * port-forward` uses), for `clusterdns dev` on a machine that cannot route to pod IPs. One WebSocket per proxied
 * connection, through @kubernetes/client-node's PortForward client, turned into one stream for the proxy.
 *
 * Limits of the protocol (the WebSocket channel protocol, v4): a client's half-close cannot be passed on, so it
 * ends the whole connection; and the API server opens the WebSocket before the kubelet connects to the pod's
 * port, so a pod that refuses shows up as an error on the connection, not as a failed dial the proxy could retry
 * elsewhere. A pod that is gone (or not found) fails the dial, and the proxy moves on to another one.
 */
import type { Agent } from 'node:http';
import { Duplex, PassThrough } from 'node:stream';
import type { KubeConfig } from '@kubernetes/client-node';
// By path, as kube-config.ts imports the client's parts: the package root loads its generated API (+55 MB RSS).
import { PortForward } from '@kubernetes/client-node/dist/portforward.js';
import type { KubeAccess } from './kube-config.js';

/** What the proxy's Dialer needs of a target. */
export interface PodPort {
  readonly ip: string;
  readonly port: number;
}

export type PortForwardDialer = (target: PodPort, timeoutMs: number, namespace: string) => Promise<Duplex | 'timeout' | 'error'>;

/**
 * `podAt(ip, namespace)` names the pod of that namespace with an endpoint's address (from the watched Pods; an
 * address can be shared by host-network pods), undefined when there is none.
 */
export function portForwardDialer(access: KubeAccess, podAt: (ip: string, namespace: string) => string | undefined): PortForwardDialer {
  const forwarder = new PortForward(webSocketConfig(access));
  return async (target, timeoutMs, namespace) => {
    const pod = podAt(target.ip, namespace);
    if (pod === undefined) return 'error';
    const where = `${namespace}/${pod}:${target.port}`;
    const fromPod = new PassThrough();
    const toPod = new PassThrough();
    const errors = new PassThrough();
    let timer: NodeJS.Timeout | undefined;
    const opening = forwarder.portForward(namespace, pod, [target.port], fromPod, errors, toPod);
    const outcome = await Promise.race([
      opening.then((socket) => socket, () => 'error' as const),
      new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      // It may still open: close it then, nobody will use it.
      void opening.then((socket) => typeof socket !== 'function' && socket.close(), () => undefined);
      return 'timeout';
    }
    if (outcome === 'error' || typeof outcome === 'function') return 'error';
    const socket = outcome;
    const stream = Duplex.from({ readable: fromPod, writable: toPod });
    // client-node never ends the output stream itself: the WebSocket closing is the pod's end of stream.
    socket.on('close', () => fromPod.end());
    socket.on('error', (error: Error) => stream.destroy(error));
    errors.on('data', (chunk: Buffer) => stream.destroy(new Error(`port-forward to ${where}: ${chunk.toString().trim()}`)));
    stream.once('close', () => socket.close());
    return stream;
  };
}

/**
 * The two methods of KubeConfig that the client's WebSocket handler calls, from our KubeAccess: the server, and
 * the agent (TLS, proxy) and credential headers of each connection, which `ws` takes as they are. Each connection
 * gets its own agent (exec credentials and token files are re-read), destroyed once the WebSocket is up: the
 * upgraded socket is no longer the agent's.
 */
function webSocketConfig(access: KubeAccess): KubeConfig {
  const config = {
    getCurrentCluster: () => access.cluster,
    async applyToHTTPSOptions(options: { agent?: Agent; headers?: Record<string, string> }) {
      const { agent, headers } = await access.requestOptions();
      options.agent = agent;
      options.headers = headers;
    },
  };
  return config as unknown as KubeConfig;
}
