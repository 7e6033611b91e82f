import type { ContainerRecord } from '../core/containers.ts';
import type { Ctx } from '../core/context.ts';
import { berthError } from '../core/errors.ts';
import { namePattern } from '../core/ids.ts';
import type { MetadataDb } from './db.ts';
import { checkLabels, labelsMatch, nowIso, nsOf } from './common.ts';

/** Fields of a record `update` may change; id, namespace, name (see `rename`) and createdAt stay. */
export type ContainerPatch = Partial<Pick<ContainerRecord, 'config' | 'imageId' | 'imageName' | 'snapshotter' | 'snapshotKey' | 'labels' | 'extensions'>>;

export interface ContainerFilter {
  /** `true`: label present; a string: label equal. */
  labels?: Record<string, string | true>;
  imageId?: string;
}

/**
 * Namespaced container records. A record is what `create` decided (config,
 * image, snapshot); runtime state (pid, status, exit code) is not part of it:
 * the runtime keeps it in the separate `state` JSON column through
 * `getState`/`setState`, which this store never interprets.
 *
 * Names are unique per namespace and stored without docker's leading "/"
 * (a leading "/" given by a caller is dropped).
 *
 * Errors: NotFound (unknown id, name or prefix), AlreadyExists (id or name
 * taken; the name message is docker's), InvalidArgument (bad name, an
 * ambiguous id prefix, bad namespace).
 *
 * Example:
 *   await containers.create(ctx, record);
 *   const c = await containers.resolve(ctx, 'web');     // id, name or id prefix, as docker resolves
 *   await containers.setState(ctx, c.id, { status: 'running', pid: 4242 });
 */
export interface ContainerStore {
  create(ctx: Ctx, record: Omit<ContainerRecord, 'namespace'>): Promise<ContainerRecord>;
  get(ctx: Ctx, id: string): Promise<ContainerRecord>;
  getByName(ctx: Ctx, name: string): Promise<ContainerRecord>;
  /** The one record whose id starts with `prefix`; InvalidArgument if several do. */
  getByPrefix(ctx: Ctx, prefix: string): Promise<ContainerRecord>;
  /** Docker's lookup order: exact id, exact name, then unique id prefix. */
  resolve(ctx: Ctx, idOrName: string): Promise<ContainerRecord>;
  list(ctx: Ctx, filter?: ContainerFilter): Promise<ContainerRecord[]>;
  update(ctx: Ctx, id: string, patch: ContainerPatch): Promise<ContainerRecord>;
  rename(ctx: Ctx, id: string, newName: string): Promise<ContainerRecord>;
  delete(ctx: Ctx, id: string): Promise<void>;
  getState(ctx: Ctx, id: string): Promise<unknown>;
  /** Records with their state in one read (for `ps`). */
  listWithState(ctx: Ctx, filter?: ContainerFilter): Promise<{ record: ContainerRecord; state: unknown }[]>;
  setState(ctx: Ctx, id: string, state: unknown): Promise<void>;
}

const migrations = [
  `CREATE TABLE containers (
     namespace TEXT NOT NULL,
     id TEXT NOT NULL,
     name TEXT NOT NULL,
     image_id TEXT NOT NULL,
     snapshotter TEXT NOT NULL,
     snapshot_key TEXT NOT NULL,
     record TEXT NOT NULL,
     state TEXT,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     PRIMARY KEY (namespace, id),
     UNIQUE (namespace, name)
   );`,
];

interface Row {
  namespace: string;
  id: string;
  name: string;
  record: string;
  state: string | null;
  snapshotter: string;
  snapshot_key: string;
}

const idPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

function stripSlash(name: string): string {
  return name.startsWith('/') ? name.slice(1) : name;
}

function checkName(name: string): void {
  if (!namePattern.test(name)) {
    throw berthError('InvalidArgument', `invalid container name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
}

const toRecord = (r: Row): ContainerRecord => JSON.parse(r.record) as ContainerRecord;
const noSuch = (ref: string) => berthError('NotFound', `no such container: ${ref}`);

export class MetadataContainerStore implements ContainerStore {
  readonly #db: MetadataDb;

  constructor(db: MetadataDb) {
    this.#db = db;
    db.migrate('containers', migrations);
    db.registerNamespacedTable('containers');
  }

  #nameConflict(ns: string, name: string): void {
    const other = this.#db.sql.prepare(`SELECT id FROM containers WHERE namespace = ? AND name = ?`).get(ns, name) as { id: string } | undefined;
    if (other) {
      throw berthError('AlreadyExists', `Conflict. The container name "/${name}" is already in use by container "${other.id}". You have to remove (or rename) that container to be able to reuse that name.`);
    }
  }

  #row(ns: string, id: string): Row | undefined {
    return this.#db.sql.prepare(`SELECT * FROM containers WHERE namespace = ? AND id = ?`).get(ns, id) as Row | undefined;
  }

  #write(rec: ContainerRecord): void {
    this.#db.sql
      .prepare(`UPDATE containers SET name = ?, image_id = ?, snapshotter = ?, snapshot_key = ?, record = ?, updated_at = ? WHERE namespace = ? AND id = ?`)
      .run(rec.name, rec.imageId, rec.snapshotter, rec.snapshotKey, JSON.stringify(rec), nowIso(), rec.namespace, rec.id);
  }

  async create(ctx: Ctx, input: Omit<ContainerRecord, 'namespace'>): Promise<ContainerRecord> {
    const ns = nsOf(ctx);
    const rec: ContainerRecord = { ...input, namespace: ns, name: stripSlash(input.name) };
    if (!idPattern.test(rec.id)) throw berthError('InvalidArgument', `invalid container id "${rec.id}"`);
    checkName(rec.name);
    checkLabels(`container "${rec.name}"`, rec.labels);
    return this.#db.transaction(() => {
      if (this.#row(ns, rec.id)) throw berthError('AlreadyExists', `container "${rec.id}": already exists`);
      this.#nameConflict(ns, rec.name);
      const now = nowIso();
      this.#db.sql
        .prepare(
          `INSERT INTO containers (namespace, id, name, image_id, snapshotter, snapshot_key, record, state, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)`,
        )
        .run(ns, rec.id, rec.name, rec.imageId, rec.snapshotter, rec.snapshotKey, JSON.stringify(rec), now, now);
      return rec;
    });
  }

  async get(ctx: Ctx, id: string): Promise<ContainerRecord> {
    const row = this.#row(nsOf(ctx), id);
    if (!row) throw noSuch(id);
    return toRecord(row);
  }

  async getByName(ctx: Ctx, name: string): Promise<ContainerRecord> {
    const row = this.#db.sql.prepare(`SELECT * FROM containers WHERE namespace = ? AND name = ?`).get(nsOf(ctx), stripSlash(name)) as Row | undefined;
    if (!row) throw noSuch(name);
    return toRecord(row);
  }

  async getByPrefix(ctx: Ctx, prefix: string): Promise<ContainerRecord> {
    if (!prefix || !idPattern.test(prefix)) throw noSuch(prefix);
    // Compare with substr rather than LIKE, whose "_" would be a wildcard.
    const rows = this.#db.sql
      .prepare(`SELECT * FROM containers WHERE namespace = ? AND substr(id, 1, ?) = ? LIMIT 2`)
      .all(nsOf(ctx), prefix.length, prefix) as unknown as Row[];
    if (rows.length === 0) throw noSuch(prefix);
    if (rows.length > 1) throw berthError('InvalidArgument', `multiple containers found with provided prefix: ${prefix}`);
    return toRecord(rows[0]);
  }

  async resolve(ctx: Ctx, idOrName: string): Promise<ContainerRecord> {
    const ns = nsOf(ctx);
    const exact = this.#row(ns, idOrName);
    if (exact) return toRecord(exact);
    const byName = this.#db.sql.prepare(`SELECT * FROM containers WHERE namespace = ? AND name = ?`).get(ns, stripSlash(idOrName)) as Row | undefined;
    if (byName) return toRecord(byName);
    return this.getByPrefix(ctx, idOrName);
  }

  async list(ctx: Ctx, filter: ContainerFilter = {}): Promise<ContainerRecord[]> {
    const rows = this.#db.sql.prepare(`SELECT * FROM containers WHERE namespace = ? ORDER BY created_at, id`).all(nsOf(ctx)) as unknown as Row[];
    return rows
      .map(toRecord)
      .filter((r) => (filter.imageId === undefined || r.imageId === filter.imageId) && labelsMatch(r.labels, filter.labels));
  }

  async update(ctx: Ctx, id: string, patch: ContainerPatch): Promise<ContainerRecord> {
    const ns = nsOf(ctx);
    checkLabels(`container "${id}"`, patch.labels);
    return this.#db.transaction(() => {
      const row = this.#row(ns, id);
      if (!row) throw noSuch(id);
      const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
      const next: ContainerRecord = { ...toRecord(row), ...defined, id, namespace: ns };
      this.#write(next);
      return next;
    });
  }

  async rename(ctx: Ctx, id: string, newName: string): Promise<ContainerRecord> {
    const ns = nsOf(ctx);
    const name = stripSlash(newName);
    checkName(name);
    return this.#db.transaction(() => {
      const row = this.#row(ns, id);
      if (!row) throw noSuch(id);
      const cur = toRecord(row);
      if (cur.name === name) return cur;
      this.#nameConflict(ns, name);
      const next = { ...cur, name };
      this.#write(next);
      return next;
    });
  }

  async delete(ctx: Ctx, id: string): Promise<void> {
    const ns = nsOf(ctx);
    this.#db.transaction(() => {
      const res = this.#db.sql.prepare(`DELETE FROM containers WHERE namespace = ? AND id = ?`).run(ns, id);
      if (res.changes === 0) throw noSuch(id);
    });
  }

  async getState(ctx: Ctx, id: string): Promise<unknown> {
    const row = this.#row(nsOf(ctx), id);
    if (!row) throw noSuch(id);
    return row.state === null ? undefined : JSON.parse(row.state);
  }

  async listWithState(ctx: Ctx, filter: ContainerFilter = {}): Promise<{ record: ContainerRecord; state: unknown }[]> {
    const rows = this.#db.sql.prepare(`SELECT * FROM containers WHERE namespace = ? ORDER BY created_at, id`).all(nsOf(ctx)) as unknown as Row[];
    return rows
      .map((r) => ({ record: toRecord(r), state: r.state === null ? undefined : (JSON.parse(r.state) as unknown) }))
      .filter(({ record: r }) => (filter.imageId === undefined || r.imageId === filter.imageId) && labelsMatch(r.labels, filter.labels));
  }

  async setState(ctx: Ctx, id: string, state: unknown): Promise<void> {
    const ns = nsOf(ctx);
    const res = this.#db.sql
      .prepare(`UPDATE containers SET state = ?, updated_at = ? WHERE namespace = ? AND id = ?`)
      .run(state === undefined ? null : JSON.stringify(state), nowIso(), ns, id);
    if (res.changes === 0) throw noSuch(id);
  }

  /** Every container's snapshot, in every namespace: GC roots. */
  allSnapshotRefs(): { namespace: string; id: string; snapshotter: string; snapshotKey: string }[] {
    const rows = this.#db.sql.prepare(`SELECT namespace, id, snapshotter, snapshot_key FROM containers`).all() as unknown as Row[];
    return rows.map((r) => ({ namespace: r.namespace, id: r.id, snapshotter: r.snapshotter, snapshotKey: r.snapshot_key }));
  }
}
