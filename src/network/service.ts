import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { PortMapping } from '../core/containers.ts';
import type { Ctx } from '../core/context.ts';
import { berthError } from '../core/errors.ts';
import type { EndpointRecord, NetworkStore } from '../metadata/networks.ts';
import { Cni } from './cni.ts';
import { checkAddress, CniAttacher, liveNetns } from './cni-attach.ts';
import type { NetworkConfig } from './config.ts';
import { cniNameOf } from './conflist.ts';
import { EndpointFiles } from './endpoint-files.ts';
import { EndpointSetup } from './endpoint-setup.ts';
import { attachmentInfoOf, setupResultOf } from './inspect.ts';
import { removeStaleAllocations, removeStaleRules } from './leaks.ts';
import { NetnsStore, removeNetnsFile } from './netns.ts';
import { checkAliases, NetworkRecords } from './network-records.ts';
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

/**
 * NetworkService over CNI plugins; see types.ts for the contract. Its parts:
 * network records and their subnets (network-records.ts), a container's
 * endpoint from setup to teardown (endpoint-setup.ts), and the CNI and NAT
 * work of one interface (cni-attach.ts). One lock serializes every change
 * of records: port and address checks must see each other's results.
 */
export class CniNetworkService implements NetworkService {
  readonly store: NetworkStore;
  readonly config: NetworkConfig;
  readonly cni: Cni;
  readonly netns: NetnsStore;
  readonly ipamDir: string;
  readonly containersDir: string;
  readonly files: EndpointFiles;
  #lock: Promise<unknown> = Promise.resolve();
  readonly #records: NetworkRecords;
  readonly #attacher: CniAttacher;
  readonly #setup: EndpointSetup;

  constructor(opts: CniNetworkServiceOptions) {
    this.store = opts.store;
    this.config = opts.config;
    this.cni = new Cni({ pluginDirs: opts.config.pluginDirs, cacheDir: path.join(opts.dataDir, 'cni'), timeoutMs: opts.config.pluginTimeoutMs });
    this.netns = new NetnsStore(opts.netnsDir);
    this.ipamDir = path.join(opts.dataDir, 'ipam');
    this.containersDir = path.join(opts.dataDir, 'containers');
    this.files = new EndpointFiles(this.store, this.config);
    const parts = { store: this.store, config: this.config, cni: this.cni, netns: this.netns, ipamDir: this.ipamDir, containersDir: this.containersDir, files: this.files };
    this.#attacher = new CniAttacher(parts);
    this.#records = new NetworkRecords({ ...parts, inflightUsers: (networkId) => this.#setup.inflightUsers(networkId) });
    this.#setup = new EndpointSetup({ ...parts, attacher: this.#attacher, records: this.#records, serial: (fn) => this.#serial(fn) });
  }

  /**
   * At daemon start, before containers are recovered and `reconcile` runs:
   * stop the CNI plugins a killed daemon left running (their late work
   * would escape the reconcile), create or update the default `bridge`
   * network from config, and decide on the firewall plugin.
   */
  async init(ctx: Ctx): Promise<void> {
    const orphans = await this.cni.stopOrphans(ctx);
    if (orphans) ctx.log.info('stopped CNI plugins the previous daemon left running', { count: orphans });
    await this.#attacher.init(ctx);
    this.#records.ensureDefault();
  }

  createNetwork(ctx: Ctx, req: CreateNetworkRequest): Promise<NetworkInfo> {
    return this.#serial(() => this.#records.create(ctx, req));
  }

  async inspectNetwork(_ctx: Ctx, ref: string): Promise<NetworkInfo> {
    return this.#records.inspect(ref);
  }

  async listNetworks(_ctx: Ctx, filters: NetworkFilters = {}): Promise<NetworkInfo[]> {
    return this.#records.list(filters);
  }

  removeNetwork(ctx: Ctx, ref: string): Promise<void> {
    return this.#serial(() => this.#records.remove(ctx, ref));
  }

  pruneNetworks(ctx: Ctx, filters: NetworkFilters = {}): Promise<string[]> {
    return this.#serial(() => this.#records.prune(ctx, filters));
  }

  async setupContainer(ctx: Ctx, req: SetupRequest): Promise<SetupResult> {
    return (await this.beginSetup(ctx, req)).done;
  }

  /** See endpoint-setup.ts: returns once the netns and files exist; `done` once the plugins ran. */
  beginSetup(ctx: Ctx, req: SetupRequest): Promise<PendingSetup> {
    return this.#setup.begin(ctx, req);
  }

  teardownContainer(ctx: Ctx, containerId: string): Promise<void> {
    return this.#setup.teardown(ctx, containerId);
  }

  connect(ctx: Ctx, req: ConnectRequest): Promise<AttachmentInfo> {
    return this.#serial(async () => {
      const ep = this.#endpoint(ctx, req.container);
      if (this.#setup.busy(ep.containerId)) throw berthError('Conflict', `network of container ${ep.name} is being set up or torn down`);
      if (req.network === 'host' || req.network === 'none') throw berthError('FailedPrecondition', `container cannot be connected to the ${req.network} network`);
      const net = this.#records.find(req.network);
      if (ep.mode === 'host' || ep.mode.startsWith('container:') || !ep.netnsPath) {
        throw berthError('FailedPrecondition', `container ${ep.name} shares the network stack of ${ep.mode === 'host' ? 'the host' : 'another container'} and cannot be connected to another network`);
      }
      const atts = this.store.listAttachments({ containerId: ep.containerId });
      if (atts.some((x) => x.networkId === net.id)) throw berthError('Conflict', `endpoint with name ${ep.name} already exists in network ${net.name}`);
      checkAliases(net, req.aliases);
      const used = new Set(atts.map((x) => x.ifName));
      let n = 0;
      while (used.has(`eth${n}`)) n++;
      if (req.ipAddress) checkAddress(net, req.ipAddress);
      const att = await this.#attacher.attach(ctx, ep, net, `eth${n}`, { aliases: req.aliases ?? [], ipAddress: req.ipAddress, ports: [] });
      this.store.putAttachment(att);
      await this.files.write(ep);
      await this.files.refreshPeers(ep.containerId, [net.id], this.#setup.busy);
      return attachmentInfoOf(this.store, att);
    });
  }

  disconnect(ctx: Ctx, req: { container: string; network: string; force?: boolean }): Promise<void> {
    return this.#serial(async () => {
      const net = this.#records.find(req.network);
      let ep: EndpointRecord;
      try {
        ep = this.#endpoint(ctx, req.container);
      } catch (err) {
        if (!req.force) throw err;
        return;
      }
      const att = this.store.listAttachments({ containerId: ep.containerId }).find((x) => x.networkId === net.id);
      if (!att) throw berthError('NotFound', `container ${ep.name} is not connected to network ${net.name}`);
      await this.#attacher.detach(ctx, ep, att);
      this.store.deleteAttachment(ep.containerId, att.networkId);
      await this.files.write(ep);
      await this.files.refreshPeers(ep.containerId, [net.id], this.#setup.busy);
    });
  }

  async containerNetwork(_ctx: Ctx, containerId: string): Promise<SetupResult | undefined> {
    const ep = this.store.getEndpoint(containerId);
    return ep ? setupResultOf(this.store, ep) : undefined;
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
      const report: ReconcileReport = { endpoints: 0, cniAttachments: 0, allocations: 0, iptablesRules: 0, netns: 0, fileDirs: 0 };
      for (const ep of this.store.listEndpoints()) {
        if (live.has(ep.containerId)) continue;
        await this.#setup.forget(ctx, ep, await this.#setup.release(ctx, ep)).catch((err) => ctx.log.warn('reconcile: teardown failed', { containerId: ep.containerId, err }));
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
      // A setup writes its files before it records the endpoint: a crash in between leaves them unowned.
      for (const id of await readdir(this.containersDir).catch(() => [] as string[])) {
        if (live.has(id) || this.store.getEndpoint(id)) continue;
        await rm(path.join(this.containersDir, id), { recursive: true, force: true }).catch((err) => ctx.log.warn('reconcile: removing network files failed', { id, err }));
        report.fileDirs++;
      }
      if (Object.values(report).some((v) => v > 0)) ctx.log.info('network leftovers reclaimed', { ...report });
      return report;
    });
  }

  /**
   * At berthd's stop: remove the iptables rules of berth's networks whose
   * container has no network state (neither recorded nor being set up), as
   * reconcile does at start. A teardown cut short (by a failed removal or
   * a stop in its middle) would otherwise leave them until berthd's next
   * start, or for good on a host where berthd never starts again.
   * Running containers keep theirs: they outlive berthd.
   */
  sweepRules(ctx: Ctx): Promise<number> {
    return this.#serial(async () => {
      const names = new Set(this.store.listNetworks().map((n) => cniNameOf(n.id)));
      const removed = await removeStaleRules(ctx, names, (id) => !!this.store.getEndpoint(id) || this.#setup.busy(id));
      if (removed) ctx.log.info('stale iptables rules removed', { rules: removed });
      return removed;
    });
  }

  #endpoint(ctx: Ctx, ref: string): EndpointRecord {
    const ep = this.store.getEndpoint(ref) ?? this.store.findEndpoint(ctx.namespace, ref);
    if (!ep) throw berthError('NotFound', `container ${ref} not found or not running`);
    return ep;
  }

  /** Mutations run one at a time: port and address checks must see each other's results. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#lock.then(fn, fn);
    this.#lock = next.catch(() => {});
    return next;
  }
}
