import { isNotFound } from '../../core/errors.ts';
import type { UnaryHandler } from './types.ts';

/**
 * RemoveContainer: a running container is killed first (containerd's
 * forced stop); an unknown id is OK, as the CRI makes removal idempotent.
 */
export const removeContainer: UnaryHandler<{ container_id?: string }, object> = async (ctx, req, deps) => {
  const id = req.container_id ?? '';
  if (!id) return {};
  const c = await deps.containers.get(ctx, id).catch((err) => {
    if (isNotFound(err)) return undefined;
    throw err;
  });
  if (!c?.record.config.pod) return {};
  await deps.containers.remove(ctx, c.record.id, { force: true }).catch((err) => {
    if (!isNotFound(err)) throw err;
  });
  return {};
};
