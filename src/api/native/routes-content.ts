import { pipeline } from 'node:stream/promises';
import type { ContentInfo, ContentManager, ContentProvider } from '../../content/types.ts';
import { parseDigest } from '../../core/digest.ts';
import type { Router } from './server.ts';
import { byCodeUnit } from '../../core/order.ts';

const view = (i: ContentInfo) => ({ digest: i.digest, size: i.size, createdAt: i.createdAt.toISOString(), updatedAt: i.updatedAt.toISOString(), labels: i.labels });

/**
 * The content store, ctr's `content` view (blobs are shared by every
 * namespace: the store is not namespaced, see content/types.ts):
 *   GET    /content               -> [{digest, size, createdAt, updatedAt, labels}]
 *   GET    /content/:digest       -> the blob's bytes (application/octet-stream)
 *   DELETE /content/:digest       -> 204
 */
export function registerContentRoutes(router: Router, content: ContentProvider & ContentManager): void {
  router.add('GET', '/content', async (req) => {
    const out: ReturnType<typeof view>[] = [];
    await content.walk(req.ctx, (i) => void out.push(view(i)));
    return out.sort((a, b) => byCodeUnit(a.digest, b.digest));
  });
  router.add('GET', '/content/:digest', async (req) => {
    const digest = parseDigest(req.params.digest);
    const info = await content.info(req.ctx, digest);
    const blob = await content.reader(req.ctx, digest);
    const res = req.response();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': info.size });
    await pipeline(blob, res, { signal: req.ctx.signal }).catch((err: unknown) => {
      req.ctx.log.warn('content read failed', { err });
      res.destroy(err as Error);
    });
  });
  router.add('DELETE', '/content/:digest', async (req) => content.delete(req.ctx, parseDigest(req.params.digest)));
}
