import { spawn } from 'node:child_process';
import type { Ctx } from '../core/context.ts';
import { berthError } from '../core/errors.ts';
import type { MetadataDb } from '../metadata/db.ts';
import { SnapshotStoreBase } from './store.ts';
import type { SnapshotRow } from './store.ts';
import type { Mount } from './types.ts';

export interface NativeOptions {
  /** The snapshotter's directory, e.g. /var/lib/berth/snapshots/native. */
  root: string;
  db: MetadataDb;
}

/**
 * The copy snapshotter, for file systems overlayfs cannot use as its upper
 * layer: every snapshot is a full tree in `<root>/snapshots/<id>/fs`, and
 * `prepare` copies the parent's tree (`cp -a --reflink=auto`, so on btrfs
 * or XFS the copy shares blocks). Layers are applied onto it in 'plain'
 * format. Views are read-only binds of the parent's tree, which a commit
 * has made immutable. No parallel unpack: a snapshot prepared without a
 * parent cannot be attached to one at commit.
 */
export class NativeSnapshotter extends SnapshotStoreBase {
  readonly name = 'native';
  readonly capabilities = { parallelUnpack: false };

  static async open(ctx: Ctx, opts: NativeOptions): Promise<NativeSnapshotter> {
    const sn = new NativeSnapshotter(opts);
    await sn.cleanup(ctx);
    return sn;
  }

  protected layoutDirs(): string[] {
    return ['fs'];
  }

  protected override async populate(ctx: Ctx, row: SnapshotRow, parent: SnapshotRow | undefined): Promise<void> {
    if (!parent || row.kind === 'view') return;
    const from = `${this.dirOf(parent.id)}/fs/.`;
    const to = `${this.dirOf(row.id)}/fs/`;
    await new Promise<void>((resolve, reject) => {
      const child = spawn('cp', ['-a', '--reflink=auto', '--', from, to], { stdio: ['ignore', 'ignore', 'pipe'], signal: ctx.signal });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        if (stderr.length < 4096) stderr += d;
      });
      child.on('error', reject);
      child.on('close', (code) => {
        if (code === 0) resolve();
        else reject(berthError('Internal', `snapshot "${row.key}": copying parent "${parent.key}" failed: ${stderr.trim() || `cp exited with ${code}`}`));
      });
    });
  }

  protected mountsOf(row: SnapshotRow, chain: SnapshotRow[]): Mount[] {
    if (row.kind === 'view') return [{ type: 'bind', source: `${this.dirOf(chain[0].id)}/fs`, options: ['rbind', 'ro'] }];
    return [{ type: 'bind', source: `${this.dirOf(row.id)}/fs`, options: ['rbind', row.kind === 'active' ? 'rw' : 'ro'] }];
  }
}
