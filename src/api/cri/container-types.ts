import type { CriNamespaceMode } from './sandbox-view.ts';
import type { ImageSpec } from './types.ts';

/**
 * The CRI container messages this door reads, as @grpc/proto-loader hands
 * them over (`keepCase`, enums by name, 64-bit integers as strings,
 * wrappers such as Int64Value as `{ value }`).
 */
export interface CriKeyValue {
  key?: string;
  value?: string;
}

export type CriMountPropagation = 'PROPAGATION_PRIVATE' | 'PROPAGATION_HOST_TO_CONTAINER' | 'PROPAGATION_BIDIRECTIONAL';

export interface CriMount {
  container_path?: string;
  host_path?: string;
  readonly?: boolean;
  selinux_relabel?: boolean;
  propagation?: CriMountPropagation;
}

export interface CriDevice {
  container_path?: string;
  host_path?: string;
  permissions?: string;
}

export interface CriLinuxContainerResources {
  cpu_period?: string;
  cpu_quota?: string;
  cpu_shares?: string;
  memory_limit_in_bytes?: string;
  oom_score_adj?: string;
  cpuset_cpus?: string;
  cpuset_mems?: string;
  hugepage_limits?: Array<{ page_size?: string; limit?: string }>;
  unified?: Record<string, string>;
  memory_swap_limit_in_bytes?: string;
}

export interface CriSecurityProfile {
  profile_type?: 'RuntimeDefault' | 'Unconfined' | 'Localhost';
  localhost_ref?: string;
}

export interface CriLinuxContainerSecurityContext {
  capabilities?: { add_capabilities?: string[]; drop_capabilities?: string[]; add_ambient_capabilities?: string[] };
  privileged?: boolean;
  namespace_options?: { network?: CriNamespaceMode; pid?: CriNamespaceMode; ipc?: CriNamespaceMode; target_id?: string };
  run_as_user?: { value: string };
  run_as_username?: string;
  readonly_rootfs?: boolean;
  supplemental_groups?: string[];
  apparmor_profile?: string;
  seccomp_profile_path?: string;
  no_new_privs?: boolean;
  run_as_group?: { value: string };
  masked_paths?: string[];
  readonly_paths?: string[];
  seccomp?: CriSecurityProfile;
  apparmor?: CriSecurityProfile;
}

export interface CriContainerConfig {
  metadata?: { name?: string; attempt?: number };
  image?: ImageSpec;
  command?: string[];
  args?: string[];
  working_dir?: string;
  envs?: CriKeyValue[];
  mounts?: CriMount[];
  devices?: CriDevice[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  log_path?: string;
  stdin?: boolean;
  stdin_once?: boolean;
  tty?: boolean;
  linux?: { resources?: CriLinuxContainerResources; security_context?: CriLinuxContainerSecurityContext };
  /** A Signal enum name; RUNTIME_DEFAULT leaves the image's. */
  stop_signal?: string;
}

/** The part of the PodSandboxConfig kubelet sends along with CreateContainer that a container takes. */
export interface CriSandboxConfigPart {
  metadata?: { name?: string; uid?: string; namespace?: string; attempt?: number };
  log_directory?: string;
  linux?: { cgroup_parent?: string };
}

export type CriContainerState = 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';
