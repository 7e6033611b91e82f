import type { Ctx } from '../../core/context.ts';
import type { PortMapping } from '../../core/containers.ts';
import type { SandboxNamespaceMode, SandboxRecord, SandboxResources, SandboxState } from '../../metadata/sandboxes.ts';

export type { SandboxNamespaceMode, SandboxRecord, SandboxResources, SandboxState } from '../../metadata/sandboxes.ts';

/**
 * Pod sandboxes: the shared part of a Kubernetes pod, as containerd's CRI
 * plugin makes it. A sandbox is a record (in ctx.namespace, `k8s.io` for
 * the CRI), a network namespace attached to a berth network through the
 * network service, and a pause process (native/pause.c) that holds the
 * pod's ipc, uts and (unless the node's is shared) pid namespaces under a
 * berth-monitor, as any task is. The pause process runs on a small
 * read-only rootfs that holds only the pause binary; there is no image.
 *
 * Lifecycle: run -> ready -> stop -> notready -> remove. A sandbox whose
 * pause process died (or vanished over a host reboot) is notready too; it
 * is found so when listed, and at daemon start by `recover`.
 *
 * Later, a pod's containers join its namespaces: `/proc/<pid>/ns/{ipc,uts,pid}`
 * from `pausePid`, and `netnsPath` for the network.
 *
 * Errors: InvalidArgument (metadata without name, uid or namespace; an
 * unsupported namespace mode; a sysctl that is not the pod's own, as runc
 * refuses it; a relative log directory or cgroup parent; a Localhost
 * seccomp profile that is missing or malformed), Conflict (a host port
 * already taken), AlreadyExists (a sandbox for the same pod
 * name, uid, namespace and attempt), NotFound (unknown id; `stop` and
 * `remove` throw it too, and the CRI door answers OK for it as containerd
 * does), the network service's and the runtime's errors from `run`, after
 * which nothing of the sandbox remains.
 *
 * Example:
 *   const sb = await sandboxes.run(ctx, { name: 'web', uid: 'u1', podNamespace: 'default', attempt: 0, hostname: 'web' });
 *   // sb.state === 'ready', sb.ip on the network's subnet
 *   await sandboxes.stop(ctx, sb.id);     // the pause process and the network are gone
 *   await sandboxes.remove(ctx, sb.id);
 */
export interface SandboxService {
  run(ctx: Ctx, req: RunSandboxRequest): Promise<SandboxInfo>;
  /** Kill the pause process and tear down the network; a notready sandbox is left as it is. */
  stop(ctx: Ctx, id: string): Promise<void>;
  /** Stop if needed, then drop the record and the bundle. */
  remove(ctx: Ctx, id: string): Promise<void>;
  /** By id or unique id prefix. */
  status(ctx: Ctx, id: string): Promise<SandboxInfo>;
  /**
   * Record the pod's new declared overhead and resources (an in-place pod
   * resize); a field left out keeps its value. kubelet resizes the pod's
   * cgroup itself, so nothing else changes.
   */
  updateResources(ctx: Ctx, id: string, update: { overhead?: SandboxResources; resources?: SandboxResources }): Promise<SandboxInfo>;
  list(ctx: Ctx, filter?: SandboxFilter): Promise<SandboxInfo[]>;
  /**
   * At daemon start, for every namespace with sandboxes: a ready sandbox
   * whose pause process is gone becomes notready and gives back its task
   * and network. Returns the ids of the sandboxes still ready, whose
   * network state the network reconcile must keep.
   */
  recover(ctx: Ctx): Promise<string[]>;
  /** Whether the task `id` in `namespace` is a sandbox's pause process (not a container's). */
  ownsTask(namespace: string, id: string): boolean;
  /**
   * Follow sandboxes' lives, as containerd 1.7's CRI reports them on its
   * container event stream: `created` and `started` once a run is ready,
   * `stopped` when the pause process exits (a stop, or its death), `deleted`
   * once removed. `fn` is called synchronously and must not throw; the
   * returned function unsubscribes.
   */
  subscribe(fn: (e: SandboxEvent) => void): () => void;
}

export interface SandboxEvent {
  action: 'created' | 'started' | 'stopped' | 'deleted';
  id: string;
  namespace: string;
  /** Nanoseconds since the epoch, as a decimal string. */
  timeNano: string;
}

export interface RunSandboxRequest {
  name: string;
  uid: string;
  podNamespace: string;
  attempt?: number;
  /** Empty with the node's network: the node's hostname. */
  hostname?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Defaults: network and ipc `pod`, pid `container` (the pod's own pid namespace, not shared). */
  namespaces?: Partial<{ network: SandboxNamespaceMode; pid: SandboxNamespaceMode; ipc: SandboxNamespaceMode }>;
  dns?: { servers?: string[]; searches?: string[]; options?: string[] };
  /** cgroupfs-style parent (kubelet's pod cgroup); the service's own parent when absent. */
  cgroupParent?: string;
  runAsUser?: number;
  runAsGroup?: number;
  supplementalGroups?: number[];
  /** Host ports to publish (kubelet's hostPort mappings), through the network service as containers' -p. */
  ports?: PortMapping[];
  /** Namespaced sysctls (net.* with the pod's network, the IPC ones with its IPC namespace). */
  sysctls?: Record<string, string>;
  privileged?: boolean;
  /** The pause process's seccomp profile; absent: the default profile. */
  seccomp?: { type: 'runtime/default' } | { type: 'unconfined' } | { type: 'localhost'; path: string };
  /** Absolute; made if missing. The pod's container logs go under it. */
  logDirectory?: string;
  overhead?: SandboxResources;
  resources?: SandboxResources;
}

export interface SandboxInfo extends SandboxRecord {
  /** The pause process's host pid; 0 when not ready. */
  pausePid: number;
  /** The network namespace file; empty with the node's network or when not ready. */
  netnsPath: string;
}

/** Every given criterion must hold. */
export interface SandboxFilter {
  /** An id or id prefix. */
  id?: string;
  state?: SandboxState;
  /** Labels that must all be present with these values. */
  labels?: Record<string, string>;
}
