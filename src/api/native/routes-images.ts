import { berthError, kindOf } from '../../core/errors.ts';
import type { ImportOptions, ProgressEvent } from '../../core/images.ts';
import type { ImageService } from '../../images/service.ts';
import { detachedBody } from '../http/body.ts';
import { sendTar, streamEvents, type Router } from './server.ts';
import { loginSchema, logoutSchema, tagSchema } from './bodies.ts';

/**
 * Image endpoints of the native API. Handlers validate, call the image
 * service and convert; `pull`, `push` and `load` stream NDJSON progress
 * (ProgressEvent lines, then an error line on failure), `save` streams a
 * tar, `load` and `import` take the archive as the raw request body.
 */
export function registerImageRoutes(router: Router, images: ImageService): void {
  router.add('POST', '/images/pull', async (req) => {
    const ref = need(req.query.get('ref'), 'ref');
    const platform = req.query.get('platform') ?? undefined;
    return streamEvents<ProgressEvent>(req, async (emit) => {
      const { parsePlatform } = await import('../../images/blobs.ts');
      const name = await images.pull(req.ctx, ref, emit, { platform: platform ? parsePlatform(platform) : undefined });
      await emit({ status: name, id: undefined });
    });
  });
  router.add('POST', '/images/push', async (req) => {
    const ref = need(req.query.get('ref'), 'ref');
    return streamEvents<ProgressEvent>(req, async (emit) => {
      await images.push(req.ctx, ref, emit);
    });
  });
  router.add('GET', '/images/json', async (req) => {
    const filters = req.query.get('filters');
    let parsed: Record<string, string[]> = {};
    if (filters) {
      try {
        parsed = JSON.parse(filters) as Record<string, string[]>;
      } catch {
        throw berthError('InvalidArgument', `invalid filters: ${filters}`);
      }
    }
    return images.list(req.ctx, { all: req.query.get('all') === '1', filters: parsed });
  });
  router.add('POST', '/images/tag', async (req) => {
    const body = (await req.json<{ source?: string; target?: string }>(tagSchema)) ?? {};
    await images.tag(req.ctx, need(body.source, 'source'), need(body.target, 'target'));
    return undefined;
  });
  router.add('POST', '/images/prune', async (req) => images.prune(req.ctx, { all: req.query.get('all') === '1' }));
  router.add('GET', '/images/save', async (req) => {
    const names = req.query.getAll('names');
    const format = req.query.get('format') ?? 'docker';
    if (format !== 'docker' && format !== 'oci') throw berthError('InvalidArgument', `unknown save format "${format}": expected docker or oci`);
    await sendTar(req, await images.save(req.ctx, names, format));
  });
  router.add('POST', '/images/load', async (req) =>
    streamEvents<ProgressEvent>(req, async (emit) => {
      await images.load(req.ctx, detachedBody(req.body), emit);
    }),
  );
  router.add('POST', '/images/import', async (req) => {
    const opts: ImportOptions = {
      name: req.query.get('name') || undefined,
      changes: req.query.getAll('change'),
      message: req.query.get('message') || undefined,
      platform: req.query.get('platform') || undefined,
    };
    try {
      return { Id: await images.import(req.ctx, req.body, opts) };
    } catch (err) {
      // The archive is the client's upload: one that is not a tar is a bad request, not a loss of our data.
      if (kindOf(err) === 'DataLoss') throw berthError('InvalidArgument', `import: the upload is not a valid archive: ${(err as Error).message}`, err);
      throw err;
    }
  });
  router.add('POST', '/auth/login', async (req) => {
    const body = (await req.json<{ serveraddress?: string; username?: string; password?: string }>(loginSchema)) ?? {};
    await images.login(req.ctx, need(body.serveraddress, 'serveraddress'), need(body.username, 'username'), need(body.password, 'password'));
    return { Status: 'Login Succeeded' };
  });
  router.add('POST', '/auth/logout', async (req) => {
    const body = (await req.json<{ serveraddress?: string }>(logoutSchema)) ?? {};
    const removed = await images.logout(req.ctx, need(body.serveraddress, 'serveraddress'));
    return { Removed: removed };
  });
  // Names contain slashes, so these take the rest of the path.
  router.add('GET', '/images/history/*name', async (req) => images.history(req.ctx, req.params.name));
  router.add('GET', '/images/inspect/*name', async (req) => images.inspect(req.ctx, req.params.name));
  router.add('DELETE', '/images/*name', async (req) => images.remove(req.ctx, req.params.name, { force: req.query.get('force') === '1' }));
}

function need(v: string | null | undefined, what: string): string {
  if (!v) throw berthError('InvalidArgument', `missing ${what}`);
  return v;
}
