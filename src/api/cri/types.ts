import type { Ctx } from '../../core/context.ts';
import type { Logger } from '../../core/log.ts';
import type { ImageService } from '../../images/service.ts';
import type { EventBus } from '../../core/events.ts';
import type { ContainerService } from '../../runtime/containers/containers.ts';
import type { SandboxService } from '../../runtime/sandboxes/sandbox-types.ts';
import type { StreamRequest } from './streaming/server.ts';

/**
 * The CRI messages this front door reads and writes, as @grpc/proto-loader
 * hands them over with `keepCase` (field names as in api.proto). 64-bit
 * integers go out as decimal strings, so nanosecond timestamps keep their
 * precision.
 */
export interface ImageSpec {
  image?: string;
  annotations?: Record<string, string>;
}

export interface CriImage {
  id: string;
  repo_tags: string[];
  repo_digests: string[];
  size: string;
  uid?: { value: string };
  username: string;
  pinned: boolean;
}

export interface AuthConfig {
  username?: string;
  password?: string;
  auth?: string;
  server_address?: string;
  identity_token?: string;
  registry_token?: string;
}

export interface Readiness {
  ready: boolean;
  /** CamelCase, for a condition that is not ready. */
  reason?: string;
  message?: string;
}

/**
 * What the CRI front door needs from the engine. daemon/cri-wiring.ts
 * supplies it; every image call runs in the `k8s.io` namespace.
 */
export interface CriDeps {
  images: ImageService;
  sandboxes: SandboxService;
  /** The engine's one container service: a CRI container is a berth container in `k8s.io` with a pod. */
  containers: ContainerService;
  /** The engine's event bus, for GetContainerEvents. */
  events: EventBus;
  /** Hands out the streaming server's single-use URLs (absent: Exec, Attach and PortForward are UNAVAILABLE). */
  streaming?: { url(req: StreamRequest): string };
  /** berth's version, reported as runtime_version. */
  version: string;
  /** Whether containers can run (the OCI runtime and monitor are there) and be networked (the CNI plugins are). */
  readiness(ctx: Ctx): Promise<{ runtime: Readiness; network: Readiness }>;
  /** The snapshotter's root: the file system of containers' writable layers. */
  snapshotRoot: string;
  /** Use of the file system holding the image store's snapshots. */
  imageFsUsage(ctx: Ctx): Promise<{ mountpoint: string; usedBytes: number; inodesUsed: number }>;
  /** What kubelet told the runtime with UpdateRuntimeConfig; lives as long as the CRI server, as in containerd. */
  runtimeState: CriRuntimeState;
  log: Logger;
  /** Aborts every call in flight when berthd stops. */
  shutdown: AbortSignal;
  /**
   * The end of the engine's recovery at start: every call but Version waits
   * for it, and answers its error (Unavailable) if recovery failed. Absent:
   * the engine is there.
   */
  ready?: Promise<void>;
}

export interface CriRuntimeState {
  /** The node's pod CIDRs, empty until kubelet sends them. */
  podCidrs: string[];
}

/** One unary RPC: validate the request, call the services, convert the answer. */
export type UnaryHandler<Req, Res> = (ctx: Ctx, req: Req, deps: CriDeps) => Promise<Res>;
