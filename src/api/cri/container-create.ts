import { berthError, isNotFound } from '../../core/errors.ts';
import { toContainerConfig } from './container-config.ts';
import type { CriContainerConfig, CriSandboxConfigPart } from './container-types.ts';
import type { UnaryHandler } from './types.ts';

export interface CreateContainerRequest {
  pod_sandbox_id?: string;
  config?: CriContainerConfig;
  sandbox_config?: CriSandboxConfigPart & { linux?: { cgroup_parent?: string; security_context?: { privileged?: boolean } } };
}

/**
 * CreateContainer: a berth container in `k8s.io` that joins its sandbox
 * (see container-config.ts for the rules), made by the container service
 * as any other: `berth -n k8s.io ps -a` lists it. The sandbox must be ready
 * (FAILED_PRECONDITION otherwise, NOT_FOUND when unknown); a config without
 * metadata is INVALID_ARGUMENT; a missing image NOT_FOUND. A refused create
 * leaves no record nor snapshot.
 */
export const createContainer: UnaryHandler<CreateContainerRequest, object> = async (ctx, req, deps) => {
  if (!req.config?.metadata) throw berthError('InvalidArgument', 'container config must include metadata');
  if (!req.pod_sandbox_id) throw berthError('InvalidArgument', 'pod_sandbox_id must not be empty');
  const sb = await deps.sandboxes.status(ctx, req.pod_sandbox_id);
  if (sb.state !== 'ready' || !sb.pausePid) throw berthError('FailedPrecondition', `pod sandbox "${sb.id}" is not ready: a container can be created only in a ready sandbox`);
  const nso = req.config.linux?.security_context?.namespace_options;
  let targetPid: number | undefined;
  if (nso?.pid === 'TARGET') {
    const target = await deps.containers.get(ctx, nso.target_id ?? '').catch((err) => {
      if (isNotFound(err)) throw berthError('NotFound', `target container "${nso.target_id ?? ''}" of the pid namespace not found`, err);
      throw err;
    });
    // containerd's rule (validateTargetContainer): the target shares the pod and runs.
    if (target.record.config.pod?.sandboxId !== sb.id) throw berthError('InvalidArgument', `target container "${nso.target_id}" of the pid namespace does not belong to pod sandbox "${sb.id}"`);
    if (target.state.status !== 'running' || !target.state.pid) throw berthError('FailedPrecondition', `target container "${nso.target_id}" of the pid namespace is not running`);
    targetPid = target.state.pid;
  }
  const config = toContainerConfig(req.config, sb, req.sandbox_config ?? {}, targetPid);
  const { id } = await deps.containers.create(ctx, config);
  return { container_id: id };
};
