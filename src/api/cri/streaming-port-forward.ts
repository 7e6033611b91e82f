import { berthError } from '../../core/errors.ts';
import { streamingServer } from './streaming-checks.ts';
import type { UnaryHandler } from './types.ts';

/**
 * PortForward: check the sandbox is ready, then answer a single-use URL on
 * the streaming server, whose session connects to ports on the pod's
 * loopback, inside its network namespace (`streaming/portforward.ts`).
 * The request's ports are the ones a WebSocket session forwards; SPDY
 * clients name a port per stream.
 */
interface PortForwardRequest {
  pod_sandbox_id?: string;
  port?: number[];
}

export const portForward: UnaryHandler<PortForwardRequest, { url: string }> = async (ctx, req, deps) => {
  if (!req.pod_sandbox_id) throw berthError('InvalidArgument', 'missing required pod_sandbox_id');
  const ports = req.port ?? [];
  for (const p of ports) if (!Number.isInteger(p) || p < 1 || p > 65535) throw berthError('InvalidArgument', `port ${p} must be between 1 and 65535`);
  const server = streamingServer(deps);
  const sb = await deps.sandboxes.status(ctx, req.pod_sandbox_id);
  if (sb.state !== 'ready') throw berthError('FailedPrecondition', `sandbox container "${sb.id}" is not running`);
  return { url: server.url({ kind: 'portforward', podSandboxId: sb.id, ports }) };
};
