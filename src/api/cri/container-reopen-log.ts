import { criContainer } from './container-lookup.ts';
import type { UnaryHandler } from './types.ts';

/**
 * ReopenContainerLog: the monitor opens the log path afresh, after kubelet
 * renamed the file to rotate it. A container that is not running is
 * FAILED_PRECONDITION, as from containerd.
 */
export const reopenContainerLog: UnaryHandler<{ container_id?: string }, object> = async (ctx, req, deps) => {
  const c = await criContainer(ctx, deps, req.container_id);
  await deps.containers.reopenLog(ctx, c.record.id);
  return {};
};
