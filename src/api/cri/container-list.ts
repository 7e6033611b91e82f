import type { CriContainerState } from './container-types.ts';
import { criContainerState, isCriContainer, toCriContainer } from './container-view.ts';
import type { UnaryHandler } from './types.ts';

export interface ListContainersRequest {
  filter?: { id?: string; state?: { state?: CriContainerState }; pod_sandbox_id?: string; label_selector?: Record<string, string> };
}

/**
 * ListContainers: the pods' containers in `k8s.io` (containers berth's
 * other doors made there are not a pod's and are left out). The filter's
 * id and pod_sandbox_id match as ids or id prefixes, its state and
 * label_selector exactly; all given criteria must hold.
 */
export const listContainers: UnaryHandler<ListContainersRequest, object> = async (ctx, req, deps) => {
  const f = req.filter ?? {};
  const out = [];
  for (const c of await deps.containers.list(ctx)) {
    if (!isCriContainer(c)) continue;
    if (f.id && !c.record.id.startsWith(f.id)) continue;
    if (f.pod_sandbox_id && !c.record.config.pod!.sandboxId.startsWith(f.pod_sandbox_id)) continue;
    if (f.state && criContainerState(c) !== (f.state.state ?? 'CONTAINER_CREATED')) continue;
    const labels = c.record.config.labels ?? {};
    if (f.label_selector && !Object.entries(f.label_selector).every(([k, v]) => labels[k] === v)) continue;
    out.push(toCriContainer(c));
  }
  return { containers: out };
};
