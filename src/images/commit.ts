import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { zlibModule } from '../core/builtins.ts';
import { chainId } from '../core/chain-id.ts';
import type { Ctx } from '../core/context.ts';
import { cleanupCtx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import type { ImageConfigFields } from '../core/images.ts';
import { applyChanges } from './changes.ts';
import { GzipMember } from './gzip-member.ts';
import { commitLayerBlob, commitLayerSnapshot, recordImage } from './layer-image.ts';
import { normalizeName } from './names.ts';
import type { ImageServiceCore } from './types.ts';
import { waitDrain } from './streams.ts';
import type { ImageConfig } from './types.ts';
import { MediaTypes } from './types.ts';

/** How much compressed output zlib hands over at a time. */
const COMPRESSED_PIECE_BYTES = 256 * 1024;

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
  /** The history the new entry follows, instead of the parent's (a build's steps that changed only the config). */
  history?: ImageConfig['history'];
  /** The image's and its new history entry's time (RFC 3339), instead of now. */
  created?: string;
  /** How the layer blob is compressed (default gzip). */
  compression?: 'gzip' | 'zstd';
  /** Its compression level (default: the compressor's own, gzip 6, zstd 3). */
  compressionLevel?: number;
  /**
   * An active snapshot on the parent's chain that holds exactly `layer`
   * (a stopped container's writable layer, in overlay format, the
   * runtime's placeholders taken out): it becomes the new layer's snapshot
   * as it is, instead of `layer` being unpacked into a snapshot of its own,
   * which wrote every file a second time. The caller must not change it
   * afterwards; when the layer's snapshot exists already it is left active,
   * for the caller to remove.
   */
  snapshotKey?: string;
}

/**
 * `commit`: a new image made of `parent`'s layers and one more. The layer
 * is stored gzip-compressed while it is unpacked onto the parent's snapshot
 * chain (or while `snapshotKey`, which holds it already, is hashed for its
 * diff ID), so the new image runs at once; the config and manifest carry the
 * same garbage-collection references a pulled image has (config to the top
 * snapshot, manifest to config and layers). Resolves to the image ID.
 */
export async function commitLayer(svc: ImageServiceCore, ctx: Ctx, opts: CommitLayerOptions): Promise<string> {
  const { deps } = svc;
  const parent = await svc.find(ctx, opts.parent);
  const name = opts.name ? normalizeName(opts.name) : undefined;
  const parentDiffIds = parent.config.rootfs.diff_ids;
  const parentChain = chainId(parentDiffIds);
  return svc.withLease(ctx, async (lctx) => {
    const sn = deps.snapshotter;
    // The caller's snapshot holds the layer already: only the blob is written, the tar hashed for its diff ID.
    const given = opts.snapshotKey;
    const key = given ?? `commit-${randomBytes(6).toString('hex')}`;
    // As a pull unpacks: an overlay layer is extracted on its own (whiteouts kept as overlayfs
    // writes them) and put on its parent at commit; a copying snapshotter starts from the parent.
    const standalone = sn.capabilities.parallelUnpack;
    let committed = false;
    try {
      let applied: Promise<{ diffId: Digest; size: number }> | undefined;
      const toApply = new PassThrough({ highWaterMark: 1 << 20 });
      if (given === undefined) {
        await deps.leases.attach(lctx, { kind: 'snapshot', id: key, snapshotter: sn.name });
        const mounts = await sn.prepare(lctx, key, standalone ? undefined : parentChain);
        applied = deps.withMounted(lctx, mounts, (dir) => deps.applyLayer(lctx, dir, toApply, { format: standalone ? 'overlay' : 'plain' }));
      }
      const ref = `${key}-layer`;
      await deps.leases.attach(lctx, { kind: 'ingest', id: ref });
      const writer = await deps.content.writer(lctx, { ref });
      let applyDone = applied === undefined;
      applied?.then(() => (applyDone = true), () => (applyDone = true));
      const tarHash = applied === undefined ? createHash('sha256') : undefined;
      let tarSize = 0;
      const zstd = opts.compression === 'zstd';
      const level = opts.compressionLevel;
      // Output in pieces as large as the tar's batches: at zlib's default of 16 KiB, the
      // callbacks, hash updates and writes per piece cost more than compressing it at level 1.
      // gzip is written as its header, a raw deflate stream and its trailer: zlib changes the
      // level of a raw deflate stream, not of a gzip one (see GzipMember).
      const member = zstd ? undefined : new GzipMember(level ?? zlibModule().constants.Z_DEFAULT_COMPRESSION, COMPRESSED_PIECE_BYTES);
      const gzip = member
        ? member.deflate
        : zlibModule().createZstdCompress({ chunkSize: COMPRESSED_PIECE_BYTES, ...(level ? { params: { [zlibModule().constants.ZSTD_c_compressionLevel]: level } } : {}) });
      let size = 0;
      // The writer hashes what it stores: that is the blob's digest.
      // The compressor is read to its end even when a write fails, and never destroyed from here:
      // a gzip member may be changing its level (a flush in flight), which must not meet a closed
      // stream, and the loop below must never wait on output nobody reads. The failure is thrown
      // once the compressor has ended; the loop below sees it then.
      const stored = (async () => {
        let failure: unknown;
        const keep = async (c: Buffer) => {
          if (failure !== undefined) return;
          try {
            size += c.length;
            await writer.write(c);
          } catch (err) {
            failure = err;
          }
        };
        if (member) await keep(member.header());
        for await (const c of gzip.iterator({ destroyOnReturn: false })) await keep(c as Buffer);
        if (member) await keep(member.trailer());
        if (failure !== undefined) throw failure;
      })();
      // Awaited below; the error path that destroys the compressor does not wait for it.
      stored.catch(() => {});
      let layerDigest: Digest;
      let diffId: Digest;
      try {
        for await (const c of opts.layer) {
          if (tarHash) {
            tarHash.update(c as Buffer);
            tarSize += (c as Buffer).length;
          }
          await member?.before(c as Buffer);
          if (!gzip.write(c)) await waitDrain(gzip);
          if (!applyDone && !toApply.write(c)) await Promise.race([waitDrain(toApply), applied!.catch(() => {})]);
        }
        gzip.end();
        toApply.end();
        await stored;
        layerDigest = writer.digest();
        const got = applied ? await applied : { diffId: `sha256:${tarHash!.digest('hex')}` as Digest, size: tarSize };
        diffId = got.diffId;
        await commitLayerBlob(lctx, svc, writer, { digest: layerDigest, size, unpacked: got.size });
      } catch (err) {
        toApply.destroy();
        gzip.destroy();
        await writer.close().catch(() => {});
        await deps.content.abort(cleanupCtx(ctx), writer.ref).catch(() => {});
        throw err;
      }
      const diffIds = [...parentDiffIds, diffId];
      const top = chainId(diffIds)!;
      // A given snapshot was prepared on the parent chain already.
      committed = await commitLayerSnapshot(lctx, svc, top, key, given === undefined ? parentChain : undefined);
      const now = opts.created ?? new Date().toISOString();
      const base = parent.config as ImageConfig;
      const config: ImageConfig = {
        ...base,
        created: now,
        ...(opts.author ? { author: opts.author } : {}),
        config: opts.config,
        rootfs: { type: 'layers', diff_ids: diffIds },
        history: [...(opts.history ?? base.history ?? []), { created: now, created_by: opts.createdBy, ...(opts.author ? { author: opts.author } : {}), ...(opts.comment ? { comment: opts.comment } : {}) }],
      };
      applyChanges(config, opts.changes ?? []);
      const layers = [...parent.manifest.layers, { mediaType: zstd ? MediaTypes.ociLayerZstd : MediaTypes.ociLayerGzip, digest: layerDigest, size }];
      return await recordImage(ctx, lctx, svc, { config, layers, topSnapshot: top, name });
    } finally {
      if (!committed && given === undefined) await sn.remove(cleanupCtx(ctx), key).catch(() => {});
    }
  });
}
