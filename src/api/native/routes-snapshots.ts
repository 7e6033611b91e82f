import type { Mount, SnapshotInfo, Usage } from '../../snapshots/types.ts';
import type { Ctx } from '../../core/context.ts';
import type { Router } from './server.ts';
import { byCodeUnit } from '../../core/order.ts';

/** What the snapshot routes call: the snapshotter, and a removal that spares what a container holds. */
export interface SnapshotRole {
  readonly name: string;
  walk(ctx: Ctx, fn: (info: SnapshotInfo) => void | Promise<void>): Promise<void>;
  stat(ctx: Ctx, key: string): Promise<SnapshotInfo>;
  usage(ctx: Ctx, key: string): Promise<Usage>;
  mounts(ctx: Ctx, key: string): Promise<Mount[]>;
  remove(ctx: Ctx, key: string): Promise<void>;
}

const view = (i: SnapshotInfo) => ({ name: i.name, kind: i.kind, parent: i.parent, labels: i.labels, createdAt: i.createdAt.toISOString(), updatedAt: i.updatedAt.toISOString() });

/**
 * Snapshots, ctr's `snapshots` view of the configured snapshotter (keys are
 * the snapshotter's own, global to every namespace):
 *   GET    /snapshots               -> {snapshotter, snapshots: [{name, kind, parent, labels, createdAt, updatedAt}]}
 *   GET    /snapshots/:key          -> {name, kind, parent, labels, createdAt, updatedAt}
 *   GET    /snapshots/:key/usage    -> {size, inodes}
 *   GET    /snapshots/:key/mounts   -> [{type, source, options}]
 *   DELETE /snapshots/:key          -> 204 (409 with children, 412 while a container holds it)
 */
export function registerSnapshotRoutes(router: Router, snapshots: SnapshotRole): void {
  router.add('GET', '/snapshots', async (req) => {
    const out: ReturnType<typeof view>[] = [];
    await snapshots.walk(req.ctx, (i) => void out.push(view(i)));
    return { snapshotter: snapshots.name, snapshots: out.sort((a, b) => byCodeUnit(a.name, b.name)) };
  });
  router.add('GET', '/snapshots/:key', async (req) => view(await snapshots.stat(req.ctx, req.params.key)));
  router.add('GET', '/snapshots/:key/usage', async (req) => snapshots.usage(req.ctx, req.params.key));
  router.add('GET', '/snapshots/:key/mounts', async (req) => snapshots.mounts(req.ctx, req.params.key));
  router.add('DELETE', '/snapshots/:key', async (req) => snapshots.remove(req.ctx, req.params.key));
}
