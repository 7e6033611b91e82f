import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Ctx } from '../../core/context.ts';
import { berthError } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { MetadataDb } from '../../metadata/db.ts';

/**
 * Local volumes, as docker's `local` driver: a directory per volume under
 * <dir>/<namespace>/<name>/_data, records per namespace in the metadata db.
 * Whether a volume is in use is asked of the container service through
 * `usedBy`, so this store never holds a second copy of that truth.
 *
 * Errors: NotFound (unknown volume); create of an existing name returns it,
 * as docker does; Conflict (remove while in use); InvalidArgument (bad name
 * or driver).
 */
export interface Volume {
  name: string;
  driver: 'local';
  mountpoint: string;
  createdAt: string;
  labels: Record<string, string>;
  options: Record<string, string>;
  /** Created implicitly for an image VOLUME or `-v /path`. */
  anonymous: boolean;
}

const volumeName = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export class VolumeService {
  readonly #db: MetadataDb;
  readonly #dir: string;
  usedBy: (namespace: string, name: string) => string[] = () => [];

  constructor(db: MetadataDb, dir: string) {
    this.#db = db;
    this.#dir = dir;
    db.migrate('volumes', [
      `CREATE TABLE volumes (
         namespace TEXT NOT NULL, name TEXT NOT NULL, created_at TEXT NOT NULL,
         labels TEXT NOT NULL, options TEXT NOT NULL, anonymous INTEGER NOT NULL,
         PRIMARY KEY (namespace, name))`,
    ]);
  }

  /** The directory that holds a volume's data. Namespaces get their own tree. */
  mountpoint(namespace: string, name: string): string {
    return path.join(this.#dir, namespace, name, '_data');
  }

  async create(ctx: Ctx, opts: { name?: string; driver?: string; labels?: Record<string, string>; options?: Record<string, string>; anonymous?: boolean } = {}): Promise<Volume> {
    if (opts.driver && opts.driver !== 'local') throw berthError('InvalidArgument', `volume driver "${opts.driver}" is not supported: only "local"`);
    const name = opts.name || newId();
    if (!volumeName.test(name)) {
      throw berthError('InvalidArgument', `"${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed`);
    }
    const existing = this.#get(ctx.namespace, name);
    if (existing) return existing;
    await mkdir(this.mountpoint(ctx.namespace, name), { recursive: true, mode: 0o755 });
    this.#db.sql
      .prepare(`INSERT OR IGNORE INTO volumes (namespace, name, created_at, labels, options, anonymous) VALUES (?, ?, ?, ?, ?, ?)`)
      .run(ctx.namespace, name, new Date().toISOString(), JSON.stringify(opts.labels ?? {}), JSON.stringify(opts.options ?? {}), (opts.anonymous ?? !opts.name) ? 1 : 0);
    return this.#get(ctx.namespace, name)!;
  }

  async inspect(ctx: Ctx, name: string): Promise<Volume> {
    const v = this.#get(ctx.namespace, name);
    if (!v) throw berthError('NotFound', `No such volume: ${name}`);
    return v;
  }

  async list(ctx: Ctx): Promise<Volume[]> {
    const rows = this.#db.sql.prepare(`SELECT * FROM volumes WHERE namespace = ? ORDER BY name`).all(ctx.namespace) as unknown as Row[];
    return rows.map((r) => this.#toVolume(r));
  }

  async remove(ctx: Ctx, name: string, opts: { force?: boolean } = {}): Promise<void> {
    const v = this.#get(ctx.namespace, name);
    if (!v) {
      if (opts.force) return;
      throw berthError('NotFound', `No such volume: ${name}`);
    }
    const users = this.usedBy(ctx.namespace, name);
    if (users.length) throw berthError('Conflict', `remove ${name}: volume is in use - [${users.join(', ')}]`);
    this.#db.sql.prepare(`DELETE FROM volumes WHERE namespace = ? AND name = ?`).run(ctx.namespace, name);
    await rm(path.dirname(v.mountpoint), { recursive: true, force: true });
  }

  /** Remove unused volumes: anonymous ones only, or every unused one with `all` (docker 23+). */
  async prune(ctx: Ctx, opts: { all?: boolean; label?: string[] } = {}): Promise<{ removed: string[] }> {
    const removed: string[] = [];
    for (const v of await this.list(ctx)) {
      if (!opts.all && !v.anonymous) continue;
      if (opts.label?.length && !opts.label.every((l) => matchLabel(v.labels, l))) continue;
      if (this.usedBy(ctx.namespace, v.name).length) continue;
      await this.remove(ctx, v.name);
      removed.push(v.name);
    }
    return { removed };
  }

  #get(namespace: string, name: string): Volume | undefined {
    const r = this.#db.sql.prepare(`SELECT * FROM volumes WHERE namespace = ? AND name = ?`).get(namespace, name) as Row | undefined;
    return r ? this.#toVolume(r) : undefined;
  }

  #toVolume(r: Row): Volume {
    return {
      name: r.name,
      driver: 'local',
      mountpoint: this.mountpoint(r.namespace, r.name),
      createdAt: r.created_at,
      labels: JSON.parse(r.labels),
      options: JSON.parse(r.options),
      anonymous: r.anonymous === 1,
    };
  }
}

interface Row {
  namespace: string;
  name: string;
  created_at: string;
  labels: string;
  options: string;
  anonymous: number;
}

/**
 * docker's volume listing filters (`name` substring, `label`, `dangling`,
 * `driver`), for every door; InvalidArgument for another key.
 */
export async function listVolumes(ctx: Ctx, svc: VolumeService, filters: Record<string, string[]> = {}): Promise<Volume[]> {
  for (const key of Object.keys(filters)) if (!['name', 'label', 'dangling', 'driver'].includes(key)) throw berthError('InvalidArgument', `invalid filter '${key}'`);
  return (await svc.list(ctx)).filter((v) => {
    if (filters.name && !filters.name.some((n) => v.name.includes(n))) return false;
    if (filters.label && !filters.label.every((l) => matchLabel(v.labels, l))) return false;
    if (filters.driver && !filters.driver.includes(v.driver)) return false;
    if (filters.dangling) {
      const dangling = svc.usedBy(ctx.namespace, v.name).length === 0;
      if (['true', '1'].includes(filters.dangling[0]) !== dangling) return false;
    }
    return true;
  });
}

/** `key` or `key=value` against a label map, as docker's label filters. */
export function matchLabel(labels: Record<string, string>, filter: string): boolean {
  const eq = filter.indexOf('=');
  if (eq < 0) return filter in labels;
  return labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}
