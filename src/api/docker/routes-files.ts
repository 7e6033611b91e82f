import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { ContainerConfig } from '../../core/containers.ts';
import { berthError, isNotFound } from '../../core/errors.ts';
import { extractIntoRoot, packFromRoot, statInRoot, type PathStat } from '../../runtime/containers/archive.ts';
import type { ContainerService } from '../../runtime/containers/containers.ts';
import { resourcesOf, restartOf, type DockerHostConfig } from './create-config.ts';
import { flag, ok, type DockerRequest, type DockerRouter } from './server.ts';

/**
 * What the Docker API does with a container's files and settings, onto the
 * container service: `cp` both ways (`HEAD|GET|PUT /containers/{id}/archive`),
 * `export`, `diff` (`/changes`), `commit` and `update`.
 *
 * A path's stat travels base64 JSON in `X-Docker-Container-Path-Stat`, its
 * mode as Go's os.FileMode (the type in the high bits), which the CLI
 * reads to tell a directory from a file or a link.
 */
export function registerFileRoutes(router: DockerRouter, containers: ContainerService): void {
  /** `fn` may release the rootfs itself before it answers (`release`, once); it is released after it either way. */
  const withRootfs = async <T>(
    req: DockerRequest,
    fn: (rootfs: string, mounts: Awaited<ReturnType<ContainerService['rootfsOf']>>['mounts'], release: () => Promise<void>) => Promise<T>,
  ): Promise<T> => {
    const got = await containers.rootfsOf(req.ctx, req.params.id);
    const { rootfs, mounts } = got;
    let released: Promise<void> | undefined;
    const release = () => (released ??= got.release());
    try {
      return await fn(rootfs, mounts, release);
    } catch (err) {
      // dockerd names the container too.
      if (isNotFound(err)) throw berthError('NotFound', `Could not find the file ${req.query.get('path')} in container ${req.params.id}`, err);
      throw err;
    } finally {
      await release();
    }
  };

  router.add('HEAD', '/containers/:id/archive', async (req) => {
    const path = pathOf(req);
    const st = await withRootfs(req, (rootfs, mounts) => statInRoot(req.ctx, rootfs, mounts, path));
    return { status: 200, headers: { 'x-docker-container-path-stat': statHeader(st) } };
  });

  router.add('GET', '/containers/:id/archive', async (req) => {
    const path = pathOf(req);
    await withRootfs(req, async (rootfs, mounts, release) => {
      const st = await statInRoot(req.ctx, rootfs, mounts, path);
      const tar = await packFromRoot(req.ctx, rootfs, mounts, path);
      await sendTar(req, tar, { 'x-docker-container-path-stat': statHeader(st) }, release);
    });
    return undefined;
  });

  router.add('PUT', '/containers/:id/archive', async (req) => {
    const path = pathOf(req);
    // The CLI asks noOverwriteDirNonDir=true: a directory never silently becomes a file, nor the reverse.
    const noOverwriteDirNonDir = flag(req.query.get('noOverwriteDirNonDir'));
    // copyUIDGID (cp -a) keeps the archive's owners, as without it, unless the container has a user: dockerd
    // then gives every entry to that user, which berth does not do yet.
    if (flag(req.query.get('copyUIDGID')) && (await containers.resolve(req.ctx, req.params.id)).config.user) {
      throw berthError('Unimplemented', 'copying with the owner of the container\'s user (docker cp -a into a container with a user) is not implemented by berth');
    }
    await withRootfs(req, (rootfs, mounts) => extractIntoRoot(req.ctx, rootfs, mounts, path, req.raw, { noOverwriteDirNonDir }));
    return { status: 200 };
  });

  router.add('GET', '/containers/:id/export', async (req) => {
    const exported = await containers.exportRootfs(req.ctx, req.params.id);
    let released: Promise<void> | undefined;
    const release = () => (released ??= exported.release());
    try {
      await sendTar(req, exported.tar, {}, release);
    } finally {
      await release();
    }
    return undefined;
  });

  router.add('GET', '/containers/:id/changes', async (req) => ok(await containers.changes(req.ctx, req.params.id)));

  // docker commit: ?container=&repo=&tag=&author=&comment=&pause=&changes= (each change a Dockerfile instruction).
  router.add('POST', '/commit', async (req) => {
    const q = req.query;
    const container = q.get('container');
    if (!container) throw berthError('InvalidArgument', 'a container to commit is required (?container=)');
    const repo = q.get('repo');
    const tag = q.get('tag');
    if (tag && !repo) throw berthError('InvalidArgument', 'a tag needs a repository (?repo=)');
    // The body is a Config the CLI leaves empty; berth takes the new image's settings from `changes` only.
    const body = await req.json<Record<string, unknown> | null>();
    const set = Object.entries(body ?? {}).filter(([, v]) => !isEmpty(v));
    if (set.length) throw berthError('InvalidArgument', `commit: a config in the request body (${set.map(([k]) => k).join(', ')}) is not supported by berth; use changes (docker commit --change)`);
    const id = await containers.commit(req.ctx, container, {
      name: repo ? (tag ? `${repo}:${tag}` : repo) : undefined,
      author: q.get('author') || undefined,
      comment: q.get('comment') || undefined,
      changes: q.getAll('changes').flatMap((c) => c.split('\n')).filter(Boolean),
      pause: q.get('pause') === null ? true : flag(q.get('pause')),
    });
    return ok({ Id: id }, 201);
  });

  router.add('POST', '/containers/:id/update', async (req) => {
    const body = (await req.json<DockerHostConfig | null>()) ?? {};
    const patch: Pick<ContainerConfig, 'resources' | 'restartPolicy'> = {};
    const resources = resourcesOf(body);
    if (resources) patch.resources = resources;
    const restart = restartOf(body.RestartPolicy);
    if (restart) patch.restartPolicy = restart;
    await containers.update(req.ctx, req.params.id, patch);
    return ok({ Warnings: [] });
  });
}

const isEmpty = (v: unknown): boolean => v === null || v === undefined || v === '' || v === false || v === 0 || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && Object.keys(v as object).length === 0);

function pathOf(req: DockerRequest): string {
  const p = req.query.get('path');
  if (!p) throw berthError('InvalidArgument', 'a path is required (?path=)');
  return p;
}

/**
 * Stream `tar` as the answer. `beforeEnd` (the thaw of a container frozen
 * for the copy) runs once the archive is written and before the answer
 * ends: a client whose copy has ended may exec in the container at once,
 * which a thaw still under way would refuse.
 */
async function sendTar(req: DockerRequest, tar: Readable, headers: Record<string, string> = {}, beforeEnd?: () => Promise<void>): Promise<void> {
  const res = req.stream('application/x-tar', headers);
  try {
    await pipeline(tar, res, { signal: req.ctx.signal, end: false });
    await beforeEnd?.();
    res.end();
  } catch (err) {
    if (!req.ctx.signal.aborted) req.ctx.log.warn('tar stream failed', { err });
    res.destroy();
  }
}

/** Go's os.FileMode type bits, which docker's stat carries in place of the unix file type. */
const GO_MODE = { dir: 2 ** 31, symlink: 2 ** 27, device: 2 ** 26, pipe: 2 ** 25, socket: 2 ** 24, setuid: 2 ** 23, setgid: 2 ** 22, charDevice: 2 ** 21, sticky: 2 ** 20 };

/** A unix st_mode as Go's os.FileMode. */
export function goFileMode(mode: number): number {
  let out = mode & 0o777;
  const type = mode & 0o170000;
  if (type === 0o040000) out += GO_MODE.dir;
  else if (type === 0o120000) out += GO_MODE.symlink;
  else if (type === 0o020000) out += GO_MODE.device + GO_MODE.charDevice;
  else if (type === 0o060000) out += GO_MODE.device;
  else if (type === 0o010000) out += GO_MODE.pipe;
  else if (type === 0o140000) out += GO_MODE.socket;
  if (mode & 0o4000) out += GO_MODE.setuid;
  if (mode & 0o2000) out += GO_MODE.setgid;
  if (mode & 0o1000) out += GO_MODE.sticky;
  return out;
}

function statHeader(st: PathStat): string {
  return Buffer.from(JSON.stringify({ name: st.name, size: st.size, mode: goFileMode(st.mode), mtime: st.mtime, linkTarget: st.linkTarget })).toString('base64');
}
