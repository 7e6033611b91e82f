import type { UnaryHandler } from './types.ts';
import { resources, type CriLinuxResources } from './sandbox-run.ts';

/**
 * UpdatePodSandboxResources: kubelet's word that a pod was resized in
 * place. The new overhead and resources are kept on the sandbox (a verbose
 * PodSandboxStatus shows them); kubelet resizes the pod's cgroup itself,
 * and the pause process has no limits of its own to change. An unknown
 * sandbox is NOT_FOUND.
 */
export const updatePodSandboxResources: UnaryHandler<{ pod_sandbox_id?: string; overhead?: CriLinuxResources | null; resources?: CriLinuxResources | null }, object> = async (
  ctx,
  req,
  deps,
) => {
  await deps.sandboxes.updateResources(ctx, req.pod_sandbox_id ?? '', {
    overhead: resources('overhead', req.overhead ?? undefined),
    resources: resources('resources', req.resources ?? undefined),
  });
  return {};
};
