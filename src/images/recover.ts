import type { Ctx } from '../core/context.ts';
import { chainIds } from '../core/chain-id.ts';
import type { Digest } from '../core/digest.ts';
import { isNotFound } from '../core/errors.ts';
import type { ContentStore } from '../content/types.ts';
import type { SnapshotInfo, Snapshotter } from '../snapshots/types.ts';
import { MAX_JSON_BLOB, loadImage } from './blobs.ts';
import { isManifestType } from '../core/media-types.ts';
import { checkedIndex } from './untrusted.ts';
import type { Descriptor, ImageRecordStore, Platform, ResolvedImage } from './types.ts';
import { isIndex } from './types.ts';

/** Keys of the snapshots pull, load, import and commit unpack into before they commit them (see pull.ts, import.ts, commit.ts). */
const OPERATION_KEY = /^(extract|import|commit)-[0-9a-f]{12}(-|$)/;

/**
 * At start, remove the active snapshots that image operations of an
 * earlier daemon life were unpacking into: nothing will ever commit them,
 * and GC spares active snapshots for a grace period (a container's are
 * active too). Each is removed on its own; one that cannot be is logged and
 * left for GC. Resolves to how many went.
 */
export async function removeInterruptedUnpacks(ctx: Ctx, sn: Snapshotter): Promise<number> {
  const keys: string[] = [];
  await sn.walk(ctx, (info) => {
    if (info.kind === 'active' && OPERATION_KEY.test(info.name)) keys.push(info.name);
  });
  let removed = 0;
  for (const key of keys) {
    try {
      await sn.remove(ctx, key);
      removed++;
    } catch (err) {
      ctx.log.warn('cannot remove the snapshot of an interrupted unpack', { key, err });
    }
  }
  return removed;
}

/** What a start after a reboot dropped because the write-behind had not made it durable. */
export interface DroppedLayers {
  images: number;
  snapshots: number;
  blobs: number;
  /** What could not be dropped (logged): the marks are kept for the next start. */
  failures: number;
}

/**
 * At start after a reboot, drop the layers the write-behind named as not yet
 * durable (images/write-behind.ts): their files may have gone with the page
 * cache. First every image record that names one of them (in any namespace:
 * its top snapshot's chain, or a layer blob), then the snapshots and every
 * snapshot built on them, children before parents, then the blobs. Nothing has been served yet, so no
 * container was built on them; a snapshot that has a child outside the set
 * anyway, or anything that cannot be removed, is logged and left: berthd
 * starts all the same. The next pull fetches them again.
 */
export async function dropLostLayers(
  ctx: Ctx,
  deps: { namespaces: string[]; records: ImageRecordStore; content: ContentStore; snapshotter: Snapshotter; platform: Platform },
  lost: { snapshots: string[]; blobs: Digest[] },
): Promise<DroppedLayers> {
  const snapshots = new Set(lost.snapshots);
  const blobs = new Set<string>(lost.blobs);
  const dropped: DroppedLayers = { images: 0, snapshots: 0, blobs: 0, failures: 0 };
  const namesLost = (img: ResolvedImage) => chainIds(img.config.rootfs.diff_ids).some((c) => snapshots.has(c)) || img.manifest.layers.some((l) => blobs.has(l.digest));
  for (const namespace of deps.namespaces) {
    const nctx = { ...ctx, namespace };
    for (const rec of await deps.records.list(nctx)) {
      if (!(await someManifest(nctx, deps.content, rec.target, deps.platform, namesLost))) continue;
      try {
        await deps.records.delete(nctx, rec.name);
        dropped.images++;
      } catch (err) {
        if (isNotFound(err)) continue;
        dropped.failures++;
        ctx.log.warn('cannot drop an image whose layers a reboot may have emptied', { image: rec.name, namespace, err });
      }
    }
  }
  // Every snapshot built on a lost one is lost with it: a later pull would otherwise find it and build on it.
  const infos = new Map<string, SnapshotInfo>();
  await deps.snapshotter.walk(ctx, (info) => void infos.set(info.name, info));
  const left = new Set([...snapshots].filter((s) => infos.has(s)));
  for (let grew = true; grew; ) {
    grew = false;
    for (const info of infos.values()) {
      if (left.has(info.name) || !info.parent || !left.has(info.parent)) continue;
      left.add(info.name);
      grew = true;
    }
  }
  for (let progress = true; progress && left.size > 0; ) {
    progress = false;
    for (const name of left) {
      if ([...infos.values()].some((i) => i.parent === name)) continue;
      left.delete(name);
      progress = true;
      // A container's writable layer on one means the sync did run (a dependent waits for it): kept, so its parents are.
      const info = infos.get(name)!;
      if (info.kind !== 'committed' && !OPERATION_KEY.test(name)) {
        dropped.failures++;
        ctx.log.warn("a container's snapshot stands on layers marked as not yet durable at a reboot; kept", { snapshot: name });
        continue;
      }
      try {
        await deps.snapshotter.remove(ctx, name);
        infos.delete(name);
        dropped.snapshots++;
      } catch (err) {
        dropped.failures++;
        ctx.log.warn('cannot remove a snapshot a reboot may have emptied', { snapshot: name, err });
      }
    }
  }
  if (left.size > 0) {
    dropped.failures += left.size;
    ctx.log.warn('snapshots a reboot may have emptied still have children; left in place', { snapshots: [...left] });
  }
  for (const digest of blobs) {
    try {
      await deps.content.delete(ctx, digest as Digest);
      dropped.blobs++;
    } catch (err) {
      if (isNotFound(err)) continue;
      dropped.failures++;
      ctx.log.warn('cannot remove a blob a reboot may have emptied', { digest, err });
    }
  }
  return dropped;
}

/**
 * Whether `test` holds for any image a record's target names that is in the
 * store: the target's own, or for an index every platform's manifest present
 * (a record whose manifests cannot be read names nothing here).
 */
async function someManifest(ctx: Ctx, content: ContentStore, target: Descriptor, platform: Platform, test: (img: ResolvedImage) => boolean): Promise<boolean> {
  let targets: Descriptor[] = [target];
  if (isIndex(target.mediaType)) {
    try {
      targets = checkedIndex(await content.readAll(ctx, target.digest, MAX_JSON_BLOB), `index ${target.digest}`).manifests.filter((m) => isManifestType(m.mediaType));
    } catch {
      return false;
    }
  }
  for (const t of targets) {
    try {
      if (test(await loadImage(ctx, content, t, platform))) return true;
    } catch {
      // A manifest of the index that is not in the store (another platform, never pulled).
    }
  }
  return false;
}
