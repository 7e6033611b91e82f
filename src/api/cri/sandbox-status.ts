import type { UnaryHandler } from './types.ts';
import { toCriSandboxStatus } from './sandbox-view.ts';

/**
 * PodSandboxStatus by id or unique id prefix; an unknown one is NOT_FOUND.
 * Verbose adds containerd's `info` key: JSON with the pause pid and the
 * netns path.
 */
export const podSandboxStatus: UnaryHandler<{ pod_sandbox_id?: string; verbose?: boolean }, object> = async (ctx, req, deps) => {
  const sb = await deps.sandboxes.status(ctx, req.pod_sandbox_id ?? '');
  const info = req.verbose ? { info: JSON.stringify({ pid: sb.pausePid, netNamespacePath: sb.netnsPath, network: sb.network, hostname: sb.hostname }) } : {};
  return { status: toCriSandboxStatus(sb), info, timestamp: String(BigInt(Date.now()) * 1_000_000n) };
};
