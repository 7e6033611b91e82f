import { cleanupCtx } from '../../core/context.ts';
import { berthError, kindOf } from '../../core/errors.ts';
import { parseFilters } from '../../core/filters.ts';
import { frame, Streams } from '../../core/stdcopy.ts';
import { containerLog, inspectContainer, listContainers, type ContainerQueryDeps } from '../../runtime/containers/container-queries.ts';
import { writeStreamed } from '../http/write.ts';
import { containerConfigOf, type DockerCreateBody } from './create-config.ts';
import { flag, ok, type DockerRouter, type Reply } from './server.ts';
import { detachKeysOf, splice } from '../http/hijack.ts';
import { streamType } from './streams.ts';
import { createBodySchema } from './bodies.ts';
import { stopTimeout, terminalSize } from '../http/query.ts';

/**
 * Container endpoints of the Docker API: create, list, inspect, start,
 * stop, restart, kill, pause, unpause, rename, top, prune, wait, remove,
 * logs, attach and resize. Each
 * translates docker's request into one container service call; the views
 * are the shared docker-shaped ones (runtime/container-queries.ts).
 */
export function registerContainerRoutes(router: DockerRouter, deps: ContainerQueryDeps): void {
  const { containers } = deps;

  router.add('POST', '/containers/create', async (req) => {
    const config = containerConfigOf((await req.json<DockerCreateBody>(createBodySchema)) ?? {}, req.query.get('name') || undefined);
    const { id, warnings } = await containers.create(req.ctx, config);
    return ok({ Id: id, Warnings: warnings }, 201);
  });

  router.add('GET', '/containers/json', async (req) => {
    const limit = Number(req.query.get('limit') ?? -1);
    const rows = await listContainers(req.ctx, deps, {
      all: flag(req.query.get('all')),
      filters: parseFilters(req.query.get('filters')),
      size: flag(req.query.get('size')),
      limit: Number.isInteger(limit) ? limit : -1,
    });
    return ok(rows);
  });

  router.add('GET', '/containers/:id/json', async (req) => {
    const view = await inspectContainer(req.ctx, deps, req.params.id);
    // inspect --size: the writable layer's bytes, and with the image's.
    if (!flag(req.query.get('size'))) return ok(view);
    return ok({ ...view, ...(await containers.sizes(req.ctx, await containers.resolve(req.ctx, view.Id))) });
  });

  // As dockerd: a container that cannot start is removed when it was to be removed at its exit, and a
  // command that cannot be run (exit code 126/127) is the request's fault, 400.
  router.add('POST', '/containers/:id/start', async (req) => {
    const rec = await containers.resolve(req.ctx, req.params.id);
    try {
      return await notModified(containers.start(req.ctx, rec.id));
    } catch (err) {
      // Only a start that was tried and failed carries an exit code; a refused one (paused, being removed) leaves it be.
      const exitCode = (err as { exitCode?: number }).exitCode;
      if (rec.config.autoRemove && typeof exitCode === 'number') await containers.remove(cleanupCtx(req.ctx), rec.id, { force: true, volumes: true }).catch(() => {});
      if (exitCode === 126 || exitCode === 127) throw berthError('InvalidArgument', (err as Error).message, err);
      throw err;
    }
  });

  router.add('POST', '/containers/:id/stop', async (req) => {
    return notModified(containers.stop(req.ctx, req.params.id, { timeoutSec: stopTimeout(req.query), signal: req.query.get('signal') || undefined }));
  });

  router.add('POST', '/containers/:id/restart', async (req) => {
    await containers.restart(req.ctx, req.params.id, { timeoutSec: stopTimeout(req.query) });
    return undefined;
  });

  router.add('POST', '/containers/:id/kill', async (req) => {
    await containers.kill(req.ctx, req.params.id, req.query.get('signal') || 'SIGKILL');
    return undefined;
  });

  router.add('POST', '/containers/:id/pause', async (req) => void (await containers.pause(req.ctx, req.params.id)));
  router.add('POST', '/containers/:id/unpause', async (req) => void (await containers.unpause(req.ctx, req.params.id)));

  router.add('POST', '/containers/:id/rename', async (req) => {
    const name = req.query.get('name');
    if (!name) throw berthError('InvalidArgument', 'rename needs a new name (?name=)');
    await containers.rename(req.ctx, req.params.id, name);
    return undefined;
  });

  router.add('GET', '/containers/:id/top', async (req) => {
    const { titles, processes } = await containers.top(req.ctx, req.params.id);
    return ok({ Titles: titles, Processes: processes });
  });

  router.add('POST', '/containers/prune', async (req) => {
    const filters = parseFilters(req.query.get('filters'));
    const { removed } = await containers.prune(req.ctx, { labels: filters.label });
    return ok({ ContainersDeleted: removed, SpaceReclaimed: 0 });
  });

  router.add('DELETE', '/containers/:id', async (req) => {
    await containers.remove(req.ctx, req.params.id, { force: flag(req.query.get('force')), volumes: flag(req.query.get('v')) });
    return undefined;
  });

  // The status line goes out once the wait is armed (the CLI starts the container only then); the body when it ends.
  router.add('POST', '/containers/:id/wait', async (req) => {
    const condition = req.query.get('condition') || 'not-running';
    if (condition !== 'not-running' && condition !== 'next-exit' && condition !== 'removed') throw berthError('InvalidArgument', `invalid condition: "${condition}"`);
    const rec = await containers.resolve(req.ctx, req.params.id);
    const exited = containers.wait(req.ctx, rec.id, condition);
    exited.catch(() => {});
    await new Promise((r) => setImmediate(r));
    const res = req.stream('application/json');
    let body: unknown;
    try {
      const r = await exited;
      body = { StatusCode: r.exitCode, Error: r.error ? { Message: r.error } : null };
    } catch (err) {
      if (req.ctx.signal.aborted) return undefined;
      body = { StatusCode: -1, Error: { Message: err instanceof Error ? err.message : String(err) } };
    }
    res.end(JSON.stringify(body) + '\n');
    return undefined;
  });

  router.add('GET', '/containers/:id/logs', async (req) => {
    if (!flag(req.query.get('stdout')) && !flag(req.query.get('stderr'))) throw berthError('InvalidArgument', 'Bad parameters: you must choose at least one stream');
    const { record, records } = await containerLog(req.ctx, containers, req.params.id, req.query);
    const tty = !!record.config.tty;
    const stamps = flag(req.query.get('timestamps'));
    const res = req.stream(streamType(tty));
    try {
      for await (const r of records) {
        const data = Buffer.from(stamps ? `${r.time} ${r.text}` : r.text);
        const chunk = tty ? data : frame(r.stream === 'stderr' ? Streams.stderr : Streams.stdout, data);
        await writeStreamed(res, chunk);
      }
    } catch (err) {
      if (!req.ctx.signal.aborted) req.ctx.log.warn('logs stream failed', { err });
    }
    res.end();
    return undefined;
  });

  router.add('POST', '/containers/:id/attach', async (req) => {
    const detachKeys = detachKeysOf(req.query.get('detachKeys'));
    await req.discardBody();
    let attached: Awaited<ReturnType<typeof containers.attach>>;
    try {
      // As with dockerd, an attached client gets every byte: the output waits for it when it is behind.
      attached = await containers.attach(req.ctx, req.params.id, { all: true });
    } catch (err) {
      // Attaching to a created container prepares its start; when that fails (a command that is not
      // there) dockerd's attach still succeeds and the start fails. The CLI attaches first: it must get
      // the stream (which has nothing to carry) and then the start's error, to exit 127 as with dockerd.
      if (typeof (err as { exitCode?: number }).exitCode !== 'number') throw err;
      const rec = await containers.resolve(req.ctx, req.params.id);
      req.hijack(streamType(!!rec.config.tty)).end();
      return undefined;
    }
    const { stream, tty, record } = attached;
    const client = req.hijack(streamType(tty));
    splice(client, stream, {
      stdin: flag(req.query.get('stdin')),
      // Only a terminal's input is watched for them, as in dockerd: piped bytes pass as they are.
      detachKeys: tty ? detachKeys : undefined,
      // Input that was sent is followed by its close in the monitor (stdin-once); none sent, by a close of its own.
      onStdinEnd: (sentInput) => {
        if (record.config.stdinOnce && !sentInput) void containers.closeStdin(cleanupCtx(req.ctx), record.id);
      },
    });
    // Reading a body that came in its own packets paused the connection.
    client.resume();
    return undefined;
  });

  router.add('POST', '/containers/:id/resize', async (req) => {
    const { h, w } = terminalSize(req.query);
    await containers.resize(req.ctx, req.params.id, h, w);
    return { status: 200 };
  });
}

/** Starting a running container or stopping a stopped one answers 304, as dockerd does; the CLI takes it as done. */
async function notModified(op: Promise<void>): Promise<Reply | undefined> {
  try {
    await op;
  } catch (err) {
    if (kindOf(err) === 'NotModified') return { status: 304 };
    throw err;
  }
  return undefined;
}
