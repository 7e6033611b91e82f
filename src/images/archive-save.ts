import { Readable } from 'node:stream';
import type { Ctx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { hexOf } from '../core/digest.ts';
import { berthError } from '../core/errors.ts';
import { familiarName, isDanglingName, parseName } from './names.ts';
import type { FoundImage, ImageServiceCore } from './types.ts';
import { tarFileHeader, tarPad, TAR_END_BLOCKS } from './tar-out.ts';
import type { Descriptor } from './types.ts';
import { MediaTypes } from './types.ts';

/**
 * `save`: one tar holding several images. Both formats put the blobs in an
 * OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`), each
 * blob once; `docker` adds docker's `manifest.json` and `repositories`
 * pointing into the same blobs, as `docker save` writes since Docker 25,
 * so docker, skopeo (`docker-archive:`, `oci-archive:`) and this `load`
 * all read it. Layers are written as stored (compressed).
 */
export async function saveImages(svc: ImageServiceCore, ctx: Ctx, names: string[], format: 'docker' | 'oci'): Promise<Readable> {
  if (!names.length) throw berthError('InvalidArgument', 'save: name at least one image');
  const images: { img: FoundImage; tags: string[] }[] = [];
  for (const n of names) {
    const img = await svc.find(ctx, n);
    let tags = img.records.filter((r) => !isDanglingName(r.name) && !r.name.includes('@')).map((r) => r.name);
    // Saving by name keeps just that name, as docker does; by ID, all of them.
    const asGiven = tags.find((t) => familiarName(t) === n || t === n || familiarName(t) === `${n}:latest`);
    if (asGiven) tags = [asGiven];
    const existing = images.find((x) => x.img.id === img.id);
    if (existing) existing.tags.push(...tags.filter((t) => !existing.tags.includes(t)));
    else images.push({ img, tags });
  }
  const blobs = new Map<Digest, number>();
  for (const { img } of images) {
    blobs.set(img.manifestDesc.digest, img.manifestDesc.size);
    blobs.set(img.manifest.config.digest, img.manifest.config.size);
    for (const l of img.manifest.layers) blobs.set(l.digest, l.size);
  }
  const indexManifests: Descriptor[] = [];
  for (const { img, tags } of images) {
    const base: Descriptor = { mediaType: img.manifestDesc.mediaType || MediaTypes.ociManifest, digest: img.manifestDesc.digest, size: img.manifestDesc.size };
    if (!tags.length) indexManifests.push(base);
    for (const t of tags) {
      const tag = parseName(t).tag ?? 'latest';
      indexManifests.push({ ...base, annotations: { 'io.containerd.image.name': t, 'org.opencontainers.image.ref.name': format === 'oci' ? tag : t } });
    }
  }
  const files: { name: string; data: Buffer }[] = [
    { name: 'oci-layout', data: Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })) },
    { name: 'index.json', data: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: indexManifests })) },
  ];
  if (format === 'docker') {
    const manifest = images.map(({ img, tags }) => ({
      Config: `blobs/sha256/${hexOf(img.manifest.config.digest)}`,
      RepoTags: tags.map(familiarName),
      Layers: img.manifest.layers.map((l) => `blobs/sha256/${hexOf(l.digest)}`),
    }));
    const repositories: Record<string, Record<string, string>> = {};
    for (const { img, tags } of images) {
      const top = img.config.rootfs.diff_ids.at(-1);
      if (!top) continue;
      for (const t of tags) {
        const p = parseName(t);
        (repositories[familiarName(p.repository)] ??= {})[p.tag ?? 'latest'] = hexOf(top);
      }
    }
    files.push({ name: 'manifest.json', data: Buffer.from(JSON.stringify(manifest)) });
    files.push({ name: 'repositories', data: Buffer.from(JSON.stringify(repositories)) });
  }
  const content = svc.deps.content;
  const mtime = Math.floor(Date.now() / 1000);
  async function* generate(): AsyncGenerator<Buffer> {
    yield tarFileHeader({ name: 'blobs/', type: 'dir', size: 0, mtime });
    yield tarFileHeader({ name: 'blobs/sha256/', type: 'dir', size: 0, mtime });
    for (const [digest, size] of blobs) {
      yield tarFileHeader({ name: `blobs/sha256/${hexOf(digest)}`, type: 'file', size, mtime });
      let n = 0;
      for await (const c of await content.reader(ctx, digest)) {
        n += (c as Buffer).length;
        yield c as Buffer;
      }
      if (n !== size) throw berthError('DataLoss', `blob ${digest}: store holds ${n} bytes, expected ${size}`);
      yield tarPad(size);
    }
    for (const f of files) {
      yield tarFileHeader({ name: f.name, type: 'file', size: f.data.length, mtime });
      yield f.data;
      yield tarPad(f.data.length);
    }
    yield TAR_END_BLOCKS;
  }
  return Readable.from(generate(), { objectMode: false });
}
