import { berthError } from '../../core/errors.ts';
import { parseFilters } from '../../core/filters.ts';
import type { NetworkFilters, NetworkService } from '../../network/types.ts';
import { connectRequest, createNetworkRequest, networkConnectSchema, networkCreateSchema, networkDisconnectSchema, networkFilters, type NetworkConnectBody, type NetworkCreateBody } from '../http/network-bodies.ts';
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

export function registerNetworkRoutes(router: Router, svc: NetworkService, opts: NetworkRouteOptions = {}): void {
  const container = async (req: ApiRequest, ref: string | undefined) => {
    if (!ref) throw berthError('InvalidArgument', 'a container is required');
    return opts.resolveContainer ? opts.resolveContainer(req, ref) : ref;
  };
  router.add('GET', '/networks', async (req) => svc.listNetworks(req.ctx, filtersOf(req)));
  router.add('POST', '/networks/create', async (req) => {
    const info = await svc.createNetwork(req.ctx, createNetworkRequest((await req.json<NetworkCreateBody>(networkCreateSchema)) ?? {}));
    return { Id: info.Id, Warning: '' };
  });
  router.add('POST', '/networks/prune', async (req) => ({ NetworksDeleted: await svc.pruneNetworks(req.ctx, filtersOf(req)) }));
  router.add('GET', '/networks/:id', async (req) => svc.inspectNetwork(req.ctx, req.params.id));
  router.add('DELETE', '/networks/:id', async (req) => {
    await svc.removeNetwork(req.ctx, req.params.id);
  });
  router.add('POST', '/networks/:id/connect', async (req) => {
    const { container: ref, ...r } = connectRequest(req.params.id, (await req.json<NetworkConnectBody>(networkConnectSchema)) ?? {});
    if (opts.containers) return opts.containers.connect(req, ref, r);
    await svc.connect(req.ctx, { container: await container(req, ref), ...r });
  });
  router.add('POST', '/networks/:id/disconnect', async (req) => {
    const b = (await req.json<{ Container?: string; Force?: boolean }>(networkDisconnectSchema)) ?? {};
    if (opts.containers) {
      if (!b.Container) throw berthError('InvalidArgument', 'a container is required');
      return opts.containers.disconnect(req, b.Container, { network: req.params.id, force: b.Force });
    }
    await svc.disconnect(req.ctx, { container: await container(req, b.Container), network: req.params.id, force: b.Force });
  });
  router.add('GET', '/containers/:id/port', async (req) => svc.ports(req.ctx, await container(req, req.params.id), req.query.get('port') ?? undefined));
}

function filtersOf(req: ApiRequest): NetworkFilters {
  return networkFilters(parseFilters(req.query.get('filters')));
}
