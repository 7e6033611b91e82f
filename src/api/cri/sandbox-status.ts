import type { UnaryHandler } from './types.ts';
import { toCriSandboxStatus } from './sandbox-view.ts';

/**
 * PodSandboxStatus by id or unique id prefix; an unknown one is NOT_FOUND.
 * Verbose adds containerd's `info` key: JSON with the pause pid, the
 * netns path, and the settings of the sandbox config berth keeps (log
 * directory, published host ports, privileged, sysctls, cgroup parent,
 * seccomp profile, declared overhead and resources).
 */
export const podSandboxStatus: UnaryHandler<{ pod_sandbox_id?: string; verbose?: boolean }, object> = async (ctx, req, deps) => {
  const sb = await deps.sandboxes.status(ctx, req.pod_sandbox_id ?? '');
  const info = req.verbose
    ? {
        info: JSON.stringify({
          pid: sb.pausePid,
          netNamespacePath: sb.netnsPath,
          network: sb.network,
          hostname: sb.hostname,
          logDirectory: sb.logDirectory ?? '',
          portMappings: sb.ports ?? [],
          privileged: !!sb.privileged,
          sysctls: sb.sysctls ?? {},
          cgroupParent: sb.cgroupParent ?? '',
          seccomp: sb.seccomp ?? 'runtime/default',
          overhead: sb.overhead ?? {},
          resources: sb.resources ?? {},
        }),
      }
    : {};
  return { status: toCriSandboxStatus(sb), info, timestamp: String(BigInt(Date.now()) * 1_000_000n) };
};
