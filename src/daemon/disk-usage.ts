import type { BuildCacheRecord } from '../build/builder.ts';
import type { Ctx } from '../core/context.ts';
import type { ImageService } from '../images/service.ts';
import type { ContainerService } from '../runtime/containers/containers.ts';
import type { VolumeService } from '../runtime/volumes/volumes.ts';
import { diskUsage } from '../snapshots/usage.ts';
import type { Snapshotter } from '../snapshots/types.ts';

/** `system df`: what images, containers' writable layers, volumes and the build cache take on disk. Shapes follow docker's /system/df. */
export interface DiskUsageReport {
  Images: Array<{ Id: string; RepoTags: string[]; Size: number; Containers: number }>;
  Containers: Array<{ Id: string; Names: string[]; Image: string; State: string; SizeRw: number }>;
  Volumes: Array<{ Name: string; Mountpoint: string; UsageData: { Size: number; RefCount: number } }>;
  BuildCache: BuildCacheRecord[];
}

export async function diskUsageReport(ctx: Ctx, deps: { images: ImageService; containers: ContainerService; volumes: VolumeService; snapshotter: Snapshotter; buildCache?: (ctx: Ctx) => Promise<BuildCacheRecord[]> }): Promise<DiskUsageReport> {
  const images = (await deps.images.list(ctx, { all: true })).map((i) => ({ Id: i.Id, RepoTags: i.RepoTags, Size: i.Size, Containers: i.Containers }));
  const containers = [];
  for (const c of await deps.containers.list(ctx)) {
    // A container whose snapshot is already gone (being removed) takes nothing.
    const rw = await deps.snapshotter.usage(ctx, c.record.snapshotKey).catch(() => ({ size: 0 }));
    containers.push({ Id: c.record.id, Names: [`/${c.record.name}`], Image: c.record.imageName, State: c.state.status, SizeRw: rw.size });
  }
  const volumes = [];
  for (const v of await deps.volumes.list(ctx)) {
    const used = await diskUsage(ctx, v.mountpoint).catch(() => ({ size: 0 }));
    volumes.push({ Name: v.name, Mountpoint: v.mountpoint, UsageData: { Size: used.size, RefCount: deps.volumes.usedBy(ctx.namespace, v.name).length } });
  }
  return { Images: images, Containers: containers, Volumes: volumes, BuildCache: (await deps.buildCache?.(ctx)) ?? [] };
}
