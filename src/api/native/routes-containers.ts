import type { ContainerConfig } from '../../core/containers.ts';
import { cleanupCtx } from '../../core/context.ts';
import { berthError, kindOf } from '../../core/errors.ts';
import { parseFilters } from '../../core/filters.ts';
import type { EventBus } from '../../core/events.ts';
import { extractIntoRoot, packFromRoot, statInRoot } from '../../runtime/containers/archive.ts';
import { containerLog, inspectContainer, listContainers, type ContainerQueryDeps } from '../../runtime/containers/container-queries.ts';
import type { ContainerService, ExecConfig } from '../../runtime/containers/containers.ts';
import { listVolumes, type VolumeService } from '../../runtime/volumes/volumes.ts';
import { queryEvents } from '../http/events.ts';
import { splice } from '../http/hijack.ts';
import { registerRunRoute } from './routes-run.ts';
import { sendTar, type ApiRequest, type Router } from './server.ts';
import { containerConfigSchema, execSchema, updateSchema, volumeCreateSchema } from './bodies.ts';
import { stopTimeout, terminalSize } from '../http/query.ts';

/**
 * Native API routes for containers, exec sessions, volumes and events. The
 * paths follow the Docker Engine API's where one exists, so the two doors
 * read alike; the bodies are berth's (ContainerConfig in, docker-shaped
 * views out).
 */
export interface ContainerRouteDeps {
  containers: ContainerService;
  volumes: VolumeService;
  events: EventBus;
  /** The image config of a container's image (for Cmd/Entrypoint/Env in views). */
  imageConfig: ContainerQueryDeps['imageConfig'];
  /** A checked container's health, when it has a health check. */
  health?: ContainerQueryDeps['health'];
}

const bool = (v: string | null) => v === '1' || v === 'true';

export function registerContainerRoutes(router: Router, deps: ContainerRouteDeps): void {
  const { containers, volumes, events } = deps;
  const queries: ContainerQueryDeps = { containers, imageConfig: deps.imageConfig, health: deps.health };
  registerRunRoute(router, containers);

  router.add('POST', '/containers/create', async (req) => {
    const config = await req.json<ContainerConfig>(containerConfigSchema);
    if (!config || typeof config.image !== 'string' || !config.image) throw berthError('InvalidArgument', 'config.image is required');
    const name = req.query.get('name');
    if (name) config.name = name;
    return containers.create(req.ctx, config);
  });

  router.add('GET', '/containers/json', async (req) =>
    listContainers(req.ctx, queries, {
      all: bool(req.query.get('all')),
      filters: parseFilters(req.query.get('filters')),
      size: bool(req.query.get('size')),
      limit: Number(req.query.get('limit') ?? -1),
    }),
  );

  router.add('GET', '/containers/:id/json', async (req) => inspectContainer(req.ctx, queries, req.params.id));

  router.add('POST', '/containers/:id/start', async (req) => {
    try {
      await containers.start(req.ctx, req.params.id);
    } catch (err) {
      // Starting a running container is not an error for docker's CLI (the API says 304).
      if (kindOf(err) === 'NotModified') return { notModified: true };
      const exitCode = (err as { exitCode?: number }).exitCode;
      if (exitCode !== undefined) throw Object.assign(err as Error, { message: `${(err as Error).message}` });
      throw err;
    }
    return { started: true };
  });

  router.add('POST', '/containers/:id/stop', async (req) => {
    try {
      await containers.stop(req.ctx, req.params.id, { timeoutSec: stopTimeout(req.query), signal: req.query.get('signal') ?? undefined });
    } catch (err) {
      if (kindOf(err) === 'NotModified') return { notModified: true };
      throw err;
    }
    return { stopped: true };
  });

  router.add('POST', '/containers/:id/restart', async (req) => {
    await containers.restart(req.ctx, req.params.id, { timeoutSec: stopTimeout(req.query) });
  });

  router.add('POST', '/containers/:id/kill', async (req) => {
    await containers.kill(req.ctx, req.params.id, req.query.get('signal') ?? 'SIGKILL');
  });

  router.add('POST', '/containers/:id/pause', async (req) => containers.pause(req.ctx, req.params.id));
  router.add('POST', '/containers/:id/unpause', async (req) => containers.unpause(req.ctx, req.params.id));

  router.add('POST', '/containers/:id/wait', async (req) => {
    const condition = (req.query.get('condition') ?? 'not-running') as 'not-running' | 'next-exit' | 'removed';
    if (!['not-running', 'next-exit', 'removed'].includes(condition)) throw berthError('InvalidArgument', `invalid condition "${condition}"`);
    return containers.wait(req.ctx, req.params.id, condition);
  });

  router.add('DELETE', '/containers/:id', async (req) => {
    await containers.remove(req.ctx, req.params.id, { force: bool(req.query.get('force')), volumes: bool(req.query.get('v')) });
  });

  router.add('POST', '/containers/prune', async (req) => {
    const filters = parseFilters(req.query.get('filters'));
    return containers.prune(req.ctx, { labels: filters.label });
  });

  router.add('POST', '/containers/:id/rename', async (req) => {
    const name = req.query.get('name');
    if (!name) throw berthError('InvalidArgument', 'a new name is required');
    await containers.rename(req.ctx, req.params.id, name);
  });

  router.add('POST', '/containers/:id/update', async (req) => {
    const body = await req.json<Pick<ContainerConfig, 'resources' | 'restartPolicy'>>(updateSchema);
    await containers.update(req.ctx, req.params.id, body ?? {});
    return { warnings: [] };
  });

  router.add('GET', '/containers/:id/logs', async (req) => {
    const { records } = await containerLog(req.ctx, containers, req.params.id, req.query);
    const w = req.ndjson();
    try {
      for await (const r of records) await w.write({ stream: r.stream, time: r.time, log: r.text });
      w.end();
    } catch (err) {
      if (w.signal.aborted) return;
      w.fail(err);
    }
  });

  router.add('POST', '/containers/:id/attach', async (req) => {
    const { stream, record } = await containers.attach(req.ctx, req.params.id, { all: true });
    const sock = req.upgrade();
    splice(sock, stream, {
      stdin: true,
      // Input that was sent is followed by its close in the monitor (stdin-once); none sent, by a close of its own.
      onStdinEnd: (sentInput) => {
        if (record.config.stdinOnce && !sentInput) void containers.closeStdin(cleanupCtx(req.ctx), record.id);
      },
    });
  });

  router.add('POST', '/containers/:id/resize', async (req) => {
    const { h, w } = terminalSize(req.query);
    await containers.resize(req.ctx, req.params.id, h, w);
  });

  router.add('POST', '/containers/:id/exec', async (req) => {
    const body = await req.json<ExecConfig>(execSchema);
    // The command's stdin closes when the client's input ends, as docker exec's does (CloseStdin).
    return { id: await containers.execCreate(req.ctx, req.params.id, { ...body, stdinOnce: !!body?.attachStdin }) };
  });

  router.add('POST', '/exec/:id/start', async (req) => {
    const detach = bool(req.query.get('detach'));
    if (detach) {
      await containers.execStart(req.ctx, req.params.id, { detach: true });
      return { started: true };
    }
    const { stream } = await containers.execStart(req.ctx, req.params.id);
    const sock = req.upgrade();
    splice(sock, stream!, {
      stdin: true,
      // The client half-closes when its input ends: the command sees end of file after all of the input
      // (the monitor's stdin-once), or at once when there was none.
      onStdinEnd: (sentInput) => {
        if (!sentInput) void containers.execCloseStdin(cleanupCtx(req.ctx), req.params.id).catch(() => {});
      },
    });
  });

  router.add('POST', '/exec/:id/resize', async (req) => {
    const { h, w } = terminalSize(req.query);
    await containers.execResize(req.ctx, req.params.id, h, w);
  });

  router.add('GET', '/exec/:id/json', async (req) => containers.execInspect(req.ctx, req.params.id));

  router.add('POST', '/exec/:id/wait', async (req) => ({ exitCode: await containers.execWait(req.ctx, req.params.id) }));

  router.add('GET', '/containers/:id/top', async (req) => containers.top(req.ctx, req.params.id));

  router.add('GET', '/containers/:id/stats', async (req) => {
    const stream = req.query.get('stream') === null ? true : bool(req.query.get('stream'));
    const first = await containers.stats(req.ctx, req.params.id);
    const view = (s: typeof first) => ({ id: s.record.id, name: s.record.name, ...s.stats });
    if (!stream) return view(first);
    const w = req.ndjson();
    await w.write(view(first));
    while (!w.signal.aborted) {
      await new Promise((r) => setTimeout(r, 1000));
      const next = await containers.stats(req.ctx, req.params.id).catch(() => undefined);
      if (!next) break;
      await w.write(view(next)).catch(() => {});
    }
    w.end();
  });

  router.add('HEAD', '/containers/:id/archive', async (req) => {
    const { rootfs, mounts, release } = await containers.rootfsOf(req.ctx, req.params.id);
    try {
      return await statInRoot(req.ctx, rootfs, mounts, requirePath(req));
    } finally {
      await release();
    }
  });

  router.add('GET', '/containers/:id/changes', async (req) => containers.changes(req.ctx, req.params.id));

  // docker's POST /commit?container=&repo=&tag=&author=&comment=&pause=&changes=
  router.add('POST', '/commit', async (req) => {
    const q = req.query;
    const container = q.get('container');
    if (!container) throw berthError('InvalidArgument', 'a container to commit is required');
    const repo = q.get('repo');
    const name = repo ? `${repo}${q.get('tag') ? `:${q.get('tag')}` : ''}` : undefined;
    const id = await containers.commit(req.ctx, container, {
      name,
      author: q.get('author') ?? undefined,
      comment: q.get('comment') ?? undefined,
      changes: q.getAll('changes'),
      pause: q.get('pause') === null ? true : bool(q.get('pause')),
    });
    return { Id: id };
  });

  router.add('GET', '/containers/:id/export', async (req) => {
    const { tar, release } = await containers.exportRootfs(req.ctx, req.params.id);
    try {
      await sendTar(req, tar);
    } finally {
      await release();
    }
  });

  router.add('GET', '/containers/:id/archive/stat', async (req) => {
    const { rootfs, mounts, release } = await containers.rootfsOf(req.ctx, req.params.id);
    try {
      return await statInRoot(req.ctx, rootfs, mounts, requirePath(req));
    } finally {
      await release();
    }
  });

  router.add('GET', '/containers/:id/archive', async (req) => {
    const { rootfs, mounts, release } = await containers.rootfsOf(req.ctx, req.params.id);
    try {
      await sendTar(req, await packFromRoot(req.ctx, rootfs, mounts, requirePath(req)));
    } finally {
      await release();
    }
  });

  router.add('PUT', '/containers/:id/archive', async (req) => {
    const { rootfs, mounts, release } = await containers.rootfsOf(req.ctx, req.params.id);
    try {
      await extractIntoRoot(req.ctx, rootfs, mounts, requirePath(req), req.body);
    } finally {
      await release();
    }
  });

  // ------------------------------------------------------------ volumes

  router.add('GET', '/volumes', async (req) => listVolumes(req.ctx, volumes, parseFilters(req.query.get('filters'))));
  router.add('POST', '/volumes/create', async (req) => {
    const body = (await req.json<{ name?: string; driver?: string; labels?: Record<string, string>; options?: Record<string, string> }>(volumeCreateSchema)) ?? {};
    return volumes.create(req.ctx, { ...body, anonymous: false });
  });
  router.add('GET', '/volumes/:name', async (req) => volumes.inspect(req.ctx, req.params.name));
  router.add('DELETE', '/volumes/:name', async (req) => volumes.remove(req.ctx, req.params.name, { force: bool(req.query.get('force')) }));
  router.add('POST', '/volumes/prune', async (req) => {
    const filters = parseFilters(req.query.get('filters'));
    return volumes.prune(req.ctx, { all: filters.all?.includes('true'), label: filters.label });
  });

  // ------------------------------------------------------------ events

  router.add('GET', '/events', async (req) => {
    const events_ = queryEvents(req.ctx, events, { filters: parseFilters(req.query.get('filters')), since: req.query.get('since'), until: req.query.get('until') });
    const w = req.ndjson();
    try {
      for await (const e of events_) await w.write(e);
    } catch (err) {
      if (!w.signal.aborted) req.ctx.log.warn('events stream failed', { err });
    }
    w.end();
  });
}

function requirePath(req: ApiRequest): string {
  const p = req.query.get('path');
  if (!p) throw berthError('InvalidArgument', 'a path is required');
  return p;
}
