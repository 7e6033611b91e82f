import { mkdirSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdir, rename } from 'node:fs/promises';
import type { Ctx } from '../core/context.ts';
import { berthError, hasErrno } from '../core/errors.ts';
import type { MetadataDb } from '../metadata/db.ts';
import type { Mount, SnapshotInfo, SnapshotKind, Snapshotter, Usage } from './types.ts';
import { diskUsage } from './usage.ts';
import { emptyTrash, removeOrSetAside, removeTree } from '../core/remove-tree.ts';

const migrations = [
  `CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    snapshotter TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('active', 'view', 'committed')),
    parent_id INTEGER REFERENCES snapshots(id),
    labels TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (snapshotter, key)
  );
  CREATE INDEX snapshots_parent ON snapshots(parent_id);`,
];

export interface SnapshotRow {
  id: number;
  key: string;
  kind: SnapshotKind;
  parent_id: number | null;
  labels: string;
  created_at: number;
  updated_at: number;
}

/**
 * What the overlay and copy snapshotters share: the records in the metadata
 * database (table `snapshots`, one row per snapshot, keyed by snapshotter
 * and key) and the on-disk layout `<root>/snapshots/<id>/`, where `<id>` is
 * the row's short numeric id. Keys are not namespaced here: a raw
 * snapshotter knows nothing of namespaces, the layer above prefixes keys.
 *
 * Crash safety: a row and its directory are created in one transaction (the
 * mkdir runs inside it), and removal deletes the row first and renames the
 * directory to `rm-<id>` before deleting it; `open` deletes any directory
 * without a row, so a crash leaves nothing behind after the next start.
 * Leftovers are moved to `<root>/trash` at open and removed from there
 * in the background (`close` waits for it); what cannot be removed (a mount
 * still inside, a file system error) is logged and tried again at the next
 * start: nothing on disk can stop or hold up the daemon's start.
 */
export abstract class SnapshotStoreBase implements Snapshotter {
  abstract readonly name: string;
  abstract readonly capabilities: { parallelUnpack: boolean };
  protected readonly root: string;
  protected readonly db: MetadataDb;

  constructor(opts: { root: string; db: MetadataDb }) {
    this.root = opts.root;
    this.db = opts.db;
    this.db.migrate('snapshots', migrations);
    mkdirSync(`${this.root}/snapshots`, { recursive: true, mode: 0o700 });
  }

  /** The directory of snapshot `id`. */
  protected dirOf(id: number): string {
    return `${this.root}/snapshots/${id}`;
  }

  /** Subdirectories a new snapshot gets inside its directory. */
  protected abstract layoutDirs(): string[];
  /** The mounts of a snapshot, given its row and its parent chain (nearest first). */
  protected abstract mountsOf(row: SnapshotRow, chain: SnapshotRow[]): Mount[];
  /** Fill a freshly created snapshot from its parent (the copy snapshotter copies). */
  protected async populate(_ctx: Ctx, _row: SnapshotRow, _parent: SnapshotRow | undefined): Promise<void> {}

  /**
   * Remove directories left by a crash (no row, or half-removed). One that
   * cannot be removed is moved aside (or left) and logged: the start goes on.
   */
  async cleanup(ctx: Ctx): Promise<void> {
    const trash = `${this.root}/trash`;
    const ids = new Set((this.db.sql.prepare(`SELECT id FROM snapshots WHERE snapshotter = ?`).all(this.name) as Array<{ id: number }>).map((r) => String(r.id)));
    for (const name of readdirSync(`${this.root}/snapshots`)) {
      ctx.signal.throwIfAborted();
      if (ids.has(name)) continue;
      const dir = `${this.root}/snapshots/${name}`;
      // Into the trash at once (one rename), removed below without holding up the start: a leftover
      // may be thousands of levels deep, or gigabytes of a half-unpacked layer.
      try {
        await mkdir(trash, { recursive: true, mode: 0o700 });
        await rename(dir, `${trash}/${name}-${randomBytes(4).toString('hex')}`);
        continue;
      } catch {
        // Not movable (a mount point): removed in place, or left and logged.
      }
      const r = await removeOrSetAside(dir, trash);
      if (r) ctx.log.warn('cannot remove a leftover snapshot directory, nor move it aside: left in place', { path: dir, err: r.error });
    }
    this.#emptying = emptyTrash(trash).then(
      (left) => {
        for (const l of left) ctx.log.warn('cannot remove a leftover snapshot directory: it stays in the trash until the next start', { path: l.path, err: l.error });
      },
      (err) => ctx.log.warn('cannot empty the snapshot trash', { path: trash, err }),
    );
  }

  /** The removal of the trash that `cleanup` started; `close` waits for it. */
  #emptying: Promise<void> = Promise.resolve();

  protected row(key: string): SnapshotRow | undefined {
    return this.db.sql.prepare(`SELECT * FROM snapshots WHERE snapshotter = ? AND key = ?`).get(this.name, key) as SnapshotRow | undefined;
  }

  protected mustRow(key: string): SnapshotRow {
    const r = this.row(key);
    if (!r) throw berthError('NotFound', `snapshot "${key}": not found`);
    return r;
  }

  protected rowById(id: number): SnapshotRow {
    return this.db.sql.prepare(`SELECT * FROM snapshots WHERE id = ?`).get(id) as unknown as SnapshotRow;
  }

  /** The parent chain of `row`, nearest first (not including `row`). */
  protected chain(row: SnapshotRow): SnapshotRow[] {
    const out: SnapshotRow[] = [];
    for (let id = row.parent_id; id !== null; ) {
      const p = this.rowById(id);
      out.push(p);
      id = p.parent_id;
    }
    return out;
  }

  #committedParent(key: string, parent: string): SnapshotRow {
    const p = this.row(parent);
    if (!p) throw berthError('NotFound', `snapshot "${key}": parent "${parent}": not found`);
    if (p.kind !== 'committed') throw berthError('InvalidArgument', `snapshot "${key}": parent "${parent}" is not committed`);
    return p;
  }

  #info(row: SnapshotRow): SnapshotInfo {
    const parent = row.parent_id === null ? undefined : this.rowById(row.parent_id).key;
    return { name: row.key, kind: row.kind, parent, labels: JSON.parse(row.labels), createdAt: new Date(row.created_at), updatedAt: new Date(row.updated_at) };
  }

  async stat(_ctx: Ctx, key: string): Promise<SnapshotInfo> {
    return this.#info(this.mustRow(key));
  }

  async #create(ctx: Ctx, key: string, kind: 'active' | 'view', parent: string | undefined, labels: Record<string, string> = {}): Promise<Mount[]> {
    ctx.signal.throwIfAborted();
    if (typeof key !== 'string' || key === '') throw berthError('InvalidArgument', 'snapshot key must not be empty');
    const row = this.db.transaction(() => {
      if (this.row(key)) throw berthError('AlreadyExists', `snapshot "${key}": already exists`);
      const p = parent === undefined ? undefined : this.#committedParent(key, parent);
      const now = Date.now();
      const r = this.db.sql.prepare(`INSERT INTO snapshots (snapshotter, key, kind, parent_id, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *`)
        .get(this.name, key, kind, p?.id ?? null, JSON.stringify(labels), now, now) as unknown as SnapshotRow;
      const dir = this.dirOf(r.id);
      mkdirSync(dir, { mode: 0o700 });
      for (const sub of this.layoutDirs()) mkdirSync(`${dir}/${sub}`, { mode: 0o755 });
      return r;
    });
    try {
      await this.populate(ctx, row, row.parent_id === null ? undefined : this.rowById(row.parent_id));
    } catch (err) {
      await this.remove(ctx, key).catch(() => {});
      throw err;
    }
    return this.mountsOf(row, this.chain(row));
  }

  prepare(ctx: Ctx, key: string, parent: string | undefined, opts?: { labels?: Record<string, string> }): Promise<Mount[]> {
    return this.#create(ctx, key, 'active', parent, opts?.labels);
  }

  view(ctx: Ctx, key: string, parent: string, opts?: { labels?: Record<string, string> }): Promise<Mount[]> {
    if (parent === undefined) return Promise.reject(berthError('InvalidArgument', `view "${key}": a parent is required`));
    return this.#create(ctx, key, 'view', parent, opts?.labels);
  }

  async mounts(_ctx: Ctx, key: string): Promise<Mount[]> {
    const row = this.mustRow(key);
    return this.mountsOf(row, this.chain(row));
  }

  async commit(ctx: Ctx, name: string, key: string, opts?: { labels?: Record<string, string>; parent?: string }): Promise<void> {
    ctx.signal.throwIfAborted();
    if (typeof name !== 'string' || name === '') throw berthError('InvalidArgument', 'snapshot name must not be empty');
    this.db.transaction(() => {
      const row = this.mustRow(key);
      if (row.kind === 'view') throw berthError('Conflict', `snapshot "${key}": a view cannot be committed`);
      if (row.kind !== 'active') throw berthError('InvalidArgument', `snapshot "${key}": not active`);
      if (this.row(name)) throw berthError('AlreadyExists', `snapshot "${name}": already exists`);
      let parentId = row.parent_id;
      if (opts?.parent !== undefined) {
        const p = this.#committedParent(key, opts.parent);
        if (row.parent_id !== null && row.parent_id !== p.id) {
          throw berthError('InvalidArgument', `snapshot "${key}": was prepared on another parent than "${opts.parent}"`);
        }
        if (row.parent_id === null && !this.capabilities.parallelUnpack) {
          throw berthError('InvalidArgument', `snapshot "${key}": the ${this.name} snapshotter cannot attach a parent at commit`);
        }
        parentId = p.id;
      }
      const labels = { ...JSON.parse(row.labels), ...opts?.labels };
      // A committed snapshot is new (as containerd's commit makes a new record): GC spares what was
      // made after its mark began, and an active snapshot committed late (a container's writable
      // layer becoming an image's) must count as made now, not when it was prepared.
      const now = Date.now();
      this.db.sql.prepare(`UPDATE snapshots SET key = ?, kind = 'committed', parent_id = ?, labels = ?, created_at = ?, updated_at = ? WHERE id = ?`)
        .run(name, parentId, JSON.stringify(labels), now, now, row.id);
    });
  }

  async remove(_ctx: Ctx, key: string): Promise<void> {
    let id: number;
    try {
      id = this.#deleteRow(key);
    } catch (err) {
      // On a full disk even the delete cannot be journaled. What an active snapshot holds is
      // garbage to whoever removes it (a failed pull's half-unpacked layer, most often the very
      // thing that filled the disk), so its data goes first and the delete is tried again.
      const row = isDiskFull(err) ? this.row(key) : undefined;
      if (!row || row.kind !== 'active') throw err;
      for (const dir of this.layoutDirs()) await removeTree(`${this.dirOf(row.id)}/${dir}`).catch(() => {});
      id = this.#deleteRow(key);
    }
    const gone = `${this.root}/snapshots/rm-${id}`;
    try {
      await rename(this.dirOf(id), gone);
    } catch (err) {
      if (!hasErrno(err, 'ENOENT')) throw err;
      return;
    }
    await removeTree(gone);
  }

  #deleteRow(key: string): number {
    return this.db.transaction(() => {
      const row = this.mustRow(key);
      const child = this.db.sql.prepare(`SELECT key FROM snapshots WHERE parent_id = ? LIMIT 1`).get(row.id) as { key: string } | undefined;
      if (child) throw berthError('Conflict', `snapshot "${key}": has children (e.g. "${child.key}")`);
      this.db.sql.prepare(`DELETE FROM snapshots WHERE id = ?`).run(row.id);
      return row.id;
    });
  }

  async walk(ctx: Ctx, fn: (info: SnapshotInfo) => void | Promise<void>): Promise<void> {
    const rows = this.db.sql.prepare(`SELECT * FROM snapshots WHERE snapshotter = ? ORDER BY id`).all(this.name) as unknown as SnapshotRow[];
    for (const r of rows) {
      ctx.signal.throwIfAborted();
      await fn(this.#info(r));
    }
  }

  async usage(ctx: Ctx, key: string): Promise<Usage> {
    const row = this.mustRow(key);
    return diskUsage(ctx, `${this.dirOf(row.id)}/fs`);
  }

  async close(): Promise<void> {
    await this.#emptying;
  }
}

/** SQLITE_FULL: the database's file system has no room for the write (or its journal). */
function isDiskFull(err: unknown): boolean {
  return (err as { errcode?: number }).errcode === 13;
}
