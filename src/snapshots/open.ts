import { join } from 'node:path';
import { mkdir, readdir, rmdir } from 'node:fs/promises';
import type { Ctx } from '../core/context.ts';
import type { MetadataDb } from '../metadata/db.ts';
import { applyLayer } from './apply.ts';
import type { ApplyOptions, ApplyResult } from './apply.ts';
import { unmountAll, withMounts } from './mount.ts';
import { NativeSnapshotter } from './native.ts';
import { OverlaySnapshotter } from './overlay.ts';
import type { Mount, Snapshotter } from './types.ts';

export type SnapshotterName = 'overlayfs' | 'native';

export interface SnapshotsService {
  snapshotter: Snapshotter;
  /** The layer applier (see apply.ts). */
  applyLayer(ctx: Ctx, dir: string, stream: AsyncIterable<Uint8Array>, opts: ApplyOptions): Promise<ApplyResult>;
  /** `mounts` as a directory for the duration of `fn`: used in place for a read-write bind, else mounted on a temp dir. */
  withMounted<T>(ctx: Ctx, mounts: Mount[], fn: (dir: string) => Promise<T>): Promise<T>;
}

/**
 * Open the configured snapshotter under `<root>/snapshots/<name>` (removing
 * what a crash left behind) with the applier and a mount helper whose temp
 * mount points live in `<root>/snapshots/mounts` (any left mounted by a
 * crash are unmounted first). For daemon/ to wire:
 *
 *   const snaps = await openSnapshots(ctx, 'overlayfs', { root: cfg.root, db });
 *   new ImageService({ snapshotter: snaps.snapshotter, applyLayer: snaps.applyLayer, withMounted: snaps.withMounted, ... });
 */
export async function openSnapshots(ctx: Ctx, name: SnapshotterName, opts: { root: string; db: MetadataDb }): Promise<SnapshotsService> {
  const root = join(opts.root, 'snapshots', name);
  const mounts = join(opts.root, 'snapshots', 'mounts');
  await mkdir(mounts, { recursive: true, mode: 0o700 });
  // Temp mount points a crash left mounted: unmount before anything could remove what they show.
  for (const d of await readdir(mounts)) {
    await unmountAll(ctx, join(mounts, d));
    await rmdir(join(mounts, d));
  }
  const snapshotter = name === 'native' ? await NativeSnapshotter.open(ctx, { root, db: opts.db }) : await OverlaySnapshotter.open(ctx, { root, db: opts.db });
  return {
    snapshotter,
    applyLayer,
    withMounted: (ctx, m, fn) => withMounts(ctx, m, mounts, fn),
  };
}
