/**
 * doctor/ — `clusterdns doctor`: checks a Service end to end, as the troubleshooting guides tell a person to,
 * and reports one line per check with its evidence and a fix per problem. Owns the order of the checks, the
 * run over one Service or all of them (`--all`), and the report as text or JSON. Reads whole objects on
 * demand (objects.ts), judges them (checks.ts), asks DNS (dns.ts); it never touches the server's store, which
 * keeps no labels or container ports and must not start to.
 */
import type { DoctorConfig } from '../config/doctor-args.js';
import { formatHostPort, type HostPort } from '../ip.js';
import { KubeApiError } from '../source/kube-api.js';
import { loadKubeConfig } from '../source/kube-config.js';
import { checkService, editDistance, serviceMissing, skip, type Check, type Elsewhere } from './checks.js';
import { dnsCheck, externalNameCheck, missingDnsCheck } from './dns.js';
import { apiReader, manifestReader, namespaceOf, readNamespaces, serviceView, type NamespaceObjects, type ObjectReader } from './objects.js';

export interface ServiceReport {
  readonly namespace: string;
  readonly service: string;
  /** Every check passed or had nothing to check. */
  readonly ok: boolean;
  readonly checks: readonly Check[];
}

export interface DoctorReport {
  readonly ok: boolean;
  /** How many Services were checked. */
  readonly checked: number;
  /** The Service checked, or with `--all` those with a problem. */
  readonly services: readonly ServiceReport[];
  /** What was not looked at, and why (DNS without --server). */
  readonly notes: readonly string[];
}

const NEAR_MISS_DISTANCE = 2;
const MARKS = { pass: '✔', fail: '✘', warn: '⚠', skip: '-' } as const;

export async function runDoctor(config: DoctorConfig): Promise<{ output: string; exitCode: number }> {
  const inCluster = config.manifests === undefined && config.kubeconfig === undefined && process.env.KUBERNETES_SERVICE_HOST !== undefined;
  const access = config.manifests === undefined ? loadKubeConfig(config.kubeconfig) : undefined;
  const reader = access === undefined ? await manifestReader(config.manifests!) : apiReader(access);
  const report = config.all
    ? await doctorAll(reader, config, inCluster)
    : await doctorOne(reader, config, config.service!, config.namespace ?? access?.namespace ?? 'default', inCluster);
  return { output: config.json ? JSON.stringify(report, null, 2) : formatReport(report, config.all), exitCode: report.ok ? 0 : 1 };
}

async function doctorOne(reader: ObjectReader, config: DoctorConfig, name: string, namespace: string, inCluster: boolean): Promise<DoctorReport> {
  const objects = (await readNamespaces(reader, namespace)).get(namespace) ?? { services: [], pods: [], slices: new Map() };
  const { server, notes } = await dnsServer(reader, config, inCluster);
  const service = objects.services.find((candidate) => candidate.record.name === name);
  let checks: Check[];
  if (service === undefined) {
    checks = [serviceMissing(name, namespace, await elsewhere(reader, name, namespace, objects), config.zone)];
    checks.push(server === undefined ? skip('dns', 'DNS not asked (no --server)') : await missingDnsCheck(server, name, namespace, config.zone));
  } else {
    checks = await checksOf(service, objects, server, config.zone);
  }
  const report = serviceReport(namespace, name, checks);
  return { ok: report.ok, checked: 1, services: [report], notes };
}

async function doctorAll(reader: ObjectReader, config: DoctorConfig, inCluster: boolean): Promise<DoctorReport> {
  const all = [...(await readNamespaces(reader, config.namespace)).values()];
  const { server, notes } = await dnsServer(reader, config, inCluster);
  const reports: ServiceReport[] = [];
  let checked = 0;
  for (const objects of all) {
    for (const service of objects.services) {
      checked++;
      const report = serviceReport(service.record.namespace, service.record.name, await checksOf(service, objects, server, config.zone));
      if (!report.ok) reports.push(report);
    }
  }
  // Sorted as kubectl lists them, so the files' order and the API's give one report.
  reports.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.service.localeCompare(b.service));
  return { ok: reports.length === 0, checked, services: reports, notes };
}

async function checksOf(service: NamespaceObjects['services'][number], objects: NamespaceObjects, server: HostPort | undefined, zone: string): Promise<Check[]> {
  const checks = checkService(service, objects);
  if (server === undefined) return [...checks, skip('dns', 'DNS not asked (no --server)')];
  checks.push(await dnsCheck(server, service, objects.slices.get(service.record.name) ?? [], zone));
  if (service.record.externalName !== undefined) checks.push(await externalNameCheck(server, service.record.externalName));
  return checks;
}

function serviceReport(namespace: string, service: string, checks: Check[]): ServiceReport {
  return { namespace, service, ok: checks.every((check) => check.mark === 'pass' || check.mark === 'skip'), checks };
}

/**
 * The server to ask: --server; else, inside a pod (in-cluster config), the cluster DNS Service (kube-system/kube-dns),
 * which is reachable from there; else none, with a note, since a cluster IP is rarely reachable from a laptop.
 */
async function dnsServer(reader: ObjectReader, config: DoctorConfig, inCluster: boolean): Promise<{ server: HostPort | undefined; notes: string[] }> {
  if (config.server !== undefined) return { server: config.server, notes: [] };
  // Forbidden to read kube-system (a namespaced Role) is no reason to stop: only the hint is lost.
  const system = await reader.list('services', 'kube-system').catch((error: unknown) => (error instanceof KubeApiError ? [] : Promise.reject(error)));
  const dns = system.find((object) => (object.metadata as { name?: unknown } | undefined)?.name === 'kube-dns');
  const address = dns === undefined ? undefined : serviceView(dns, reader.origin).record.clusterIPs[0];
  if (inCluster && address !== undefined) return { server: { host: address, port: 53 }, notes: [] };
  const hint = address !== undefined ? ` (the cluster DNS is ${formatHostPort({ host: address, port: 53 })}, reachable from a pod)` : '';
  return { server: undefined, notes: [`DNS was not asked: give --server HOST:PORT${hint}`] };
}

/** For a Service not in `namespace`: the namespaces that have one of that name, and the near-miss names here. */
async function elsewhere(reader: ObjectReader, name: string, namespace: string, objects: NamespaceObjects): Promise<Elsewhere> {
  const nearNames = objects.services.map((service) => service.record.name).filter((other) => editDistance(name, other, NEAR_MISS_DISTANCE) <= NEAR_MISS_DISTANCE);
  try {
    const everywhere = await reader.list('services', undefined);
    const namespaces = [...new Set(everywhere.filter((object) => (object.metadata as { name?: unknown } | undefined)?.name === name).map(namespaceOf))]
      .filter((other) => other !== namespace).sort();
    return { namespaces, nearNames };
  } catch (error) {
    // A namespaced Role may list its own namespace only: say so, and go on with what could be read.
    if (error instanceof KubeApiError) return { namespaces: [], nearNames, unreadable: error.message };
    throw error;
  }
}

export function formatReport(report: DoctorReport, all: boolean): string {
  const out: string[] = [];
  for (const service of report.services) {
    if (out.length > 0) out.push('');
    out.push(`${service.namespace}/${service.service}`);
    for (const check of service.checks) {
      out.push(`  ${MARKS[check.mark]} ${check.mark === 'skip' ? `${check.check}: ` : ''}${check.summary}`);
      for (const line of check.evidence) out.push(`      ${line}`);
      for (const fix of check.fixes) out.push(`      fix: ${fix}`);
    }
  }
  if (out.length > 0) out.push('');
  for (const note of report.notes) out.push(`note: ${note}`);
  const problems = report.services.flatMap((service) => service.checks).filter((check) => check.mark === 'fail' || check.mark === 'warn').length;
  if (all) {
    out.push(`checked ${report.checked} Service${report.checked === 1 ? '' : 's'}: ${report.services.length === 0 ? 'no problem found' : `${report.services.length} with problems`}`);
  } else {
    out.push(problems === 0 ? 'no problem found' : `${problems} problem${problems === 1 ? '' : 's'} found`);
  }
  return out.join('\n');
}
