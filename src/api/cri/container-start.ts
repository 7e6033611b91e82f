import { berthError } from '../../core/errors.ts';
import { criContainer } from './container-lookup.ts';
import { criContainerState } from './container-view.ts';
import type { UnaryHandler } from './types.ts';

/**
 * StartContainer: only a created container starts (the CRI never
 * restarts one: kubelet makes a new attempt), and only while its sandbox's
 * pause process is the one it joined at create (FAILED_PRECONDITION
 * otherwise, as containerd's "sandbox container is not running").
 */
export const startContainer: UnaryHandler<{ container_id?: string }, object> = async (ctx, req, deps) => {
  const c = await criContainer(ctx, deps, req.container_id);
  const state = criContainerState(c);
  if (state !== 'CONTAINER_CREATED') throw berthError('FailedPrecondition', `container "${c.record.id}" is in ${state} state: only a created container can be started`);
  const pod = c.record.config.pod!;
  const sb = await deps.sandboxes.status(ctx, pod.sandboxId).catch(() => undefined);
  if (!sb || sb.state !== 'ready' || sb.pausePid !== pod.pausePid) throw berthError('FailedPrecondition', `pod sandbox "${pod.sandboxId}" of container "${c.record.id}" is not running`);
  await deps.containers.start(ctx, c.record.id);
  return {};
};
