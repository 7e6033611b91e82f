import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Ctx } from '../core/context.ts';
import { cleanupCtx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { isDigest } from '../core/digest.ts';
import { berthError, isAlreadyExists } from '../core/errors.ts';
import type { ProgressEvent } from '../core/images.ts';
import { MAX_JSON_BLOB, putBlob, readJsonBlob } from './blobs.ts';
import { familiarName, normalizeName } from './names.ts';
import { unpackLayers } from './pull.ts';
import type { ImageServiceCore } from './types.ts';
import { detectCompression } from './streams.ts';
import { readTar } from '../core/tar-read.ts';
import type { Descriptor, ImageConfig, Index, Manifest } from './types.ts';
import { GcLabels, MediaTypes, isIndex } from './types.ts';
import { selectFromIndex } from './blobs.ts';

interface Stored {
  digest: Digest;
  size: number;
  /** The first bytes, to tell compressed layers from plain tars. */
  head: Buffer;
}

/**
 * `load`: read a tar written by `save`, `docker save` (old layout with
 * `<id>/layer.tar`, or the Docker 25+ one) or any OCI image layout, and
 * detect which from its files: `manifest.json` means docker's format,
 * otherwise `index.json` with `oci-layout` an OCI layout. Every file goes
 * through the content store as it streams by (verified), then each image's
 * layers are unpacked and its names recorded. Resolves to the names (or IDs
 * of untagged images) loaded.
 */
export async function loadArchive(svc: ImageServiceCore, ctx: Ctx, stream: Readable, emit: (ev: ProgressEvent) => void): Promise<string[]> {
  const { deps } = svc;
  return svc.withLease(ctx, async (lctx) => {
    const small = new Map<string, Buffer>();
    const stored = new Map<string, Stored>();
    for await (const e of readTar(stream)) {
      const path = e.path.replace(/^\.\//, '').replace(/\/+$/, '');
      if (e.type !== 'file') continue;
      // Metadata files stay in memory; everything else (layers, OCI blobs) goes to the store.
      const meta = !path.includes('/') && (path.endsWith('.json') || path === 'repositories' || path === 'oci-layout');
      if (meta && e.size <= MAX_JSON_BLOB) {
        small.set(path, await e.bytes());
        continue;
      }
      stored.set(path, await ingest(lctx, svc, e.stream(), path));
    }
    const loaded: string[] = [];
    const blobOf = (path: string): Stored => {
      const s = stored.get(path.replace(/^\.\//, ''));
      if (!s) throw berthError('InvalidArgument', `archive: "${path}" is referenced but not in the archive`);
      return s;
    };
    if (small.has('manifest.json')) {
      const entries = parseJson<{ Config: string; RepoTags?: string[] | null; Layers: string[] }[]>(small.get('manifest.json')!, 'manifest.json');
      for (const entry of entries) {
        let configDigest: Digest;
        let configSize: number;
        const inline = small.get(entry.Config);
        if (inline) {
          configDigest = await putBlob(lctx, deps.content, inline, {}, undefined, deps.leases);
          configSize = inline.length;
        } else ({ digest: configDigest, size: configSize } = blobOf(entry.Config));
        const layers: Descriptor[] = entry.Layers.map((p) => {
          const s = blobOf(p);
          const c = detectCompression(s.head);
          const mediaType = c === 'gzip' ? MediaTypes.dockerLayerGzip : c === 'zstd' ? MediaTypes.ociLayerZstd : MediaTypes.dockerLayer;
          return { mediaType, digest: s.digest, size: s.size };
        });
        const manifest: Manifest = { schemaVersion: 2, mediaType: MediaTypes.dockerManifest, config: { mediaType: MediaTypes.dockerConfig, digest: configDigest, size: configSize }, layers };
        const target = await storeManifest(svc, lctx, manifest, emit);
        const names = entry.RepoTags?.length ? entry.RepoTags.map((t) => normalizeName(t)) : [];
        loaded.push(...(await record(svc, ctx, target, configDigest, names, emit)));
      }
    } else if (small.has('index.json')) {
      const index = parseJson<Index>(small.get('index.json')!, 'index.json');
      for (const desc of index.manifests ?? []) {
        let manifestDesc = desc;
        if (isIndex(desc.mediaType)) {
          const nested = await readJsonBlob<Index>(lctx, deps.content, desc.digest, 'index');
          manifestDesc = selectFromIndex(nested, svc.platform, `archive image ${desc.digest}`);
        }
        const manifest = await readJsonBlob<Manifest>(lctx, deps.content, manifestDesc.digest, 'manifest');
        await storeManifest(svc, lctx, manifest, emit, manifestDesc);
        const refName = desc.annotations?.['io.containerd.image.name'] ?? desc.annotations?.['org.opencontainers.image.ref.name'];
        let names: string[] = [];
        if (refName) {
          try {
            names = [normalizeName(refName)];
          } catch {
            // A bare tag such as "latest" names no repository: the image loads untagged.
          }
        }
        loaded.push(...(await record(svc, ctx, desc, manifest.config.digest, names, emit)));
      }
    } else {
      throw berthError('InvalidArgument', 'archive: neither manifest.json (docker save) nor index.json (OCI layout) found; is this an image archive?');
    }
    return loaded;
  });
}

function parseJson<T>(buf: Buffer, what: string): T {
  try {
    return JSON.parse(buf.toString('utf8')) as T;
  } catch (err) {
    throw berthError('InvalidArgument', `archive: ${what} is not valid JSON`, err);
  }
}

async function ingest(ctx: Ctx, svc: ImageServiceCore, body: Readable, path: string): Promise<Stored> {
  const content = svc.deps.content;
  const expected = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(path);
  const ref = `load-${randomBytes(8).toString('hex')}`;
  await svc.deps.leases.attach(ctx, { kind: 'ingest', id: ref });
  const w = await content.writer(ctx, { ref });
  const hash = createHash('sha256');
  let size = 0;
  let head = Buffer.alloc(0);
  try {
    for await (const c of body) {
      const chunk = c as Buffer;
      if (head.length < 8) head = Buffer.concat([head, chunk.subarray(0, 8)]);
      hash.update(chunk);
      size += chunk.length;
      await w.write(chunk);
    }
    const digest: Digest = `sha256:${hash.digest('hex')}`;
    if (expected && expected[1] === 'sha256' && `sha256:${expected[2]}` !== digest) {
      throw berthError('DataLoss', `archive: ${path}: digest mismatch (content hashes to ${digest})`);
    }
    await svc.deps.leases.attach(ctx, { kind: 'content', id: digest });
    try {
      await w.commit(ctx, { size, digest });
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    return { digest, size, head };
  } catch (err) {
    await w.close().catch(() => {});
    await content.abort(cleanupCtx(ctx), w.ref).catch(() => {});
    throw err;
  }
}

async function storeManifest(svc: ImageServiceCore, ctx: Ctx, manifest: Manifest, emit: (ev: ProgressEvent) => void, given?: Descriptor): Promise<Descriptor> {
  const { deps } = svc;
  const config = await readJsonBlob<ImageConfig>(ctx, deps.content, manifest.config.digest, 'image config');
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) throw berthError('InvalidArgument', `archive: image ${manifest.config.digest} has ${manifest.layers.length} layers but its config lists ${diffIds.length}`);
  const chain = await unpackLayers(svc, ctx, '', manifest.layers, diffIds, emit);
  if (chain.length) await deps.content.updateLabels(ctx, manifest.config.digest, { [GcLabels.snapshotRef(deps.snapshotter.name)]: chain.at(-1)! });
  const labels: Record<string, string> = { [GcLabels.contentRef('config')]: manifest.config.digest };
  manifest.layers.forEach((l, i) => (labels[GcLabels.contentRef(`l.${i}`)] = l.digest));
  if (given) {
    await deps.content.updateLabels(ctx, given.digest, labels);
    return given;
  }
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = await putBlob(ctx, deps.content, bytes, labels, undefined, deps.leases);
  return { mediaType: manifest.mediaType ?? MediaTypes.ociManifest, digest, size: bytes.length };
}

async function record(svc: ImageServiceCore, ctx: Ctx, target: Descriptor, id: Digest, names: string[], emit: (ev: ProgressEvent) => void): Promise<string[]> {
  if (!isDigest(target.digest)) throw berthError('InvalidArgument', `archive: invalid digest ${target.digest}`);
  const desc: Descriptor = { mediaType: target.mediaType, digest: target.digest, size: target.size };
  if (!names.length) {
    const all = await svc.all(ctx);
    if (!all.some((x) => x.img.id === id)) await svc.deps.records.put(ctx, { name: id, target: desc, labels: {} });
    emit({ status: `Loaded image ID: ${id}` });
    return [id];
  }
  for (const n of names) {
    await svc.setName(ctx, n, desc, id);
    emit({ status: `Loaded image: ${familiarName(n)}` });
  }
  return names;
}
