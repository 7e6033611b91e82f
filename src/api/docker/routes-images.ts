import type http from 'node:http';
import { pipeline } from 'node:stream/promises';
import { berthError, isNotFound, kindOf } from '../../core/errors.ts';
import { parseFilters } from '../../core/filters.ts';
import type { ProgressEvent } from '../../core/images.ts';
import type { ImageService } from '../../images/service.ts';
import { detachedBody } from '../http/body.ts';
import { writeStreamed } from '../http/write.ts';
import { withRequestAuth } from './registry-auth.ts';
import { flag, ok, type DockerRequest, type DockerRouter } from './server.ts';
import { compareVersions } from './version.ts';
import { authSchema } from './bodies.ts';

/**
 * Image endpoints of the Docker API: list, pull (`POST /images/create` with
 * `fromImage`), import (with `fromSrc=-`, the archive as the body),
 * inspect, history, tag, push, save (`GET /images/get`,
 * `/images/{name}/get`), load and remove. Pull, push, load and import
 * answer docker's JSON message stream; a failure after it started is a
 * last message with `errorDetail`, which the docker CLI prints before
 * exiting 1. `X-Registry-Auth` holds for its pull or push alone.
 */
export function registerImageRoutes(router: DockerRouter, images: ImageService): void {
  router.add('GET', '/images/json', async (req) => {
    const rows = await images.list(req.ctx, { all: flag(req.query.get('all')), filters: parseFilters(req.query.get('filters')) });
    const old = compareVersions(req.version, '1.44') < 0;
    return ok(rows.map((r) => ({ ...r, SharedSize: -1, ...(old ? { VirtualSize: r.Size } : {}) })));
  });

  router.add('POST', '/images/create', async (req) => {
    const from = req.query.get('fromImage');
    const src = req.query.get('fromSrc');
    if (!from && src === null) throw berthError('InvalidArgument', 'fromImage or fromSrc is required');
    if (!from) return importImage(req, images, src!);
    const tag = req.query.get('tag');
    // The CLI sends a digest as the tag: "busybox" + "sha256:..." is busybox@sha256:...
    const ref = !tag ? from : tag.includes(':') ? `${from}@${tag}` : `${from}:${tag}`;
    const platform = req.query.get('platform') || undefined;
    const { parsePlatform } = await import('../../images/blobs.ts');
    const opts = { platform: platform ? parsePlatform(platform) : undefined };
    return progressStream(req, (emit) => withRequestAuth(req.raw.headers['x-registry-auth'], ref, () => images.pull(req.ctx, ref, emit, opts)));
  });

  // Names contain slashes, so these take the rest of the path.
  // `docker image prune -a` asks for dangling=false: every unused image, not only untagged ones.
  router.add('POST', '/images/prune', async (req) => {
    const filters = parseFilters(req.query.get('filters'));
    return ok(await images.prune(req.ctx, { all: filters.dangling?.includes('false') ?? false }));
  });

  // docker save: one archive of every image named, in docker's format (which docker load and podman read).
  router.add('GET', '/images/get', async (req) => saveImages(req, images, req.query.getAll('names')));
  router.add('GET', '/images/*name/get', async (req) => saveImages(req, images, [req.params.name]));

  router.add('POST', '/images/load', async (req) => {
    const quiet = flag(req.query.get('quiet'));
    const load = (emit: (ev: ProgressEvent) => void) =>
      images.load(req.ctx, detachedBody(req.raw), (ev) => (!quiet || loadedLine(ev) ? emit(ev) : undefined)).catch((err: unknown) => {
        // The archive is the client's upload: one that is not a tar is a bad request, not berth's data lost.
        throw kindOf(err) === 'DataLoss' ? berthError('InvalidArgument', `the upload is not a valid image archive: ${(err as Error).message}`, err) : err;
      });
    return progressStream(req, load, loadedMessage);
  });

  router.add('POST', '/images/*name/push', async (req) => {
    const name = req.params.name;
    const tag = req.query.get('tag');
    // Without a tag, dockerd pushes every tag of the repository.
    const refs = tag ? [`${name}:${tag}`] : (await images.list(req.ctx, { filters: { reference: [name] } })).flatMap((r) => r.RepoTags);
    const missing = () => berthError('NotFound', `An image does not exist locally with the tag: ${name}`);
    if (!refs.length) throw missing();
    for (const ref of refs) await images.find(req.ctx, ref).catch((err: unknown) => Promise.reject(isNotFound(err) ? missing() : err));
    return progressStream(req, async (emit) => {
      for (const ref of refs) {
        let size = 0;
        const digest = await withRequestAuth(req.raw.headers['x-registry-auth'], ref, () =>
          images.push(req.ctx, ref, (ev) => {
            size = Number(/ size: (\d+)$/.exec(ev.status)?.[1] ?? size);
            emit(ev);
          }),
        );
        // What the CLI reads for content trust, and SDKs for the pushed digest.
        emit({ progressDetail: {}, aux: { Tag: ref.slice(ref.lastIndexOf(':') + 1), Digest: digest, Size: size } });
      }
    });
  });

  // docker login: the credentials are checked here and kept by the client (its config.json), as with dockerd.
  router.add('POST', '/auth', async (req) => {
    const b = (await req.json<{ username?: string; password?: string; serveraddress?: string; identitytoken?: string } | null>(authSchema)) ?? {};
    const host = (b.serveraddress || 'docker.io').replace(/^[a-z]+:\/\//, '').split('/')[0];
    await images.checkLogin(req.ctx, host, b.username ?? '', b.password || b.identitytoken || '');
    return ok({ Status: 'Login Succeeded', IdentityToken: '' });
  });

  router.add('GET', '/images/*name/json', async (req) => ok(withDroppedFields(await images.inspect(req.ctx, req.params.name), req.version)));
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

/**
 * Fields dockerd dropped from newer API versions: VirtualSize (1.44) is
 * sent to older clients only; Container and ContainerConfig (1.45) always,
 * because docker-py 5 negotiates the newest version and compose 1.29 reads
 * ContainerConfig.Volumes when it recreates a container (against dockerd
 * 25 it fails there with KeyError). berth's images are not built from a
 * container, so it is an empty one, as dockerd shows for a pulled image.
 */
function withDroppedFields(view: object & { Size: number }, version: string): object {
  const containerConfig = {
    Hostname: '',
    Domainname: '',
    User: '',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: null,
    Cmd: null,
    Image: '',
    Volumes: null,
    WorkingDir: '',
    Entrypoint: null,
    OnBuild: null,
    Labels: null,
  };
  return { ...view, Container: '', ContainerConfig: containerConfig, ...(compareVersions(version, '1.44') < 0 ? { VirtualSize: view.Size } : {}) };
}

/**
 * Run `fn` with an `emit` that streams docker's JSON messages. The status
 * line waits for the first message, so an operation that fails at once
 * (unknown image, registry down, a bad archive) is an error answer the CLI
 * prints as docker's, not a stream. Progress is best effort: a slow client
 * must not stall the work.
 */
async function progressStream(req: DockerRequest, fn: (emit: (ev: ProgressEvent | Message) => void) => Promise<unknown>, shape: (ev: ProgressEvent | Message) => object = (ev) => ev): Promise<undefined> {
  let res: http.ServerResponse | undefined;
  let pending = Promise.resolve();
  const emit = (ev: ProgressEvent | Message) => {
    res ??= req.stream('application/json');
    const out = res;
    pending = pending.then(() => writeStreamed(out, JSON.stringify(shape(ev)) + '\r\n')).catch(() => {});
  };
  try {
    await fn(emit);
    await pending;
  } catch (err) {
    await pending;
    if (!res) throw err;
    const message = err instanceof Error ? err.message : String(err);
    await writeStreamed(res, JSON.stringify({ errorDetail: { message }, error: message }) + '\r\n').catch(() => {});
  }
  (res ?? req.stream('application/json')).end();
  return undefined;
}

/** A JSON message beyond progress: docker's `aux` and `stream` ones. */
type Message = Record<string, unknown>;

const loadedLine = (ev: ProgressEvent | Message): boolean => typeof ev.status === 'string' && ev.status.startsWith('Loaded image');

/** dockerd sends a load's result as `stream` text, which docker-py parses for the names loaded. */
const loadedMessage = (ev: ProgressEvent | Message): object => (loadedLine(ev) ? { stream: `${String(ev.status)}\n` } : ev);

async function saveImages(req: DockerRequest, images: ImageService, names: string[]): Promise<undefined> {
  if (!names.length) throw berthError('InvalidArgument', 'no image named: ?names= is required');
  const tar = await images.save(req.ctx, names, 'docker');
  const res = req.stream('application/x-tar');
  await pipeline(tar, res, { signal: req.ctx.signal }).catch((err: unknown) => {
    if (!req.ctx.signal.aborted) req.ctx.log.warn('save stream failed', { err });
    res.destroy();
  });
  return undefined;
}

/** docker import: `fromSrc=-` is the request body; `repo` and `tag` name the image, `changes` and `message` as for commit. */
async function importImage(req: DockerRequest, images: ImageService, src: string): Promise<undefined> {
  if (src !== '-') throw berthError('Unimplemented', `import from a URL (fromSrc=${src}) is not implemented by berth: send the archive as the request body (fromSrc=-)`);
  const repo = req.query.get('repo');
  const tag = req.query.get('tag');
  if (tag && !repo) throw berthError('InvalidArgument', 'a tag needs a repository (repo=)');
  const opts = {
    name: repo ? (tag ? `${repo}:${tag}` : repo) : undefined,
    changes: req.query.getAll('changes').flatMap((c) => c.split('\n')).filter(Boolean),
    message: req.query.get('message') || undefined,
    platform: req.query.get('platform') || undefined,
  };
  return progressStream(req, async (emit) => emit({ status: await images.import(req.ctx, req.raw, opts) }));
}
