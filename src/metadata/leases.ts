import { randomBytes } from 'node:crypto';
import type { Ctx } from '../core/context.ts';
import { cleanupCtx, withCtx } from '../core/context.ts';
import { berthError, isNotFound } from '../core/errors.ts';
import type { MetadataDb } from './db.ts';
import { checkLabels, labelsMatch, nowIso, nsOf, parseLabels } from './common.ts';

export type LeaseResourceKind = 'content' | 'snapshot' | 'ingest';

/**
 * A resource a lease protects from GC. `id` is a digest for content, an
 * ingest ref for ingest, a snapshot key for snapshot; `snapshotter` names
 * the snapshotter of a snapshot (omitted: the key in every snapshotter).
 */
export interface LeaseResource {
  kind: LeaseResourceKind;
  id: string;
  snapshotter?: string;
}

export interface Lease {
  id: string;
  labels: Record<string, string>;
  createdAt: Date;
  /** After this instant the lease no longer protects anything and GC deletes it. */
  expiresAt?: Date;
}

/**
 * Leases (containerd's): a lease holds content, ingests and snapshots that
 * are not yet referenced by an image or container, such as the blobs of a
 * pull in progress, so GC leaves them alone. Deleting the lease hands them
 * back to GC. Leases are namespaced.
 *
 * A caller attaches new resources through its ctx: `ctx.lease` names the
 * lease, and `attach(ctx, res)` adds `res` to it (a no-op without one).
 * `withLease` runs a function under a fresh lease and deletes it afterwards.
 *
 * Errors: NotFound (unknown lease), AlreadyExists (lease id taken),
 * InvalidArgument (bad id, kind or namespace).
 *
 * Example:
 *   await withLease(ctx, leases, { expiresInMs: 3_600_000 }, async (ctx) => {
 *     await leases.attach(ctx, { kind: 'content', id: layer.digest });
 *     ... write the layer, unpack it, create the image record ...
 *   });
 */
export interface LeaseManager {
  create(ctx: Ctx, opts?: { id?: string; labels?: Record<string, string>; expiresAt?: Date }): Promise<Lease>;
  delete(ctx: Ctx, id: string): Promise<void>;
  list(ctx: Ctx, filter?: { labels?: Record<string, string | true> }): Promise<Lease[]>;
  addResource(ctx: Ctx, leaseId: string, res: LeaseResource): Promise<void>;
  deleteResource(ctx: Ctx, leaseId: string, res: LeaseResource): Promise<void>;
  listResources(ctx: Ctx, leaseId: string): Promise<LeaseResource[]>;
  /** Add `res` to `ctx.lease`, if the ctx has one. */
  attach(ctx: Ctx, res: LeaseResource): Promise<void>;
}

const migrations = [
  `CREATE TABLE leases (
     namespace TEXT NOT NULL,
     id TEXT NOT NULL,
     labels TEXT NOT NULL DEFAULT '{}',
     created_at TEXT NOT NULL,
     expires_at TEXT,
     PRIMARY KEY (namespace, id)
   );
   CREATE TABLE lease_resources (
     namespace TEXT NOT NULL,
     lease_id TEXT NOT NULL,
     kind TEXT NOT NULL,
     resource_id TEXT NOT NULL,
     snapshotter TEXT NOT NULL DEFAULT '',
     PRIMARY KEY (namespace, lease_id, kind, snapshotter, resource_id),
     FOREIGN KEY (namespace, lease_id) REFERENCES leases (namespace, id) ON DELETE CASCADE
   );`,
];

interface LeaseRow {
  id: string;
  labels: string;
  created_at: string;
  expires_at: string | null;
}

interface ResourceRow {
  namespace: string;
  kind: LeaseResourceKind;
  resource_id: string;
  snapshotter: string;
}

const kinds = new Set<string>(['content', 'snapshot', 'ingest']);
const idPattern = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

function toLease(r: LeaseRow): Lease {
  return {
    id: r.id,
    labels: parseLabels(r.labels),
    createdAt: new Date(r.created_at),
    expiresAt: r.expires_at === null ? undefined : new Date(r.expires_at),
  };
}

function checkResource(res: LeaseResource): void {
  if (!kinds.has(res.kind)) throw berthError('InvalidArgument', `lease resource: unknown kind "${res.kind}"`);
  if (!res.id) throw berthError('InvalidArgument', `lease resource: empty ${res.kind} id`);
}

export class MetadataLeaseManager implements LeaseManager {
  readonly #db: MetadataDb;

  constructor(db: MetadataDb) {
    this.#db = db;
    db.migrate('leases', migrations);
    db.registerNamespacedTable('leases');
  }

  async create(ctx: Ctx, opts: { id?: string; labels?: Record<string, string>; expiresAt?: Date } = {}): Promise<Lease> {
    const ns = nsOf(ctx);
    const id = opts.id ?? `lease-${randomBytes(8).toString('hex')}`;
    if (!idPattern.test(id)) throw berthError('InvalidArgument', `invalid lease id "${id}"`);
    checkLabels(`lease "${id}"`, opts.labels);
    const now = nowIso();
    return this.#db.transaction(() => {
      if (this.#db.sql.prepare(`SELECT 1 FROM leases WHERE namespace = ? AND id = ?`).get(ns, id)) {
        throw berthError('AlreadyExists', `lease "${id}": already exists`);
      }
      this.#db.sql
        .prepare(`INSERT INTO leases (namespace, id, labels, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`)
        .run(ns, id, JSON.stringify(opts.labels ?? {}), now, opts.expiresAt ? opts.expiresAt.toISOString() : null);
      return { id, labels: { ...(opts.labels ?? {}) }, createdAt: new Date(now), expiresAt: opts.expiresAt };
    });
  }

  async delete(ctx: Ctx, id: string): Promise<void> {
    const ns = nsOf(ctx);
    this.#db.transaction(() => {
      const res = this.#db.sql.prepare(`DELETE FROM leases WHERE namespace = ? AND id = ?`).run(ns, id);
      if (res.changes === 0) throw berthError('NotFound', `lease "${id}": not found`);
    });
  }

  async list(ctx: Ctx, filter: { labels?: Record<string, string | true> } = {}): Promise<Lease[]> {
    const rows = this.#db.sql.prepare(`SELECT * FROM leases WHERE namespace = ? ORDER BY created_at, id`).all(nsOf(ctx)) as unknown as LeaseRow[];
    return rows.map(toLease).filter((l) => labelsMatch(l.labels, filter.labels));
  }

  #requireLease(ns: string, id: string): void {
    if (!this.#db.sql.prepare(`SELECT 1 FROM leases WHERE namespace = ? AND id = ?`).get(ns, id)) {
      throw berthError('NotFound', `lease "${id}": not found`);
    }
  }

  async addResource(ctx: Ctx, leaseId: string, res: LeaseResource): Promise<void> {
    const ns = nsOf(ctx);
    checkResource(res);
    this.#db.transaction(() => {
      this.#requireLease(ns, leaseId);
      this.#db.sql
        .prepare(`INSERT OR IGNORE INTO lease_resources (namespace, lease_id, kind, resource_id, snapshotter) VALUES (?, ?, ?, ?, ?)`)
        .run(ns, leaseId, res.kind, res.id, res.snapshotter ?? '');
    });
  }

  async deleteResource(ctx: Ctx, leaseId: string, res: LeaseResource): Promise<void> {
    const ns = nsOf(ctx);
    checkResource(res);
    this.#db.transaction(() => {
      this.#requireLease(ns, leaseId);
      this.#db.sql
        .prepare(`DELETE FROM lease_resources WHERE namespace = ? AND lease_id = ? AND kind = ? AND resource_id = ? AND snapshotter = ?`)
        .run(ns, leaseId, res.kind, res.id, res.snapshotter ?? '');
    });
  }

  async listResources(ctx: Ctx, leaseId: string): Promise<LeaseResource[]> {
    const ns = nsOf(ctx);
    this.#requireLease(ns, leaseId);
    const rows = this.#db.sql
      .prepare(`SELECT * FROM lease_resources WHERE namespace = ? AND lease_id = ? ORDER BY kind, resource_id`)
      .all(ns, leaseId) as unknown as ResourceRow[];
    return rows.map(toResource);
  }

  async attach(ctx: Ctx, res: LeaseResource): Promise<void> {
    if (ctx.lease === undefined) return;
    await this.addResource(ctx, ctx.lease, res);
  }

  /** Resources of every lease not expired at `now`, in every namespace: GC roots. */
  activeResources(now: Date): (LeaseResource & { namespace: string })[] {
    const rows = this.#db.sql
      .prepare(
        `SELECT r.* FROM lease_resources r JOIN leases l ON l.namespace = r.namespace AND l.id = r.lease_id
         WHERE l.expires_at IS NULL OR l.expires_at > ?`,
      )
      .all(now.toISOString()) as unknown as ResourceRow[];
    return rows.map((r) => ({ namespace: r.namespace, ...toResource(r) }));
  }

  /**
   * Delete every lease that has an expiry, in every namespace; returns how
   * many. For the daemon's start: such leases belong to operations (pull,
   * load, import) of an earlier life, none of which runs any more, and
   * keeping them would keep what a killed pull made until they expire.
   */
  deleteExpiring(): number {
    return this.#db.transaction(() => Number(this.#db.sql.prepare(`DELETE FROM leases WHERE expires_at IS NOT NULL`).run().changes));
  }

  /** Delete every lease expired at `now` (GC does this before marking); returns how many. */
  deleteExpired(now: Date): number {
    return this.#db.transaction(
      () => Number(this.#db.sql.prepare(`DELETE FROM leases WHERE expires_at IS NOT NULL AND expires_at <= ?`).run(now.toISOString()).changes),
    );
  }
}

function toResource(r: ResourceRow): LeaseResource {
  const out: LeaseResource = { kind: r.kind, id: r.resource_id };
  if (r.snapshotter) out.snapshotter = r.snapshotter;
  return out;
}

/**
 * Run `fn` under a new lease, deleted when `fn` settles (with a fresh
 * signal, since the request's may have aborted). `expiresInMs` bounds how
 * long the lease protects its resources if the process dies before then.
 */
export async function withLease<T>(
  ctx: Ctx,
  leases: LeaseManager,
  opts: { expiresInMs?: number; labels?: Record<string, string> },
  fn: (ctx: Ctx) => Promise<T>,
): Promise<T> {
  const lease = await leases.create(ctx, {
    labels: opts.labels,
    expiresAt: opts.expiresInMs === undefined ? undefined : new Date(Date.now() + opts.expiresInMs),
  });
  try {
    return await fn(withCtx(ctx, { lease: lease.id }));
  } finally {
    await leases.delete(cleanupCtx(ctx), lease.id).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  }
}
