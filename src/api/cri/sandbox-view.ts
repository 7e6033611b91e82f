import { berthError } from '../../core/errors.ts';
import type { SandboxInfo, SandboxNamespaceMode, SandboxState } from '../../runtime/sandboxes/sandbox-types.ts';

/** The CRI's NamespaceMode names (enums travel as their names) and berth's. */
export type CriNamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';
export type CriSandboxState = 'SANDBOX_READY' | 'SANDBOX_NOTREADY';

export function namespaceMode(field: string, mode: CriNamespaceMode | undefined): SandboxNamespaceMode {
  if (mode === 'TARGET') throw berthError('InvalidArgument', `pod sandbox: namespace mode TARGET is for containers, not for the ${field} namespace of a sandbox`);
  return mode === 'NODE' ? 'node' : mode === 'CONTAINER' ? 'container' : 'pod';
}

function criMode(mode: SandboxNamespaceMode): CriNamespaceMode {
  return mode === 'node' ? 'NODE' : mode === 'container' ? 'CONTAINER' : 'POD';
}

export function criState(state: SandboxState): CriSandboxState {
  return state === 'ready' ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY';
}

export function sandboxState(state: CriSandboxState | undefined): SandboxState {
  return state === 'SANDBOX_NOTREADY' ? 'notready' : 'ready';
}

function metadata(sb: SandboxInfo) {
  return { name: sb.name, uid: sb.uid, namespace: sb.podNamespace, attempt: sb.attempt };
}

/** ListPodSandbox's PodSandbox. */
export function toCriSandbox(sb: SandboxInfo) {
  return { id: sb.id, metadata: metadata(sb), state: criState(sb.state), created_at: sb.createdAtNs, labels: sb.labels, annotations: sb.annotations, runtime_handler: '' };
}

/** PodSandboxStatus's status; the namespace options are the ones the sandbox was run with. */
export function toCriSandboxStatus(sb: SandboxInfo) {
  const ns = sb.namespaces;
  return {
    id: sb.id,
    metadata: metadata(sb),
    state: criState(sb.state),
    created_at: sb.createdAtNs,
    network: { ip: sb.ip, additional_ips: [] },
    linux: { namespaces: { options: { network: criMode(ns.network), pid: criMode(ns.pid), ipc: criMode(ns.ipc), target_id: '' } } },
    labels: sb.labels,
    annotations: sb.annotations,
    runtime_handler: '',
  };
}
