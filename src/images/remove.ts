import type { Ctx } from '../core/context.ts';
import { isDigest, shortId } from '../core/digest.ts';
import { berthError, isNotFound } from '../core/errors.ts';
import type { PruneResult, RemoveResult } from '../core/images.ts';
import { familiarName, isDanglingName, normalizeName } from './names.ts';
import type { FoundImage, ImageServiceCore } from './types.ts';
import { imageSize } from './views.ts';

/**
 * Docker's rmi semantics. By name: untag it, and delete the image when that
 * was its last name. By ID or digest: delete the image, refusing one that
 * several repositories reference unless forced. An image a container uses
 * is refused unless forced (and then only untagged, as docker keeps the
 * image of an existing container). Deleting runs GC so the space returns.
 */
export async function removeImages(svc: ImageServiceCore, ctx: Ctx, input: string, opts: { force?: boolean }): Promise<RemoveResult[]> {
  const img = await svc.find(ctx, input);
  const { records } = svc.deps;
  const users = (await svc.usage(ctx)).filter((u) => u.imageId === img.id || img.records.some((r) => r.name === u.image || familiarName(r.name) === u.image));
  const out: RemoveResult[] = [];
  const byName = !isDigest(input) && !/^[a-f0-9]{3,64}$/.test(input) ? tryNormalize(input) : undefined;
  const named = byName ? img.records.find((r) => r.name === byName) : undefined;
  const tagged = img.records.filter((r) => !isDanglingName(r.name));

  if (named && tagged.length > 1) {
    await records.delete(ctx, named.name);
    return [{ Untagged: familiarName(named.name) }];
  }
  if (!named && tagged.length > 1 && !opts.force) {
    throw berthError('Conflict', `unable to delete ${shortId(img.id)} (must be forced) - image is referenced in multiple repositories`);
  }
  if (users.length) {
    if (!opts.force) {
      const what = named ? `remove repository reference "${input}"` : `delete ${shortId(img.id)}`;
      throw berthError('Conflict', `unable to ${what} (must force) - container ${shortId(users[0].containerId)} is using its referenced image ${shortId(img.id)}`);
    }
    // Forced: untag, but keep the image the container runs from (as a dangling record).
    for (const r of tagged) {
      await records.delete(ctx, r.name);
      out.push({ Untagged: familiarName(r.name) });
    }
    await records.put(ctx, { name: img.id, target: img.target, labels: {} });
    return out;
  }
  await deleteImage(svc, ctx, img, out);
  await svc.deps.gc.collect(ctx).catch((err) => ctx.log.warn('gc after image removal failed', { err }));
  return out;
}

function tryNormalize(s: string): string | undefined {
  try {
    return normalizeName(s);
  } catch {
    return undefined;
  }
}

async function deleteImage(svc: ImageServiceCore, ctx: Ctx, img: FoundImage, out: RemoveResult[]): Promise<void> {
  for (const r of img.records) {
    await svc.deps.records.delete(ctx, r.name);
    if (!isDanglingName(r.name)) out.push({ Untagged: familiarName(r.name) });
  }
  for (const r of img.records) {
    if (!isDanglingName(r.name) && !r.name.includes('@')) out.push({ Untagged: `${familiarName(r.name.replace(/:[^:/]+$/, ''))}@${r.target.digest}` });
  }
  out.push({ Deleted: img.id });
}

/**
 * Remove dangling images (no name), or with `all` every image no container
 * uses and no operation holds (a running build's), then collect garbage.
 */
export async function pruneImages(svc: ImageServiceCore, ctx: Ctx, opts: { all?: boolean }): Promise<PruneResult> {
  const all = await svc.all(ctx);
  const used = new Set((await svc.usage(ctx)).map((u) => u.imageId));
  const ids = [...new Set(all.map((x) => x.img.id))];
  const deleted: PruneResult['ImagesDeleted'] = [];
  let reclaimed = 0;
  for (const id of ids) {
    // Checked at each image: a build may have taken one since the list was read.
    if (used.has(id) || svc.isHeld(ctx, id)) continue;
    const recs = all.filter((x) => x.img.id === id);
    const dangling = recs.every((x) => isDanglingName(x.rec.name));
    if (!dangling && !opts.all) continue;
    const img: FoundImage = { ...recs[0].img, records: recs.map((x) => x.rec) };
    try {
      await deleteImage(svc, ctx, img, deleted);
    } catch (err) {
      // Removed meanwhile (a build dropping its intermediate records as it ends): nothing left to prune.
      if (isNotFound(err)) continue;
      throw err;
    }
    reclaimed += imageSize(img);
  }
  const gc = await svc.deps.gc.collect(ctx);
  return { ImagesDeleted: deleted, SpaceReclaimed: Math.max(reclaimed, gc.contentBytes) };
}
