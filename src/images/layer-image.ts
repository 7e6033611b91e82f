import type { Ctx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { isAlreadyExists } from '../core/errors.ts';
import type { ContentWriter } from '../content/types.ts';
import { putBlob } from './blobs.ts';
import type { ImageServiceCore } from './types.ts';
import type { Descriptor, ImageConfig, Manifest } from './types.ts';
import { GcLabels, MediaTypes } from './types.ts';

/**
 * The last steps of an image made here rather than pulled (`import`,
 * `commit`): its new layer blob and snapshot committed under the lease, then
 * config, manifest and name, with the garbage-collection references a pulled
 * image carries (config to the top snapshot, manifest to config and layers).
 */
export async function commitLayerBlob(lctx: Ctx, svc: ImageServiceCore, writer: ContentWriter, blob: { digest: Digest; size: number; unpacked: number }): Promise<void> {
  await svc.deps.leases.attach(lctx, { kind: 'content', id: blob.digest });
  try {
    await writer.commit(lctx, { size: blob.size, digest: blob.digest, labels: { [GcLabels.layerSize]: String(blob.unpacked) } });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
}

/** Commit the active snapshot `key` as `name`; false when that snapshot already existed (the caller removes `key`). */
export async function commitLayerSnapshot(lctx: Ctx, svc: ImageServiceCore, name: string, key: string, parent?: string): Promise<boolean> {
  const sn = svc.deps.snapshotter;
  try {
    await svc.deps.leases.attach(lctx, { kind: 'snapshot', id: name, snapshotter: sn.name });
    // As for a pull: no crash may leave a committed snapshot whose files were never written out.
    await svc.deps.durable?.(lctx);
    await sn.commit(lctx, name, key, parent ? { parent } : undefined);
    return true;
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    return false;
  }
}

/** Store `config` and a manifest of `layers`, and name the image (untagged without `name`); resolves to the image ID. */
export async function recordImage(ctx: Ctx, lctx: Ctx, svc: ImageServiceCore, image: { config: ImageConfig; layers: Descriptor[]; topSnapshot?: string; name?: string }): Promise<Digest> {
  const { deps } = svc;
  const configBytes = Buffer.from(JSON.stringify(image.config));
  // An image without layers (a build from scratch that only set its config) has no snapshot to keep.
  const configDigest = await putBlob(lctx, deps.content, configBytes, image.topSnapshot ? { [GcLabels.snapshotRef(deps.snapshotter.name)]: image.topSnapshot } : {}, undefined, deps.leases);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, digest: configDigest, size: configBytes.length },
    layers: image.layers,
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const labels: Record<string, string> = { [GcLabels.contentRef('config')]: configDigest };
  image.layers.forEach((l, i) => (labels[GcLabels.contentRef(`l.${i}`)] = l.digest));
  const manifestDigest = await putBlob(lctx, deps.content, manifestBytes, labels, undefined, deps.leases);
  const target = { mediaType: MediaTypes.ociManifest, digest: manifestDigest, size: manifestBytes.length };
  if (image.name) await svc.setName(ctx, image.name, target, configDigest);
  else await deps.records.put(ctx, { name: configDigest, target, labels: {} });
  return configDigest;
}
