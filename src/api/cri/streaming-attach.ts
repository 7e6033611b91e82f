import { checkStreams, runningContainer, streamingServer } from './streaming-checks.ts';
import type { UnaryHandler } from './types.ts';

/**
 * Attach: check the request and the container, then answer a single-use
 * URL on the streaming server, where the session joins the container's own
 * process through the container service's attach (`streaming/`).
 */
interface AttachRequest {
  container_id?: string;
  stdin?: boolean;
  tty?: boolean;
  stdout?: boolean;
  stderr?: boolean;
}

export const attach: UnaryHandler<AttachRequest, { url: string }> = async (ctx, req, deps) => {
  const id = checkStreams(req);
  const server = streamingServer(deps);
  const containerId = await runningContainer(ctx, deps, id);
  return { url: server.url({ kind: 'attach', containerId, tty: !!req.tty, stdin: !!req.stdin, stdout: !!req.stdout, stderr: !!req.stderr }) };
};
