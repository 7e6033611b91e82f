import { join } from 'node:path';
import { mkdir, readdir, rmdir } from 'node:fs/promises';
import type { Ctx } from '../core/context.ts';
import type { MetadataDb } from '../metadata/db.ts';
import { availableParallelism } from 'node:os';
import { applyLayer } from './apply.ts';
import { ApplierPool } from './apply-pool.ts';
import type { ApplyOptions, ApplyResult } from './apply.ts';
import { unmountAll, withMounts } from './mount.ts';
import { NativeSnapshotter } from './native.ts';
import { OverlaySnapshotter } from './overlay.ts';
import type { Mount, Snapshotter } from './types.ts';

export type SnapshotterName = 'overlayfs' | 'native';

export interface SnapshotsService {
  snapshotter: Snapshotter;
  /** The layer applier (see apply.ts), in process or in worker threads (apply-pool.ts). */
  applyLayer(ctx: Ctx, dir: string, stream: AsyncIterable<Uint8Array>, opts: ApplyOptions & { handOver?: boolean }): Promise<ApplyResult>;
  /** `mounts` as a directory for the duration of `fn`: used in place for a read-write bind, else mounted on a temp dir. */
  withMounted<T>(ctx: Ctx, mounts: Mount[], fn: (dir: string) => Promise<T>): Promise<T>;
  /** Stop the applier workers and close the snapshotter. */
  close(): Promise<void>;
}

/**
 * Open the configured snapshotter under `<root>/snapshots/<name>` (removing
 * what a crash left behind) with the applier and a mount helper whose temp
 * mount points live in `<root>/snapshots/mounts` (any left mounted by a
 * crash are unmounted first). The applier runs in process unless
 * `applierWorkers` > 0: measured on an 8-layer 530 MB image, in process
 * was faster and used less CPU (the pool copies every chunk to a worker);
 * workers keep the event loop free during a pull. For daemon/ to wire:
 *
 *   const snaps = await openSnapshots(ctx, 'overlayfs', { root: cfg.root, db });
 *   new ImageService({ snapshotter: snaps.snapshotter, applyLayer: snaps.applyLayer, withMounted: snaps.withMounted, ... });
 *   ...
 *   await snaps.close();
 */
export async function openSnapshots(ctx: Ctx, name: SnapshotterName, opts: { root: string; db: MetadataDb; applierWorkers?: number }): Promise<SnapshotsService> {
  const root = join(opts.root, 'snapshots', name);
  const mounts = join(opts.root, 'snapshots', 'mounts');
  await mkdir(mounts, { recursive: true, mode: 0o700 });
  // Temp mount points a crash left mounted: unmount before anything could remove what they show.
  for (const d of await readdir(mounts)) {
    await unmountAll(ctx, join(mounts, d));
    await rmdir(join(mounts, d));
  }
  const snapshotter = name === 'native' ? await NativeSnapshotter.open(ctx, { root, db: opts.db }) : await OverlaySnapshotter.open(ctx, { root, db: opts.db });
  const workers = opts.applierWorkers ?? 0;
  const pool = workers > 0 ? new ApplierPool({ size: Math.min(workers, availableParallelism()) }) : undefined;
  return {
    snapshotter,
    applyLayer: (ctx, dir, stream, o) => (pool ? pool.apply(ctx, dir, stream, o) : applyLayer(ctx, dir, stream, o)),
    withMounted: (ctx, m, fn) => withMounts(ctx, m, mounts, fn),
    async close() {
      await pool?.close();
      await snapshotter.close();
    },
  };
}
