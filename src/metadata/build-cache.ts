import type { Ctx } from '../core/context.ts';
import { berthError } from '../core/errors.ts';
import type { MetadataDb } from './db.ts';
import { nowIso, nsOf } from './common.ts';

/**
 * The build cache: a step's cache key (a digest of its parent, its
 * instruction, the args it uses and the content it copies) -> the image the
 * step made, as the manifest it points at and the image ID. Namespaced; the
 * builder decides what a key means and keeps the content alive (a lease per
 * entry, named by `leaseId`), this store only remembers.
 *
 * Example:
 *   await cache.put(ctx, { key, imageId, target, leaseId, size });
 *   (await cache.get(ctx, key))?.imageId
 */
export interface BuildCacheEntry {
  key: string;
  imageId: string;
  /** The manifest descriptor of the step's image. */
  target: { mediaType: string; digest: string; size: number };
  /** The lease that keeps the entry's content from GC. */
  leaseId: string;
  /** Bytes of the step's own layer (0 for a step that changed only the config). */
  size: number;
  createdAt: string;
  lastUsedAt: string;
}

const migrations = [
  `CREATE TABLE build_cache (
     namespace TEXT NOT NULL,
     key TEXT NOT NULL,
     image_id TEXT NOT NULL,
     target TEXT NOT NULL,
     lease_id TEXT NOT NULL,
     size INTEGER NOT NULL DEFAULT 0,
     created_at TEXT NOT NULL,
     last_used_at TEXT NOT NULL,
     PRIMARY KEY (namespace, key)
   );`,
];

interface Row {
  key: string;
  image_id: string;
  target: string;
  lease_id: string;
  size: number;
  created_at: string;
  last_used_at: string;
}

function toEntry(r: Row): BuildCacheEntry {
  return { key: r.key, imageId: r.image_id, target: JSON.parse(r.target) as BuildCacheEntry['target'], leaseId: r.lease_id, size: r.size, createdAt: r.created_at, lastUsedAt: r.last_used_at };
}

export class BuildCacheStore {
  readonly #db: MetadataDb;

  constructor(db: MetadataDb) {
    this.#db = db;
    db.migrate('build_cache', migrations);
    db.registerNamespacedTable('build_cache');
  }

  /** The entry of `key`, its last use moved to now; undefined when there is none. */
  async get(ctx: Ctx, key: string): Promise<BuildCacheEntry | undefined> {
    const ns = nsOf(ctx);
    return this.#db.transaction(() => {
      const row = this.#db.sql.prepare(`SELECT * FROM build_cache WHERE namespace = ? AND key = ?`).get(ns, key) as Row | undefined;
      if (!row) return undefined;
      const now = nowIso();
      this.#db.sql.prepare(`UPDATE build_cache SET last_used_at = ? WHERE namespace = ? AND key = ?`).run(now, ns, key);
      return toEntry({ ...row, last_used_at: now });
    });
  }

  /** Record (or replace) an entry. */
  async put(ctx: Ctx, e: Omit<BuildCacheEntry, 'createdAt' | 'lastUsedAt'>): Promise<void> {
    const ns = nsOf(ctx);
    if (!e.key || !e.imageId || !e.leaseId) throw berthError('InvalidArgument', 'build cache entry: key, imageId and leaseId are required');
    const now = nowIso();
    this.#db.sql
      .prepare(
        `INSERT INTO build_cache (namespace, key, image_id, target, lease_id, size, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(namespace, key) DO UPDATE SET image_id = excluded.image_id, target = excluded.target, lease_id = excluded.lease_id, size = excluded.size, last_used_at = excluded.last_used_at`,
      )
      .run(ns, e.key, e.imageId, JSON.stringify(e.target), e.leaseId, e.size, now, now);
  }

  async list(ctx: Ctx): Promise<BuildCacheEntry[]> {
    const ns = nsOf(ctx);
    return (this.#db.sql.prepare(`SELECT * FROM build_cache WHERE namespace = ? ORDER BY created_at`).all(ns) as unknown as Row[]).map(toEntry);
  }

  async delete(ctx: Ctx, key: string): Promise<void> {
    const ns = nsOf(ctx);
    this.#db.sql.prepare(`DELETE FROM build_cache WHERE namespace = ? AND key = ?`).run(ns, key);
  }
}
