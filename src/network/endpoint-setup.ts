import { mkdirSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { PortMapping } from '../core/containers.ts';
import type { Ctx } from '../core/context.ts';
import { cleanupCtx } from '../core/context.ts';
import { berthError, wrap } from '../core/errors.ts';
import { exposedToMapping } from '../core/ports.ts';
import { removeTree } from '../core/remove-tree.ts';
import type { AttachmentRecord, EndpointRecord, NetworkRecord, NetworkStore } from '../metadata/networks.ts';
import type { Cni } from './cni.ts';
import { checkAddress, liveNetns, type CniAttacher } from './cni-attach.ts';
import { loopbackConflist } from './conflist.ts';
import { DEFAULT_NETWORK, type EndpointFiles, filePaths } from './endpoint-files.ts';
import { parseExtraHost } from './files.ts';
import { assignHostPorts } from './host-ports.ts';
import { setupResultOf } from './inspect.ts';
import { parseIPv4 } from './ipnet.ts';
import type { NetnsStore } from './netns.ts';
import { checkAliases, type NetworkRecords } from './network-records.ts';
import type { PendingSetup, SetupRequest, SetupResult } from './types.ts';

/**
 * A container's endpoint from setup to teardown. Setup runs in three
 * phases so that CNI plugins of different containers run in parallel, and
 * teardown in two; between phases a container is "in flight", holding the
 * host ports and networks it reserved. Records change only under the
 * service's lock (`serial`); plugins run outside it.
 */
export interface EndpointSetupDeps {
  store: NetworkStore;
  files: EndpointFiles;
  netns: NetnsStore;
  cni: Cni;
  attacher: CniAttacher;
  records: Pick<NetworkRecords, 'find'>;
  /** Where each endpoint's files go: <containersDir>/<id>/. */
  containersDir: string;
  /** The service's lock: mutations run one at a time. */
  serial<T>(fn: () => Promise<T>): Promise<T>;
}

export class EndpointSetup {
  readonly #d: EndpointSetupDeps;
  /** Containers between the phases of setup or teardown, with the host ports they reserve. */
  readonly #inflight = new Map<string, { networkIds: string[]; ports: PortMapping[] }>();

  constructor(deps: EndpointSetupDeps) {
    this.#d = deps;
  }

  /** A container between setup or teardown phases, which may have lost its files already. */
  readonly busy = (containerId: string): boolean => this.#inflight.has(containerId);

  /** Containers in flight that join `networkId`. */
  inflightUsers(networkId: string): string[] {
    return [...this.#inflight].filter(([, f]) => f.networkIds.includes(networkId)).map(([id]) => id);
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
  async begin(ctx: Ctx, req: SetupRequest): Promise<PendingSetup> {
    const plan = await this.#d.serial(() => this.#plan(ctx, req));
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
        ep.netnsPath = await this.#d.netns.create(ctx, req.containerId);
        ep.ownsNetns = true;
        undo.push(() => this.#d.netns.remove(cleanupCtx(ctx), req.containerId));
      }
      // Provisional until phase 3: the hosts file does not list the container's addresses yet.
      await this.#d.files.write(ep);
    } catch (err) {
      return rollback(err);
    }
    const done = (async () => {
      try {
        if (!ep.ownsNetns) {
          const lo = loopbackConflist();
          const loRt = { containerId: req.containerId, netns: ep.netnsPath, ifName: 'lo' };
          await this.#d.cni.add(ctx, lo, loRt);
          undo.push(() => this.#d.cni.del(cleanupCtx(ctx), lo, loRt));
        }
        const atts: AttachmentRecord[] = [];
        const joins = net ? [{ net, ifName: 'eth0', o: { aliases: a.aliases ?? [], ipAddress: a.ipAddress, macAddress: a.macAddress, ports } }] : [];
        more.forEach((m, i) => joins.push({ net: m.net, ifName: `eth${i + 1}`, o: { aliases: m.aliases, ipAddress: m.ipAddress, macAddress: undefined, ports: [] } }));
        for (const j of joins) {
          const added = await this.#d.attacher.attach(ctx, ep, j.net, j.ifName, j.o);
          atts.push(added);
          undo.push(() => this.#d.attacher.detach(cleanupCtx(ctx), ep, added));
        }
        return await this.#d.serial(async () => {
          this.#d.store.db.transaction(() => {
            this.#d.store.putEndpoint(ep);
            for (const att of atts) this.#d.store.putAttachment(att);
          });
          this.#inflight.delete(req.containerId);
          try {
            if (atts.length) await this.#d.files.writeHosts(ep);
            await this.#d.files.refreshPeers(ep.containerId, atts.map((x) => x.networkId), this.busy);
          } catch (err) {
            this.#d.store.deleteEndpoint(req.containerId);
            throw err;
          }
          ctx.log.debug('container network set up', { containerId: req.containerId, mode: ep.mode });
          return setupResultOf(this.#d.store, ep);
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
    if (this.#d.store.getEndpoint(req.containerId) || this.#inflight.has(req.containerId)) {
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
      const other = this.#d.store.getEndpoint(ref) ?? this.#d.store.findEndpoint(req.namespace, ref);
      if (!other) throw berthError('NotFound', `container ${ref} not found or has no network (is it running?)`);
      if ((a.ports?.length ?? 0) > 0 || a.publishAll) throw berthError('InvalidArgument', 'conflicting options: port publishing and the container type network mode');
      const target = other.mode.startsWith('container:') ? (this.#d.store.getEndpoint(other.mode.slice(10)) ?? other) : other;
      this.#d.store.putEndpoint({ ...target, containerId: req.containerId, namespace: req.namespace, name: req.name, mode: `container:${target.containerId}`, ownsNetns: false, createdAt: new Date().toISOString() });
      return { done: setupResultOf(this.#d.store, this.#d.store.getEndpoint(req.containerId)!) };
    }
    const ep: EndpointRecord = {
      containerId: req.containerId,
      namespace: req.namespace,
      name: req.name.replace(/^\//, ''),
      hostname: req.hostname || (mode === 'host' ? os.hostname() : req.containerId.slice(0, 12)),
      mode,
      netnsPath: mode === 'host' ? '' : (req.netnsPath ?? ''),
      ownsNetns: false,
      dir: path.join(this.#d.containersDir, req.containerId),
      dns: { servers: a.dns ?? [], search: a.dnsSearch ?? [], options: a.dnsOptions ?? [], extraHosts: a.extraHosts ?? [], domainname: req.domainname ?? '' },
      createdAt: new Date().toISOString(),
    };
    if (mode === 'host') {
      if ((a.ports?.length ?? 0) > 0) ctx.log.warn('published ports are discarded when using host network mode', { containerId: req.containerId });
      await mkdir(ep.dir, { recursive: true, mode: 0o711 });
      this.#d.store.putEndpoint(ep);
      try {
        await this.#d.files.write(ep);
      } catch (err) {
        this.#d.store.deleteEndpoint(ep.containerId);
        await rm(ep.dir, { recursive: true, force: true });
        throw err;
      }
      return { done: setupResultOf(this.#d.store, ep) };
    }
    const net = mode === 'none' ? undefined : this.#d.records.find(mode);
    if (net) checkAliases(net, a.aliases);
    let ports: PortMapping[] = [];
    if (net) {
      const wanted = [...(a.ports ?? [])];
      if (a.publishAll) {
        for (const key of req.exposedPorts ?? []) {
          const m = exposedToMapping(key);
          if (!wanted.some((w) => w.containerPort === m.containerPort && w.protocol === m.protocol)) wanted.push(m);
        }
      }
      if (a.ipAddress) checkAddress(net, a.ipAddress);
      ports = await assignHostPorts(wanted, this.#takenPorts());
    }
    const more: Array<{ net: NetworkRecord; aliases: string[]; ipAddress?: string }> = [];
    const seen = new Set(net ? [net.id] : []);
    for (const x of extra) {
      const n = this.#d.records.find(x.network);
      if (seen.has(n.id)) throw berthError('InvalidArgument', `container ${ep.name} names network ${n.name} twice`);
      seen.add(n.id);
      checkAliases(n, x.aliases);
      if (x.ipAddress) checkAddress(n, x.ipAddress);
      more.push({ net: n, aliases: x.aliases ?? [], ipAddress: x.ipAddress });
    }
    this.#inflight.set(req.containerId, { networkIds: [...seen], ports });
    return { ep, net, ports, more };
  }

  #takenPorts(): PortMapping[] {
    return [...this.#d.store.listAttachments().flatMap((x) => x.ports), ...[...this.#inflight.values()].flatMap((x) => x.ports)];
  }

  /** Two phases, like setup: plugins run outside the lock, records change under it. */
  async teardown(ctx: Ctx, containerId: string): Promise<void> {
    const ep = await this.#d.serial(async () => {
      if (this.#inflight.has(containerId)) throw berthError('Conflict', `network of container ${containerId.slice(0, 12)} is being set up or torn down`);
      const found = this.#d.store.getEndpoint(containerId);
      if (found) this.#inflight.set(containerId, { networkIds: [], ports: [] });
      return found;
    });
    if (!ep) return;
    try {
      const errors = await this.release(ctx, ep);
      await this.#d.serial(() => this.forget(ctx, ep, errors));
    } finally {
      this.#inflight.delete(containerId);
    }
  }

  /** Undo everything plugins and setup did on the host; returns the errors instead of stopping at one. */
  async release(ctx: Ctx, ep: EndpointRecord): Promise<unknown[]> {
    const errors: unknown[] = [];
    // The files need nothing of the plugins: removed beside them.
    const files = ep.mode.startsWith('container:') ? undefined : removeTree(ep.dir).catch((err) => errors.push(err));
    for (const att of this.#d.store.listAttachments({ containerId: ep.containerId }).reverse()) {
      await this.#d.attacher.detach(ctx, ep, att).catch((err) => errors.push(err));
    }
    if (!ep.mode.startsWith('container:') && ep.mode !== 'host') {
      // Only a namespace given by the caller had the loopback plugin run in it.
      if (ep.ownsNetns) await this.#d.netns.remove(ctx, ep.containerId).catch((err) => errors.push(err));
      else await this.#d.cni.delCached(ctx, 'berth-loopback', ep.containerId, 'lo', liveNetns(ep.netnsPath)).catch((err) => errors.push(err));
    }
    await files;
    return errors;
  }

  /** Drop the records and tell the peers. Leftovers of failed steps are swept by the next reconcile. */
  async forget(ctx: Ctx, ep: EndpointRecord, errors: unknown[]): Promise<void> {
    const networkIds = this.#d.store.listAttachments({ containerId: ep.containerId }).map((x) => x.networkId);
    this.#d.store.deleteEndpoint(ep.containerId);
    await this.#d.files.refreshPeers(ep.containerId, networkIds, this.busy).catch((err) => errors.push(err));
    if (errors.length) {
      ctx.log.warn('container network teardown incomplete; leftovers are swept at the next start', { containerId: ep.containerId, errors: errors.map(String) });
      throw wrap(errors[0], `tear down network of container ${ep.containerId.slice(0, 12)}`);
    }
  }
}
