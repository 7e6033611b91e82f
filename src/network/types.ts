import type { NetworkAttachment, PortMapping } from '../core/containers.ts';
import type { Ctx } from '../core/context.ts';

/**
 * The network service: networks as docker users know them, wired the way
 * Kubernetes runtimes wire them (a netns file per container, CNI bridge +
 * host-local plugins; NAT and published ports as one iptables-restore per
 * container, see host-nat.ts). The container service, the CRI (for pod
 * sandboxes) and the front doors call it; it knows nothing of runc.
 *
 * Vocabulary
 * - network: a bridge with a subnet. `bridge` is the default network
 *   (config [network] bridge/subnet); user networks get `br-<id12>`.
 *   Networks are host-wide, not per namespace, as in docker.
 * - endpoint: a container's network state: its netns file and the
 *   hosts / resolv.conf / hostname files the runtime bind-mounts.
 * - attachment: an endpoint's interface (eth0, eth1, ...) on one network,
 *   with its address, aliases and published ports.
 *
 * Lifecycle, from the container service's point of view
 *   start:  const net = await network.setupContainer(ctx, { containerId, namespace, name, hostname, attachment });
 *           // OCI spec: linux.namespaces network path = net.netnsPath (none for host mode),
 *           // bind-mount net.hostsPath, net.resolvConfPath, net.hostnamePath (rw, like docker)
 *           // or, to create the task while the plugins run:
 *           const p = await network.beginSetup(ctx, req);   // netns and files exist
 *           const [task, net] = await Promise.all([runtimeCreate(p.netnsPath, p.hostsPath, ...), p.done]);
 *           // start the process only after p.done
 *   stop / start failure:  await network.teardownContainer(ctx, containerId);
 *   daemon start:  await network.reconcile(ctx, runningContainerIds);
 * Published ports and addresses live from setup to teardown (docker
 * releases them when a container stops, and so does berth).
 *
 * Name resolution: maintained /etc/hosts files, not an embedded DNS server.
 * On user networks every container's hosts file lists the other containers
 * of its networks by name, short id and --network-alias; the files are
 * rewritten in place (same inode, so bind mounts see it) whenever a
 * container comes or goes. The default `bridge` network has no name
 * resolution, as in docker.
 *
 * Errors: NotFound (unknown network or container), InvalidArgument (bad
 * subnet, alias on the default network, ...), Conflict (overlapping subnet,
 * port already allocated, already connected), PermissionDenied (creating or
 * removing a pre-defined network, removing one in use: dockerd's 403),
 * FailedPrecondition (missing CNI plugin), and the
 * plugin's own message for CNI failures. Every failing call leaves nothing
 * half-wired: setup rolls back its netns, CNI attachments and files.
 */
export interface NetworkService {
  createNetwork(ctx: Ctx, req: CreateNetworkRequest): Promise<NetworkInfo>;
  /** By id, name or unique id prefix. NotFound: "network X not found". */
  inspectNetwork(ctx: Ctx, ref: string): Promise<NetworkInfo>;
  listNetworks(ctx: Ctx, filters?: NetworkFilters): Promise<NetworkInfo[]>;
  /** Conflict when containers are attached; FailedPrecondition for `bridge`, `host`, `none`. */
  removeNetwork(ctx: Ctx, ref: string): Promise<void>;
  /** Remove user networks without containers; returns their names. */
  pruneNetworks(ctx: Ctx, filters?: NetworkFilters): Promise<string[]>;

  setupContainer(ctx: Ctx, req: SetupRequest): Promise<SetupResult>;
  /**
   * setupContainer in two steps: resolves once the netns file and the
   * hosts, resolv.conf and hostname files exist (all an OCI runtime needs to
   * create the task), with `done` settling when interfaces, addresses, NAT
   * and the final hosts file are in place, or rejecting after its rollback
   * with setupContainer's errors. The container's process must not start
   * before `done`; teardownContainer must not be called before it settles.
   */
  beginSetup(ctx: Ctx, req: SetupRequest): Promise<PendingSetup>;
  /** Idempotent: a container without network state is a no-op. */
  teardownContainer(ctx: Ctx, containerId: string): Promise<void>;
  /** Attach a running container (one with an endpoint) to another network. */
  connect(ctx: Ctx, req: ConnectRequest): Promise<AttachmentInfo>;
  disconnect(ctx: Ctx, req: { container: string; network: string; force?: boolean }): Promise<void>;
  /** The container's network state, or undefined when it has none. */
  containerNetwork(ctx: Ctx, containerId: string): Promise<SetupResult | undefined>;
  /** Published ports of a container (`berth port`), optionally one "80/tcp" or "80". */
  ports(ctx: Ctx, container: string, filter?: string): Promise<PortMapping[]>;
  /**
   * At daemon start: tear down every endpoint whose container is not in
   * `liveContainerIds`, then sweep leftovers (cached CNI attachments,
   * host-local allocations, iptables rules and chains, netns files) that
   * belong to no live container.
   */
  reconcile(ctx: Ctx, liveContainerIds: Iterable<string>): Promise<ReconcileReport>;
}

export interface CreateNetworkRequest {
  name: string;
  /** Only "bridge". */
  driver?: string;
  /** IPv4 CIDR; picked from [network] subnet_pool when absent. */
  subnet?: string;
  gateway?: string;
  internal?: boolean;
  labels?: Record<string, string>;
  /** Driver options; `com.docker.network.bridge.name` sets the bridge name. */
  options?: Record<string, string>;
}

export interface NetworkFilters {
  name?: string[];
  id?: string[];
  driver?: string[];
  /** "key" or "key=value". */
  label?: string[];
  /** "custom" or "builtin". */
  type?: string[];
}

/** docker's network inspect JSON. */
export interface NetworkInfo {
  Name: string;
  Id: string;
  Created: string;
  Scope: 'local';
  Driver: string;
  EnableIPv6: false;
  IPAM: { Driver: 'default'; Options: Record<string, string>; Config: Array<{ Subnet: string; Gateway: string }> };
  Internal: boolean;
  Attachable: boolean;
  Ingress: false;
  ConfigFrom: { Network: string };
  ConfigOnly: false;
  Containers: Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }>;
  Options: Record<string, string>;
  Labels: Record<string, string>;
}

export interface SetupRequest {
  containerId: string;
  namespace: string;
  /** Container name (docker's, without the leading slash). */
  name: string;
  /** Defaults to the first 12 characters of the id (the host's name in host mode). */
  hostname?: string;
  domainname?: string;
  attachment: NetworkAttachment;
  /** The image's ExposedPorts keys ("80/tcp"), published on free host ports when `attachment.publishAll`. */
  exposedPorts?: string[];
  /**
   * Further networks to join as eth1, eth2, ... (docker's `network connect`
   * on a stopped container takes effect here at the next start; compose's
   * several networks). Only with a bridge or user network mode.
   */
  moreNetworks?: Array<{ network: string; aliases?: string[]; ipAddress?: string }>;
  /** Use this netns (e.g. a CRI pod's) instead of creating one; it is not removed at teardown. */
  netnsPath?: string;
}

export interface AttachmentInfo {
  network: string;
  networkId: string;
  ifName: string;
  ip: string;
  prefixLen: number;
  gateway: string;
  mac: string;
  aliases: string[];
}

export interface SetupResult {
  /** none | host | bridge | <network> | container:<id>. */
  mode: string;
  /** The netns to run the container in; undefined for host networking. */
  netnsPath?: string;
  hostname: string;
  hostsPath: string;
  resolvConfPath: string;
  hostnamePath: string;
  interfaces: AttachmentInfo[];
  /** Published ports with the host ports actually used. */
  ports: PortMapping[];
}

/** What beginSetup knows at once: everything of a SetupResult but the interfaces and ports. */
export interface PendingSetup extends Omit<SetupResult, 'interfaces' | 'ports'> {
  done: Promise<SetupResult>;
}

export interface ConnectRequest {
  /** Container id, id prefix or name (of a container with network state). */
  container: string;
  network: string;
  aliases?: string[];
  ipAddress?: string;
}

export interface ReconcileReport {
  endpoints: number;
  cniAttachments: number;
  allocations: number;
  iptablesRules: number;
  netns: number;
  /** Directories of hosts/resolv.conf/hostname files written for a setup that a crash cut short. */
  fileDirs: number;
}
