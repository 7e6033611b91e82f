import type { Ctx } from '../core/context.ts';
import { berthError } from '../core/errors.ts';
import type { Snapshotter } from './types.ts';

/** The label a container's writable snapshot carries (runtime/containers sets it at create). */
export const CONTAINER_LABEL = 'berth.container';

/**
 * A snapshot removal on a user's request (`berth snapshot rm`, ctr's
 * `snapshots rm`): refuses the writable layer of a container, which may be
 * mounted under a running process; `berth rm` removes it with its container.
 * The snapshotter itself refuses a snapshot with children (Conflict).
 *
 * Errors: NotFound, Conflict (children), FailedPrecondition (held by a container).
 */
export async function removeUnheld(ctx: Ctx, sn: Snapshotter, key: string): Promise<void> {
  const info = await sn.stat(ctx, key);
  const holder = info.labels[CONTAINER_LABEL];
  if (holder) throw berthError('FailedPrecondition', `snapshot "${key}": in use by container ${holder}: remove the container instead`);
  await sn.remove(ctx, key);
}
