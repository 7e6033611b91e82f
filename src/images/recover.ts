import type { Ctx } from '../core/context.ts';
import type { Snapshotter } from '../snapshots/types.ts';

/** Keys of the snapshots pull, load, import and commit unpack into before they commit them (see pull.ts, import.ts, commit.ts). */
const OPERATION_KEY = /^(extract|import|commit)-[0-9a-f]{12}(-|$)/;

/**
 * At start, remove the active snapshots that image operations of an
 * earlier daemon life were unpacking into: nothing will ever commit them,
 * and GC spares active snapshots for a grace period (a container's are
 * active too). Each is removed on its own; one that cannot be is logged and
 * left for GC. Resolves to how many went.
 */
export async function removeInterruptedUnpacks(ctx: Ctx, sn: Snapshotter): Promise<number> {
  const keys: string[] = [];
  await sn.walk(ctx, (info) => {
    if (info.kind === 'active' && OPERATION_KEY.test(info.name)) keys.push(info.name);
  });
  let removed = 0;
  for (const key of keys) {
    try {
      await sn.remove(ctx, key);
      removed++;
    } catch (err) {
      ctx.log.warn('cannot remove the snapshot of an interrupted unpack', { key, err });
    }
  }
  return removed;
}
