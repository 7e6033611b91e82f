import type { Ctx } from '../../core/context.ts';
import { isNotFound, kindOf } from '../../core/errors.ts';
import type { CriDeps } from './types.ts';

/** The ids of a sandbox's containers (given its full id). */
async function containersOf(ctx: Ctx, deps: CriDeps, sandboxId: string): Promise<string[]> {
  return (await deps.containers.list(ctx)).filter((c) => c.record.config.pod?.sandboxId === sandboxId).map((c) => c.record.id);
}

/** The sandbox's full id, or undefined when there is no such sandbox. */
async function sandboxIdOf(ctx: Ctx, deps: CriDeps, ref: string): Promise<string | undefined> {
  if (!ref) return undefined;
  return deps.sandboxes.status(ctx, ref).then(
    (sb) => sb.id,
    (err) => {
      if (isNotFound(err)) return undefined;
      throw err;
    },
  );
}

/** Before a sandbox stops: its containers are killed (containerd stops them with no grace period). */
export async function stopSandboxContainers(ctx: Ctx, deps: CriDeps, ref: string): Promise<void> {
  const id = await sandboxIdOf(ctx, deps, ref);
  if (!id) return;
  await Promise.all(
    (await containersOf(ctx, deps, id)).map((cid) =>
      deps.containers.stop(ctx, cid, { timeoutSec: 0 }).catch((err) => {
        if (kindOf(err) !== 'NotModified' && !isNotFound(err)) throw err;
      }),
    ),
  );
}

/** Before a sandbox is removed: its containers go, running or not. */
export async function removeSandboxContainers(ctx: Ctx, deps: CriDeps, ref: string): Promise<void> {
  const id = await sandboxIdOf(ctx, deps, ref);
  if (!id) return;
  await Promise.all(
    (await containersOf(ctx, deps, id)).map((cid) =>
      deps.containers.remove(ctx, cid, { force: true }).catch((err) => {
        if (!isNotFound(err)) throw err;
      }),
    ),
  );
}
