import type { Ctx } from '../core/context.ts';

/**
 * Snapshotter: filesystem trees built from layers, containerd's model.
 *
 * Vocabulary: a *committed* snapshot is read-only and named (for image layers
 * the name is the layer's chain ID); an *active* snapshot has a key, is
 * writable and is what `prepare` returns; a *view* is a read-only active
 * snapshot. A snapshot's parent must be committed. `commit` turns an active
 * snapshot into a committed one; `remove` refuses a snapshot that has
 * children (Conflict).
 *
 * Mounts are returned, not performed: the caller (the layer applier, the
 * runtime when it builds a container's rootfs) mounts them, with
 * `mountAll`/`unmountAll` or `withMounts` from snapshots/mount.ts.
 * `mounts(key)` of a committed snapshot gives a read-only view of it.
 *
 * Keys are global to a snapshotter (no namespaces); the layer above
 * prefixes them. `remove` of an active snapshot whose mounts are still
 * mounted is the caller's error: unmount first.
 *
 * Parallel unpack: when `capabilities.parallelUnpack` is true, an active
 * snapshot prepared with no parent holds a *diff* in overlay upper format
 * (whiteouts as 0/0 character devices, opaque dirs by xattr), and
 * `commit(name, key, { parent })` attaches it to its parent at commit time,
 * so every layer of an image can be extracted at once and committed in order.
 *
 * Errors: NotFound (unknown key or parent), AlreadyExists (key or name taken),
 * Conflict (remove with children, commit of a view), InvalidArgument.
 *
 * Example:
 *   const mounts = await sn.prepare(ctx, 'extract-1', undefined);
 *   const { diffId } = await withMounts(ctx, mounts, tmpDir, (dir) => applyLayer(ctx, dir, blob, { format: 'overlay' }));
 *   await sn.commit(ctx, chainId, 'extract-1', { parent: parentChainId });
 *   const rootfs = await sn.prepare(ctx, containerId, chainId);
 *   await mountAll(ctx, rootfs, bundleRootfsDir);
 */
export type SnapshotKind = 'active' | 'view' | 'committed';

export interface SnapshotInfo {
  name: string;
  kind: SnapshotKind;
  parent?: string;
  labels: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

export interface Mount {
  type: string;
  source: string;
  options: string[];
}

export interface Usage {
  size: number;
  inodes: number;
}

export interface Snapshotter {
  readonly name: string;
  readonly capabilities: { parallelUnpack: boolean };
  stat(ctx: Ctx, key: string): Promise<SnapshotInfo>;
  prepare(ctx: Ctx, key: string, parent: string | undefined, opts?: { labels?: Record<string, string> }): Promise<Mount[]>;
  view(ctx: Ctx, key: string, parent: string, opts?: { labels?: Record<string, string> }): Promise<Mount[]>;
  mounts(ctx: Ctx, key: string): Promise<Mount[]>;
  commit(ctx: Ctx, name: string, key: string, opts?: { labels?: Record<string, string>; parent?: string }): Promise<void>;
  remove(ctx: Ctx, key: string): Promise<void>;
  walk(ctx: Ctx, fn: (info: SnapshotInfo) => void | Promise<void>): Promise<void>;
  usage(ctx: Ctx, key: string): Promise<Usage>;
  close(): Promise<void>;
}
