import { parseFilters } from '../../core/filters.ts';
import type { NetworkService } from '../../network/types.ts';
import type { ContainerService } from '../../runtime/containers/containers.ts';
import { connectRequest, createNetworkRequest, networkConnectSchema, networkCreateSchema, networkDisconnectSchema, networkFilters, type NetworkConnectBody, type NetworkCreateBody } from '../http/network-bodies.ts';
import { ok, type DockerRouter } from './server.ts';

/**
 * Network endpoints of the Docker API onto berth's network service, whose
 * views are already docker's. connect and disconnect go through the
 * container service, which records them so they hold for stopped
 * containers and across restarts, as in docker.
 */
export function registerNetworkRoutes(router: DockerRouter, network: NetworkService, containers: ContainerService): void {
  const filters = (raw: string | null) => networkFilters(parseFilters(raw));

  router.add('GET', '/networks', async (req) => ok(await network.listNetworks(req.ctx, filters(req.query.get('filters')))));

  router.add('POST', '/networks/create', async (req) => {
    const info = await network.createNetwork(req.ctx, createNetworkRequest((await req.json<NetworkCreateBody>(networkCreateSchema)) ?? {}));
    return ok({ Id: info.Id, Warning: '' }, 201);
  });

  router.add('POST', '/networks/prune', async (req) => ok({ NetworksDeleted: await network.pruneNetworks(req.ctx, filters(req.query.get('filters'))) }));

  router.add('GET', '/networks/:id', async (req) => ok(await network.inspectNetwork(req.ctx, req.params.id)));

  router.add('DELETE', '/networks/:id', async (req) => {
    await network.removeNetwork(req.ctx, req.params.id);
    return undefined;
  });

  router.add('POST', '/networks/:id/connect', async (req) => {
    const { container, ...r } = connectRequest(req.params.id, (await req.json<NetworkConnectBody>(networkConnectSchema)) ?? {});
    await containers.connectNetwork(req.ctx, container, r);
    return { status: 200 };
  });

  router.add('POST', '/networks/:id/disconnect', async (req) => {
    const b = (await req.json<{ Container?: string; Force?: boolean }>(networkDisconnectSchema)) ?? {};
    const { container } = connectRequest(req.params.id, { Container: b.Container });
    await containers.disconnectNetwork(req.ctx, container, { network: req.params.id, force: b.Force });
    return { status: 200 };
  });
}
