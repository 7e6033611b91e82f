import type { Ctx } from '../core/context.ts';
import { isDigest, shortId } from '../core/digest.ts';
import { berthError, wrap } from '../core/errors.ts';
import type { ProgressEvent } from '../core/images.ts';
import { hasBlob } from './blobs.ts';
import { familiarName, normalizeName, parseName } from './names.ts';
import type { ImageServiceCore } from './types.ts';
import { limiter } from './streams.ts';

/**
 * Push the image `input` names to the registry in its name: every layer
 * (several at once), then the config, then the manifest of this host's
 * platform, with docker's progress lines. Layers the registry has already
 * report "Layer already exists". Resolves to the pushed manifest digest.
 */
export async function pushImage(svc: ImageServiceCore, ctx: Ctx, input: string, emit: (ev: ProgressEvent) => void): Promise<string> {
  const name = normalizeName(input);
  const p = parseName(name);
  if (p.digest && !p.tag) throw berthError('InvalidArgument', `cannot push "${input}": push a tag, not a digest`);
  const img = await svc.find(ctx, input);
  const { deps } = svc;
  emit({ status: `The push refers to repository [${familiarName(p.repository)}]` });
  for (const l of img.manifest.layers) {
    if (!(await hasBlob(ctx, deps.content, l.digest))) {
      throw berthError('FailedPrecondition', `cannot push ${familiarName(name)}: layer ${l.digest} is not in the content store`);
    }
  }
  // Repositories of the same registry this image came from can lend their blobs (cross-repository mount).
  const domain = p.repository.slice(0, p.repository.length - p.path.length - 1);
  const mountFrom = [...new Set(img.records.map((r) => r.name).filter((n) => !isDigest(n)).map(parseName).filter((o) => o.repository !== p.repository && o.repository.startsWith(`${domain}/`)).map((o) => o.path))];
  const limit = limiter(Math.max(1, deps.config.maxConcurrentDownloads));
  const layers = [...img.manifest.layers].reverse();
  for (const l of layers) emit({ id: shortId(l.digest), status: 'Preparing' });
  await Promise.all(
    layers.map((l) =>
      limit(async () => {
        const id = shortId(l.digest);
        emit({ id, status: 'Pushing', progressDetail: { current: 0, total: l.size } });
        let last = 0;
        try {
          const how = await deps.registry.push(ctx, name, l, (offset) => deps.content.reader(ctx, l.digest, { offset }), (n) => {
            if (n - last >= 512 * 1024 || n === l.size) {
              last = n;
              emit({ id, status: 'Pushing', progressDetail: { current: n, total: l.size } });
            }
          }, mountFrom);
          emit({ id, status: how === 'uploaded' ? 'Pushed' : how === 'mounted' ? `Mounted from ${mountFrom[0]}` : 'Layer already exists' });
        } catch (err) {
          throw wrap(err, `push layer ${l.digest}`);
        }
      }),
    ),
  );
  await deps.registry.push(ctx, name, img.manifest.config, (offset) => deps.content.reader(ctx, img.manifest.config.digest, { offset }));
  await deps.registry.push(ctx, name, img.manifestDesc, (offset) => deps.content.reader(ctx, img.manifestDesc.digest, { offset }));
  emit({ status: `${p.tag ?? 'latest'}: digest: ${img.manifestDesc.digest} size: ${img.manifestDesc.size}` });
  return img.manifestDesc.digest;
}
