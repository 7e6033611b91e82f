import { isNotFound } from '../../core/errors.ts';
import type { UnaryHandler } from './types.ts';

/** RemovePodSandbox: a ready sandbox is stopped first; an unknown id is OK, as containerd answers. */
export const removePodSandbox: UnaryHandler<{ pod_sandbox_id?: string }, object> = async (ctx, req, deps) => {
  await deps.sandboxes.remove(ctx, req.pod_sandbox_id ?? '').catch((err) => {
    if (!isNotFound(err)) throw err;
  });
  return {};
};
