import { berthError } from '../../core/errors.ts';
import type { UnaryHandler } from './types.ts';
import { namespaceMode, type CriNamespaceMode } from './sandbox-view.ts';

/** The RunPodSandboxRequest fields berth reads. */
export interface RunPodSandboxRequest {
  config?: {
    metadata?: { name?: string; uid?: string; namespace?: string; attempt?: number };
    hostname?: string;
    dns_config?: { servers?: string[]; searches?: string[]; options?: string[] };
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    linux?: {
      cgroup_parent?: string;
      security_context?: {
        namespace_options?: { network?: CriNamespaceMode; pid?: CriNamespaceMode; ipc?: CriNamespaceMode };
        run_as_user?: { value: string };
        run_as_group?: { value: string };
      };
    };
  };
  runtime_handler?: string;
}

/**
 * RunPodSandbox: the pod's network namespace on the CRI network and its
 * pause process, ready when this answers. A second sandbox for the same
 * pod metadata is ALREADY_EXISTS, as containerd reserves the name.
 */
export const runPodSandbox: UnaryHandler<RunPodSandboxRequest, object> = async (ctx, req, deps) => {
  const cfg = req.config;
  if (!cfg?.metadata) throw berthError('InvalidArgument', 'pod sandbox config must include metadata');
  // Runtime classes are not configurable yet: only the default handler exists, and kubelet must hear of any other.
  if (req.runtime_handler) throw berthError('InvalidArgument', `no runtime for "${req.runtime_handler}" is configured`);
  const sc = cfg.linux?.security_context;
  const nso = sc?.namespace_options;
  const sb = await deps.sandboxes.run(ctx, {
    name: cfg.metadata.name ?? '',
    uid: cfg.metadata.uid ?? '',
    podNamespace: cfg.metadata.namespace ?? '',
    attempt: cfg.metadata.attempt ?? 0,
    hostname: cfg.hostname,
    labels: cfg.labels,
    annotations: cfg.annotations,
    namespaces: { network: namespaceMode('network', nso?.network), pid: namespaceMode('pid', nso?.pid), ipc: namespaceMode('ipc', nso?.ipc) },
    dns: cfg.dns_config,
    cgroupParent: cfg.linux?.cgroup_parent || undefined,
    runAsUser: sc?.run_as_user ? Number(sc.run_as_user.value) : undefined,
    runAsGroup: sc?.run_as_group ? Number(sc.run_as_group.value) : undefined,
  });
  return { pod_sandbox_id: sb.id };
};
