import type { HealthcheckConfig } from './images.ts';
/**
 * The container model shared by the runtime service, every front door and the
 * CLI (which may import only core/ and the native client).
 * `ContainerConfig` is what a create request carries (the CLI's flags, the
 * Docker API's Config+HostConfig and the CRI's ContainerConfig all translate
 * to it); `ContainerRecord` is what metadata stores; `ContainerState` is
 * what the monitor and the OCI runtime report.
 */
export interface ContainerConfig {
  /** Image reference as the user gave it; resolved to `imageId` at create. */
  image: string;
  name?: string;
  /** Overrides the image's Entrypoint; `[]` clears it. */
  entrypoint?: string[];
  /** Overrides the image's Cmd. */
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  /** "user", "uid", "user:group" or "uid:gid", resolved in the image's /etc/passwd and /etc/group. */
  user?: string;
  groupAdd?: string[];
  hostname?: string;
  domainname?: string;
  tty?: boolean;
  /** The terminal's size at creation, with `tty` (docker's HostConfig.ConsoleSize). */
  consoleSize?: { height: number; width: number };
  openStdin?: boolean;
  /** Close stdin after the first attach disconnects (docker's StdinOnce). */
  stdinOnce?: boolean;
  labels?: Record<string, string>;
  stopSignal?: string;
  /** Seconds between the stop signal and SIGKILL (default 10). */
  stopTimeout?: number;
  init?: boolean;
  readOnlyRootfs?: boolean;
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  /** "unconfined", a JSON profile (its content, as the CLIs send it; a CRI Localhost profile is a path on the node), or undefined for the default profile. */
  seccompProfile?: string;
  noNewPrivileges?: boolean;
  mounts?: MountSpec[];
  tmpfs?: Record<string, string>;
  shmSize?: number;
  resources?: Resources;
  ulimits?: Ulimit[];
  restartPolicy?: RestartPolicy;
  autoRemove?: boolean;
  network?: NetworkAttachment;
  /** Pod/CRI and `--network container:X` style sharing: join another container's namespaces. */
  sharedNamespaces?: { network?: string; ipc?: string; pid?: string; uts?: string };
  /**
   * docker's --pid, --ipc and --uts: "host" shares the host's namespace,
   * "container:<id>" joins that running container's; unset means its own.
   */
  pidMode?: string;
  ipcMode?: string;
  utsMode?: string;
  /** --sysctl: namespaced kernel parameters (net.*, the IPC ones). */
  sysctls?: Record<string, string>;
  /** --device: host device nodes made inside the container and allowed by its device cgroup. */
  devices?: DeviceMapping[];
  /** --expose: ports ("80/tcp") exposed beyond the image's, for -P. */
  exposedPorts?: string[];
  /** --volumes-from: "CONTAINER[:ro|:rw]"; its mounts are copied at create (the user's own mounts win). */
  volumesFrom?: string[];
  /** --health-*: overrides the image's HEALTHCHECK field by field; Test ["NONE"] disables it. */
  healthcheck?: HealthcheckConfig;
  /** "json-file" (docker's, default) or "cri" (Kubernetes' CRI log format). */
  logDriver?: 'json-file' | 'cri';
  logPath?: string;
  logOpts?: { maxSize?: number; maxFiles?: number };
  /** Extra OCI annotations. */
  annotations?: Record<string, string>;
  /** Name of the OCI runtime (config [runtime.runtimes]); default runc. */
  runtime?: string;
  /** Replace the default masked paths (the CRI's masked_paths; an empty list masks nothing). */
  maskedPaths?: string[];
  /** Replace the default read-only paths (the CRI's readonly_paths). */
  readonlyPaths?: string[];
  /** The container's oom_score_adj; never set below berthd's own (lowering it needs CAP_SYS_RESOURCE). */
  oomScoreAdj?: number;
  /** cgroupfs parent of the container's cgroup (a CRI pod's cgroup_parent); the runtime's own parent otherwise. */
  cgroupParent?: string;
  /** A CRI pod's container: the sandbox it joins. */
  pod?: PodMembership;
}

/**
 * What a pod's container joins of its sandbox, handed in by the CRI door
 * (the container service knows nothing of sandboxes). The network is the
 * sandbox's network endpoint (netns, hosts, resolv.conf and hostname
 * files), as `--network container:<sandbox id>`; ipc and uts are the pause
 * process's namespaces unless the node's; pid per `pid`.
 */
export interface PodMembership {
  sandboxId: string;
  /** Host pid of the sandbox's pause process when the container was created. */
  pausePid: number;
  /** The node's network (and uts) namespace rather than the pod's. */
  hostNetwork: boolean;
  /** 'pod': the pause process's; 'node': the host's; 'container': its own; 'target': `targetPid`'s. */
  pid: 'pod' | 'node' | 'container' | 'target';
  ipc: 'pod' | 'node';
  /** Host pid of the target container's process, with pid 'target'. */
  targetPid?: number;
  /** The CRI's container metadata. */
  name: string;
  attempt: number;
}

export interface DeviceMapping {
  pathOnHost: string;
  pathInContainer: string;
  /** Cgroup access: any of r, w, m. */
  permissions: string;
}

export interface MountSpec {
  type: 'bind' | 'volume' | 'tmpfs';
  /** Host path for bind, volume name for volume (empty = anonymous). */
  source?: string;
  target: string;
  readOnly?: boolean;
  /** bind propagation, tmpfs size/mode, etc. as OCI mount options. */
  options?: string[];
}

export interface Resources {
  memory?: number;
  memorySwap?: number;
  /** CPUs in billionths of a CPU, as docker's NanoCpus (`--cpus 1.5` is 1500000000). */
  nanoCpus?: number;
  cpuShares?: number;
  cpuQuota?: number;
  cpuPeriod?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: number;
  /** Huge page limits in bytes by page size ("2MB", "1GB"). */
  hugepageLimits?: Array<{ pageSize: string; limit: number }>;
}

export interface Ulimit {
  name: string;
  soft: number;
  hard: number;
}

export interface RestartPolicy {
  name: 'no' | 'always' | 'on-failure' | 'unless-stopped';
  maximumRetryCount?: number;
}

export interface NetworkAttachment {
  /** "none", "host", "bridge", a network name, or "container:NAME". */
  mode: string;
  aliases?: string[];
  ports?: PortMapping[];
  publishAll?: boolean;
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  extraHosts?: string[];
  macAddress?: string;
  ipAddress?: string;
  /** Networks joined by `network connect` (eth1, ...), rejoined at every start. */
  extraNetworks?: Array<{ network: string; aliases?: string[]; ipAddress?: string }>;
}

export interface PortMapping {
  hostIp?: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export interface ContainerState {
  status: ContainerStatus;
  pid?: number;
  exitCode?: number;
  /** Set when the container was killed by a signal or failed to start. */
  error?: string;
  oomKilled?: boolean;
  startedAt?: string;
  finishedAt?: string;
  restartCount: number;
}

export interface ContainerRecord {
  id: string;
  namespace: string;
  name: string;
  config: ContainerConfig;
  /** The resolved image: its config digest (docker's image id) and the name used. */
  imageId: string;
  imageName: string;
  snapshotter: string;
  /** Snapshot key of the writable rootfs (usually the container id). */
  snapshotKey: string;
  createdAt: string;
  labels: Record<string, string>;
  /** Free-form per-subsystem data (network attachment results, CRI sandbox id, ...). */
  extensions: Record<string, unknown>;
}

/** One row of a container listing (`ps`), docker's shape; the CLI reads it as the API sends it. */
export interface ContainerListItem {
  Id: string;
  Names: string[];
  Image: string;
  ImageID: string;
  Command: string;
  Created: number;
  Ports: Array<{ IP?: string; PrivatePort: number; PublicPort?: number; Type: string }>;
  Labels: Record<string, string>;
  State: string;
  Status: string;
  Mounts: Array<{ Type: string; Name?: string; Source: string; Destination: string; RW: boolean }>;
  HostConfig: { NetworkMode: string };
  NetworkSettings: { Networks: Record<string, unknown> };
  Namespace: string;
}
