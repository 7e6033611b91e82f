import type { NetworkRecord } from '../metadata/networks.ts';
import type { CniConfigList } from './cni.ts';

/**
 * CNI config lists generated from network records. Pure.
 *
 * A berth network is a bridge plugin (with host-local IPAM whose data dir
 * is under berth's root, not /var/lib/cni), chained with the firewall
 * plugin only where the host needs it. NAT (outbound masquerading and
 * published ports) is not left to the plugins (bridge's ipMasq, portmap):
 * host-nat.ts writes it in one iptables-restore, where the plugins ran
 * some 25 iptables processes per container. The exception is an
 * attachment publishing UDP ports (`pluginNat`): portmap also deletes the
 * stale UDP conntrack entries of its host ports, which berth cannot do
 * without netlink, so there the plugins do the NAT as before. Its CNI
 * name is `berth-<id12>`, never the user-facing name: iptables comments,
 * host-local directories and cache files carry the CNI name, and a random id
 * keeps two berth roots on one host (or two test daemons) apart.
 */
export const CNI_VERSION = '1.0.0';

export interface ConflistOptions {
  ipamDataDir: string;
  mtu: number;
  /** Chain the firewall plugin: FORWARD accept rules for hosts whose policy is DROP. */
  firewall?: boolean;
  /** NAT by the plugins (bridge's ipMasq, portmap) instead of host-nat.ts. */
  pluginNat?: boolean;
}

export function cniNameOf(networkId: string): string {
  return `berth-${networkId.slice(0, 12)}`;
}

export function bridgeConflist(n: NetworkRecord, opts: ConflistOptions): CniConfigList {
  const bridge: Record<string, unknown> = {
    type: 'bridge',
    bridge: n.bridge,
    isGateway: !n.internal,
    ipMasq: !!opts.pluginNat && !n.internal,
    hairpinMode: true,
    capabilities: { ips: true, mac: true },
    ipam: {
      type: 'host-local',
      ranges: [[{ subnet: n.subnet, gateway: n.gateway }]],
      routes: n.internal ? [] : [{ dst: '0.0.0.0/0' }],
      dataDir: opts.ipamDataDir,
    },
  };
  if (opts.mtu > 0) bridge.mtu = opts.mtu;
  const plugins: CniConfigList['plugins'] = [bridge as CniConfigList['plugins'][number]];
  if (opts.pluginNat) plugins.push({ type: 'portmap', capabilities: { portMappings: true }, snat: true });
  if (opts.firewall) plugins.push({ type: 'firewall', backend: 'iptables' });
  return { cniVersion: CNI_VERSION, name: cniNameOf(n.id), plugins };
}

const ownBridgeKeys = new Set(['type', 'bridge', 'isGateway', 'ipMasq', 'hairpinMode', 'capabilities', 'ipam', 'mtu']);
const ownIpamKeys = new Set(['type', 'ranges', 'routes', 'dataDir']);

/**
 * Whether `list` is one `bridgeConflist` wrote with NAT and firewall left
 * to berth (no portmap, no ipMasq, no firewall plugin) and host-local's
 * data under `ipamDataDir`: the one list whose DEL berth knows to the
 * letter (cni-attach.ts). A list with anything else, a key berth never
 * writes included, gets the plugins' own DEL.
 */
export function isOwnBridgeConflist(list: CniConfigList, ipamDataDir: string): boolean {
  if (!list.name.startsWith('berth-') || list.plugins.length !== 1) return false;
  const [bridge] = list.plugins;
  if (bridge.type !== 'bridge' || bridge.ipMasq !== false || !Object.keys(bridge).every((k) => ownBridgeKeys.has(k))) return false;
  const ipam = bridge.ipam as Record<string, unknown> | undefined;
  if (!ipam || ipam.type !== 'host-local' || ipam.dataDir !== ipamDataDir || !Object.keys(ipam).every((k) => ownIpamKeys.has(k))) return false;
  return Array.isArray(ipam.ranges) && ipam.ranges.length === 1;
}

/** Brings `lo` up in every namespace (containerd runs the same plugin). */
export function loopbackConflist(): CniConfigList {
  return { cniVersion: CNI_VERSION, name: 'berth-loopback', plugins: [{ type: 'loopback' }] };
}

/** portmap's runtimeConfig entry for one mapping. */
export function portMappingArg(p: { hostIp?: string; hostPort: number; containerPort: number; protocol: string }): Record<string, unknown> {
  const m: Record<string, unknown> = { hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol };
  if (p.hostIp && p.hostIp !== '0.0.0.0') m.hostIP = p.hostIp;
  return m;
}
