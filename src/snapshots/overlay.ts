import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { removeTree } from '../core/remove-tree.ts';
import { join } from 'node:path';
import type { Ctx } from '../core/context.ts';
import { berthError } from '../core/errors.ts';
import type { MetadataDb } from '../metadata/db.ts';
import { mountAll, unmountAll } from './mount.ts';
import { SnapshotStoreBase } from './store.ts';
import type { SnapshotRow } from './store.ts';
import type { Mount } from './types.ts';

export interface OverlayOptions {
  /** The snapshotter's directory, e.g. /var/lib/berth/snapshots/overlayfs. */
  root: string;
  db: MetadataDb;
}

/**
 * The overlayfs snapshotter, after containerd's: every snapshot is
 * `<root>/snapshots/<id>/fs` (its layer, the upper directory while active)
 * and `<root>/snapshots/<id>/work` (overlay's workdir), with short numeric
 * ids so a long lowerdir list fits in the one page mount(2) accepts.
 *
 * Mounts:
 * - active, no parent: a read-write bind mount of `fs`. This is where a
 *   layer is extracted (in overlay whiteout format) for parallel unpack;
 *   `commit(name, key, { parent })` then attaches it to its parent.
 * - active with a parent: one overlay mount, lowerdir = the parent chain
 *   (nearest first), upperdir = `fs`, workdir = `work`.
 * - view: a read-only bind of the parent's `fs` when the chain has one
 *   layer, otherwise an overlay of lowerdirs only.
 * - committed: a read-only view of the snapshot itself.
 *
 * Create it with `OverlaySnapshotter.open`, which checks that overlayfs
 * works on the root's file system (FailedPrecondition if not, e.g. a root
 * that is itself on overlayfs; the copy snapshotter works anywhere) and
 * removes what a crash left behind.
 */
export class OverlaySnapshotter extends SnapshotStoreBase {
  readonly name = 'overlayfs';
  readonly capabilities = { parallelUnpack: true };

  static async open(ctx: Ctx, opts: OverlayOptions): Promise<OverlaySnapshotter> {
    const sn = new OverlaySnapshotter(opts);
    await checkOverlay(ctx, opts.root);
    await sn.cleanup(ctx);
    return sn;
  }

  protected layoutDirs(): string[] {
    return ['fs', 'work'];
  }

  protected mountsOf(row: SnapshotRow, chain: SnapshotRow[]): Mount[] {
    const fs = (r: SnapshotRow) => `${this.dirOf(r.id)}/fs`;
    if (row.kind === 'active') {
      if (chain.length === 0) return [{ type: 'bind', source: fs(row), options: ['rbind', 'rw'] }];
      return [{
        type: 'overlay',
        source: 'overlay',
        options: ['index=off', `workdir=${this.dirOf(row.id)}/work`, `upperdir=${fs(row)}`, `lowerdir=${chain.map(fs).join(':')}`],
      }];
    }
    const layers = row.kind === 'view' ? chain : [row, ...chain];
    if (layers.length === 1) return [{ type: 'bind', source: fs(layers[0]), options: ['rbind', 'ro'] }];
    return [{ type: 'overlay', source: 'overlay', options: ['index=off', `lowerdir=${layers.map(fs).join(':')}`] }];
  }
}

/** Mount a two-lower overlay with an upper dir under `root` and write through it, as containerd's supportsMultipleLowerDir does. */
async function checkOverlay(ctx: Ctx, root: string): Promise<void> {
  const dir = await mkdtemp(join(root, 'snapshots', 'check-'));
  const merged = join(dir, 'merged');
  try {
    for (const d of ['lower1', 'lower2', 'upper', 'work', 'merged']) await mkdir(join(dir, d));
    await writeFile(join(dir, 'lower2', 'f'), 'ok');
    await mountAll(ctx, [{ type: 'overlay', source: 'overlay', options: ['index=off', `workdir=${dir}/work`, `upperdir=${dir}/upper`, `lowerdir=${dir}/lower1:${dir}/lower2`] }], merged);
    try {
      await writeFile(join(merged, 'g'), 'ok');
      if ((await readFile(join(merged, 'f'), 'utf8')) !== 'ok') throw new Error('lower file not visible');
    } finally {
      await unmountAll(ctx, merged);
    }
  } catch (err) {
    throw berthError('FailedPrecondition', `overlayfs snapshotter: overlayfs does not work on "${root}" (${(err as Error).message}); use the native snapshotter`, err);
  } finally {
    // Left behind, it is a directory without a row: the next open's clean-up takes it (or sets it aside).
    await removeTree(dir).catch((err) => ctx.log.warn('cannot remove the overlayfs check directory', { path: dir, err }));
  }
}
