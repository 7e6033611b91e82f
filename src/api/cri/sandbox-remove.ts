import { isNotFound } from '../../core/errors.ts';
import { removeSandboxContainers } from './sandbox-containers.ts';
import type { UnaryHandler } from './types.ts';

/** RemovePodSandbox: its containers are removed and a ready sandbox is stopped first; an unknown id is OK, as containerd answers. */
export const removePodSandbox: UnaryHandler<{ pod_sandbox_id?: string }, object> = async (ctx, req, deps) => {
  await removeSandboxContainers(ctx, deps, req.pod_sandbox_id ?? '');
  await deps.sandboxes.remove(ctx, req.pod_sandbox_id ?? '').catch((err) => {
    if (!isNotFound(err)) throw err;
  });
  return {};
};
