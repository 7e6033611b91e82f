import type { Ctx } from '../../core/context.ts';
import { isInvalidArgument, isNotFound } from '../../core/errors.ts';
import { isDanglingName, looksLikeIdPrefix, normalizeName, parseName } from '../../images/names.ts';
import type { FoundImage, ImageService } from '../../images/service.ts';
import { GcLabels } from '../../images/types.ts';
import type { CriImage } from './types.ts';

/**
 * An image as containerd's CRI reports it: the config digest as ID, full
 * normalized names (`docker.io/library/busybox:latest`, not docker's
 * familiar `busybox:latest`), repo digests `repo@<manifest or index digest>`,
 * the packed size (the blobs as stored: index, manifest, config and
 * compressed layers, which is what containerd's image Size sums), and the
 * config's User split into a numeric uid or a name. `pinned` is containerd's
 * mark for its sandbox image; berth pins nothing.
 */
export function toCriImage(img: FoundImage): CriImage {
  const named = img.records.filter((r) => !isDanglingName(r.name));
  const repoTags = named.filter((r) => !r.name.includes('@')).map((r) => r.name);
  const repoDigests = new Set(named.map((r) => `${parseName(r.name).repository}@${r.target.digest}`));
  // An image whose tag moved keeps the digest it was pulled by, as containerd keeps its digest reference.
  for (const r of img.records) if (r.labels[GcLabels.repoDigest]) repoDigests.add(r.labels[GcLabels.repoDigest]);
  const index = img.target.digest === img.manifestDesc.digest ? 0 : img.target.size;
  const size = index + img.manifestDesc.size + img.manifest.config.size + img.manifest.layers.reduce((n, l) => n + l.size, 0);
  const { uid, username } = imageUser(img.config.config?.User ?? '');
  return {
    id: img.id,
    repo_tags: repoTags.sort(),
    repo_digests: [...repoDigests].sort(),
    size: String(size),
    ...(uid !== undefined ? { uid: { value: uid } } : {}),
    username,
    pinned: false,
  };
}

/** containerd's rule: the user part of `user:group`; digits are a uid, anything else a name. */
export function imageUser(user: string): { uid?: string; username: string } {
  const u = user.split(':')[0];
  if (!u) return { username: '' };
  return /^\d+$/.test(u) ? { uid: u, username: '' } : { username: u };
}

/**
 * The image `ref` names (a reference, an image ID or an ID prefix), or
 * undefined when there is none. As containerd's local resolve, a string that
 * is neither a valid reference nor an ID names no image rather than failing;
 * an ambiguous ID prefix still fails (InvalidArgument).
 */
export async function lookupImage(ctx: Ctx, images: ImageService, ref: string): Promise<FoundImage | undefined> {
  try {
    return await images.find(ctx, ref);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    if (isInvalidArgument(err) && !parses(ref)) return undefined;
    throw err;
  }
}

function parses(ref: string): boolean {
  if (looksLikeIdPrefix(ref)) return true;
  try {
    normalizeName(ref);
    return true;
  } catch {
    return false;
  }
}
