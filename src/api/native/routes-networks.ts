import { berthError } from '../../core/errors.ts';
import type { NetworkFilters, NetworkService } from '../../network/types.ts';
import type { ApiRequest, Router } from './server.ts';

/**
 * Network endpoints of the native API (docker's shapes):
 *   GET    /networks?filters={"name":["x"]}   -> NetworkInfo[]
 *   POST   /networks/create {Name, Driver, Internal, Labels, Options, IPAM: {Config: [{Subnet, Gateway}]}} -> {Id, Warning}
 *   GET    /networks/:id                       -> NetworkInfo
 *   DELETE /networks/:id                       -> 204
 *   POST   /networks/prune?filters=...         -> {NetworksDeleted: string[]}
 *   POST   /networks/:id/connect {Container, EndpointConfig: {Aliases, IPAMConfig: {IPv4Address}}}
 *   POST   /networks/:id/disconnect {Container, Force}
 *   GET    /containers/:id/port?port=80/tcp    -> PortMapping[]
 *
 * connect, disconnect and port find the container by its network state
 * (id, id prefix or name of a container that is running). `resolveContainer`
 * is the hook for the container service: given, it maps any container
 * reference to its id first, so stopped containers get docker's errors.
 */
export interface NetworkRouteOptions {
  resolveContainer?: (req: ApiRequest, ref: string) => Promise<string>;
  /**
   * Given, connect and disconnect go through the container service, which
   * records them so they hold across restarts and apply to stopped
   * containers, as in docker.
   */
  containers?: {
    connect(req: ApiRequest, container: string, r: { network: string; aliases?: string[]; ipAddress?: string }): Promise<void>;
    disconnect(req: ApiRequest, container: string, r: { network: string; force?: boolean }): Promise<void>;
  };
}

interface CreateBody {
  Name?: string;
  Driver?: string;
  Internal?: boolean;
  Labels?: Record<string, string>;
  Options?: Record<string, string>;
  IPAM?: { Config?: Array<{ Subnet?: string; Gateway?: string }> };
}

export function registerNetworkRoutes(router: Router, svc: NetworkService, opts: NetworkRouteOptions = {}): void {
  const container = async (req: ApiRequest, ref: string | undefined) => {
    if (!ref) throw berthError('InvalidArgument', 'a container is required');
    return opts.resolveContainer ? opts.resolveContainer(req, ref) : ref;
  };
  router.add('GET', '/networks', async (req) => svc.listNetworks(req.ctx, filtersOf(req)));
  router.add('POST', '/networks/create', async (req) => {
    const b = (await req.json<CreateBody>()) ?? {};
    const configs = b.IPAM?.Config ?? [];
    if (configs.length > 1) throw berthError('InvalidArgument', 'only one IPAM config (one subnet) per network is supported');
    const info = await svc.createNetwork(req.ctx, {
      name: b.Name ?? '',
      driver: b.Driver,
      internal: b.Internal,
      labels: b.Labels,
      options: b.Options,
      subnet: configs[0]?.Subnet,
      gateway: configs[0]?.Gateway,
    });
    return { Id: info.Id, Warning: '' };
  });
  router.add('POST', '/networks/prune', async (req) => ({ NetworksDeleted: await svc.pruneNetworks(req.ctx, filtersOf(req)) }));
  router.add('GET', '/networks/:id', async (req) => svc.inspectNetwork(req.ctx, req.params.id));
  router.add('DELETE', '/networks/:id', async (req) => {
    await svc.removeNetwork(req.ctx, req.params.id);
  });
  router.add('POST', '/networks/:id/connect', async (req) => {
    const b = (await req.json<{ Container?: string; EndpointConfig?: { Aliases?: string[]; IPAMConfig?: { IPv4Address?: string } } }>()) ?? {};
    if (opts.containers) {
      if (!b.Container) throw berthError('InvalidArgument', 'a container is required');
      const r = { network: req.params.id, aliases: b.EndpointConfig?.Aliases, ipAddress: b.EndpointConfig?.IPAMConfig?.IPv4Address || undefined };
      return opts.containers.connect(req, b.Container, r);
    }
    await svc.connect(req.ctx, {
      container: await container(req, b.Container),
      network: req.params.id,
      aliases: b.EndpointConfig?.Aliases,
      ipAddress: b.EndpointConfig?.IPAMConfig?.IPv4Address || undefined,
    });
  });
  router.add('POST', '/networks/:id/disconnect', async (req) => {
    const b = (await req.json<{ Container?: string; Force?: boolean }>()) ?? {};
    if (opts.containers) {
      if (!b.Container) throw berthError('InvalidArgument', 'a container is required');
      return opts.containers.disconnect(req, b.Container, { network: req.params.id, force: b.Force });
    }
    await svc.disconnect(req.ctx, { container: await container(req, b.Container), network: req.params.id, force: b.Force });
  });
  router.add('GET', '/containers/:id/port', async (req) => svc.ports(req.ctx, await container(req, req.params.id), req.query.get('port') ?? undefined));
}

function filtersOf(req: ApiRequest): NetworkFilters {
  const raw = req.query.get('filters');
  if (!raw) return {};
  let f: Record<string, unknown>;
  try {
    f = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    throw berthError('InvalidArgument', `invalid filters: ${raw}`);
  }
  const out: NetworkFilters = {};
  for (const [k, v] of Object.entries(f)) {
    // docker sends both {"name":["x"]} and {"name":{"x":true}}
    const vals = Array.isArray(v) ? v.map(String) : v && typeof v === 'object' ? Object.keys(v) : [String(v)];
    if (k === 'name' || k === 'id' || k === 'driver' || k === 'label' || k === 'type') out[k] = vals;
    else throw berthError('InvalidArgument', `invalid filter '${k}'`);
  }
  return out;
}
