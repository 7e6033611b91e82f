import type { Ctx } from '../../core/context.ts';
import { berthError } from '../../core/errors.ts';
import type { CriDeps } from './types.ts';

/**
 * What Exec, Attach and PortForward check before they hand out a URL, as
 * kubelet's streaming library and containerd do: the fields (INVALID_ARGUMENT),
 * that the container runs or the sandbox is ready (NOT_FOUND, FAILED_PRECONDITION),
 * and that the streaming server is there (UNAVAILABLE when it failed to start).
 */
export function checkStreams(req: { container_id?: string; tty?: boolean; stdin?: boolean; stdout?: boolean; stderr?: boolean }): string {
  if (!req.container_id) throw berthError('InvalidArgument', 'missing required container_id');
  // With a tty stderr is stdout: one stream can carry both, never two.
  if (req.tty && req.stderr) throw berthError('InvalidArgument', 'tty and stderr cannot both be true');
  if (!req.stdin && !req.stdout && !req.stderr) throw berthError('InvalidArgument', 'one of stdin, stdout, or stderr must be set');
  return req.container_id;
}

/** The container's full id once it is known to run: NOT_FOUND or FAILED_PRECONDITION otherwise. */
export async function runningContainer(ctx: Ctx, deps: CriDeps, id: string): Promise<string> {
  const c = await deps.containers.get(ctx, id);
  const st = c.state.status;
  if (st !== 'running') throw berthError('FailedPrecondition', `container is in ${st === 'created' ? 'CONTAINER_CREATED' : st === 'paused' ? 'CONTAINER_RUNNING (paused)' : 'CONTAINER_EXITED'} state`);
  return c.record.id;
}

export function streamingServer(deps: CriDeps): NonNullable<CriDeps['streaming']> {
  if (!deps.streaming) throw berthError('Unavailable', 'the streaming server is not running');
  return deps.streaming;
}
