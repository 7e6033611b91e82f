import { isNotFound } from '../../core/errors.ts';
import { stopSandboxContainers } from './sandbox-containers.ts';
import type { UnaryHandler } from './types.ts';

/**
 * StopPodSandbox: the pause process and the pod's network go. Idempotent,
 * and an unknown id is OK too: kubelet stops a pod at least once before
 * removing it and again whenever in doubt (containerd's sandbox_stop.go).
 * Its containers are killed first.
 */
export const stopPodSandbox: UnaryHandler<{ pod_sandbox_id?: string }, object> = async (ctx, req, deps) => {
  await stopSandboxContainers(ctx, deps, req.pod_sandbox_id ?? '');
  await deps.sandboxes.stop(ctx, req.pod_sandbox_id ?? '').catch((err) => {
    if (!isNotFound(err)) throw err;
  });
  return {};
};
