import { mkdirSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { PortMapping } from '../core/containers.ts';
import type { Ctx } from '../core/context.ts';
import { cleanupCtx } from '../core/context.ts';
import { removeTree } from '../core/remove-tree.ts';
import { berthError, wrap } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { exposedToMapping } from '../core/ports.ts';
import type { AttachmentRecord, EndpointRecord, NetworkRecord, NetworkStore } from '../metadata/networks.ts';
import type { CniConfigList, CniResult } from './cni.ts';
import { Cni } from './cni.ts';
import type { NetworkConfig } from './config.ts';
import { bridgeConflist, cniNameOf, loopbackConflist, portMappingArg } from './conflist.ts';
import { addNat, removeNat, type NatAttachment } from './host-nat.ts';
import { run } from './exec.ts';
import { DEFAULT_NETWORK, EndpointFiles, filePaths } from './endpoint-files.ts';
import { parseExtraHost } from './files.ts';
import { hostRoutes, matchesFilters, networkInfo, PREDEFINED, pseudoNetworks } from './inspect.ts';
import { assignHostPorts } from './host-ports.ts';
import { firstHost, formatSubnet, overlaps, parseIPv4, parseSubnet, contains, pickSubnet, validateGateway } from './ipnet.ts';
import { removeStaleAllocations, removeStaleRules } from './leaks.ts';
import { isMounted, NetnsStore, removeNetnsFile } from './netns.ts';
import type {
  AttachmentInfo,
  ConnectRequest,
  CreateNetworkRequest,
  NetworkFilters,
  NetworkInfo,
  NetworkService,
  PendingSetup,
  ReconcileReport,
  SetupRequest,
  SetupResult,
} from './types.ts';

export interface CniNetworkServiceOptions {
  store: NetworkStore;
  config: NetworkConfig;
  /** Persistent: ipam/ (host-local data), cni/results/ (ADD cache), containers/<id>/ (hosts, resolv.conf, hostname). */
  dataDir: string;
  /** Runtime: netns files. */
  netnsDir: string;
}

const BRIDGE_NAME_OPTION = 'com.docker.network.bridge.name';

/** NetworkService over CNI plugins; see types.ts for the contract. */
export class CniNetworkService implements NetworkService {
  readonly store: NetworkStore;
  readonly config: NetworkConfig;
  readonly cni: Cni;
  readonly netns: NetnsStore;
  readonly ipamDir: string;
  readonly containersDir: string;
  #lock: Promise<unknown> = Promise.resolve();
  /** Containers between the phases of setup or teardown, with the host ports they reserve. */
  #firewall = false;
  #inflight = new Map<string, { networkIds: string[]; ports: PortMapping[] }>();
  // A container between teardown phases may have lost its files already.
  #busy = (containerId: string) => this.#inflight.has(containerId);
  readonly files: EndpointFiles;

  constructor(opts: CniNetworkServiceOptions) {
    this.store = opts.store;
    this.config = opts.config;
    this.cni = new Cni({ pluginDirs: opts.config.pluginDirs, cacheDir: path.join(opts.dataDir, 'cni'), timeoutMs: opts.config.pluginTimeoutMs });
    this.netns = new NetnsStore(opts.netnsDir);
    this.ipamDir = path.join(opts.dataDir, 'ipam');
    this.containersDir = path.join(opts.dataDir, 'containers');
    this.files = new EndpointFiles(this.store, this.config);
  }

  /** Create or update the default `bridge` network from config, and decide on the firewall plugin. */
  async init(ctx: Ctx): Promise<void> {
    const fw = this.config.firewall;
    if (fw !== 'auto' && fw !== 'true' && fw !== 'false') throw berthError('InvalidArgument', `config: network.firewall must be "auto", "true" or "false", not "${fw}"`);
    if (fw === 'auto') {
      const r = await run(ctx, 'iptables', ['-S', 'FORWARD'], { allowFail: true });
      this.#firewall = /^-P FORWARD DROP/m.test(r.stdout);
    } else this.#firewall = fw === 'true';
    const subnet = parseSubnet(this.config.subnet);
    const gateway = this.config.gateway || firstHost(subnet);
    validateGateway(subnet, gateway);
    const existing = this.store.findNetwork(DEFAULT_NETWORK);
    if (existing && existing.bridge === this.config.bridge && existing.subnet === formatSubnet(subnet) && existing.gateway === gateway) return;
    const rec: NetworkRecord = {
      id: existing?.id ?? newId(),
      name: DEFAULT_NETWORK,
      driver: 'bridge',
      bridge: this.config.bridge,
      subnet: formatSubnet(subnet),
      gateway,
      internal: false,
      labels: {},
      options: { [BRIDGE_NAME_OPTION]: this.config.bridge, 'com.docker.network.bridge.default_bridge': 'true' },
      createdAt: existing?.createdAt ?? new Date().toISOString(),
    };
    this.store.db.transaction(() => {
      if (existing) {
        if (this.store.listAttachments({ networkId: existing.id }).length) return;
        this.store.deleteNetwork(existing.id);
      }
      this.#checkOverlap(subnet, rec.bridge);
      this.store.createNetwork(rec);
    });
  }

  createNetwork(ctx: Ctx, req: CreateNetworkRequest): Promise<NetworkInfo> {
    return this.#serial(async () => {
      if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(req.name ?? '')) throw berthError('InvalidArgument', `invalid network name "${req.name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
      if (PREDEFINED.has(req.name)) throw berthError('FailedPrecondition', `${req.name} is a pre-defined network and cannot be created`);
      const driver = req.driver || 'bridge';
      if (driver !== 'bridge') throw berthError('InvalidArgument', `network driver "${driver}" is not supported (only "bridge")`);
      if (this.store.findNetwork(req.name)?.name === req.name) throw berthError('AlreadyExists', `network with name ${req.name} already exists`);
      const id = newId();
      const options = { ...(req.options ?? {}) };
      const bridge = options[BRIDGE_NAME_OPTION] || `br-${id.slice(0, 12)}`;
      if (!/^[A-Za-z0-9_.-]{1,15}$/.test(bridge)) throw berthError('InvalidArgument', `invalid bridge name "${bridge}": at most 15 characters of [A-Za-z0-9_.-]`);
      options[BRIDGE_NAME_OPTION] = bridge;
      // The bridge plugin would only fail at the first container; say it now.
      const link = await run(ctx, 'ip', ['-j', '-d', 'link', 'show', 'dev', bridge], { allowFail: true });
      if (link.code === 0 && !/"info_kind":"bridge"/.test(link.stdout)) throw berthError('Conflict', `bridge name ${bridge}: a host interface of that name exists and is not a bridge`);
      let subnet;
      if (req.subnet) {
        subnet = parseSubnet(req.subnet);
        this.#checkOverlap(subnet, bridge);
      } else {
        if (req.gateway) throw berthError('InvalidArgument', 'a --gateway needs a --subnet');
        const used = this.store.listNetworks().map((n) => parseSubnet(n.subnet));
        used.push(...(await hostRoutes(ctx)));
        subnet = pickSubnet(parseSubnet(this.config.subnetPool), this.config.poolSize, used);
        if (!subnet) throw berthError('ResourceExhausted', `no free subnet left in pool ${this.config.subnetPool}`);
      }
      const gateway = req.gateway || firstHost(subnet);
      validateGateway(subnet, gateway);
      const rec: NetworkRecord = {
        id,
        name: req.name,
        driver,
        bridge,
        subnet: formatSubnet(subnet),
        gateway,
        internal: !!req.internal,
        labels: req.labels ?? {},
        options,
        createdAt: new Date().toISOString(),
      };
      this.store.db.transaction(() => {
        this.#checkOverlap(subnet, bridge);
        this.store.createNetwork(rec);
      });
      ctx.log.info('network created', { network: rec.name, id, subnet: rec.subnet, bridge });
      return networkInfo(this.store, rec);
    });
  }

  async inspectNetwork(_ctx: Ctx, ref: string): Promise<NetworkInfo> {
    const pseudo = pseudoNetworks(this.store).find((p) => p.name === ref || p.id === ref || (ref.length >= 3 && p.id.startsWith(ref)));
    return networkInfo(this.store, pseudo ?? this.#network(ref));
  }

  async listNetworks(_ctx: Ctx, filters: NetworkFilters = {}): Promise<NetworkInfo[]> {
    return [...this.store.listNetworks(), ...pseudoNetworks(this.store)].filter((n) => matchesFilters(n, filters)).map((n) => networkInfo(this.store, n));
  }

  removeNetwork(ctx: Ctx, ref: string): Promise<void> {
    return this.#serial(async () => {
      const n = PREDEFINED.has(ref) ? { name: ref } : this.#network(ref);
      if (PREDEFINED.has(n.name)) throw berthError('FailedPrecondition', `${n.name} is a pre-defined network and cannot be removed`);
      await this.#removeUnused(ctx, n as NetworkRecord);
    });
  }

  pruneNetworks(ctx: Ctx, filters: NetworkFilters = {}): Promise<string[]> {
    return this.#serial(async () => {
      const removed: string[] = [];
      for (const n of this.store.listNetworks()) {
        if (PREDEFINED.has(n.name) || !matchesFilters(n, filters)) continue;
        if (this.store.listAttachments({ networkId: n.id }).length || [...this.#inflight.values()].some((f) => f.networkIds.includes(n.id))) continue;
        await this.#removeUnused(ctx, n);
        removed.push(n.name);
      }
      return removed;
    });
  }

  async #removeUnused(ctx: Ctx, n: NetworkRecord): Promise<void> {
    const users = this.store.listAttachments({ networkId: n.id });
    for (const [containerId, f] of this.#inflight) if (f.networkIds.includes(n.id)) users.push({ containerId } as AttachmentRecord);
    if (users.length) {
      throw berthError('Conflict', `error while removing network: network ${n.name} id ${n.id} has active endpoints (${users.map((u) => this.store.getEndpoint(u.containerId)?.name ?? u.containerId.slice(0, 12)).join(', ')})`);
    }
    this.store.deleteNetwork(n.id);
    // The bridge plugin creates bridges but never deletes them.
    await run(cleanupCtx(ctx), 'ip', ['link', 'del', n.bridge], { allowFail: true });
    await rm(path.join(this.ipamDir, cniNameOf(n.id)), { recursive: true, force: true });
    ctx.log.info('network removed', { network: n.name, id: n.id });
  }

  async setupContainer(ctx: Ctx, req: SetupRequest): Promise<SetupResult> {
    return (await this.beginSetup(ctx, req)).done;
  }

  /**
   * Three phases so that CNI plugins of different containers run in
   * parallel: (1) under the lock, validate, pick host ports and reserve
   * them in `#inflight`; (2) unlocked, create the netns and write the
   * files (this call returns here), then run the plugins and add the NAT
   * rules; (3) under the lock, record the endpoint and rewrite the hosts
   * file with the container's addresses (in place: a bind mount made in
   * between sees it).
   */
  async beginSetup(ctx: Ctx, req: SetupRequest): Promise<PendingSetup> {
    const plan = await this.#serial(() => this.#plan(ctx, req));
    if ('done' in plan) return { ...plan.done, done: Promise.resolve(plan.done) };
    const { ep, net, ports, more } = plan;
    const a = req.attachment;
    const undo: Array<() => Promise<unknown>> = [];
    const rollback = async (err: unknown): Promise<never> => {
      const c = cleanupCtx(ctx);
      for (const u of undo.reverse()) {
        await u().catch((e) => c.log.warn('network setup rollback step failed', { containerId: req.containerId, err: e }));
      }
      this.#inflight.delete(req.containerId);
      throw err;
    };
    try {
      mkdirSync(ep.dir, { recursive: true, mode: 0o711 });
      undo.push(() => rm(ep.dir, { recursive: true, force: true }));
      if (!ep.netnsPath) {
        // Our own namespace comes with its loopback up: no loopback plugin to run (nor to DEL later).
        ep.netnsPath = await this.netns.create(ctx, req.containerId);
        ep.ownsNetns = true;
        undo.push(() => this.netns.remove(cleanupCtx(ctx), req.containerId));
      }
      // Provisional until phase 3: the hosts file does not list the container's addresses yet.
      await this.files.write(ep);
    } catch (err) {
      return rollback(err);
    }
    const done = (async () => {
      try {
        if (!ep.ownsNetns) {
          const lo = loopbackConflist();
          const loRt = { containerId: req.containerId, netns: ep.netnsPath, ifName: 'lo' };
          await this.cni.add(ctx, lo, loRt);
          undo.push(() => this.cni.del(cleanupCtx(ctx), lo, loRt));
        }
        const atts: AttachmentRecord[] = [];
        const joins = net ? [{ net, ifName: 'eth0', o: { aliases: a.aliases ?? [], ipAddress: a.ipAddress, macAddress: a.macAddress, ports } }] : [];
        more.forEach((m, i) => joins.push({ net: m.net, ifName: `eth${i + 1}`, o: { aliases: m.aliases, ipAddress: m.ipAddress, macAddress: undefined, ports: [] } }));
        for (const j of joins) {
          const added = await this.#cniAttach(ctx, ep, j.net, j.ifName, j.o);
          atts.push(added);
          undo.push(() => this.#cniDetach(cleanupCtx(ctx), ep, added));
        }
        return await this.#serial(async () => {
          this.store.db.transaction(() => {
            this.store.putEndpoint(ep);
            for (const att of atts) this.store.putAttachment(att);
          });
          this.#inflight.delete(req.containerId);
          try {
            if (atts.length) await this.files.writeHosts(ep);
            await this.files.refreshPeers(ep.containerId, atts.map((x) => x.networkId), this.#busy);
          } catch (err) {
            this.store.deleteEndpoint(req.containerId);
            throw err;
          }
          ctx.log.debug('container network set up', { containerId: req.containerId, mode: ep.mode });
          return this.#result(ep);
        });
      } catch (err) {
        return rollback(err);
      }
    })();
    // The caller may fail before it awaits `done`; the rejection is still delivered when it does.
    done.catch(() => {});
    const p = filePaths(ep.dir);
    return { mode: ep.mode, netnsPath: ep.netnsPath, hostname: ep.hostname, hostsPath: p.hosts, resolvConfPath: p.resolvConf, hostnamePath: p.hostname, done };
  }

  /** Phase 1 of setup, under the lock. Modes without plugins (host, container:) finish here. */
  async #plan(
    ctx: Ctx,
    req: SetupRequest,
  ): Promise<{ done: SetupResult } | { ep: EndpointRecord; net?: NetworkRecord; ports: PortMapping[]; more: Array<{ net: NetworkRecord; aliases: string[]; ipAddress?: string }> }> {
    const a = req.attachment;
    const mode = !a.mode || a.mode === 'default' ? DEFAULT_NETWORK : a.mode;
    if (this.store.getEndpoint(req.containerId) || this.#inflight.has(req.containerId)) {
      throw berthError('AlreadyExists', `container ${req.containerId.slice(0, 12)} already has network state`);
    }
    for (const h of a.extraHosts ?? []) {
      try {
        parseExtraHost(h);
      } catch (err) {
        throw berthError('InvalidArgument', (err as Error).message);
      }
    }
    for (const s of a.dns ?? []) if (parseIPv4(s) === undefined && !s.includes(':')) throw berthError('InvalidArgument', `invalid --dns "${s}": not an IP address`);

    const extra = req.moreNetworks ?? [];
    if (extra.length && (mode === 'none' || mode === 'host' || mode.startsWith('container:'))) {
      throw berthError('InvalidArgument', `container cannot join other networks in network mode ${mode}`);
    }
    if (mode.startsWith('container:')) {
      const ref = mode.slice('container:'.length);
      const other = this.store.getEndpoint(ref) ?? this.store.findEndpoint(req.namespace, ref);
      if (!other) throw berthError('NotFound', `container ${ref} not found or has no network (is it running?)`);
      if ((a.ports?.length ?? 0) > 0 || a.publishAll) throw berthError('InvalidArgument', 'conflicting options: port publishing and the container type network mode');
      const target = other.mode.startsWith('container:') ? (this.store.getEndpoint(other.mode.slice(10)) ?? other) : other;
      this.store.putEndpoint({ ...target, containerId: req.containerId, namespace: req.namespace, name: req.name, mode: `container:${target.containerId}`, ownsNetns: false, createdAt: new Date().toISOString() });
      return { done: this.#result(this.store.getEndpoint(req.containerId)!) };
    }
    const ep: EndpointRecord = {
      containerId: req.containerId,
      namespace: req.namespace,
      name: req.name.replace(/^\//, ''),
      hostname: req.hostname || (mode === 'host' ? os.hostname() : req.containerId.slice(0, 12)),
      mode,
      netnsPath: mode === 'host' ? '' : (req.netnsPath ?? ''),
      ownsNetns: false,
      dir: path.join(this.containersDir, req.containerId),
      dns: { servers: a.dns ?? [], search: a.dnsSearch ?? [], options: a.dnsOptions ?? [], extraHosts: a.extraHosts ?? [], domainname: req.domainname ?? '' },
      createdAt: new Date().toISOString(),
    };
    if (mode === 'host') {
      if ((a.ports?.length ?? 0) > 0) ctx.log.warn('published ports are discarded when using host network mode', { containerId: req.containerId });
      await mkdir(ep.dir, { recursive: true, mode: 0o711 });
      this.store.putEndpoint(ep);
      try {
        await this.files.write(ep);
      } catch (err) {
        this.store.deleteEndpoint(ep.containerId);
        await rm(ep.dir, { recursive: true, force: true });
        throw err;
      }
      return { done: this.#result(ep) };
    }
    const net = mode === 'none' ? undefined : this.#network(mode);
    if (net && (a.aliases?.length ?? 0) > 0 && net.name === DEFAULT_NETWORK) {
      throw berthError('InvalidArgument', 'network-scoped aliases are supported only for containers on user-defined networks');
    }
    let ports: PortMapping[] = [];
    if (net) {
      const wanted = [...(a.ports ?? [])];
      if (a.publishAll) {
        for (const key of req.exposedPorts ?? []) {
          const m = exposedToMapping(key);
          if (!wanted.some((w) => w.containerPort === m.containerPort && w.protocol === m.protocol)) wanted.push(m);
        }
      }
      if (a.ipAddress) {
        const ip = parseIPv4(a.ipAddress);
        if (ip === undefined || !contains(parseSubnet(net.subnet), ip)) throw berthError('InvalidArgument', `invalid address ${a.ipAddress}: it does not belong to any of network ${net.name}'s subnets`);
      }
      ports = await assignHostPorts(wanted, this.#takenPorts());
    }
    const more: Array<{ net: NetworkRecord; aliases: string[]; ipAddress?: string }> = [];
    const seen = new Set(net ? [net.id] : []);
    for (const x of extra) {
      const n = this.#network(x.network);
      if (seen.has(n.id)) throw berthError('InvalidArgument', `container ${ep.name} names network ${n.name} twice`);
      seen.add(n.id);
      if ((x.aliases?.length ?? 0) > 0 && n.name === DEFAULT_NETWORK) throw berthError('InvalidArgument', 'network-scoped aliases are supported only for containers on user-defined networks');
      if (x.ipAddress) {
        const ip = parseIPv4(x.ipAddress);
        if (ip === undefined || !contains(parseSubnet(n.subnet), ip)) throw berthError('InvalidArgument', `invalid address ${x.ipAddress}: it does not belong to any of network ${n.name}'s subnets`);
      }
      more.push({ net: n, aliases: x.aliases ?? [], ipAddress: x.ipAddress });
    }
    this.#inflight.set(req.containerId, { networkIds: [...seen], ports });
    return { ep, net, ports, more };
  }

  #takenPorts(): PortMapping[] {
    return [...this.store.listAttachments().flatMap((x) => x.ports), ...[...this.#inflight.values()].flatMap((x) => x.ports)];
  }

  /** CNI ADD of one interface; the caller records the returned attachment. */
  async #cniAttach(
    ctx: Ctx,
    ep: EndpointRecord,
    net: NetworkRecord,
    ifName: string,
    o: { aliases: string[]; ipAddress?: string; macAddress?: string; ports: PortMapping[] },
  ): Promise<AttachmentRecord> {
    const subnet = parseSubnet(net.subnet);
    const cap: Record<string, unknown> = {};
    const pluginNat = usesPluginNat(o.ports);
    if (pluginNat) cap.portMappings = o.ports.map(portMappingArg);
    if (o.ipAddress) {
      const ip = parseIPv4(o.ipAddress);
      if (ip === undefined || !contains(subnet, ip)) throw berthError('InvalidArgument', `invalid address ${o.ipAddress}: it does not belong to any of network ${net.name}'s subnets`);
      cap.ips = [`${o.ipAddress}/${subnet.prefix}`];
    }
    if (o.macAddress) cap.mac = o.macAddress;
    const list = this.#conflist(net, pluginNat);
    let result: CniResult;
    try {
      result = await this.cni.add(ctx, list, { containerId: ep.containerId, netns: ep.netnsPath, ifName, capabilityArgs: cap });
    } catch (err) {
      throw wrap(err, `attach container ${ep.name || ep.containerId.slice(0, 12)} to network ${net.name}`);
    }
    const ipc = result.ips?.find((x) => !x.address.includes(':'));
    if (!ipc) {
      await this.cni.del(cleanupCtx(ctx), list, { containerId: ep.containerId, netns: ep.netnsPath, ifName });
      throw berthError('Unknown', `network ${net.name}: CNI result has no IPv4 address`);
    }
    const [ip, prefix] = ipc.address.split('/');
    try {
      if (!pluginNat) await addNat(ctx, this.#natOf(net, ep.containerId, ifName, ip, o.ports), net.bridge);
    } catch (err) {
      await this.cni.del(cleanupCtx(ctx), list, { containerId: ep.containerId, netns: ep.netnsPath, ifName }).catch(() => {});
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
   * gone) and, side by side, removal of its NAT rules.
   */
  async #cniDetach(ctx: Ctx, ep: EndpointRecord, att: AttachmentRecord): Promise<void> {
    const cniName = cniNameOf(att.networkId);
    const net = this.store.findNetwork(att.networkId);
    // The cached config is the one ADD ran with, even if config changed since (mtu, firewall).
    const cached = await this.cni.readCache(cniName, ep.containerId, att.ifName);
    const netns = liveNetns(ep.netnsPath);
    const cni = async () => {
      if (await this.cni.delCached(ctx, cniName, ep.containerId, att.ifName, netns, cached)) return;
      if (net) await this.cni.del(ctx, this.#conflist(net, usesPluginNat(att.ports)), { containerId: ep.containerId, netns, ifName: att.ifName });
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

  #conflist(net: NetworkRecord, pluginNat = false): CniConfigList {
    return bridgeConflist(net, { ipamDataDir: this.ipamDir, mtu: this.config.mtu, firewall: this.#firewall, pluginNat });
  }

  /** Like setup: plugins run outside the lock, records change under it. */
  async teardownContainer(ctx: Ctx, containerId: string): Promise<void> {
    const ep = await this.#serial(async () => {
      if (this.#inflight.has(containerId)) throw berthError('Conflict', `network of container ${containerId.slice(0, 12)} is being set up or torn down`);
      const found = this.store.getEndpoint(containerId);
      if (found) this.#inflight.set(containerId, { networkIds: [], ports: [] });
      return found;
    });
    if (!ep) return;
    try {
      const errors = await this.#release(ctx, ep);
      await this.#serial(() => this.#forget(ctx, ep, errors));
    } finally {
      this.#inflight.delete(containerId);
    }
  }

  /** Undo everything plugins and setup did on the host; returns the errors instead of stopping at one. */
  async #release(ctx: Ctx, ep: EndpointRecord): Promise<unknown[]> {
    const errors: unknown[] = [];
    // The files need nothing of the plugins: removed beside them.
    const files = ep.mode.startsWith('container:') ? undefined : removeTree(ep.dir).catch((err) => errors.push(err));
    for (const att of this.store.listAttachments({ containerId: ep.containerId }).reverse()) {
      await this.#cniDetach(ctx, ep, att).catch((err) => errors.push(err));
    }
    if (!ep.mode.startsWith('container:') && ep.mode !== 'host') {
      // Only a namespace given by the caller had the loopback plugin run in it.
      if (ep.ownsNetns) await this.netns.remove(ctx, ep.containerId).catch((err) => errors.push(err));
      else await this.cni.delCached(ctx, 'berth-loopback', ep.containerId, 'lo', liveNetns(ep.netnsPath)).catch((err) => errors.push(err));
    }
    await files;
    return errors;
  }

  /** Drop the records and tell the peers. Leftovers of failed steps are swept by the next reconcile. */
  async #forget(ctx: Ctx, ep: EndpointRecord, errors: unknown[]): Promise<void> {
    const networkIds = this.store.listAttachments({ containerId: ep.containerId }).map((x) => x.networkId);
    this.store.deleteEndpoint(ep.containerId);
    await this.files.refreshPeers(ep.containerId, networkIds, this.#busy).catch((err) => errors.push(err));
    if (errors.length) {
      ctx.log.warn('container network teardown incomplete; leftovers are swept at the next start', { containerId: ep.containerId, errors: errors.map(String) });
      throw wrap(errors[0], `tear down network of container ${ep.containerId.slice(0, 12)}`);
    }
  }

  connect(ctx: Ctx, req: ConnectRequest): Promise<AttachmentInfo> {
    return this.#serial(async () => {
      const ep = this.#endpoint(ctx, req.container);
      if (this.#inflight.has(ep.containerId)) throw berthError('Conflict', `network of container ${ep.name} is being set up or torn down`);
      if (req.network === 'host' || req.network === 'none') throw berthError('FailedPrecondition', `container cannot be connected to the ${req.network} network`);
      const net = this.#network(req.network);
      if (ep.mode === 'host' || ep.mode.startsWith('container:') || !ep.netnsPath) {
        throw berthError('FailedPrecondition', `container ${ep.name} shares the network stack of ${ep.mode === 'host' ? 'the host' : 'another container'} and cannot be connected to another network`);
      }
      const atts = this.store.listAttachments({ containerId: ep.containerId });
      if (atts.some((x) => x.networkId === net.id)) throw berthError('Conflict', `endpoint with name ${ep.name} already exists in network ${net.name}`);
      if ((req.aliases?.length ?? 0) > 0 && net.name === DEFAULT_NETWORK) {
        throw berthError('InvalidArgument', 'network-scoped aliases are supported only for containers on user-defined networks');
      }
      const used = new Set(atts.map((x) => x.ifName));
      let n = 0;
      while (used.has(`eth${n}`)) n++;
      if (req.ipAddress) {
        const ip = parseIPv4(req.ipAddress);
        if (ip === undefined || !contains(parseSubnet(net.subnet), ip)) throw berthError('InvalidArgument', `invalid address ${req.ipAddress}: it does not belong to any of network ${net.name}'s subnets`);
      }
      const att = await this.#cniAttach(ctx, ep, net, `eth${n}`, { aliases: req.aliases ?? [], ipAddress: req.ipAddress, ports: [] });
      this.store.putAttachment(att);
      await this.files.write(ep);
      await this.files.refreshPeers(ep.containerId, [net.id], this.#busy);
      return this.#attachmentInfo(att);
    });
  }

  disconnect(ctx: Ctx, req: { container: string; network: string; force?: boolean }): Promise<void> {
    return this.#serial(async () => {
      const net = this.#network(req.network);
      let ep: EndpointRecord;
      try {
        ep = this.#endpoint(ctx, req.container);
      } catch (err) {
        if (!req.force) throw err;
        return;
      }
      const att = this.store.listAttachments({ containerId: ep.containerId }).find((x) => x.networkId === net.id);
      if (!att) throw berthError('NotFound', `container ${ep.name} is not connected to network ${net.name}`);
      await this.#cniDetach(ctx, ep, att);
      this.store.deleteAttachment(ep.containerId, att.networkId);
      await this.files.write(ep);
      await this.files.refreshPeers(ep.containerId, [net.id], this.#busy);
    });
  }

  async containerNetwork(_ctx: Ctx, containerId: string): Promise<SetupResult | undefined> {
    const ep = this.store.getEndpoint(containerId);
    return ep ? this.#result(ep) : undefined;
  }

  async ports(ctx: Ctx, container: string, filter?: string): Promise<PortMapping[]> {
    const ep = this.#endpoint(ctx, container);
    const owner = ep.mode.startsWith('container:') ? ep.mode.slice(10) : ep.containerId;
    let ports = this.store.listAttachments({ containerId: owner }).flatMap((x) => x.ports);
    if (filter) {
      const [p, proto = 'tcp'] = filter.split('/');
      ports = ports.filter((x) => String(x.containerPort) === p && x.protocol === proto);
      if (!ports.length) throw berthError('NotFound', `no public port '${p}/${proto}' published for ${ep.name || container}`);
    }
    return ports;
  }

  reconcile(ctx: Ctx, liveContainerIds: Iterable<string>): Promise<ReconcileReport> {
    return this.#serial(async () => {
      const live = new Set(liveContainerIds);
      const isLive = (id: string) => live.has(id);
      const report: ReconcileReport = { endpoints: 0, cniAttachments: 0, allocations: 0, iptablesRules: 0, netns: 0 };
      for (const ep of this.store.listEndpoints()) {
        if (live.has(ep.containerId)) continue;
        await this.#forget(ctx, ep, await this.#release(ctx, ep)).catch((err) => ctx.log.warn('reconcile: teardown failed', { containerId: ep.containerId, err }));
        report.endpoints++;
      }
      for (const entry of await this.cni.listCache()) {
        if (live.has(entry.containerId)) continue;
        try {
          await this.cni.delCached(ctx, entry.networkName, entry.containerId, entry.ifName, liveNetns(entry.netns));
          report.cniAttachments++;
        } catch (err) {
          ctx.log.warn('reconcile: cached CNI DEL failed', { containerId: entry.containerId, network: entry.networkName, err });
        }
      }
      report.allocations = (await removeStaleAllocations(this.ipamDir, isLive)).length;
      const names = new Set(this.store.listNetworks().map((n) => cniNameOf(n.id)));
      report.iptablesRules = await removeStaleRules(ctx, names, isLive);
      const owned = new Set(this.store.listEndpoints().filter((e) => e.ownsNetns).map((e) => e.netnsPath));
      for (const id of await this.netns.list()) {
        if (owned.has(this.netns.pathOf(id))) continue;
        await removeNetnsFile(ctx, this.netns.pathOf(id)).catch((err) => ctx.log.warn('reconcile: netns removal failed', { id, err }));
        report.netns++;
      }
      if (Object.values(report).some((v) => v > 0)) ctx.log.info('network leftovers reclaimed', { ...report });
      return report;
    });
  }

  #network(ref: string): NetworkRecord {
    const n = this.store.findNetwork(ref);
    if (!n) throw berthError('NotFound', `network ${ref} not found`);
    return n;
  }

  #endpoint(ctx: Ctx, ref: string): EndpointRecord {
    const ep = this.store.getEndpoint(ref) ?? this.store.findEndpoint(ctx.namespace, ref);
    if (!ep) throw berthError('NotFound', `container ${ref} not found or not running`);
    return ep;
  }

  #checkOverlap(subnet: ReturnType<typeof parseSubnet>, bridge: string): void {
    for (const n of this.store.listNetworks()) {
      if (overlaps(parseSubnet(n.subnet), subnet)) throw berthError('Conflict', `Pool overlaps with other one on this address space: ${formatSubnet(subnet)} overlaps network ${n.name} (${n.subnet})`);
      if (n.bridge === bridge) throw berthError('Conflict', `bridge ${bridge} is already used by network ${n.name}`);
    }
  }

  #result(ep: EndpointRecord): SetupResult {
    const owner = ep.mode.startsWith('container:') ? (this.store.getEndpoint(ep.mode.slice(10)) ?? ep) : ep;
    const p = filePaths(owner.dir);
    const atts = this.store.listAttachments({ containerId: owner.containerId });
    return {
      mode: ep.mode,
      netnsPath: owner.mode === 'host' ? undefined : owner.netnsPath,
      hostname: ep.mode.startsWith('container:') ? owner.hostname : ep.hostname,
      hostsPath: p.hosts,
      resolvConfPath: p.resolvConf,
      hostnamePath: p.hostname,
      interfaces: atts.map((x) => this.#attachmentInfo(x)),
      ports: atts.flatMap((x) => x.ports),
    };
  }

  #attachmentInfo(x: AttachmentRecord): AttachmentInfo {
    const net = this.store.findNetwork(x.networkId);
    return { network: net?.name ?? x.networkId, networkId: x.networkId, ifName: x.ifName, ip: x.ip, prefixLen: x.prefixLen, gateway: x.gateway, mac: x.mac, aliases: x.aliases };
  }

  /** Mutations run one at a time: port and address checks must see each other's results. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#lock.then(fn, fn);
    this.#lock = next.catch(() => {});
    return next;
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
function liveNetns(p: string): string {
  return p && (p.startsWith('/proc/') || isMounted(p)) ? p : '';
}
