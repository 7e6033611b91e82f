import type { PortMapping } from '../core/containers.ts';
import { berthError } from '../core/errors.ts';
import type { MetadataDb } from './db.ts';

/**
 * Network records: networks (host-wide, like docker's: a bridge and a subnet
 * belong to the host, not to a namespace), container endpoints (one per
 * container that has network state: its netns and its hosts/resolv.conf
 * files) and attachments (an endpoint's interface on one network, with its
 * address, aliases and published ports).
 *
 * Raw storage only: the network service decides what the records mean.
 */
/** What a host's bridge had before a network took it, to give back at the network's removal. */
export interface HostBridgeState {
  /** It carried the network's gateway address already. */
  hadGateway: boolean;
  /** Its net.ipv4.conf.<bridge>.route_localnet ("0" or "1"); absent in records of older versions. */
  routeLocalnet?: string;
}

export interface NetworkRecord {
  id: string;
  name: string;
  driver: string;
  bridge: string;
  subnet: string;
  gateway: string;
  internal: boolean;
  labels: Record<string, string>;
  options: Record<string, string>;
  createdAt: string;
  /**
   * Set when the bridge existed before the network (a host bridge named
   * with com.docker.network.bridge.name): it is never deleted, its
   * gateway address stays too when it carried it already (`hadGateway`),
   * and its route_localnet gets back the value it had.
   * Unset when berth made the bridge, which goes with the network.
   */
  hostBridge?: HostBridgeState;
}

export interface EndpointRecord {
  containerId: string;
  namespace: string;
  /** Container name, without docker's leading slash. */
  name: string;
  hostname: string;
  /** none, host, bridge, a network name, or container:<id>. */
  mode: string;
  netnsPath: string;
  /** True when the service created the netns and must remove it. */
  ownsNetns: boolean;
  /** Directory with hosts, resolv.conf, hostname (empty when shared from another container). */
  dir: string;
  dns: { servers: string[]; search: string[]; options: string[]; extraHosts: string[]; domainname: string };
  createdAt: string;
}

export interface AttachmentRecord {
  containerId: string;
  networkId: string;
  ifName: string;
  /** Address without prefix. */
  ip: string;
  prefixLen: number;
  gateway: string;
  mac: string;
  aliases: string[];
  ports: PortMapping[];
}

const migrations = [
  `CREATE TABLE networks (
     id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, driver TEXT NOT NULL, bridge TEXT NOT NULL UNIQUE,
     subnet TEXT NOT NULL, gateway TEXT NOT NULL, internal INTEGER NOT NULL DEFAULT 0,
     labels TEXT NOT NULL DEFAULT '{}', options TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL);
   CREATE TABLE network_endpoints (
     container_id TEXT PRIMARY KEY, namespace TEXT NOT NULL, name TEXT NOT NULL, hostname TEXT NOT NULL,
     mode TEXT NOT NULL, netns_path TEXT NOT NULL, owns_netns INTEGER NOT NULL, dir TEXT NOT NULL,
     dns TEXT NOT NULL, created_at TEXT NOT NULL);
   CREATE TABLE network_attachments (
     container_id TEXT NOT NULL REFERENCES network_endpoints(container_id) ON DELETE CASCADE,
     network_id TEXT NOT NULL REFERENCES networks(id),
     if_name TEXT NOT NULL, ip TEXT NOT NULL, prefix_len INTEGER NOT NULL, gateway TEXT NOT NULL, mac TEXT NOT NULL,
     aliases TEXT NOT NULL, ports TEXT NOT NULL,
     PRIMARY KEY (container_id, network_id));
   CREATE INDEX network_attachments_by_network ON network_attachments(network_id);`,
  `ALTER TABLE networks ADD COLUMN host_bridge TEXT;`,
];

type Row = Record<string, string | number | null>;

export class NetworkStore {
  readonly db: MetadataDb;

  constructor(db: MetadataDb) {
    this.db = db;
    db.migrate('networks', migrations);
  }

  createNetwork(n: NetworkRecord): void {
    try {
      this.db.sql
        .prepare(`INSERT INTO networks (id, name, driver, bridge, subnet, gateway, internal, labels, options, created_at, host_bridge) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(n.id, n.name, n.driver, n.bridge, n.subnet, n.gateway, n.internal ? 1 : 0, JSON.stringify(n.labels), JSON.stringify(n.options), n.createdAt, n.hostBridge ? JSON.stringify(n.hostBridge) : null);
    } catch (err) {
      if (/UNIQUE/.test((err as Error).message)) throw berthError('AlreadyExists', `network with name ${n.name} already exists`, err);
      throw err;
    }
  }

  /** By full id, exact name, or unique id prefix (docker's lookup order). */
  findNetwork(ref: string): NetworkRecord | undefined {
    const q = this.db.sql;
    const row = (q.prepare(`SELECT * FROM networks WHERE id = ?`).get(ref) ?? q.prepare(`SELECT * FROM networks WHERE name = ?`).get(ref)) as Row | undefined;
    if (row) return networkOf(row);
    if (!/^[a-f0-9]+$/.test(ref)) return undefined;
    const rows = q.prepare(`SELECT * FROM networks WHERE id LIKE ? || '%'`).all(ref) as Row[];
    if (rows.length > 1) throw berthError('InvalidArgument', `network ${ref} is ambiguous (${rows.length} matches found based on ID prefix)`);
    return rows.length ? networkOf(rows[0]) : undefined;
  }

  listNetworks(): NetworkRecord[] {
    return (this.db.sql.prepare(`SELECT * FROM networks ORDER BY created_at, name`).all() as Row[]).map(networkOf);
  }

  deleteNetwork(id: string): void {
    this.db.sql.prepare(`DELETE FROM networks WHERE id = ?`).run(id);
  }

  putEndpoint(e: EndpointRecord): void {
    this.db.sql
      .prepare(
        `INSERT INTO network_endpoints (container_id, namespace, name, hostname, mode, netns_path, owns_netns, dir, dns, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(container_id) DO UPDATE SET namespace = excluded.namespace, name = excluded.name, hostname = excluded.hostname, mode = excluded.mode,
           netns_path = excluded.netns_path, owns_netns = excluded.owns_netns, dir = excluded.dir, dns = excluded.dns`,
      )
      .run(e.containerId, e.namespace, e.name, e.hostname, e.mode, e.netnsPath, e.ownsNetns ? 1 : 0, e.dir, JSON.stringify(e.dns), e.createdAt);
  }

  getEndpoint(containerId: string): EndpointRecord | undefined {
    const row = this.db.sql.prepare(`SELECT * FROM network_endpoints WHERE container_id = ?`).get(containerId) as Row | undefined;
    return row ? endpointOf(row) : undefined;
  }

  /** An endpoint by container id, id prefix or name, within a namespace. */
  findEndpoint(namespace: string, ref: string): EndpointRecord | undefined {
    const q = this.db.sql;
    const row = (q.prepare(`SELECT * FROM network_endpoints WHERE namespace = ? AND container_id = ?`).get(namespace, ref) ??
      q.prepare(`SELECT * FROM network_endpoints WHERE namespace = ? AND name = ?`).get(namespace, ref.replace(/^\//, ''))) as Row | undefined;
    if (row) return endpointOf(row);
    if (!/^[a-f0-9]+$/.test(ref)) return undefined;
    const rows = q.prepare(`SELECT * FROM network_endpoints WHERE namespace = ? AND container_id LIKE ? || '%'`).all(namespace, ref) as Row[];
    return rows.length === 1 ? endpointOf(rows[0]) : undefined;
  }

  listEndpoints(): EndpointRecord[] {
    return (this.db.sql.prepare(`SELECT * FROM network_endpoints ORDER BY created_at`).all() as Row[]).map(endpointOf);
  }

  deleteEndpoint(containerId: string): void {
    this.db.sql.prepare(`DELETE FROM network_endpoints WHERE container_id = ?`).run(containerId);
  }

  putAttachment(a: AttachmentRecord): void {
    this.db.sql
      .prepare(
        `INSERT INTO network_attachments (container_id, network_id, if_name, ip, prefix_len, gateway, mac, aliases, ports) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(container_id, network_id) DO UPDATE SET if_name = excluded.if_name, ip = excluded.ip, prefix_len = excluded.prefix_len,
           gateway = excluded.gateway, mac = excluded.mac, aliases = excluded.aliases, ports = excluded.ports`,
      )
      .run(a.containerId, a.networkId, a.ifName, a.ip, a.prefixLen, a.gateway, a.mac, JSON.stringify(a.aliases), JSON.stringify(a.ports));
  }

  deleteAttachment(containerId: string, networkId: string): void {
    this.db.sql.prepare(`DELETE FROM network_attachments WHERE container_id = ? AND network_id = ?`).run(containerId, networkId);
  }

  listAttachments(filter: { containerId?: string; networkId?: string } = {}): AttachmentRecord[] {
    let rows: Row[];
    if (filter.containerId) rows = this.db.sql.prepare(`SELECT * FROM network_attachments WHERE container_id = ? ORDER BY if_name`).all(filter.containerId) as Row[];
    else if (filter.networkId) rows = this.db.sql.prepare(`SELECT * FROM network_attachments WHERE network_id = ? ORDER BY ip`).all(filter.networkId) as Row[];
    else rows = this.db.sql.prepare(`SELECT * FROM network_attachments`).all() as Row[];
    return rows.map(attachmentOf);
  }
}

function networkOf(r: Row): NetworkRecord {
  return {
    id: r.id as string,
    name: r.name as string,
    driver: r.driver as string,
    bridge: r.bridge as string,
    subnet: r.subnet as string,
    gateway: r.gateway as string,
    internal: r.internal === 1,
    labels: JSON.parse(r.labels as string) as Record<string, string>,
    options: JSON.parse(r.options as string) as Record<string, string>,
    createdAt: r.created_at as string,
    ...(r.host_bridge ? { hostBridge: JSON.parse(r.host_bridge as string) as HostBridgeState } : {}),
  };
}

function endpointOf(r: Row): EndpointRecord {
  return {
    containerId: r.container_id as string,
    namespace: r.namespace as string,
    name: r.name as string,
    hostname: r.hostname as string,
    mode: r.mode as string,
    netnsPath: r.netns_path as string,
    ownsNetns: r.owns_netns === 1,
    dir: r.dir as string,
    dns: JSON.parse(r.dns as string) as EndpointRecord['dns'],
    createdAt: r.created_at as string,
  };
}

function attachmentOf(r: Row): AttachmentRecord {
  return {
    containerId: r.container_id as string,
    networkId: r.network_id as string,
    ifName: r.if_name as string,
    ip: r.ip as string,
    prefixLen: r.prefix_len as number,
    gateway: r.gateway as string,
    mac: r.mac as string,
    aliases: JSON.parse(r.aliases as string) as string[],
    ports: JSON.parse(r.ports as string) as PortMapping[],
  };
}
