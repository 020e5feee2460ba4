/**
 * The one command that points this machine's resolver at clusterdns for the cluster zone only (what `clusterdns
 * dev` prints): systemd-resolved through a drop-in with a routing-only domain (it ignores DNS servers set on the
 * loopback link, but takes a loopback address with a port as a global server), macOS through /etc/resolver.
 * Other names keep going where they went before.
 */
import { formatHostPort, type HostPort } from './ip.js';

export function resolverSetupCommand(address: HostPort, zone: string, platform: NodeJS.Platform = process.platform): string {
  if (platform === 'darwin') {
    return `sudo sh -c 'mkdir -p /etc/resolver && printf "nameserver ${address.host}\\nport ${address.port}\\n" > /etc/resolver/${zone}'`;
  }
  return `sudo sh -c 'mkdir -p /etc/systemd/resolved.conf.d && printf "[Resolve]\\nDNS=${formatHostPort(address)}\\nDomains=~${zone}\\n" > /etc/systemd/resolved.conf.d/clusterdns.conf && systemctl restart systemd-resolved'`;
}
