import { berthError } from '../../core/errors.ts';
import { resourcesOf } from './container-config.ts';
import { criContainer } from './container-lookup.ts';
import type { CriLinuxContainerResources } from './container-types.ts';
import type { UnaryHandler } from './types.ts';

/**
 * UpdateContainerResources: the new limits are recorded, and applied to the
 * cgroups at once when the container runs (runc update). oom_score_adj is
 * recorded for the next start only: the runtime cannot change it live.
 */
export const updateContainerResources: UnaryHandler<{ container_id?: string; linux?: CriLinuxContainerResources }, object> = async (ctx, req, deps) => {
  const c = await criContainer(ctx, deps, req.container_id);
  if (!req.linux) throw berthError('InvalidArgument', 'UpdateContainerResources needs linux resources');
  const { resources } = resourcesOf(req.linux);
  await deps.containers.update(ctx, c.record.id, { resources: resources ?? {} });
  return {};
};
