import { kindOf } from '../../core/errors.ts';
import { criContainer } from './container-lookup.ts';
import type { UnaryHandler } from './types.ts';

/**
 * StopContainer: the stop signal (the image's, or SIGTERM), then SIGKILL
 * once `timeout` seconds have passed (at once for 0). A container that is
 * not running is OK: kubelet stops again whenever in doubt. An unknown id
 * is NOT_FOUND, as from containerd.
 */
export const stopContainer: UnaryHandler<{ container_id?: string; timeout?: string }, object> = async (ctx, req, deps) => {
  const c = await criContainer(ctx, deps, req.container_id);
  const timeout = Math.max(0, Number(req.timeout ?? 0));
  await deps.containers.stop(ctx, c.record.id, { timeoutSec: timeout }).catch((err) => {
    if (kindOf(err) !== 'NotModified') throw err;
  });
  return {};
};
