import type { PortMapping } from '../core/containers.ts';
import type { Ctx } from '../core/context.ts';
import { berthError } from '../core/errors.ts';
import type { MetadataDb } from './db.ts';
import { nsOf } from './common.ts';

/** How a pod shares a Linux namespace: its own for the pod, per container, or the node's (the CRI's NamespaceMode). */
export type SandboxNamespaceMode = 'pod' | 'container' | 'node';

export type SandboxState = 'ready' | 'notready';

/**
 * A pod's resources as kubelet declares them (the CRI's LinuxContainerResources
 * of the sandbox config): kept and passed on, not enforced on the pause
 * process, since kubelet sizes the pod's cgroup itself. 0 or absent: not set.
 */
export interface SandboxResources {
  cpuPeriod?: number;
  cpuQuota?: number;
  cpuShares?: number;
  memoryLimitInBytes?: number;
  memorySwapLimitInBytes?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  hugepageLimits?: Array<{ pageSize: string; limit: number }>;
  unified?: Record<string, string>;
}

/** A pod sandbox as recorded: what RunPodSandbox asked for and what it got (the pod's address). */
export interface SandboxRecord {
  id: string;
  namespace: string;
  /** The pod's metadata, which names a sandbox uniquely with the attempt. */
  name: string;
  uid: string;
  podNamespace: string;
  attempt: number;
  hostname: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  namespaces: { network: SandboxNamespaceMode; pid: SandboxNamespaceMode; ipc: SandboxNamespaceMode };
  /** The berth network the pod is attached to; empty with the node's network. */
  network: string;
  /** The pod's IPv4 address; empty with the node's network. */
  ip: string;
  state: SandboxState;
  /** Nanoseconds since the epoch, as a decimal string (the CRI's created_at). */
  createdAtNs: string;
  // Settings of the pod's sandbox config that its containers follow; records written before berth kept them lack them.
  /** Where the pod's container logs go (their log paths are relative to it); empty: none given. */
  logDirectory?: string;
  /** The host ports published to the pod (kubelet's hostPort mappings), with the host ports used. */
  ports?: PortMapping[];
  /** A privileged pod: its containers may be privileged too. */
  privileged?: boolean;
  /** Namespaced sysctls set in the pod's network and IPC namespaces. */
  sysctls?: Record<string, string>;
  /** The pod's cgroupfs parent as kubelet gave it; empty: berth's own. */
  cgroupParent?: string;
  /** The pause process's seccomp profile: `runtime/default`, `unconfined` or `localhost/<path>`. */
  seccomp?: string;
  overhead?: SandboxResources;
  resources?: SandboxResources;
}

/**
 * Namespaced pod sandbox records. The key `name_uid_namespace_attempt` of
 * the pod metadata is unique per namespace, so a second sandbox for the
 * same pod attempt is refused at `create`, as containerd reserves the name.
 *
 * Raw storage only: the sandbox service decides what the states mean.
 *
 * Errors: NotFound (unknown id), AlreadyExists (id, or the pod attempt,
 * taken), InvalidArgument (bad namespace).
 */
export class SandboxStore {
  readonly #db: MetadataDb;

  constructor(db: MetadataDb) {
    this.#db = db;
    db.migrate('sandboxes', [
      `CREATE TABLE sandboxes (
         namespace TEXT NOT NULL, id TEXT NOT NULL, pod_key TEXT NOT NULL, record TEXT NOT NULL,
         PRIMARY KEY (namespace, id), UNIQUE (namespace, pod_key));`,
    ]);
    db.registerNamespacedTable('sandboxes');
  }

  create(ctx: Ctx, rec: SandboxRecord): SandboxRecord {
    const ns = nsOf(ctx);
    const key = podKey(rec);
    const taken = this.#db.sql.prepare(`SELECT id FROM sandboxes WHERE namespace = ? AND (id = ? OR pod_key = ?)`).get(ns, rec.id, key) as { id: string } | undefined;
    if (taken) throw berthError('AlreadyExists', `pod sandbox name "${key}" is reserved for sandbox ${taken.id}`);
    const stored = { ...rec, namespace: ns };
    this.#db.sql.prepare(`INSERT INTO sandboxes (namespace, id, pod_key, record) VALUES (?, ?, ?, ?)`).run(ns, rec.id, key, JSON.stringify(stored));
    return stored;
  }

  get(ctx: Ctx, id: string): SandboxRecord {
    const row = this.#db.sql.prepare(`SELECT record FROM sandboxes WHERE namespace = ? AND id = ?`).get(nsOf(ctx), id) as { record: string } | undefined;
    if (!row) throw berthError('NotFound', `pod sandbox "${id}" not found`);
    return JSON.parse(row.record) as SandboxRecord;
  }

  /** The one sandbox whose id is `ref` or starts with it; NotFound for none, InvalidArgument for several. */
  resolve(ctx: Ctx, ref: string): SandboxRecord {
    if (!ref) throw berthError('NotFound', 'pod sandbox "" not found');
    const rows = this.#db.sql.prepare(`SELECT record FROM sandboxes WHERE namespace = ? AND substr(id, 1, ?) = ? LIMIT 2`).all(nsOf(ctx), ref.length, ref) as { record: string }[];
    if (rows.length > 1) throw berthError('InvalidArgument', `pod sandbox id prefix "${ref}" is ambiguous`);
    if (!rows.length) throw berthError('NotFound', `pod sandbox "${ref}" not found`);
    return JSON.parse(rows[0].record) as SandboxRecord;
  }

  /** Namespaces holding at least one sandbox. */
  namespaces(): string[] {
    return (this.#db.sql.prepare(`SELECT DISTINCT namespace FROM sandboxes ORDER BY namespace`).all() as { namespace: string }[]).map((r) => r.namespace);
  }

  has(namespace: string, id: string): boolean {
    return !!this.#db.sql.prepare(`SELECT 1 FROM sandboxes WHERE namespace = ? AND id = ?`).get(namespace, id);
  }

  list(ctx: Ctx): SandboxRecord[] {
    const rows = this.#db.sql.prepare(`SELECT record FROM sandboxes WHERE namespace = ? ORDER BY rowid`).all(nsOf(ctx)) as { record: string }[];
    return rows.map((r) => JSON.parse(r.record) as SandboxRecord);
  }

  update(ctx: Ctx, id: string, patch: Partial<Pick<SandboxRecord, 'state' | 'ip' | 'ports' | 'overhead' | 'resources'>>): SandboxRecord {
    const next = { ...this.get(ctx, id), ...patch };
    this.#db.sql.prepare(`UPDATE sandboxes SET record = ? WHERE namespace = ? AND id = ?`).run(JSON.stringify(next), nsOf(ctx), id);
    return next;
  }

  delete(ctx: Ctx, id: string): void {
    this.#db.sql.prepare(`DELETE FROM sandboxes WHERE namespace = ? AND id = ?`).run(nsOf(ctx), id);
  }
}

/** containerd's sandbox name: the pod metadata joined by "_". */
export function podKey(rec: Pick<SandboxRecord, 'name' | 'podNamespace' | 'uid' | 'attempt'>): string {
  return `${rec.name}_${rec.podNamespace}_${rec.uid}_${rec.attempt}`;
}
