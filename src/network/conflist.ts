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
 * some 25 iptables processes per container. Its CNI
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
}

export function cniNameOf(networkId: string): string {
  return `berth-${networkId.slice(0, 12)}`;
}

export function bridgeConflist(n: NetworkRecord, opts: ConflistOptions): CniConfigList {
  const bridge: Record<string, unknown> = {
    type: 'bridge',
    bridge: n.bridge,
    isGateway: !n.internal,
    ipMasq: false,
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
  if (opts.firewall) plugins.push({ type: 'firewall', backend: 'iptables' });
  return { cniVersion: CNI_VERSION, name: cniNameOf(n.id), plugins };
}

/** Brings `lo` up in every namespace (containerd runs the same plugin). */
export function loopbackConflist(): CniConfigList {
  return { cniVersion: CNI_VERSION, name: 'berth-loopback', plugins: [{ type: 'loopback' }] };
}
