import { parseFilters } from '../../core/filters.ts';
import { listVolumes, type Volume, type VolumeService } from '../../runtime/volumes/volumes.ts';
import { flag, ok, type DockerRouter } from './server.ts';
import { volumeCreateSchema } from './bodies.ts';

/**
 * Volume endpoints of the Docker API onto berth's volume service: create,
 * list (filters name, label, dangling, driver), inspect, remove and prune
 * (anonymous volumes only unless `all=true`, as since API 1.42).
 */
interface VolumeCreateBody {
  Name?: string;
  Driver?: string;
  DriverOpts?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
}

/** docker's Volume object. */
export function volumeView(v: Volume) {
  return { Name: v.name, Driver: v.driver, Mountpoint: v.mountpoint, CreatedAt: v.createdAt, Labels: v.labels, Scope: 'local', Options: v.options };
}

export function registerVolumeRoutes(router: DockerRouter, volumes: VolumeService): void {
  router.add('GET', '/volumes', async (req) => {
    const list = await listVolumes(req.ctx, volumes, parseFilters(req.query.get('filters')));
    return ok({ Volumes: list.map(volumeView), Warnings: [] });
  });

  router.add('POST', '/volumes/create', async (req) => {
    const b = (await req.json<VolumeCreateBody>(volumeCreateSchema)) ?? {};
    const v = await volumes.create(req.ctx, { name: b.Name || undefined, driver: b.Driver || undefined, labels: b.Labels ?? undefined, options: b.DriverOpts ?? undefined, anonymous: !b.Name });
    return ok(volumeView(v), 201);
  });

  router.add('POST', '/volumes/prune', async (req) => {
    const filters = parseFilters(req.query.get('filters'));
    const { removed } = await volumes.prune(req.ctx, { all: filters.all?.some((v) => v === 'true' || v === '1'), label: filters.label });
    return ok({ VolumesDeleted: removed, SpaceReclaimed: 0 });
  });

  router.add('GET', '/volumes/:name', async (req) => ok(volumeView(await volumes.inspect(req.ctx, req.params.name))));

  router.add('DELETE', '/volumes/:name', async (req) => {
    await volumes.remove(req.ctx, req.params.name, { force: flag(req.query.get('force')) });
    return undefined;
  });
}
