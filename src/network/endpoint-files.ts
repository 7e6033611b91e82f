import { readFileSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { EndpointRecord, NetworkStore } from '../metadata/networks.ts';
import type { NetworkConfig } from './config.ts';
import { hostModeHosts, hostsContent, resolvConfContent } from './files.ts';

/**
 * Writes a container's hosts, resolv.conf and hostname files from the
 * records, and rewrites its peers' hosts files when it comes or goes.
 * Files are written in place (O_TRUNC keeps the inode), so a bind mount
 * in a running container sees every change. The default `bridge` network
 * gives no name resolution, as in docker.
 */
export const DEFAULT_NETWORK = 'bridge';

export function filePaths(dir: string): { hosts: string; resolvConf: string; hostname: string } {
  return { hosts: path.join(dir, 'hosts'), resolvConf: path.join(dir, 'resolv.conf'), hostname: path.join(dir, 'hostname') };
}

export class EndpointFiles {
  readonly store: NetworkStore;
  readonly config: NetworkConfig;

  constructor(store: NetworkStore, config: NetworkConfig) {
    this.store = store;
    this.config = config;
  }

  async write(ep: EndpointRecord): Promise<void> {
    if (ep.mode.startsWith('container:')) return;
    const p = filePaths(ep.dir);
    // Small files on every container start: read and written in place, where the thread pool
    // would cost a round trip per file (and far more on a loaded machine).
    const readHost = (f: string) => {
      try {
        return readFileSync(f, 'utf8');
      } catch {
        return undefined;
      }
    };
    const hostResolv = readHost(this.config.resolvConf);
    const stubResolv = readHost(this.config.stubResolvConf);
    const resolv = resolvConfContent({
      host: hostResolv ?? '',
      stubUpstream: stubResolv,
      dns: ep.dns.servers,
      dnsSearch: ep.dns.search,
      dnsOptions: ep.dns.options,
      fallback: this.config.fallbackDns,
      hostNetwork: ep.mode === 'host',
    });
    const hosts = ep.mode === 'host' ? hostModeHosts(readHost('/etc/hosts') ?? '', ep.dns.extraHosts) : this.hostsFor(ep);
    writeFileSync(p.hosts, hosts, { mode: 0o644 });
    writeFileSync(p.resolvConf, resolv, { mode: 0o644 });
    writeFileSync(p.hostname, `${ep.hostname}\n`, { mode: 0o644 });
  }

  /** Only the hosts file: what changes when the container's own addresses or its peers do. */
  async writeHosts(ep: EndpointRecord): Promise<void> {
    if (ep.mode.startsWith('container:') || ep.mode === 'host') return;
    writeFileSync(filePaths(ep.dir).hosts, this.hostsFor(ep), { mode: 0o644 });
  }

  hostsFor(ep: EndpointRecord): string {
    const atts = this.store.listAttachments({ containerId: ep.containerId });
    const peers: Array<{ ip: string; names: string[] }> = [];
    for (const att of atts) {
      const net = this.store.findNetwork(att.networkId);
      if (!net || net.name === DEFAULT_NETWORK) continue;
      for (const other of this.store.listAttachments({ networkId: net.id })) {
        if (other.containerId === ep.containerId) continue;
        const oep = this.store.getEndpoint(other.containerId);
        if (!oep) continue;
        peers.push({ ip: other.ip, names: [oep.name, ...other.aliases, oep.containerId.slice(0, 12)] });
      }
    }
    return hostsContent({
      hostname: ep.hostname,
      domainname: ep.dns.domainname,
      ips: atts.map((x) => x.ip),
      ownNames: [ep.name, ...atts.flatMap((x) => x.aliases)],
      peers,
      extraHosts: ep.dns.extraHosts,
    });
  }

  /** Rewrite the hosts files of every container on `networkIds` except `changed` and those `skip` names. */
  async refreshPeers(changed: string, networkIds: string[], skip: (containerId: string) => boolean): Promise<void> {
    const seen = new Set<string>([changed]);
    for (const id of networkIds) {
      for (const att of this.store.listAttachments({ networkId: id })) {
        if (seen.has(att.containerId) || skip(att.containerId)) continue;
        seen.add(att.containerId);
        const ep = this.store.getEndpoint(att.containerId);
        if (ep) await writeFile(filePaths(ep.dir).hosts, this.hostsFor(ep));
      }
    }
  }
}
