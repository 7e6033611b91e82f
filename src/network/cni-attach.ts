import type { PortMapping } from '../core/containers.ts';
import type { Ctx } from '../core/context.ts';
import { cleanupCtx } from '../core/context.ts';
import { berthError, hasErrno, wrap } from '../core/errors.ts';
import type { AttachmentRecord, EndpointRecord, NetworkRecord, NetworkStore } from '../metadata/networks.ts';
import type { Cni, CniCacheEntry, CniConfigList, CniResult } from './cni.ts';
import type { NetworkConfig } from './config.ts';
import { bridgeConflist, cniNameOf, isOwnBridgeConflist, portMappingArg } from './conflist.ts';
import { run } from './exec.ts';
import { addNat, removeNat, type NatAttachment } from './host-nat.ts';
import { releaseAllocation } from './host-local.ts';
import { contains, parseIPv4, parseSubnet, type Subnet } from './ipnet.ts';
import { deleteLinkIn } from './netlink.ts';
import { isMounted } from './netns.ts';

/**
 * The host side of one container interface on one network: CNI ADD and
 * DEL of the bridge config list, and the NAT rules for its published ports
 * and masquerade (host-nat.ts, or portmap where UDP needs it). Whether the
 * firewall plugin is chained is decided once, at `init`. Records are the
 * caller's: `attach` returns the attachment to record.
 */
export class CniAttacher {
  readonly #store: NetworkStore;
  readonly #config: NetworkConfig;
  readonly #cni: Cni;
  readonly #ipamDir: string;
  #firewall = false;

  constructor(opts: { store: NetworkStore; config: NetworkConfig; cni: Cni; ipamDir: string }) {
    this.#store = opts.store;
    this.#config = opts.config;
    this.#cni = opts.cni;
    this.#ipamDir = opts.ipamDir;
  }

  /** Decide on the firewall plugin: config `[network] firewall`, "auto" following the host's FORWARD policy. */
  async init(ctx: Ctx): Promise<void> {
    const fw = this.#config.firewall;
    if (fw !== 'auto' && fw !== 'true' && fw !== 'false') throw berthError('InvalidArgument', `config: network.firewall must be "auto", "true" or "false", not "${fw}"`);
    if (fw === 'auto') {
      const r = await run(ctx, 'iptables', ['-S', 'FORWARD'], { allowFail: true });
      this.#firewall = /^-P FORWARD DROP/m.test(r.stdout);
    } else this.#firewall = fw === 'true';
  }

  /** CNI ADD of one interface; the caller records the returned attachment. */
  async attach(
    ctx: Ctx,
    ep: EndpointRecord,
    net: NetworkRecord,
    ifName: string,
    o: { aliases: string[]; ipAddress?: string; macAddress?: string; ports: PortMapping[] },
  ): Promise<AttachmentRecord> {
    const cap: Record<string, unknown> = {};
    const pluginNat = usesPluginNat(o.ports);
    if (pluginNat) cap.portMappings = o.ports.map(portMappingArg);
    if (o.ipAddress) cap.ips = [`${o.ipAddress}/${checkAddress(net, o.ipAddress).prefix}`];
    if (o.macAddress) cap.mac = o.macAddress;
    const list = this.#conflist(net, pluginNat);
    let result: CniResult;
    try {
      result = await this.#cni.add(ctx, list, { containerId: ep.containerId, netns: ep.netnsPath, ifName, capabilityArgs: cap });
    } catch (err) {
      throw wrap(err, `attach container ${ep.name || ep.containerId.slice(0, 12)} to network ${net.name}`);
    }
    const ipc = result.ips?.find((x) => !x.address.includes(':'));
    if (!ipc) {
      await this.#cni.del(cleanupCtx(ctx), list, { containerId: ep.containerId, netns: ep.netnsPath, ifName });
      throw berthError('Unknown', `network ${net.name}: CNI result has no IPv4 address`);
    }
    const [ip, prefix] = ipc.address.split('/');
    const nat = this.#natOf(net, ep.containerId, ifName, ip, o.ports);
    try {
      if (!pluginNat) await addNat(ctx, nat, net.bridge);
    } catch (err) {
      // An add that was cut short (a cancelled request, a timeout) may have committed all the same.
      if (!pluginNat) await removeNat(cleanupCtx(ctx), nat).catch(() => {});
      await this.#cni.del(cleanupCtx(ctx), list, { containerId: ep.containerId, netns: ep.netnsPath, ifName }).catch(() => {});
      throw wrap(err, `attach container ${ep.name || ep.containerId.slice(0, 12)} to network ${net.name}`);
    }
    const iface = result.interfaces?.find((i) => i.name === ifName && i.sandbox) ?? result.interfaces?.[ipc.interface ?? -1];
    const rec: AttachmentRecord = {
      containerId: ep.containerId,
      networkId: net.id,
      ifName,
      ip,
      prefixLen: Number(prefix),
      gateway: ipc.gateway ?? net.gateway,
      mac: iface?.mac ?? '',
      aliases: o.aliases,
      ports: o.ports,
    };
    return rec;
  }

  #natOf(net: NetworkRecord, containerId: string, ifName: string, ip: string, ports: PortMapping[]): NatAttachment {
    return { cniName: cniNameOf(net.id), containerId, ifName, ip, subnet: net.subnet, masquerade: !net.internal, ports };
  }

  /**
   * CNI DEL of one interface (from the cache when the network record is
   * gone; berth's own list in-process, `#delOwn`) and, side by side,
   * removal of its NAT rules.
   */
  async detach(ctx: Ctx, ep: EndpointRecord, att: AttachmentRecord): Promise<void> {
    const cniName = cniNameOf(att.networkId);
    const net = this.#store.findNetwork(att.networkId);
    // The cached config is the one ADD ran with, even if config changed since (mtu, firewall).
    const cached = await this.#cni.readCache(cniName, ep.containerId, att.ifName);
    const netns = liveNetns(ep.netnsPath);
    const cni = async () => {
      if (cached && isOwnBridgeConflist(cached.config, this.#ipamDir)) return this.#delOwn(cached, ep.containerId, att.ifName, netns);
      if (await this.#cni.delCached(ctx, cniName, ep.containerId, att.ifName, netns, cached)) return;
      if (net) await this.#cni.del(ctx, this.#conflist(net, usesPluginNat(att.ports)), { containerId: ep.containerId, netns, ifName: att.ifName });
    };
    // Where portmap and the bridge's ipMasq did the NAT (UDP ports, or made by an older berth), their DEL removes the rules.
    const pluginNat = cached ? cached.config.plugins.some((p) => p.type === 'portmap') : usesPluginNat(att.ports);
    const nat = async () => {
      if (pluginNat) return;
      await removeNat(ctx, net ? this.#natOf(net, ep.containerId, att.ifName, att.ip, att.ports) : { cniName, containerId: ep.containerId });
    };
    const [a, b] = await Promise.allSettled([cni(), nat()]);
    if (a.status === 'rejected') throw a.reason;
    if (b.status === 'rejected') throw b.reason;
  }

  /**
   * The bridge plugin's DEL of berth's own list (conflist.ts
   * `isOwnBridgeConflist`), done in-process: spawning it (a Go start, then
   * host-local's) was the longest branch of every teardown, 20-35 ms on a
   * quiet host. The same steps in the same order: the interface deleted in
   * the container's namespace (its veth peer on the bridge goes with it), so
   * the address is free of any device before host-local's file for it is
   * released; the cache entry last, so a crash in between leaves it for the
   * DEL at the next start. Every step tolerates its work being done already.
   */
  async #delOwn(cached: CniCacheEntry, containerId: string, ifName: string, netns: string): Promise<void> {
    if (netns) {
      await deleteLinkIn(netns, ifName).catch((err: unknown) => {
        // A namespace given as /proc/<pid>/ns/net whose process is gone: so is the interface.
        if (!hasErrno(err, 'ENOENT') && !hasErrno(err, 'ESRCH')) throw err;
      });
    }
    const dataDir = (cached.config.plugins[0].ipam as { dataDir: string }).dataDir;
    for (const ipc of cached.result.ips ?? []) releaseAllocation(dataDir, cached.config.name, ipc.address.split('/')[0], containerId, ifName);
    await this.#cni.dropCache(cached.config.name, containerId, ifName);
  }

  #conflist(net: NetworkRecord, pluginNat = false): CniConfigList {
    return bridgeConflist(net, { ipamDataDir: this.#ipamDir, mtu: this.#config.mtu, firewall: this.#firewall, pluginNat });
  }
}

/** UDP ports need portmap's removal of stale conntrack entries: see conflist.ts. */
function usesPluginNat(ports: PortMapping[]): boolean {
  return ports.some((p) => p.protocol === 'udp');
}

/**
 * The netns path to hand a plugin on DEL: '' once the namespace is gone
 * (after a reboot, or a file whose mount never happened), so plugins skip
 * the in-namespace part instead of failing on a path that is no namespace.
 */
export function liveNetns(p: string): string {
  return p && (p.startsWith('/proc/') || isMounted(p)) ? p : '';
}

/** The network's subnet, when `ipAddress` lies in it; InvalidArgument otherwise. */
export function checkAddress(net: NetworkRecord, ipAddress: string): Subnet {
  const subnet = parseSubnet(net.subnet);
  const ip = parseIPv4(ipAddress);
  if (ip === undefined || !contains(subnet, ip)) throw berthError('InvalidArgument', `invalid address ${ipAddress}: it does not belong to any of network ${net.name}'s subnets`);
  return subnet;
}
