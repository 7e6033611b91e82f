import { createHash, randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import type { Ctx } from '../core/context.ts';
import { cleanupCtx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { berthError, kindOf } from '../core/errors.ts';
import type { ImportOptions } from '../core/images.ts';
import { parsePlatform } from './blobs.ts';
import { commitLayerBlob, commitLayerSnapshot, recordImage } from './layer-image.ts';
import { applyChanges } from './changes.ts';
import { normalizeName } from './names.ts';
import type { ImageServiceCore } from './types.ts';
import { detectCompression, waitDrain } from './streams.ts';
import type { ImageConfig } from './types.ts';
import { MediaTypes } from './types.ts';

/**
 * `import`: a rootfs tar (plain, gzip or zstd) becomes a one-layer image.
 * The input is stored as given as the layer blob while it is unpacked into
 * the layer's snapshot (the applier reports the diff ID). `changes` are
 * Dockerfile-style instructions for the config (CMD, ENV, ...). Resolves
 * to the image ID.
 */
export async function importRootfs(svc: ImageServiceCore, ctx: Ctx, stream: Readable, opts: ImportOptions): Promise<string> {
  const { deps } = svc;
  const name = opts.name ? normalizeName(opts.name) : undefined;
  const platform = opts.platform ? parsePlatform(opts.platform) : svc.platform;
  const now = new Date().toISOString();
  const config: ImageConfig = {
    created: now,
    architecture: platform.architecture,
    os: platform.os,
    config: {},
    rootfs: { type: 'layers', diff_ids: [] },
    history: [{ created: now, created_by: 'berth import', comment: opts.message ?? 'Imported from tarball' }],
  };
  applyChanges(config, opts.changes ?? []);
  return svc.withLease(ctx, async (lctx) => {
    const sn = deps.snapshotter;
    const key = `import-${randomBytes(6).toString('hex')}`;
    await deps.leases.attach(lctx, { kind: 'snapshot', id: key, snapshotter: sn.name });
    const mounts = await sn.prepare(lctx, key, undefined);
    let committed = false;
    try {
      const ref = `${key}-layer`;
      await deps.leases.attach(lctx, { kind: 'ingest', id: ref });
      const writer = await deps.content.writer(lctx, { ref });
      const toApply = new PassThrough({ highWaterMark: 1 << 20 });
      const hash = createHash('sha256');
      let size = 0;
      let head = Buffer.alloc(0);
      let applyDone = false;
      // Handed over: each chunk is hashed and stored (the writer keeps no reference once its write is done) before it reaches the applier.
      const applied = deps.withMounted(lctx, mounts, (dir) =>
        deps.applyLayer(lctx, dir, toApply, { format: sn.capabilities.parallelUnpack ? 'overlay' : 'plain', maxBytes: deps.config.maxLayerUnpackedBytes, handOver: true }),
      );
      applied.then(() => (applyDone = true), () => (applyDone = true));
      let diffId: Digest;
      let layerDigest: Digest;
      try {
        for await (const c of stream) {
          const chunk = c as Buffer;
          if (head.length < 8) head = Buffer.concat([head, chunk.subarray(0, 8)]);
          hash.update(chunk);
          size += chunk.length;
          await writer.write(chunk);
          if (!applyDone && !toApply.write(chunk)) await Promise.race([waitDrain(toApply), applied.catch(() => {})]);
        }
        toApply.end();
        if (size === 0) throw berthError('InvalidArgument', 'import: the input is empty');
        layerDigest = `sha256:${hash.digest('hex')}`;
        const got = await applied;
        diffId = got.diffId;
        await commitLayerBlob(lctx, svc, writer, { digest: layerDigest, size, unpacked: got.size });
      } catch (err) {
        toApply.destroy();
        await writer.close().catch(() => {});
        await deps.content.abort(cleanupCtx(ctx), writer.ref).catch(() => {});
        throw kindOf(err) === 'Unknown' ? berthError('InvalidArgument', `import: not a valid (compressed) tar archive: ${(err as Error).message}`, err) : err;
      }
      committed = await commitLayerSnapshot(lctx, svc, diffId, key);
      const compression = detectCompression(head);
      const layerType = compression === 'gzip' ? MediaTypes.ociLayerGzip : compression === 'zstd' ? MediaTypes.ociLayerZstd : MediaTypes.ociLayer;
      config.rootfs.diff_ids = [diffId];
      // One layer: its chain ID is its diff ID.
      return await recordImage(ctx, lctx, svc, { config, layers: [{ mediaType: layerType, digest: layerDigest, size }], topSnapshot: diffId, name });
    } finally {
      if (!committed) await sn.remove(cleanupCtx(ctx), key).catch(() => {});
    }
  });
}
