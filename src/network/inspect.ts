import { createHash } from 'node:crypto';
import type { Ctx } from '../core/context.ts';
import type { AttachmentRecord, EndpointRecord, NetworkRecord, NetworkStore } from '../metadata/networks.ts';
import { run } from './exec.ts';
import type { Subnet } from './ipnet.ts';
import { parseIPv4 } from './ipnet.ts';
import type { AttachmentInfo, NetworkFilters, NetworkInfo, SetupResult } from './types.ts';
import { DEFAULT_NETWORK, filePaths } from './endpoint-files.ts';

/** Docker's view of networks: inspect JSON, the host/none pseudo networks, ls filters, a container's network. */
export const PREDEFINED = new Set(['bridge', 'host', 'none']);

/**
 * `host` and `none` as docker lists them. They are modes, not records;
 * their ids derive from the default network's so they are stable per root.
 */
export function pseudoNetworks(store: NetworkStore): NetworkRecord[] {
  const base = store.findNetwork(DEFAULT_NETWORK);
  if (!base) return [];
  return (['host', 'none'] as const).map((name) => ({
    id: createHash('sha256').update(`${base.id}/${name}`).digest('hex'),
    name,
    driver: name === 'host' ? 'host' : 'null',
    bridge: '',
    subnet: '',
    gateway: '',
    internal: false,
    labels: {},
    options: {},
    createdAt: base.createdAt,
  }));
}

export function networkInfo(store: NetworkStore, n: NetworkRecord): NetworkInfo {
  const containers: NetworkInfo['Containers'] = {};
  if (!n.bridge) {
    for (const ep of store.listEndpoints().filter((e) => e.mode === n.name)) {
      containers[ep.containerId] = { Name: ep.name, EndpointID: `${ep.containerId.slice(0, 32)}${n.id.slice(0, 32)}`, MacAddress: '', IPv4Address: '', IPv6Address: '' };
    }
  }
  for (const att of store.listAttachments({ networkId: n.id })) {
    const ep = store.getEndpoint(att.containerId);
    containers[att.containerId] = {
      Name: ep?.name ?? '',
      EndpointID: `${att.containerId.slice(0, 32)}${n.id.slice(0, 32)}`,
      MacAddress: att.mac,
      IPv4Address: `${att.ip}/${att.prefixLen}`,
      IPv6Address: '',
    };
  }
  return {
    Name: n.name,
    Id: n.id,
    Created: n.createdAt,
    Scope: 'local',
    Driver: n.driver,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: {}, Config: n.subnet ? [{ Subnet: n.subnet, Gateway: n.gateway }] : [] },
    Internal: n.internal,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers,
    Options: n.options,
    Labels: n.labels,
  };
}

export function matchesFilters(n: NetworkRecord, f: NetworkFilters): boolean {
  if (f.name?.length && !f.name.some((x) => n.name.includes(x))) return false;
  if (f.id?.length && !f.id.some((x) => n.id.startsWith(x))) return false;
  if (f.driver?.length && !f.driver.includes(n.driver)) return false;
  if (f.type?.length && !f.type.includes(PREDEFINED.has(n.name) ? 'builtin' : 'custom')) return false;
  for (const l of f.label ?? []) {
    const eq = l.indexOf('=');
    if (eq < 0 ? !(l in n.labels) : n.labels[l.slice(0, eq)] !== l.slice(eq + 1)) return false;
  }
  return true;
}

/** IPv4 routes of the host, so an automatically picked subnet avoids networks already in use. */
export async function hostRoutes(ctx: Ctx): Promise<Subnet[]> {
  const r = await run(ctx, 'ip', ['-4', '-j', 'route', 'show', 'table', 'all'], { allowFail: true });
  if (r.code !== 0) return [];
  const out: Subnet[] = [];
  try {
    for (const route of JSON.parse(r.stdout) as Array<{ dst?: string }>) {
      if (!route.dst || route.dst === 'default') continue;
      const [addr, len = '32'] = route.dst.split('/');
      const ip = parseIPv4(addr);
      const prefix = Number(len);
      if (ip === undefined || prefix < 8) continue;
      const mask = prefix === 32 ? 0xffffffff : (0xffffffff << (32 - prefix)) >>> 0;
      out.push({ base: (ip & mask) >>> 0, prefix });
    }
  } catch {
    // unparsable route list: pick from the pool without it
  }
  return out;
}

/** An IPv4 network the host uses: a route's destination or an address's subnet, and its device. */
export interface HostNetwork {
  subnet: Subnet;
  dev: string;
}

/**
 * Every IPv4 route (all tables, the default route aside) and address of the
 * host, so an explicit subnet that would shadow the host's own networks (its
 * loopback, its uplink's subnet, another bridge) is refused. Empty when `ip`
 * cannot tell.
 */
export async function hostNetworks(ctx: Ctx): Promise<HostNetwork[]> {
  const [routes, addrs] = await Promise.all([
    run(ctx, 'ip', ['-4', '-j', 'route', 'show', 'table', 'all'], { allowFail: true }),
    run(ctx, 'ip', ['-4', '-j', 'addr', 'show'], { allowFail: true }),
  ]);
  const out: HostNetwork[] = [];
  const add = (cidr: string, dev: string | undefined) => {
    const [addr, len = '32'] = cidr.split('/');
    const ip = parseIPv4(addr);
    const prefix = Number(len);
    if (ip === undefined || !(prefix >= 1 && prefix <= 32)) return;
    const mask = prefix === 32 ? 0xffffffff : (0xffffffff << (32 - prefix)) >>> 0;
    out.push({ subnet: { base: (ip & mask) >>> 0, prefix }, dev: dev ?? '' });
  };
  const parse = <T>(text: string): T[] => {
    try {
      return JSON.parse(text) as T[];
    } catch {
      return [];
    }
  };
  if (routes.code === 0) for (const r of parse<{ dst?: string; dev?: string }>(routes.stdout)) if (r.dst && r.dst !== 'default') add(r.dst, r.dev);
  if (addrs.code === 0) {
    for (const link of parse<{ ifname?: string; addr_info?: Array<{ family?: string; local?: string; prefixlen?: number }> }>(addrs.stdout)) {
      for (const a of link.addr_info ?? []) if (a.family === 'inet' && a.local) add(`${a.local}/${a.prefixlen ?? 32}`, link.ifname);
    }
  }
  return out;
}

/** A container's network as the runtime and inspect see it; one joined with `container:` shows its owner's. */
export function setupResultOf(store: NetworkStore, ep: EndpointRecord): SetupResult {
  const owner = ep.mode.startsWith('container:') ? (store.getEndpoint(ep.mode.slice(10)) ?? ep) : ep;
  const p = filePaths(owner.dir);
  const atts = store.listAttachments({ containerId: owner.containerId });
  return {
    mode: ep.mode,
    netnsPath: owner.mode === 'host' ? undefined : owner.netnsPath,
    hostname: ep.mode.startsWith('container:') ? owner.hostname : ep.hostname,
    hostsPath: p.hosts,
    resolvConfPath: p.resolvConf,
    hostnamePath: p.hostname,
    interfaces: atts.map((x) => attachmentInfoOf(store, x)),
    ports: atts.flatMap((x) => x.ports),
  };
}

export function attachmentInfoOf(store: NetworkStore, x: AttachmentRecord): AttachmentInfo {
  const net = store.findNetwork(x.networkId);
  return { network: net?.name ?? x.networkId, networkId: x.networkId, ifName: x.ifName, ip: x.ip, prefixLen: x.prefixLen, gateway: x.gateway, mac: x.mac, aliases: x.aliases };
}
