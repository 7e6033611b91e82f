import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { availableParallelism } from 'node:os';
import type { Ctx } from '../core/context.ts';
import { rootCtx } from '../core/context.ts';
import { isAlreadyExists, isNotFound } from '../core/errors.ts';
import { FileSystemSyncer } from '../core/sync-fs.ts';
import type { Logger } from '../core/log.ts';
import { LocalContentStore } from '../content/local-store.ts';
import type { MetadataDb } from '../metadata/db.ts';
import { MetadataContainerStore } from '../metadata/containers.ts';
import { GarbageCollector } from '../metadata/gc.ts';
import { MetadataImageStore } from '../metadata/images.ts';
import { MetadataLeaseManager } from '../metadata/leases.ts';
import { DockerConfigCredentialStore, RegistryByName, RegistryClient, distributionConfig } from '../distribution/index.ts';
import { ApplierPool } from '../snapshots/apply-pool.ts';
import { withMounts } from '../snapshots/mount.ts';
import { NativeSnapshotter } from '../snapshots/native.ts';
import { OverlaySnapshotter } from '../snapshots/overlay.ts';
import type { Snapshotter } from '../snapshots/types.ts';
import { imagesSettings } from '../images/config.ts';
import { ImageService } from '../images/service.ts';
import { dropLostLayers, removeInterruptedUnpacks } from '../images/recover.ts';
import { WriteBehind, holdingParents } from '../images/write-behind.ts';
import type { ImageRecordStore, RegistryRole } from '../images/types.ts';
import type { SectionValues } from '../core/config.ts';

/**
 * Builds the image service and everything under it on the daemon's root:
 * `<root>/content` (blobs), `<root>/snapshots/<name>`, the metadata
 * database's image, lease and container stores, GC, and the registry
 * client with credentials in `<root>/auth.json` (then the configured
 * docker config files).
 */
export interface ImagesWiring {
  images: ImageService;
  content: LocalContentStore;
  snapshotter: Snapshotter;
  /** The snapshotter's root directory: where image layers (and containers' writable layers) take disk space. */
  snapshotRoot: string;
  gc: GarbageCollector;
  leases: MetadataLeaseManager;
  registry: RegistryClient;
  /** What an earlier life left: the leases of its operations, the snapshots of its unpacks. Before anything else uses the images. */
  recover(): Promise<void>;
  close(): Promise<void>;
}

export async function wireImages(opts: {
  db: MetadataDb;
  root: string;
  state: string;
  log: Logger;
  images?: SectionValues;
  registry?: SectionValues;
}): Promise<ImagesWiring> {
  const ctx = rootCtx({ log: opts.log });
  const settings = imagesSettings(opts.images);
  const content = await LocalContentStore.open(ctx, path.join(opts.root, 'content'));
  const imageStore = new MetadataImageStore(opts.db);
  const leases = new MetadataLeaseManager(opts.db);
  const containers = new MetadataContainerStore(opts.db);
  const snRoot = path.join(opts.root, 'snapshots', settings.snapshotter);
  await mkdir(snRoot, { recursive: true, mode: 0o711 });
  const rawSnapshotter: Snapshotter =
    settings.snapshotter === 'native' ? await NativeSnapshotter.open(ctx, { root: snRoot, db: opts.db }) : await OverlaySnapshotter.open(ctx, { root: snRoot, db: opts.db });
  // Pulled layers become durable behind the pull's answer; the marks live beside the metadata database.
  const syncer = await FileSystemSyncer.open([content.root, snRoot, opts.root]);
  const writeBehind = new WriteBehind(path.join(opts.root, 'write-behind.marks'), () => syncer.sync());
  writeBehind.onFlushError((err) => ctx.log.warn('syncing pulled layers failed; they stay marked and the next sync tries again', { err }));
  const snapshotter = holdingParents(rawSnapshotter, writeBehind);
  const gc = new GarbageCollector({ images: imageStore, containers, leases, content, snapshotters: [snapshotter] });
  const dist = distributionConfig(opts.registry);
  const credentials = new DockerConfigCredentialStore([path.join(opts.root, 'auth.json'), ...dist.authFiles]);
  const client = new RegistryClient({ config: dist, credentials });
  const mountTmp = path.join(opts.state, 'mounts');
  await mkdir(mountTmp, { recursive: true, mode: 0o700 });

  const records: ImageRecordStore = {
    get: (c, name) => imageStore.get(c, name),
    list: (c) => imageStore.list(c),
    async put(c, rec) {
      // Two operations may name the same image at once: whichever loses the create updates.
      for (let attempt = 0; ; attempt++) {
        try {
          return await imageStore.update(c, rec.name, { target: rec.target, labels: rec.labels ?? {} });
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
        try {
          return await imageStore.create(c, rec);
        } catch (err) {
          if (!isAlreadyExists(err) || attempt > 2) throw err;
        }
      }
    },
    delete: (c, name) => imageStore.delete(c, name),
  };

  const registry: RegistryRole = new RegistryByName(client);
  // Layers unpack in worker threads, one per core: a pull's tar parsing, hashing and file creation
  // then use every core, and the event loop stays free for the download and for API requests.
  const pool = new ApplierPool({ size: availableParallelism() });

  const images = new ImageService({
    content,
    records,
    snapshotter,
    applyLayer: (c, dir, stream, o) => pool.apply(c, dir, stream, o),
    withMounted: (c, mounts, fn) => withMounts(c, mounts, mountTmp, fn),
    // Every sync goes through the write-behind, so any of them clears the marks it covers.
    durable: () => writeBehind.sync(),
    writeBehind,
    leases: {
      create: async (c, o) => (await leases.create(c, { expiresAt: new Date(Date.now() + o.ttlMs) })).id,
      delete: (c, id) => leases.delete(c, id),
      attach: (c, res) => leases.attach(c, res),
    },
    gc: {
      async collect(c: Ctx) {
        const r = await gc.collect(c);
        return { contentBytes: r.content.bytes + r.snapshots.bytes, removed: r.content.count + r.snapshots.count };
      },
    },
    containers: {
      async imagesInUse(c) {
        return (await containers.list(c)).map((x) => ({ imageId: x.imageId, image: x.imageName, containerId: x.id }));
      },
    },
    registry,
    credentials: {
      store: (host, username, password) => credentials.store(ctx, host, { username, password }),
      async erase(host) {
        try {
          await credentials.erase(ctx, host);
          return true;
        } catch (err) {
          if (isNotFound(err)) return false;
          throw err;
        }
      },
    },
    // One knob for both: layers in flight per pull are the registry client's downloads.
    config: { maxConcurrentDownloads: dist.maxConcurrentDownloads, leaseTtlMs: settings.leaseTtlMs, maxLayerUnpackedBytes: settings.maxLayerUnpackedBytes },
  });

  /**
   * Marks of this boot are synced; those of another boot name layers a reboot may have emptied:
   * dropped first, and forgotten only once all of them went (else the next start tries again).
   */
  async function recoverWriteBehind(): Promise<void> {
    let found;
    try {
      found = await writeBehind.recover();
    } catch (err) {
      ctx.log.warn('cannot read the write-behind marks; layers pulled just before a crash are not checked', { err });
      return;
    }
    if (!found.marked) return;
    if (found.snapshots.length > 0 || found.blobs.length > 0) {
      try {
        const dropped = await dropLostLayers(ctx, { namespaces: opts.db.namespaces(), records: imageStore, content, snapshotter: rawSnapshotter, platform: images.platform }, found);
        ctx.log.warn('dropped image layers pulled just before a reboot, whose files may not have reached the disk; pull them again', { ...dropped });
        if (dropped.failures === 0) await writeBehind.forgetLost();
      } catch (err) {
        ctx.log.warn('cannot drop the image layers pulled just before a reboot; the next start tries again', { err });
      }
    }
    await writeBehind.sync().catch((err) => ctx.log.warn('syncing pulled layers at start failed; they stay marked', { err }));
  }

  return {
    images,
    content,
    snapshotter,
    snapshotRoot: snRoot,
    gc,
    leases,
    registry: client,
    async recover() {
      await recoverWriteBehind();
      // Operations of an earlier life hold nothing any more; partial downloads stay for a resume (GC's grace period).
      try {
        const dropped = leases.deleteExpiring();
        if (dropped) ctx.log.info('dropped the leases of operations a restart interrupted', { leases: dropped });
      } catch (err) {
        ctx.log.warn('cannot drop the leases of an earlier daemon life; GC frees what they hold when they expire', { err });
      }
      const interrupted = await removeInterruptedUnpacks(ctx, snapshotter).catch((err) => {
        ctx.log.warn('cannot look for the snapshots of unpacks a restart interrupted; GC takes them after its grace period', { err });
        return 0;
      });
      if (interrupted) ctx.log.info('removed the snapshots of unpacks a restart interrupted', { snapshots: interrupted });
    },
    async close() {
      // A clean stop leaves no marks: a reboot right after it must not drop what it pulled.
      await writeBehind.flushAll().catch((err) => ctx.log.warn('syncing pulled layers at stop failed; the next start does it', { err }));
      client.close();
      await syncer.close();
      await pool.close();
      await snapshotter.close();
    },
  };
}
