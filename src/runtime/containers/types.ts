import type { Readable } from 'node:stream';
import type { ContainerRecord, ContainerState } from '../../core/containers.ts';
import type { Ctx } from '../../core/context.ts';
import type { EventBus } from '../../core/events.ts';
import type { Logger } from '../../core/log.ts';
import type { ContainerStore } from '../../metadata/containers.ts';
import type { NetworkService, SetupResult } from '../../network/types.ts';
import type { Mount as SnapshotMount, Snapshotter } from '../../snapshots/types.ts';
import type { ImageConfig } from '../oci/oci-types.ts';
import type { HostFacts } from '../oci/spec.ts';
import type { TaskService } from '../tasks/task-types.ts';
import type { VolumeService } from '../volumes/volumes.ts';

// The container service's types, below the service and its parts: what the
// service is given (its deps and their roles), the state it keeps per
// container, and what it hands its parts. The parts import these, never the
// service that calls them.

/**
 * What the container service hands each of its parts (create, start, exit
 * handling, stop and removal, recovery, files, execs): its records, their
 * state and its events, as functions. A part asks for the ones it needs.
 */
export interface ContainerBasics {
  resolve(ctx: Ctx, idOrName: string): Promise<ContainerRecord>;
  /** The record and its state as shown (inspect). */
  get(ctx: Ctx, idOrName: string): Promise<ContainerSummary>;
  list(ctx: Ctx): Promise<ContainerSummary[]>;
  state(ctx: Ctx, id: string): Promise<RuntimeState>;
  patch(ctx: Ctx, id: string, patch: Partial<RuntimeState> | ((st: RuntimeState) => Partial<RuntimeState>)): Promise<RuntimeState>;
  locked<T>(id: string, fn: () => Promise<T>): Promise<T>;
  event(ctx: Ctx, action: string, id: string, attributes: Record<string, string>): void;
  bundleDir(rec: ContainerRecord): string;
  logPath(rec: ContainerRecord): string;
}

export interface ImageLookup {
  /** The local image for a reference or id: NotFound when it is not present. */
  find(ctx: Ctx, ref: string): Promise<{ id: string; name: string; config: { config?: ImageConfig; rootfs: { diff_ids: string[] } }; chainId?: string; /** Unpacked bytes of its layers. */ size?: number }>;
  /** A new image of `parent`'s layers and `layer` (an uncompressed tar); resolves to its ID. */
  commitLayer?(ctx: Ctx, opts: { parent: string; layer: Readable; config: ImageConfig; name?: string; author?: string; comment?: string; createdBy: string; changes?: string[]; history?: HistoryEntry[]; created?: string; compression?: 'gzip' | 'zstd'; compressionLevel?: number; snapshotKey?: string }): Promise<string>;
}

/** One entry of an image's history, as the OCI image config has it. */
export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface Mounter {
  mountAll(mounts: SnapshotMount[], target: string): Promise<void>;
  unmountAll(target: string): Promise<void>;
}

export interface ContainerServiceDeps {
  store: ContainerStore;
  images: ImageLookup;
  snapshotter: Snapshotter;
  mounter: Mounter;
  tasks: TaskService;
  network: NetworkService;
  volumes: VolumeService;
  events: EventBus;
  log: Logger;
  /** <state>/containers: bundles (config.json, rootfs mount point). */
  stateDir: string;
  /** <root>/containers: logs and anything that must survive a reboot. */
  rootDir: string;
  /** Host facts for every spec: hard rlimits, init binary, capabilities. */
  host: Pick<HostFacts, 'rlimitHard' | 'initPath' | 'capabilities' | 'oomScoreAdj' | 'hugetlb' | 'x32'>;
  /** Default runtime name and cgroup parent. */
  defaultRuntime: string;
  cgroupParent: string;
  logDefaults: { maxSize?: number; maxFiles?: number };
  /** Tasks of a namespace that belong to something else (pod sandboxes' pause processes): recovery leaves them alone. */
  ownsTask?: (namespace: string, id: string) => boolean;
}

export interface RuntimeState extends ContainerState {
  manuallyStopped?: boolean;
  /** A task exists (created by `attach` before `start`) but has not been started. */
  taskCreated?: boolean;
  /** Host ports and addresses of the last start, for inspect. */
  network?: SetupResult;
  /** Exec sessions: id -> what inspect needs. */
  execs?: Record<string, { config: ExecConfig; running: boolean; exitCode?: number; pid?: number }>;
  /** Anonymous volumes this container created, removed with `rm -v`. */
  anonymousVolumes?: string[];
  /** Last restart back-off, in ms. */
  restartDelayMs?: number;
}

export interface ExecConfig {
  cmd: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
  tty?: boolean;
  /** The terminal's size at the start, with `tty`: a resize after it races the program's first look. */
  consoleSize?: { height: number; width: number };
  attachStdin?: boolean;
  /**
   * Close the command's stdin once the client that sent input ends its side
   * of the attach stream, after that input is written (the CRI's exec: a
   * separate close-stdin could overtake the last input).
   */
  stdinOnce?: boolean;
  privileged?: boolean;
}

export interface ContainerSummary {
  record: ContainerRecord;
  state: RuntimeState;
}
