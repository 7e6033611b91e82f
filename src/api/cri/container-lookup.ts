import type { Ctx } from '../../core/context.ts';
import { berthError, isNotFound } from '../../core/errors.ts';
import type { ContainerSummary } from '../../runtime/containers/containers.ts';
import type { CriDeps } from './types.ts';

/** A CRI container by id or unique id prefix; NOT_FOUND naming it when there is none (or it is not a pod's). */
export async function criContainer(ctx: Ctx, deps: CriDeps, id: string | undefined): Promise<ContainerSummary> {
  if (!id) throw berthError('InvalidArgument', 'container_id must not be empty');
  const c = await deps.containers.get(ctx, id).catch((err) => {
    if (isNotFound(err)) throw berthError('NotFound', `container "${id}" not found`, err);
    throw err;
  });
  if (!c.record.config.pod) throw berthError('NotFound', `container "${id}" not found: it is not a pod's container`);
  return c;
}
