import { berthError } from '../../core/errors.ts';
import type { Builder, BuildEvent, BuildRequest } from '../../build/builder.ts';
import { isLocalRoot } from './peer.ts';
import { streamEvents, type Router } from './server.ts';

/**
 * `POST /build`: the body is the context as a tar, or `contextdir` names a
 * directory on berthd's host read in place (root clients in berthd's mount
 * namespace only: PermissionDenied otherwise); the query carries the
 * request (`t` several, `dockerfile`, `buildarg` and `label` as `K=V`
 * several, `target`, `nocache`, `pull`, `platform`, `cachefrom` several, `network`). Streams NDJSON
 * BuildEvents, the last one `{kind:"result"}`, or an error line.
 * `POST /build/prune` empties the build cache: `{entries, bytes}`.
 */
export function registerBuildRoutes(router: Router, builder: Builder): void {
  router.add('POST', '/build', async (req) => {
    const q = req.query;
    const request: BuildRequest = {
      tags: q.getAll('t').filter(Boolean),
      dockerfile: q.get('dockerfile') || undefined,
      buildArgs: pairs(q.getAll('buildarg'), 'buildarg'),
      labels: pairs(q.getAll('label'), 'label'),
      target: q.get('target') || undefined,
      noCache: q.get('nocache') === '1',
      pull: q.get('pull') === '1',
      platform: q.get('platform') || undefined,
      cacheFrom: q.getAll('cachefrom').filter(Boolean),
      network: q.get('network') || undefined,
    };
    const contextDir = q.get('contextdir');
    // A path on this host is read with berthd's rights: only for root in berthd's mount namespace, whose files they are.
    if (contextDir && !isLocalRoot(req.raw.socket)) throw berthError('PermissionDenied', 'contextdir: berthd reads a context in place only for root on its own host; send the context as a tar');
    const context = contextDir ? { dir: contextDir } : req.body;
    return streamEvents<BuildEvent>(req, async (emit) => {
      await builder.build(req.ctx, { request, context, onEvent: (ev) => void emit(ev) });
    });
  });
  router.add('POST', '/build/prune', async (req) => builder.prune(req.ctx));
}

function pairs(list: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of list) {
    const i = p.indexOf('=');
    if (i <= 0) throw berthError('InvalidArgument', `${what} "${p}": want KEY=VALUE`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}
