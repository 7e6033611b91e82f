import { berthError } from '../../core/errors.ts';
import { checkStreams, runningContainer, streamingServer } from './streaming-checks.ts';
import type { UnaryHandler } from './types.ts';

/**
 * Exec: check the request and the container, then answer a single-use URL
 * on the streaming server, where the client's SPDY or WebSocket session
 * runs the command through the container service's exec (`streaming/`).
 */
interface ExecRequest {
  container_id?: string;
  cmd?: string[];
  tty?: boolean;
  stdin?: boolean;
  stdout?: boolean;
  stderr?: boolean;
}

export const exec: UnaryHandler<ExecRequest, { url: string }> = async (ctx, req, deps) => {
  const id = checkStreams(req);
  if (!req.cmd?.length) throw berthError('InvalidArgument', 'cmd must not be empty');
  const server = streamingServer(deps);
  const containerId = await runningContainer(ctx, deps, id);
  return { url: server.url({ kind: 'exec', containerId, cmd: req.cmd, tty: !!req.tty, stdin: !!req.stdin, stdout: !!req.stdout, stderr: !!req.stderr }) };
};
