import type { Ctx } from '../core/context.ts';
import type { MetadataDb } from './db.ts';

/**
 * Namespaces exist implicitly, as in containerd's `ctr ns ls` for a fresh
 * daemon: a namespace is listed while any store holds a record in it (an
 * image, a container, a lease, ...). Stores declare their namespaced tables
 * with `MetadataDb.registerNamespacedTable`.
 */
export async function listNamespaces(_ctx: Ctx, db: MetadataDb): Promise<string[]> {
  return db.namespaces();
}
