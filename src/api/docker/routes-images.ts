import type http from 'node:http';
import { berthError } from '../../core/errors.ts';
import { parseFilters } from '../../core/filters.ts';
import type { ProgressEvent } from '../../core/images.ts';
import type { ImageService } from '../../images/service.ts';
import { writeStreamed } from '../http/write.ts';
import { flag, ok, type DockerRouter } from './server.ts';

/**
 * Image endpoints of the Docker API: list, pull (`POST /images/create`
 * with `fromImage`), inspect, history, tag and remove. Pull progress is
 * docker's JSON message stream; a failure after it started is a last
 * message with `errorDetail`, which the docker CLI prints before exiting 1.
 */
export function registerImageRoutes(router: DockerRouter, images: ImageService): void {
  router.add('GET', '/images/json', async (req) => {
    const rows = await images.list(req.ctx, { all: flag(req.query.get('all')), filters: parseFilters(req.query.get('filters')) });
    return ok(rows.map((r) => ({ ...r, SharedSize: -1 })));
  });

  router.add('POST', '/images/create', async (req) => {
    const from = req.query.get('fromImage');
    if (!from) {
      if (req.query.get('fromSrc') !== null) throw berthError('Unimplemented', 'POST /images/create?fromSrc (docker import) is not implemented by berth');
      throw berthError('InvalidArgument', 'fromImage or fromSrc is required');
    }
    const tag = req.query.get('tag');
    // The CLI sends a digest as the tag: "busybox" + "sha256:..." is busybox@sha256:...
    const ref = !tag ? from : tag.includes(':') ? `${from}@${tag}` : `${from}:${tag}`;
    const platform = req.query.get('platform') || undefined;
    const { parsePlatform } = await import('../../images/blobs.ts');
    const opts = { platform: platform ? parsePlatform(platform) : undefined };
    // The status line waits for the first message, so a pull that fails at once (unknown image,
    // registry down) is an error answer the CLI prints as docker's, not a stream.
    let res: http.ServerResponse | undefined;
    let pending = Promise.resolve();
    const emit = (ev: ProgressEvent) => {
      res ??= req.stream('application/json');
      const out = res;
      // Progress is best effort: a slow client must not stall the pull.
      pending = pending.then(() => writeStreamed(out, JSON.stringify(ev) + '\r\n')).catch(() => {});
    };
    try {
      await images.pull(req.ctx, ref, emit, opts);
      await pending;
    } catch (err) {
      await pending;
      if (!res) throw err;
      const message = err instanceof Error ? err.message : String(err);
      await writeStreamed(res, JSON.stringify({ errorDetail: { message }, error: message }) + '\r\n').catch(() => {});
    }
    (res ?? req.stream('application/json')).end();
    return undefined;
  });

  // Names contain slashes, so these take the rest of the path.
  // `docker image prune -a` asks for dangling=false: every unused image, not only untagged ones.
  router.add('POST', '/images/prune', async (req) => {
    const filters = parseFilters(req.query.get('filters'));
    return ok(await images.prune(req.ctx, { all: filters.dangling?.includes('false') ?? false }));
  });

  router.add('GET', '/images/*name/json', async (req) => ok(await images.inspect(req.ctx, req.params.name)));
  router.add('GET', '/images/*name/history', async (req) => ok(await images.history(req.ctx, req.params.name)));
  router.add('POST', '/images/*name/tag', async (req) => {
    const repo = req.query.get('repo');
    if (!repo) throw berthError('InvalidArgument', 'repository name (repo) is required');
    const tag = req.query.get('tag') || 'latest';
    await images.tag(req.ctx, req.params.name, `${repo}:${tag}`);
    return { status: 201 };
  });
  router.add('DELETE', '/images/*name', async (req) => ok(await images.remove(req.ctx, req.params.name, { force: flag(req.query.get('force')) })));
}
