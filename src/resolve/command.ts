/**
 * `clusterdns resolve`, assembled: the resolv.conf as glibc would read it here (or as the kubelet would write
 * it for a pod in --namespace), the servers to ask, the lookup, and the report in text or JSON.
 */
import { hostname } from 'node:os';
import { podResolvConf, readResolvConf, type ResolvConf } from '../config/resolv-conf.js';
import type { ResolveConfig } from '../config/resolve-args.js';
import { formatReport, resolveName } from './index.js';

/** Runs the lookup and returns what to print and the exit status: 0 resolved, 1 not. */
export async function runResolve(config: ResolveConfig): Promise<{ output: string; exitCode: number }> {
  // As is, the file is read with what glibc adds from this process (host name, RES_OPTIONS, LOCALDOMAIN);
  // for a pod, only its search line matters, and the pod's own environment is not ours.
  const file = await readResolvConf(config.resolvConf, config.namespace === undefined
    ? { hostname: hostname(), env: { RES_OPTIONS: process.env.RES_OPTIONS, LOCALDOMAIN: process.env.LOCALDOMAIN } }
    : {});
  // Without --server a pod's view asks the file's nameservers too: inside a pod that is the cluster DNS.
  const servers = config.server !== undefined ? [config.server] : file.nameservers;
  const conf: ResolvConf = config.namespace === undefined ? file : podResolvConf(file, { namespace: config.namespace, zone: config.zone, nameservers: servers });
  const report = await resolveName({ name: config.name, conf, servers, ...(config.type !== undefined && { type: config.type }) });
  return { output: config.json ? JSON.stringify(report, null, 2) : formatReport(report), exitCode: report.ok ? 0 : 1 };
}
