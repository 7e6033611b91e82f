import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { SectionValues } from '../core/config.ts';
import { rootCtx } from '../core/context.ts';
import type { Logger } from '../core/log.ts';
import { isNotFound } from '../core/errors.ts';
import { Builder } from '../build/builder.ts';
import { buildSettings } from '../build/config.ts';
import type { BuildImages } from '../build/types.ts';
import type { MetadataDb } from '../metadata/db.ts';
import { BuildCacheStore } from '../metadata/build-cache.ts';
import { MetadataLeaseManager } from '../metadata/leases.ts';
import { recordImage } from '../images/layer-image.ts';
import type { ImageService } from '../images/service.ts';
import type { Descriptor } from '../images/types.ts';
import type { ContainerService } from '../runtime/containers/containers.ts';

/**
 * The builder on the image and container services: images are found,
 * pulled, stored and tagged by the image service; steps run in containers
 * of the container service; the cache is the metadata database's
 * build_cache table with a lease per entry. Contexts are unpacked under
 * `<root>/builds` (on disk: a context may be large). `recover()`, after the
 * containers' own, removes what a build cut short by a crash left: that
 * directory and the step containers (label `berth.build`).
 */
export function wireBuilder(opts: { db: MetadataDb; root: string; images: ImageService; containers: ContainerService; build?: SectionValues; log: Logger }): { builder: Builder; recover(): Promise<void> } {
  const { images, containers } = opts;
  const settings = buildSettings(opts.build);
  const workDir = path.join(opts.root, 'builds');
  const recover = async () => {
    await rm(workDir, { recursive: true, force: true });
    // The containers of steps a crash cut short (their build is gone with the process).
    for (const namespace of opts.db.namespaces()) {
      const ctx = rootCtx({ namespace, log: opts.log });
      for (const c of await containers.list(ctx)) {
        if (c.record.config.labels?.['berth.build'] === undefined) continue;
        await containers.remove(ctx, c.record.id, { force: true }).catch((err) => opts.log.warn('cannot remove a build step container', { container: c.record.id, err }));
      }
    }
  };
  const leases = new MetadataLeaseManager(opts.db);
  const records = images.deps.records;
  const buildImages: BuildImages = {
    async find(ctx, ref) {
      const img = await images.find(ctx, ref);
      return { id: img.id, target: img.manifestDesc, manifest: img.manifest, config: img.config };
    },
    pull: (ctx, ref, onProgress) => images.pull(ctx, ref, onProgress),
    record: (ctx, image) => images.withLease(ctx, (lctx) => recordImage(ctx, lctx, images, image)),
    async ensureRecord(ctx, id, target) {
      try {
        await records.get(ctx, id);
        return false;
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await records.put(ctx, { name: id, target: target as Descriptor, labels: {} });
        return true;
      }
    },
    async dropRecord(ctx, id) {
      await records.delete(ctx, id).catch((err) => {
        if (!isNotFound(err)) throw err;
      });
    },
    tag: (ctx, id, name) => images.tag(ctx, id, name),
    hold: (ctx, id) => images.hold(ctx, id),
    async gc(ctx) {
      const r = await images.deps.gc.collect(ctx);
      return { bytes: r.contentBytes };
    },
    platform: images.platform,
  };
  const builder = new Builder({
    images: buildImages,
    containers: {
      create: (ctx, config) => containers.create(ctx, config),
      start: (ctx, id) => containers.start(ctx, id),
      attach: (ctx, id) => containers.attach(ctx, id, { all: true }),
      wait: (ctx, id, condition) => containers.wait(ctx, id, condition),
      rootfsOf: (ctx, id) => containers.rootfsOf(ctx, id),
      commit: (ctx, id, o) => containers.commit(ctx, id, o),
      remove: (ctx, id) => containers.remove(ctx, id, { force: true }),
    },
    cache: new BuildCacheStore(opts.db),
    leases: {
      create: (ctx, o) => leases.create(ctx, o),
      delete: (ctx, id) => leases.delete(ctx, id),
      addResource: (ctx, id, res) => leases.addResource(ctx, id, res),
    },
    config: { maxContextBytes: settings.maxContextBytes, compression: settings.compression, compressionLevel: settings.compressionLevel, workDir, cacheMountDir: path.join(opts.root, 'build-cache-mounts') },
  });
  return { builder, recover };
}
