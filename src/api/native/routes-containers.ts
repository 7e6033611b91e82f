import type { Duplex } from 'node:stream';
import type { ContainerConfig } from '../../core/containers.ts';
import { berthError, kindOf } from '../../core/errors.ts';
import type { BerthEvent, EventBus } from '../../core/events.ts';
import { extractIntoRoot, packFromRoot, statInRoot } from '../../runtime/archive.ts';
import { commandLine, inspectView, listItem } from '../../runtime/container-views.ts';
import type { HealthState } from '../../runtime/health.ts';
import type { ContainerService, ExecConfig } from '../../runtime/containers.ts';
import { readLog } from '../../runtime/log-reader.ts';
import { matchLabel, type VolumeService } from '../../runtime/volumes.ts';
import { registerRunRoute } from './routes-run.ts';
import { sendTar, type ApiRequest, type Router } from './server.ts';

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
  imageConfig(req: ApiRequest, imageId: string): Promise<{ Entrypoint?: string[] | null; Cmd?: string[] | null; Env?: string[] } | undefined>;
  /** A checked container's health, when it has a health check. */
  health?(id: string): HealthState | undefined;
}

const bool = (v: string | null) => v === '1' || v === 'true';

export function registerContainerRoutes(router: Router, deps: ContainerRouteDeps): void {
  const { containers, volumes, events } = deps;
  registerRunRoute(router, containers);

  router.add('POST', '/containers/create', async (req) => {
    const config = await req.json<ContainerConfig>();
    if (!config || typeof config.image !== 'string' || !config.image) throw berthError('InvalidArgument', 'config.image is required');
    const name = req.query.get('name');
    if (name) config.name = name;
    return containers.create(req.ctx, config);
  });

  router.add('GET', '/containers/json', async (req) => {
    const all = bool(req.query.get('all'));
    const filters = parseFilters(req.query.get('filters'));
    const out = [];
    for (const c of await containers.list(req.ctx)) {
      const running = c.state.status === 'running' || c.state.status === 'paused' || c.state.status === 'restarting';
      if (!all && !running && !filters.status) continue;
      const img = await deps.imageConfig(req, c.record.imageId);
      const item = listItem(c.record, c.state, commandLine(c.record, img));
      const health = running ? deps.health?.(c.record.id) : undefined;
      // As docker: "Up 2 minutes (healthy)"; a check still in its start period shows as "health: starting".
      if (health && c.state.status === 'running') item.Status += health.Status === 'starting' ? ' (health: starting)' : ` (${health.Status})`;
      if (!matchContainer(item, filters, health)) continue;
      out.push(bool(req.query.get('size')) ? { ...item, ...(await containers.sizes(req.ctx, c.record)) } : item);
    }
    const limit = Number(req.query.get('limit') ?? -1);
    return limit > 0 ? out.slice(0, limit) : out;
  });

  router.add('GET', '/containers/:id/json', async (req) => {
    const c = await containers.get(req.ctx, req.params.id);
    const img = await deps.imageConfig(req, c.record.imageId);
    const view = inspectView(c.record, c.state, { cmd: commandLine(c.record, img), logPath: containers.logPath(c.record), bundle: containers.bundleDir(c.record), imageEnv: img?.Env });
    const health = deps.health?.(c.record.id);
    return health ? { ...view, State: { ...view.State, Health: health } } : view;
  });

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
    const t = req.query.get('t');
    try {
      await containers.stop(req.ctx, req.params.id, { timeoutSec: t === null ? undefined : Number(t), signal: req.query.get('signal') ?? undefined });
    } catch (err) {
      if (kindOf(err) === 'NotModified') return { notModified: true };
      throw err;
    }
    return { stopped: true };
  });

  router.add('POST', '/containers/:id/restart', async (req) => {
    const t = req.query.get('t');
    await containers.restart(req.ctx, req.params.id, { timeoutSec: t === null ? undefined : Number(t) });
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
    const body = await req.json<Pick<ContainerConfig, 'resources' | 'restartPolicy'>>();
    await containers.update(req.ctx, req.params.id, body ?? {});
    return { warnings: [] };
  });

  router.add('GET', '/containers/:id/logs', async (req) => {
    const c = await containers.get(req.ctx, req.params.id);
    const follow = bool(req.query.get('follow'));
    const tail = req.query.get('tail');
    const since = req.query.get('since');
    const until = req.query.get('until');
    const w = req.ndjson();
    const ctx = { ...req.ctx, signal: w.signal };
    try {
      // Following ends once the container is not running (restarts included), or when the client goes.
      const stop = follow ? containers.wait(ctx, c.record.id, 'not-running').catch(() => undefined) : undefined;
      for await (const r of readLog(ctx, containers.logFile(c.record), {
        follow,
        stop,
        tail: tailCount(tail),
        since: since ? new Date(Number(since) * 1000) : undefined,
        until: until ? new Date(Number(until) * 1000) : undefined,
        stdout: req.query.get('stdout') === null ? true : bool(req.query.get('stdout')),
        stderr: req.query.get('stderr') === null ? true : bool(req.query.get('stderr')),
      })) {
        await w.write({ stream: r.stream, time: r.time, log: r.text });
      }
      w.end();
    } catch (err) {
      if (w.signal.aborted) return;
      w.fail(err);
    }
  });

  router.add('POST', '/containers/:id/attach', async (req) => {
    const { stream, record } = await containers.attach(req.ctx, req.params.id);
    const sock = req.upgrade();
    splice(sock, stream, () => {
      if (record.config.stdinOnce) void containers.closeStdin(req.ctx, record.id);
    });
  });

  router.add('POST', '/containers/:id/resize', async (req) => {
    await containers.resize(req.ctx, req.params.id, Number(req.query.get('h')), Number(req.query.get('w')));
  });

  router.add('POST', '/containers/:id/exec', async (req) => {
    const body = await req.json<ExecConfig>();
    return { id: await containers.execCreate(req.ctx, req.params.id, body) };
  });

  router.add('POST', '/exec/:id/start', async (req) => {
    const detach = bool(req.query.get('detach'));
    if (detach) {
      await containers.execStart(req.ctx, req.params.id, { detach: true });
      return { started: true };
    }
    const { stream } = await containers.execStart(req.ctx, req.params.id);
    const sock = req.upgrade();
    splice(sock, stream!, () => {});
  });

  router.add('POST', '/exec/:id/resize', async (req) => {
    await containers.execResize(req.ctx, req.params.id, Number(req.query.get('h')), Number(req.query.get('w')));
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

  router.add('GET', '/volumes', async (req) => {
    const filters = parseFilters(req.query.get('filters'));
    const list = await volumes.list(req.ctx);
    return list.filter((v) => {
      if (filters.name && !filters.name.some((n) => v.name.includes(n))) return false;
      if (filters.label && !filters.label.every((l) => matchLabel(v.labels, l))) return false;
      if (filters.dangling) {
        const dangling = volumes.usedBy(req.ctx.namespace, v.name).length === 0;
        if (filters.dangling.includes('true') !== dangling) return false;
      }
      return true;
    });
  });
  router.add('POST', '/volumes/create', async (req) => {
    const body = (await req.json<{ name?: string; driver?: string; labels?: Record<string, string>; options?: Record<string, string> }>()) ?? {};
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
    const filters = parseFilters(req.query.get('filters'));
    const since = req.query.get('since');
    const until = req.query.get('until');
    const untilNano = until ? BigInt(Math.floor(Number(until) * 1e9)) : undefined;
    const sub = events.subscribe(
      (e) => e.namespace === req.ctx.namespace && matchEvent(e, filters),
      since ? BigInt(Math.floor(Number(since) * 1e9)) : undefined,
    );
    const w = req.ndjson();
    w.signal.addEventListener('abort', () => sub.close(), { once: true });
    let timer: NodeJS.Timeout | undefined;
    if (untilNano !== undefined) {
      const ms = Number(untilNano / 1_000_000n) - Date.now();
      timer = setTimeout(() => sub.close(), Math.max(0, ms));
    }
    for await (const e of sub) {
      if (untilNano !== undefined && BigInt(e.timeNano) > untilNano) break;
      await w.write(e).catch(() => sub.close());
    }
    if (timer) clearTimeout(timer);
    w.end();
  });
}

function requirePath(req: ApiRequest): string {
  const p = req.query.get('path');
  if (!p) throw berthError('InvalidArgument', 'a path is required');
  return p;
}

/** Pipe an upgraded client socket and a monitor stream into each other. */
function splice(client: Duplex, task: Duplex, onClientEnd: () => void): void {
  client.pipe(task, { end: false });
  task.pipe(client);
  client.on('end', () => {
    onClientEnd();
    task.end();
  });
  client.on('error', () => task.destroy());
  task.on('error', () => client.destroy());
  client.on('close', () => task.destroy());
  task.on('close', () => client.end());
}

function parseFilters(raw: string | null): Record<string, string[]> {
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw berthError('InvalidArgument', `invalid filters: ${raw}`);
  }
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    // Docker sends {"key":{"value":true}} or {"key":["value"]}.
    out[k] = Array.isArray(v) ? v.map(String) : Object.keys(v as object);
  }
  return out;
}

function matchContainer(c: ReturnType<typeof listItem>, f: Record<string, string[]>, health?: HealthState): boolean {
  for (const [key, values] of Object.entries(f)) {
    const ok = values.some((v) => {
      switch (key) {
        case 'id':
          return c.Id.startsWith(v);
        case 'name':
          return c.Names.some((n) => n.slice(1).includes(v.replace(/^\//, '')));
        case 'status':
          return c.State === v;
        case 'label':
          return matchLabel(c.Labels, v);
        case 'ancestor':
          return c.Image === v || c.ImageID === v || c.ImageID.replace('sha256:', '').startsWith(v);
        case 'exited':
          return c.State === 'exited' && c.Status.startsWith(`Exited (${v})`);
        case 'health':
          if (!['starting', 'healthy', 'unhealthy', 'none'].includes(v)) throw berthError('InvalidArgument', `invalid filter 'health=${v}': expected starting, healthy, unhealthy or none`);
          return (health?.Status ?? 'none') === v;
        case 'volume':
          return c.Mounts.some((m) => m.Name === v || m.Source === v || m.Destination === v);
        default:
          throw berthError('InvalidArgument', `invalid filter '${key}'`);
      }
    });
    if (!ok) return false;
  }
  return true;
}

function matchEvent(e: BerthEvent, f: Record<string, string[]>): boolean {
  for (const [key, values] of Object.entries(f)) {
    const ok = values.some((v) => {
      switch (key) {
        case 'type':
          return e.type === v;
        case 'event':
          return e.action === v;
        case 'container':
          return e.type === 'container' && (e.id.startsWith(v) || e.attributes.name === v);
        case 'image':
          return e.attributes.image === v || (e.type === 'image' && e.id === v);
        case 'label':
          return matchLabel(e.attributes, v);
        default:
          return true;
      }
    });
    if (!ok) return false;
  }
  return true;
}

/** `tail`: all, or a number of lines; a negative number means all, as with docker. */
function tailCount(tail: string | null): number | undefined {
  if (tail === null || tail === '' || tail === 'all') return undefined;
  const n = Number(tail);
  if (!Number.isInteger(n)) throw berthError('InvalidArgument', `invalid tail "${tail}": expected a number of lines or "all"`);
  return n < 0 ? undefined : n;
}
