import type { Ctx } from '../core/context.ts';
import type { MetadataDb } from '../metadata/db.ts';
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
 * Create it with `OverlaySnapshotter.open`, which also removes what a crash
 * left behind.
 */
export class OverlaySnapshotter extends SnapshotStoreBase {
  readonly name = 'overlayfs';
  readonly capabilities = { parallelUnpack: true };

  static async open(ctx: Ctx, opts: OverlayOptions): Promise<OverlaySnapshotter> {
    const sn = new OverlaySnapshotter(opts);
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
