import type { Ctx } from '../core/context.ts';
import { validateNamespace } from '../core/context.ts';
import { berthError } from '../core/errors.ts';
import { checkLabels, nowIso, parseLabels } from './common.ts';
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

export interface NamespaceInfo {
  name: string;
  labels: Record<string, string>;
}

/**
 * Namespaces made on purpose (`berth namespace create`, containerd's
 * `ctr ns create`): a record that keeps a namespace listed while it holds
 * nothing else, with its labels. Removing a namespace refuses one that still
 * holds records, as containerd does, so nothing is orphaned.
 *
 * Errors: InvalidArgument (bad name or labels), AlreadyExists (create of a
 * listed namespace), NotFound (remove of one not listed),
 * FailedPrecondition (remove of one that holds images, containers, ...).
 */
export class NamespaceStore {
  readonly #db: MetadataDb;

  constructor(db: MetadataDb) {
    this.#db = db;
    db.migrate('namespaces', [`CREATE TABLE namespaces (namespace TEXT PRIMARY KEY, labels TEXT NOT NULL, created_at TEXT NOT NULL)`]);
    db.registerNamespacedTable('namespaces');
  }

  async list(_ctx: Ctx): Promise<NamespaceInfo[]> {
    const labels = new Map((this.#db.sql.prepare(`SELECT namespace, labels FROM namespaces`).all() as Array<{ namespace: string; labels: string }>).map((r) => [r.namespace, parseLabels(r.labels)]));
    return this.#db.namespaces().map((name) => ({ name, labels: labels.get(name) ?? {} }));
  }

  async create(_ctx: Ctx, name: string, labels: Record<string, string> = {}): Promise<NamespaceInfo> {
    if (!validateNamespace(name)) throw berthError('InvalidArgument', `namespace "${name}": invalid name`);
    checkLabels(`namespace "${name}"`, labels);
    return this.#db.transaction(() => {
      if (this.#db.namespaces().includes(name)) throw berthError('AlreadyExists', `namespace "${name}": already exists`);
      this.#db.sql.prepare(`INSERT INTO namespaces (namespace, labels, created_at) VALUES (?, ?, ?)`).run(name, JSON.stringify(labels), nowIso());
      return { name, labels: { ...labels } };
    });
  }

  async remove(_ctx: Ctx, name: string): Promise<void> {
    this.#db.transaction(() => {
      if (!this.#db.namespaces().includes(name)) throw berthError('NotFound', `namespace "${name}": not found`);
      const holding = this.#db.tablesHolding(name).filter((t) => t !== 'namespaces');
      if (holding.length) throw berthError('FailedPrecondition', `namespace "${name}" must be empty, but it still has ${holding.join(', ')}`);
      this.#db.sql.prepare(`DELETE FROM namespaces WHERE namespace = ?`).run(name);
    });
  }
}
