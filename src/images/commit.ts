import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { chainId } from '../core/chain-id.ts';
import type { Ctx } from '../core/context.ts';
import { cleanupCtx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { isAlreadyExists } from '../core/errors.ts';
import type { ImageConfigFields } from '../core/images.ts';
import { putBlob } from './blobs.ts';
import { applyChanges } from './changes.ts';
import { normalizeName } from './names.ts';
import type { ImageService } from './service.ts';
import { waitDrain } from './streams.ts';
import type { ImageConfig, Manifest } from './types.ts';
import { GcLabels, MediaTypes } from './types.ts';

export interface CommitLayerOptions {
  /** The image the new one is built on (its ID or a name). */
  parent: string;
  /** The new layer as an uncompressed tar. */
  layer: Readable;
  /** The runnable config of the new image (docker commit: the container's, over the image's). */
  config: ImageConfigFields;
  /** Name to tag the new image with; untagged when absent. */
  name?: string;
  author?: string;
  comment?: string;
  /** What the history entry says made the layer. */
  createdBy: string;
  /** Dockerfile-style instructions applied to the config (`CMD ["sh"]`, `ENV A=1`). */
  changes?: string[];
}

/**
 * `commit`: a new image made of `parent`'s layers and one more. The layer
 * is stored gzip-compressed while it is unpacked onto the parent's snapshot
 * chain, so the new image runs at once; the config and manifest carry the
 * same garbage-collection references a pulled image has (config to the top
 * snapshot, manifest to config and layers). Resolves to the image ID.
 */
export async function commitLayer(svc: ImageService, ctx: Ctx, opts: CommitLayerOptions): Promise<string> {
  const { deps } = svc;
  const parent = await svc.find(ctx, opts.parent);
  const name = opts.name ? normalizeName(opts.name) : undefined;
  const parentDiffIds = parent.config.rootfs.diff_ids;
  const parentChain = chainId(parentDiffIds);
  return svc.withLease(ctx, async (lctx) => {
    const sn = deps.snapshotter;
    const key = `commit-${randomBytes(6).toString('hex')}`;
    await deps.leases.attach(lctx, { kind: 'snapshot', id: key, snapshotter: sn.name });
    // As a pull unpacks: an overlay layer is extracted on its own (whiteouts kept as overlayfs
    // writes them) and put on its parent at commit; a copying snapshotter starts from the parent.
    const standalone = sn.capabilities.parallelUnpack;
    const mounts = await sn.prepare(lctx, key, standalone ? undefined : parentChain);
    let committed = false;
    try {
      const ref = `${key}-layer`;
      await deps.leases.attach(lctx, { kind: 'ingest', id: ref });
      const writer = await deps.content.writer(lctx, { ref });
      const toApply = new PassThrough({ highWaterMark: 1 << 20 });
      const applied = deps.withMounted(lctx, mounts, (dir) => deps.applyLayer(lctx, dir, toApply, { format: standalone ? 'overlay' : 'plain' }));
      let applyDone = false;
      applied.then(() => (applyDone = true), () => (applyDone = true));
      const gzip = createGzip();
      const hash = createHash('sha256');
      let size = 0;
      const stored = (async () => {
        for await (const c of gzip) {
          hash.update(c as Buffer);
          size += (c as Buffer).length;
          await writer.write(c as Buffer);
        }
      })();
      let layerDigest: Digest;
      let diffId: Digest;
      try {
        for await (const c of opts.layer) {
          if (!gzip.write(c)) await waitDrain(gzip);
          if (!applyDone && !toApply.write(c)) await Promise.race([waitDrain(toApply), applied.catch(() => {})]);
        }
        gzip.end();
        toApply.end();
        await stored;
        layerDigest = `sha256:${hash.digest('hex')}`;
        const got = await applied;
        diffId = got.diffId;
        await deps.leases.attach(lctx, { kind: 'content', id: layerDigest });
        try {
          await writer.commit(lctx, { size, digest: layerDigest, labels: { [GcLabels.layerSize]: String(got.size) } });
        } catch (err) {
          if (!isAlreadyExists(err)) throw err;
        }
      } catch (err) {
        toApply.destroy();
        gzip.destroy();
        await writer.close().catch(() => {});
        await deps.content.abort(cleanupCtx(ctx), writer.ref).catch(() => {});
        throw err;
      }
      const diffIds = [...parentDiffIds, diffId];
      const top = chainId(diffIds)!;
      try {
        await deps.leases.attach(lctx, { kind: 'snapshot', id: top, snapshotter: sn.name });
        await sn.commit(lctx, top, key, parentChain ? { parent: parentChain } : undefined);
        committed = true;
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
      const now = new Date().toISOString();
      const base = parent.config as ImageConfig;
      const config: ImageConfig = {
        ...base,
        created: now,
        ...(opts.author ? { author: opts.author } : {}),
        config: opts.config,
        rootfs: { type: 'layers', diff_ids: diffIds },
        history: [...(base.history ?? []), { created: now, created_by: opts.createdBy, ...(opts.author ? { author: opts.author } : {}), ...(opts.comment ? { comment: opts.comment } : {}) }],
      };
      applyChanges(config, opts.changes ?? []);
      const configBytes = Buffer.from(JSON.stringify(config));
      const configDigest = await putBlob(lctx, deps.content, configBytes, { [GcLabels.snapshotRef(sn.name)]: top }, undefined, deps.leases);
      const layers = [...parent.manifest.layers, { mediaType: MediaTypes.ociLayerGzip, digest: layerDigest, size }];
      const manifest: Manifest = {
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        config: { mediaType: MediaTypes.ociConfig, digest: configDigest, size: configBytes.length },
        layers,
      };
      const manifestBytes = Buffer.from(JSON.stringify(manifest));
      const mlabels: Record<string, string> = { [GcLabels.contentRef('config')]: configDigest };
      layers.forEach((l, i) => (mlabels[GcLabels.contentRef(`l.${i}`)] = l.digest));
      const manifestDigest = await putBlob(lctx, deps.content, manifestBytes, mlabels, undefined, deps.leases);
      const target = { mediaType: MediaTypes.ociManifest, digest: manifestDigest, size: manifestBytes.length };
      if (name) await svc.setName(ctx, name, target, configDigest);
      else await deps.records.put(ctx, { name: configDigest, target, labels: {} });
      return configDigest;
    } finally {
      if (!committed) await sn.remove(cleanupCtx(ctx), key).catch(() => {});
    }
  });
}
