import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { berthError } from '../core/errors.ts';

/**
 * The connection with its statements kept prepared. node:sqlite compiles a
 * statement's SQL again at every `prepare()`, and the stores prepare at every
 * call: on a container's start and removal that was most of the time spent in
 * lookups. A statement is reset after each get, all or run, so a kept one
 * holds no read snapshot between calls. The cap bounds SQL built from
 * variable parts (IN lists, table unions); the oldest entry goes first.
 */
export class Statements {
  static readonly CAP = 256;
  readonly #db: DatabaseSync;
  readonly #kept = new Map<string, StatementSync>();

  constructor(path: string) {
    this.#db = new DatabaseSync(path);
  }

  prepare(sql: string): StatementSync {
    let stmt = this.#kept.get(sql);
    if (!stmt) {
      stmt = this.#db.prepare(sql);
      if (this.#kept.size >= Statements.CAP) this.#kept.delete(this.#kept.keys().next().value as string);
      this.#kept.set(sql, stmt);
    }
    return stmt;
  }

  exec(sql: string): void {
    this.#db.exec(sql);
  }

  get isTransaction(): boolean {
    return this.#db.isTransaction;
  }

  /** How many statements are kept (tests). */
  get keptCount(): number {
    return this.#kept.size;
  }

  close(): void {
    this.#kept.clear();
    this.#db.close();
  }
}

/**
 * The metadata database: one SQLite file under the root, WAL mode, every
 * record keyed by namespace. Each store (images, containers, leases,
 * networks, ...) owns its tables and registers its own ordered migrations
 * under a component name, so stores evolve independently:
 *
 *   db.migrate('images', [
 *     `CREATE TABLE images (namespace TEXT NOT NULL, name TEXT NOT NULL, ...)`,
 *   ]);
 *
 * A migration is never edited once released; add a new one after it.
 */
export class MetadataDb {
  readonly sql: Statements;
  #txDepth = 0;
  readonly #namespacedTables = new Set<string>();

  constructor(path: string) {
    this.sql = new Statements(path);
    this.sql.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)`);
  }

  /** Apply the migrations of `component` that have not run yet, each in a transaction. */
  migrate(component: string, migrations: readonly string[]): void {
    const row = this.sql.prepare(`SELECT version FROM schema_versions WHERE component = ?`).get(component) as { version: number } | undefined;
    const current = row?.version ?? 0;
    if (current > migrations.length) {
      throw berthError('FailedPrecondition', `metadata component "${component}" is at schema version ${current}, newer than this berth knows (${migrations.length})`);
    }
    for (let v = current; v < migrations.length; v++) {
      this.transaction(() => {
        this.sql.exec(migrations[v]);
        this.sql.prepare(`INSERT INTO schema_versions (component, version) VALUES (?, ?) ON CONFLICT(component) DO UPDATE SET version = excluded.version`).run(component, v + 1);
      });
    }
  }

  /** Run `fn` in a transaction (nested calls join the outer one). `fn` must be synchronous. */
  transaction<T>(fn: () => T): T {
    if (this.#txDepth > 0) return fn();
    // Kept statements: exec() would parse these again at every transaction.
    this.sql.prepare('BEGIN IMMEDIATE').run();
    this.#txDepth++;
    try {
      const result = fn();
      this.sql.prepare('COMMIT').run();
      return result;
    } catch (err) {
      // SQLite ends the transaction itself on some errors (a full disk): a ROLLBACK then would fail and hide the cause.
      if (this.sql.isTransaction) this.sql.prepare('ROLLBACK').run();
      throw err;
    } finally {
      this.#txDepth--;
    }
  }

  /**
   * Declare that `table` has a `namespace` column, so `namespaces()` sees its
   * records. Each store calls this for its tables after migrating.
   */
  registerNamespacedTable(table: string): void {
    if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw berthError('InvalidArgument', `invalid table name "${table}"`);
    this.#namespacedTables.add(table);
  }

  /** Namespaces that hold at least one record in any registered table, sorted. */
  namespaces(): string[] {
    if (this.#namespacedTables.size === 0) return [];
    const union = [...this.#namespacedTables].map((t) => `SELECT namespace FROM ${t}`).join(' UNION ');
    return (this.sql.prepare(`SELECT DISTINCT namespace FROM (${union}) ORDER BY namespace`).all() as { namespace: string }[]).map((r) => r.namespace);
  }

  /** The registered tables that hold at least one record in `namespace`, sorted. */
  tablesHolding(namespace: string): string[] {
    return [...this.#namespacedTables].filter((t) => this.sql.prepare(`SELECT 1 FROM ${t} WHERE namespace = ? LIMIT 1`).get(namespace)).sort();
  }

  close(): void {
    this.sql.close();
  }
}
