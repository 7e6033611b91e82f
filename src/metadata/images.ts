import type { Ctx } from '../core/context.ts';
import { isDigest } from '../core/digest.ts';
import { berthError } from '../core/errors.ts';
import type { Descriptor } from '../core/media-types.ts';
import type { MetadataDb } from './db.ts';
import { checkLabels, labelsMatch, nowIso, nsOf, parseLabels } from './common.ts';

/**
 * An image record: a name pointing at a target descriptor (an index or a
 * manifest), in one namespace. `name` is the full normalized reference
 * (`docker.io/library/busybox:latest`, or `name@sha256:...` for a digest-only
 * pull); normalizing is the caller's job. Several names may share a target.
 */
export interface ImageRecord {
  name: string;
  target: Descriptor;
  labels: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

export interface ImageFilter {
  /** Exact name. */
  name?: string;
  /** Name starts with this (e.g. a repository without tag). */
  namePrefix?: string;
  /** Target digest. */
  digest?: string;
  /** `true`: label present; a string: label equal. */
  labels?: Record<string, string | true>;
}

/**
 * Namespaced image records (containerd's images store).
 *
 * Errors: NotFound (get/update/delete of an unknown name), AlreadyExists
 * (create of an existing name), InvalidArgument (empty name, bad digest or
 * namespace).
 *
 * Example:
 *   await images.create(ctx, { name: 'docker.io/library/busybox:latest', target: indexDesc });
 *   await images.update(ctx, 'docker.io/library/busybox:latest', { target: newDesc });
 */
export interface ImageStore {
  get(ctx: Ctx, name: string): Promise<ImageRecord>;
  list(ctx: Ctx, filter?: ImageFilter): Promise<ImageRecord[]>;
  create(ctx: Ctx, image: { name: string; target: Descriptor; labels?: Record<string, string> }): Promise<ImageRecord>;
  /** Create `image.name`, or replace its target and labels if it exists (keeping createdAt). */
  put(ctx: Ctx, image: { name: string; target: Descriptor; labels?: Record<string, string> }): Promise<ImageRecord>;
  /** Replace the target and/or the labels; the name is the key and stays. */
  update(ctx: Ctx, name: string, patch: { target?: Descriptor; labels?: Record<string, string> }): Promise<ImageRecord>;
  delete(ctx: Ctx, name: string): Promise<void>;
}

const migrations = [
  `CREATE TABLE images (
     namespace TEXT NOT NULL,
     name TEXT NOT NULL,
     digest TEXT NOT NULL,
     target TEXT NOT NULL,
     labels TEXT NOT NULL DEFAULT '{}',
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     PRIMARY KEY (namespace, name)
   );
   CREATE INDEX images_by_digest ON images (namespace, digest);`,
];

interface Row {
  namespace: string;
  name: string;
  target: string;
  labels: string;
  created_at: string;
  updated_at: string;
}

function toRecord(r: Row): ImageRecord {
  return {
    name: r.name,
    target: JSON.parse(r.target) as Descriptor,
    labels: parseLabels(r.labels),
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
  };
}

function checkTarget(name: string, t: Descriptor): void {
  if (!t || typeof t.mediaType !== 'string' || !t.mediaType || !isDigest(t.digest) || !Number.isSafeInteger(t.size) || t.size < 0) {
    throw berthError('InvalidArgument', `image "${name}": target needs a mediaType, a valid digest and a size`);
  }
}

export class MetadataImageStore implements ImageStore {
  readonly #db: MetadataDb;

  constructor(db: MetadataDb) {
    this.#db = db;
    db.migrate('images', migrations);
    db.registerNamespacedTable('images');
  }

  async get(ctx: Ctx, name: string): Promise<ImageRecord> {
    const row = this.#db.sql.prepare(`SELECT * FROM images WHERE namespace = ? AND name = ?`).get(nsOf(ctx), name) as Row | undefined;
    if (!row) throw berthError('NotFound', `image "${name}": not found`);
    return toRecord(row);
  }

  async list(ctx: Ctx, filter: ImageFilter = {}): Promise<ImageRecord[]> {
    const ns = nsOf(ctx);
    const rows = (
      filter.digest !== undefined
        ? this.#db.sql.prepare(`SELECT * FROM images WHERE namespace = ? AND digest = ? ORDER BY name`).all(ns, filter.digest)
        : this.#db.sql.prepare(`SELECT * FROM images WHERE namespace = ? ORDER BY name`).all(ns)
    ) as unknown as Row[];
    return rows
      .filter((r) => (filter.name === undefined || r.name === filter.name) && (filter.namePrefix === undefined || r.name.startsWith(filter.namePrefix)))
      .map(toRecord)
      .filter((r) => labelsMatch(r.labels, filter.labels));
  }

  async create(ctx: Ctx, image: { name: string; target: Descriptor; labels?: Record<string, string> }): Promise<ImageRecord> {
    const ns = nsOf(ctx);
    return this.#db.transaction(() => {
      if (this.#exists(ns, image.name)) throw berthError('AlreadyExists', `image "${image.name}": already exists`);
      return this.#createSync(ns, image);
    });
  }

  async put(ctx: Ctx, image: { name: string; target: Descriptor; labels?: Record<string, string> }): Promise<ImageRecord> {
    const ns = nsOf(ctx);
    return this.#db.transaction(() =>
      this.#exists(ns, image.name) ? this.#updateSync(ns, image.name, { target: image.target, labels: image.labels ?? {} }) : this.#createSync(ns, image),
    );
  }

  async update(ctx: Ctx, name: string, patch: { target?: Descriptor; labels?: Record<string, string> }): Promise<ImageRecord> {
    const ns = nsOf(ctx);
    return this.#db.transaction(() => this.#updateSync(ns, name, patch));
  }

  #exists(ns: string, name: string): boolean {
    return this.#db.sql.prepare(`SELECT 1 FROM images WHERE namespace = ? AND name = ?`).get(ns, name) !== undefined;
  }

  #createSync(ns: string, image: { name: string; target: Descriptor; labels?: Record<string, string> }): ImageRecord {
    if (!image.name) throw berthError('InvalidArgument', 'image: empty name');
    checkTarget(image.name, image.target);
    checkLabels(`image "${image.name}"`, image.labels);
    const now = nowIso();
    this.#db.sql
      .prepare(`INSERT INTO images (namespace, name, digest, target, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`)
      .run(ns, image.name, image.target.digest, JSON.stringify(image.target), JSON.stringify(image.labels ?? {}), now, now);
    return { name: image.name, target: image.target, labels: { ...(image.labels ?? {}) }, createdAt: new Date(now), updatedAt: new Date(now) };
  }

  #updateSync(ns: string, name: string, patch: { target?: Descriptor; labels?: Record<string, string> }): ImageRecord {
    if (patch.target) checkTarget(name, patch.target);
    checkLabels(`image "${name}"`, patch.labels);
    const row = this.#db.sql.prepare(`SELECT * FROM images WHERE namespace = ? AND name = ?`).get(ns, name) as Row | undefined;
    if (!row) throw berthError('NotFound', `image "${name}": not found`);
    const cur = toRecord(row);
    const next: ImageRecord = { ...cur, target: patch.target ?? cur.target, labels: patch.labels ?? cur.labels, updatedAt: new Date() };
    this.#db.sql
      .prepare(`UPDATE images SET digest = ?, target = ?, labels = ?, updated_at = ? WHERE namespace = ? AND name = ?`)
      .run(next.target.digest, JSON.stringify(next.target), JSON.stringify(next.labels), next.updatedAt.toISOString(), ns, name);
    return next;
  }

  async delete(ctx: Ctx, name: string): Promise<void> {
    const ns = nsOf(ctx);
    this.#db.transaction(() => {
      const res = this.#db.sql.prepare(`DELETE FROM images WHERE namespace = ? AND name = ?`).run(ns, name);
      if (res.changes === 0) throw berthError('NotFound', `image "${name}": not found`);
    });
  }

  /** Every image target in every namespace: the GC's first roots. */
  allTargets(): { namespace: string; name: string; target: Descriptor }[] {
    const rows = this.#db.sql.prepare(`SELECT namespace, name, target FROM images`).all() as unknown as Row[];
    return rows.map((r) => ({ namespace: r.namespace, name: r.name, target: JSON.parse(r.target) as Descriptor }));
  }
}
