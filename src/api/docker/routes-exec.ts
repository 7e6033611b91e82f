import type { Duplex } from 'node:stream';
import { cleanupCtx } from '../../core/context.ts';
import { berthError } from '../../core/errors.ts';
import { frame, Streams } from '../../core/stdcopy.ts';
import type { ContainerService } from '../../runtime/containers/containers.ts';
import { ok, type DockerRouter } from './server.ts';
import { detachKeysOf, splice } from '../http/hijack.ts';
import { streamType } from './streams.ts';
import { execCreateSchema, execStartSchema } from './bodies.ts';
import { terminalSize } from '../http/query.ts';

/**
 * docker exec over the Docker API: create (`POST /containers/{id}/exec`),
 * start hijacked or detached (`POST /exec/{id}/start`), inspect for the
 * exit code, resize. An attached start closes the connection only once the
 * exit code is recorded, so the CLI's inspect right after reads it.
 */
interface ExecCreateBody {
  Cmd?: string[] | null;
  Env?: string[] | null;
  WorkingDir?: string;
  User?: string;
  Tty?: boolean;
  AttachStdin?: boolean;
  DetachKeys?: string;
  Privileged?: boolean;
  /** [height, width] of the client's terminal (API 1.42+). */
  ConsoleSize?: [number, number] | null;
}

export function registerExecRoutes(router: DockerRouter, containers: ContainerService): void {
  // An exec's own detach keys, from its create to its start; checked at create so a bad one fails there, as in docker.
  const detachKeysByExec = new Map<string, string>();
  router.add('POST', '/containers/:id/exec', async (req) => {
    const b = (await req.json<ExecCreateBody>(execCreateSchema)) ?? {};
    if (b.DetachKeys) detachKeysOf(b.DetachKeys);
    const id = await containers.execCreate(req.ctx, req.params.id, {
      cmd: b.Cmd ?? [],
      env: b.Env ?? undefined,
      workingDir: b.WorkingDir || undefined,
      user: b.User || undefined,
      tty: !!b.Tty,
      attachStdin: !!b.AttachStdin,
      // dockerd's exec start closes the command's stdin when the client's input ends (CloseStdin).
      stdinOnce: !!b.AttachStdin,
      privileged: !!b.Privileged,
      ...(b.Tty && b.ConsoleSize && b.ConsoleSize[0] > 0 && b.ConsoleSize[1] > 0 ? { consoleSize: { height: b.ConsoleSize[0], width: b.ConsoleSize[1] } } : {}),
    });
    if (b.DetachKeys) detachKeysByExec.set(id, b.DetachKeys);
    return ok({ Id: id }, 201);
  });

  router.add('POST', '/exec/:id/start', async (req) => {
    const b = (await req.json<{ Detach?: boolean }>(execStartSchema)) ?? {};
    if (b.Detach) {
      await containers.execStart(req.ctx, req.params.id, { detach: true });
      return { status: 200 };
    }
    const info = await containers.execInspect(req.ctx, req.params.id);
    const detachKeys = detachKeysOf(detachKeysByExec.get(req.params.id));
    detachKeysByExec.delete(req.params.id);
    // Hijacked before the start, as dockerd does: a command that cannot start is reported on the
    // stream, and the CLI then reads its exit code (126 or 127) from exec inspect.
    const tty = !!info.config.tty;
    const client = req.hijack(streamType(tty));
    // Held until the splice listens: the CLI sends its input (and half-closes) as soon as it has the 101.
    client.pause();
    let stream: Duplex | undefined;
    try {
      ({ stream } = await containers.execStart(req.ctx, req.params.id));
      if (!stream) throw berthError('Internal', `exec ${req.params.id} started without a stream`);
    } catch (err) {
      const text = Buffer.from(`${err instanceof Error ? err.message : String(err)}\r\n`);
      client.end(tty ? text : frame(Streams.stdout, text));
      return undefined;
    }
    splice(client, stream, {
      stdin: !!info.config.attachStdin,
      // Only a terminal's input is watched for them, as in dockerd: piped bytes pass as they are.
      detachKeys: tty ? detachKeys : undefined,
      // Docker's CLI half-closes the connection when its input ends: the command sees end of file, after
      // all of the input (the monitor's stdin-once), or at once when there was none.
      onStdinEnd: (sentInput) => {
        if (!sentInput) void containers.execCloseStdin(cleanupCtx(req.ctx), req.params.id).catch(() => {});
      },
      beforeEnd: () => containers.execWait(req.ctx, req.params.id),
    });
    client.resume();
    return undefined;
  });

  router.add('GET', '/exec/:id/json', async (req) => {
    const e = await containers.execInspect(req.ctx, req.params.id);
    return ok({
      ID: e.id,
      Running: e.running,
      ExitCode: e.running || e.exitCode === undefined ? null : e.exitCode,
      ProcessConfig: { tty: !!e.config.tty, entrypoint: e.config.cmd[0] ?? '', arguments: e.config.cmd.slice(1), privileged: !!e.config.privileged, user: e.config.user ?? '' },
      OpenStdin: !!e.config.attachStdin,
      OpenStdout: true,
      OpenStderr: true,
      CanRemove: false,
      ContainerID: e.containerId,
      DetachKeys: '',
      Pid: e.pid ?? 0,
    });
  });

  router.add('POST', '/exec/:id/resize', async (req) => {
    const { h, w } = terminalSize(req.query);
    await containers.execResize(req.ctx, req.params.id, h, w);
    return { status: 200 };
  });
}
