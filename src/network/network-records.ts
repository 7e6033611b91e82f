import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Ctx } from '../core/context.ts';
import { cleanupCtx } from '../core/context.ts';
import { berthError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { AttachmentRecord, NetworkRecord, NetworkStore } from '../metadata/networks.ts';
import type { NetworkConfig } from './config.ts';
import { cniNameOf } from './conflist.ts';
import { DEFAULT_NETWORK } from './endpoint-files.ts';
import { run } from './exec.ts';
import { routeLocalnetPath } from './host-nat.ts';
import { removeStaleRules } from './leaks.ts';
import { hostNetworks, hostRoutes, matchesFilters, networkInfo, PREDEFINED, pseudoNetworks } from './inspect.ts';
import { firstHost, formatSubnet, overlaps, parseSubnet, pickSubnet, validateGateway, type Subnet } from './ipnet.ts';
import type { CreateNetworkRequest, NetworkFilters, NetworkInfo } from './types.ts';

/**
 * Network records and their address space: the default `bridge` network
 * kept in step with config, user networks created with a bridge name and a
 * subnet (given, or the next free one of the pool past the host's routes)
 * that overlaps no other, inspect/ls, and removal of unused networks with
 * their bridge and IPAM data. Mutations expect the caller's lock; a network
 * is in use while an attachment, or a setup in flight (`inflightUsers`),
 * holds it.
 */
export interface NetworkRecordsDeps {
  store: NetworkStore;
  config: NetworkConfig;
  ipamDir: string;
  /** Containers between the phases of a setup or teardown that joins `networkId`. */
  inflightUsers(networkId: string): string[];
}

const BRIDGE_NAME_OPTION = 'com.docker.network.bridge.name';

export class NetworkRecords {
  readonly #d: NetworkRecordsDeps;

  constructor(deps: NetworkRecordsDeps) {
    this.#d = deps;
  }

  /** Create or update the default `bridge` network from config. */
  ensureDefault(): void {
    const subnet = parseSubnet(this.#d.config.subnet);
    const gateway = this.#d.config.gateway || firstHost(subnet);
    validateGateway(subnet, gateway);
    const existing = this.#d.store.findNetwork(DEFAULT_NETWORK);
    if (existing && existing.bridge === this.#d.config.bridge && existing.subnet === formatSubnet(subnet) && existing.gateway === gateway) return;
    const rec: NetworkRecord = {
      id: existing?.id ?? newId(),
      name: DEFAULT_NETWORK,
      driver: 'bridge',
      bridge: this.#d.config.bridge,
      subnet: formatSubnet(subnet),
      gateway,
      internal: false,
      labels: {},
      options: { [BRIDGE_NAME_OPTION]: this.#d.config.bridge, 'com.docker.network.bridge.default_bridge': 'true' },
      createdAt: existing?.createdAt ?? new Date().toISOString(),
    };
    this.#d.store.db.transaction(() => {
      if (existing) {
        if (this.#d.store.listAttachments({ networkId: existing.id }).length) return;
        this.#d.store.deleteNetwork(existing.id);
      }
      this.#checkOverlap(subnet, rec.bridge);
      this.#d.store.createNetwork(rec);
    });
  }

  async create(ctx: Ctx, req: CreateNetworkRequest): Promise<NetworkInfo> {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(req.name ?? '')) throw berthError('InvalidArgument', `invalid network name "${req.name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    // PermissionDenied, as dockerd answers 403 for what it never does to its predefined networks and networks in use.
    if (PREDEFINED.has(req.name)) throw berthError('PermissionDenied', `${req.name} is a pre-defined network and cannot be created`);
    const driver = req.driver || 'bridge';
    if (driver !== 'bridge') throw berthError('InvalidArgument', `network driver "${driver}" is not supported (only "bridge")`);
    if (this.#d.store.findNetwork(req.name)?.name === req.name) throw berthError('AlreadyExists', `network with name ${req.name} already exists`);
    const id = newId();
    // Only the options given are kept (and shown): compose compares them with its file's and recreates a network that differs.
    const options = { ...(req.options ?? {}) };
    const bridge = options[BRIDGE_NAME_OPTION] || `br-${id.slice(0, 12)}`;
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(bridge)) throw berthError('InvalidArgument', `invalid bridge name "${bridge}": at most 15 characters of [A-Za-z0-9_.-]`);
    // The bridge plugin would only fail at the first container; say it now.
    const link = await run(ctx, 'ip', ['-j', '-d', 'link', 'show', 'dev', bridge], { allowFail: true });
    if (link.code === 0 && !/"info_kind":"bridge"/.test(link.stdout)) throw berthError('Conflict', `bridge name ${bridge}: a host interface of that name exists and is not a bridge`);
    const hostBridge = link.code === 0;
    let subnet;
    if (req.subnet) {
      subnet = parseSubnet(req.subnet);
      this.#checkOverlap(subnet, bridge);
      await checkHostOverlap(ctx, subnet, hostBridge ? bridge : undefined);
    } else {
      if (req.gateway) throw berthError('InvalidArgument', 'a --gateway needs a --subnet');
      const used = this.#d.store.listNetworks().map((n) => parseSubnet(n.subnet));
      used.push(...(await hostRoutes(ctx)));
      subnet = pickSubnet(parseSubnet(this.#d.config.subnetPool), this.#d.config.poolSize, used);
      if (!subnet) throw berthError('ResourceExhausted', `no free subnet left in pool ${this.#d.config.subnetPool}`);
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
      // As libnetwork's BridgeIfaceCreator: a bridge that exists already is the host's, and stays.
      ...(hostBridge ? { hostBridge: { hadGateway: await hasAddress(ctx, bridge, gateway), routeLocalnet: await readRouteLocalnet(bridge) } } : {}),
    };
    this.#d.store.db.transaction(() => {
      this.#checkOverlap(subnet, bridge);
      this.#d.store.createNetwork(rec);
    });
    ctx.log.info('network created', { network: rec.name, id, subnet: rec.subnet, bridge });
    return networkInfo(this.#d.store, rec);
  }

  inspect(ref: string): NetworkInfo {
    const pseudo = pseudoNetworks(this.#d.store).find((p) => p.name === ref || p.id === ref || (ref.length >= 3 && p.id.startsWith(ref)));
    return networkInfo(this.#d.store, pseudo ?? this.find(ref));
  }

  list(filters: NetworkFilters = {}): NetworkInfo[] {
    return [...this.#d.store.listNetworks(), ...pseudoNetworks(this.#d.store)].filter((n) => matchesFilters(n, filters)).map((n) => networkInfo(this.#d.store, n));
  }

  async remove(ctx: Ctx, ref: string): Promise<void> {
    const n = PREDEFINED.has(ref) ? { name: ref } : this.find(ref);
    if (PREDEFINED.has(n.name)) throw berthError('PermissionDenied', `${n.name} is a pre-defined network and cannot be removed`);
    await this.#removeUnused(ctx, n as NetworkRecord);
  }

  async prune(ctx: Ctx, filters: NetworkFilters = {}): Promise<string[]> {
    const removed: string[] = [];
    for (const n of this.#d.store.listNetworks()) {
      if (PREDEFINED.has(n.name) || !matchesFilters(n, filters)) continue;
      if (this.#d.store.listAttachments({ networkId: n.id }).length || this.#d.inflightUsers(n.id).length) continue;
      await this.#removeUnused(ctx, n);
      removed.push(n.name);
    }
    return removed;
  }

  async #removeUnused(ctx: Ctx, n: NetworkRecord): Promise<void> {
    const users = this.#d.store.listAttachments({ networkId: n.id });
    for (const containerId of this.#d.inflightUsers(n.id)) users.push({ containerId } as AttachmentRecord);
    if (users.length) {
      throw berthError('PermissionDenied', `error while removing network: network ${n.name} id ${n.id} has active endpoints (${users.map((u) => this.#d.store.getEndpoint(u.containerId)?.name ?? u.containerId.slice(0, 12)).join(', ')})`);
    }
    this.#d.store.deleteNetwork(n.id);
    // The bridge plugin creates bridges but never deletes them; a host's bridge keeps all but the gateway address it was given.
    if (!n.hostBridge) await run(cleanupCtx(ctx), 'ip', ['link', 'del', n.bridge], { allowFail: true });
    else {
      if (!n.hostBridge.hadGateway) await run(cleanupCtx(ctx), 'ip', ['addr', 'del', `${n.gateway}/${parseSubnet(n.subnet).prefix}`, 'dev', n.bridge], { allowFail: true });
      // Published loopback ports set it (host-nat.ts); the host's bridge gets back what it had.
      if (n.hostBridge.routeLocalnet !== undefined) {
        await writeFile(routeLocalnetPath(n.bridge), n.hostBridge.routeLocalnet).catch((err) => ctx.log.warn('cannot restore route_localnet of a host bridge', { bridge: n.bridge, err }));
      }
    }
    await rm(path.join(this.#d.ipamDir, cniNameOf(n.id)), { recursive: true, force: true });
    // No container is on the network any more: whatever rule still names it (a teardown cut short) is stale.
    await removeStaleRules(cleanupCtx(ctx), new Set([cniNameOf(n.id)]), () => false);
    ctx.log.info('network removed', { network: n.name, id: n.id });
  }

  /** A network record by name, id or id prefix; NotFound otherwise. */
  find(ref: string): NetworkRecord {
    const n = this.#d.store.findNetwork(ref);
    if (!n) throw berthError('NotFound', `network ${ref} not found`);
    return n;
  }

  #checkOverlap(subnet: Subnet, bridge: string): void {
    for (const n of this.#d.store.listNetworks()) {
      if (overlaps(parseSubnet(n.subnet), subnet)) throw berthError('Conflict', `Pool overlaps with other one on this address space: ${formatSubnet(subnet)} overlaps network ${n.name} (${n.subnet})`);
      if (n.bridge === bridge) throw berthError('Conflict', `bridge ${bridge} is already used by network ${n.name}`);
    }
  }
}

/**
 * An explicit subnet may not overlap the host's routes and addresses (old
 * libnetwork's CheckRouteOverlaps did this; its words), except those on the
 * host bridge the network is to use: they are that bridge's own.
 */
async function checkHostOverlap(ctx: Ctx, subnet: Subnet, ownBridge: string | undefined): Promise<void> {
  const hit = (await hostNetworks(ctx)).find((h) => h.dev !== ownBridge && overlaps(h.subnet, subnet));
  if (hit) {
    throw berthError('Conflict', `requested network ${formatSubnet(subnet)} overlaps with existing network: the host's ${formatSubnet(hit.subnet)}${hit.dev ? ` on ${hit.dev}` : ''}`);
  }
}

async function hasAddress(ctx: Ctx, dev: string, ip: string): Promise<boolean> {
  const r = await run(ctx, 'ip', ['-4', '-j', 'addr', 'show', 'dev', dev], { allowFail: true });
  return r.code === 0 && r.stdout.includes(`"local":"${ip}"`);
}

/** docker keeps network-scoped aliases to user networks. */
export function checkAliases(net: NetworkRecord, aliases: string[] | undefined): void {
  if ((aliases?.length ?? 0) > 0 && net.name === DEFAULT_NETWORK) throw berthError('InvalidArgument', 'network-scoped aliases are supported only for containers on user-defined networks');
}

/** The bridge's route_localnet now; undefined when it cannot be read. */
async function readRouteLocalnet(bridge: string): Promise<string | undefined> {
  const v = (await readFile(routeLocalnetPath(bridge), 'utf8').catch(() => '')).trim();
  return v === '0' || v === '1' ? v : undefined;
}
