import { berthError } from '../../core/errors.ts';
import type { ContainerService } from '../../runtime/containers.ts';
import { ok, type DockerRouter } from './server.ts';
import { splice, streamType } from './streams.ts';

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
  Privileged?: boolean;
}

export function registerExecRoutes(router: DockerRouter, containers: ContainerService): void {
  router.add('POST', '/containers/:id/exec', async (req) => {
    const b = (await req.json<ExecCreateBody>()) ?? {};
    const id = await containers.execCreate(req.ctx, req.params.id, {
      cmd: b.Cmd ?? [],
      env: b.Env ?? undefined,
      workingDir: b.WorkingDir || undefined,
      user: b.User || undefined,
      tty: !!b.Tty,
      attachStdin: !!b.AttachStdin,
      privileged: !!b.Privileged,
    });
    return ok({ Id: id }, 201);
  });

  router.add('POST', '/exec/:id/start', async (req) => {
    const b = (await req.json<{ Detach?: boolean }>()) ?? {};
    if (b.Detach) {
      await containers.execStart(req.ctx, req.params.id, { detach: true });
      return { status: 200 };
    }
    const info = await containers.execInspect(req.ctx, req.params.id);
    const { stream, tty } = await containers.execStart(req.ctx, req.params.id);
    if (!stream) throw berthError('Internal', `exec ${req.params.id} started without a stream`);
    const client = req.hijack(streamType(tty));
    splice(client, stream, { stdin: !!info.config.attachStdin, beforeEnd: () => containers.execWait(req.ctx, req.params.id) });
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
    await containers.execResize(req.ctx, req.params.id, Number(req.query.get('h')), Number(req.query.get('w')));
    return { status: 200 };
  });
}
