import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ContainerConfig, DeviceMapping, MountSpec, PodMembership, Resources } from '../../core/containers.ts';
import { berthError } from '../../core/errors.ts';
import type { SandboxInfo } from '../../runtime/sandboxes/sandbox-types.ts';
import type { CriContainerConfig, CriLinuxContainerResources, CriLinuxContainerSecurityContext, CriMount, CriSandboxConfigPart } from './container-types.ts';

/**
 * A CRI ContainerConfig as berth's ContainerConfig, by containerd's rules
 * (internal/cri/server/container_create_linux.go):
 * - command replaces the image's entrypoint and args its cmd; args alone
 *   keep the image's entrypoint; neither keeps both.
 * - the network is the sandbox's endpoint; uts is the pause process's (the
 *   node's with the node's network), ipc and pid per the namespace options
 *   (absent options mean POD).
 * - no seccomp field at all is unconfined (containerd's default without
 *   `unset_seccomp_profile`); RuntimeDefault is berth's default profile;
 *   Localhost a profile file on the node.
 * - a privileged container needs a privileged sandbox.
 * - the log goes to `<log_directory>/<log_path>` in the CRI format, never
 *   rotated by berth (kubelet rotates and asks for ReopenContainerLog).
 * Pure but for checking that host paths exist.
 */
export function toContainerConfig(
  cfg: CriContainerConfig,
  sandbox: SandboxInfo,
  sandboxConfig: CriSandboxConfigPart & { linux?: { security_context?: { privileged?: boolean } } },
  targetPid?: number,
): ContainerConfig {
  const meta = cfg.metadata;
  if (!meta?.name) throw berthError('InvalidArgument', 'container config must include metadata with a name');
  const image = cfg.image?.image ?? '';
  if (!image) throw berthError('InvalidArgument', 'container config must name an image (config.image.image)');
  const sc: CriLinuxContainerSecurityContext = cfg.linux?.security_context ?? {};
  const privileged = !!sc.privileged;
  if (privileged && !sandboxConfig.linux?.security_context?.privileged) {
    throw berthError('InvalidArgument', `container "${meta.name}": no privileged container allowed in a sandbox that is not privileged`);
  }
  const nso = sc.namespace_options ?? {};
  if (nso.pid === 'TARGET' && !targetPid) throw berthError('NotFound', `container "${meta.name}": target container "${nso.target_id ?? ''}" of the pid namespace is not running`);
  const pod: PodMembership = {
    sandboxId: sandbox.id,
    pausePid: sandbox.pausePid,
    hostNetwork: sandbox.namespaces.network === 'node',
    pid: nso.pid === 'NODE' ? 'node' : nso.pid === 'CONTAINER' ? 'container' : nso.pid === 'TARGET' ? 'target' : 'pod',
    ipc: nso.ipc === 'NODE' ? 'node' : 'pod',
    ...(nso.pid === 'TARGET' ? { targetPid } : {}),
    name: meta.name,
    attempt: meta.attempt ?? 0,
  };
  const command = cfg.command ?? [];
  const args = cfg.args ?? [];
  const logDir = sandboxConfig.log_directory ?? '';
  const logPath = logDir && cfg.log_path ? path.join(logDir, cfg.log_path) : undefined;
  // The monitor appends to this file as root: it stays inside the pod's log directory.
  if (logPath && path.relative(logDir, logPath).startsWith('..')) throw berthError('InvalidArgument', `log_path "${cfg.log_path}" leaves the sandbox's log_directory "${logDir}"`);
  const out: ContainerConfig = {
    image,
    name: containerName(meta.name, meta.attempt ?? 0, sandbox),
    ...(command.length ? { entrypoint: command, cmd: args } : args.length ? { cmd: args } : {}),
    env: (cfg.envs ?? []).map((e) => `${e.key ?? ''}=${e.value ?? ''}`),
    ...(cfg.working_dir ? { workingDir: cfg.working_dir } : {}),
    ...userOf(sc),
    tty: !!cfg.tty,
    openStdin: !!cfg.stdin,
    stdinOnce: !!cfg.stdin_once,
    labels: { ...cfg.labels },
    annotations: { ...cfg.annotations },
    readOnlyRootfs: !!sc.readonly_rootfs,
    privileged,
    ...(sc.capabilities?.add_capabilities?.length ? { capAdd: sc.capabilities.add_capabilities } : {}),
    ...(sc.capabilities?.drop_capabilities?.length ? { capDrop: sc.capabilities.drop_capabilities } : {}),
    noNewPrivileges: !!sc.no_new_privs,
    ...seccompOf(sc),
    ...(sc.masked_paths?.length ? { maskedPaths: sc.masked_paths } : {}),
    ...(sc.readonly_paths?.length ? { readonlyPaths: sc.readonly_paths } : {}),
    mounts: (cfg.mounts ?? []).map(mountOf),
    devices: (cfg.devices ?? []).map(deviceOf),
    ...resourcesOf(cfg.linux?.resources),
    ...(sandboxConfig.linux?.cgroup_parent ? { cgroupParent: sandboxConfig.linux.cgroup_parent } : {}),
    logDriver: 'cri',
    ...(logPath ? { logPath } : {}),
    logOpts: { maxSize: 0, maxFiles: 1 },
    restartPolicy: { name: 'no' },
    ...(cfg.stop_signal && cfg.stop_signal !== 'RUNTIME_DEFAULT' ? { stopSignal: cfg.stop_signal } : {}),
    pod,
  };
  return out;
}

/** containerd's and the kubelet's name for a pod's container: unique per pod and attempt, so a second create is ALREADY_EXISTS. */
export function containerName(name: string, attempt: number, sb: Pick<SandboxInfo, 'name' | 'podNamespace' | 'uid'>): string | undefined {
  const n = ['k8s', name, sb.name, sb.podNamespace, sb.uid, String(attempt)].join('_');
  // berth's names are [a-zA-Z0-9][a-zA-Z0-9_.-]*; Kubernetes' names fit, anything else gets a generated one.
  return /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(n) ? n : undefined;
}

function userOf(sc: CriLinuxContainerSecurityContext): Pick<ContainerConfig, 'user' | 'groupAdd'> {
  const group = sc.run_as_group ? sc.run_as_group.value : undefined;
  let user: string | undefined;
  if (sc.run_as_user) user = sc.run_as_user.value;
  else if (sc.run_as_username) user = sc.run_as_username;
  if (group !== undefined && user === undefined) throw berthError('InvalidArgument', 'security_context.run_as_group is set without run_as_user or run_as_username');
  return {
    ...(user !== undefined ? { user: group !== undefined ? `${user}:${group}` : user } : {}),
    ...(sc.supplemental_groups?.length ? { groupAdd: sc.supplemental_groups.map(String) } : {}),
  };
}

function seccompOf(sc: CriLinuxContainerSecurityContext): Pick<ContainerConfig, 'seccompProfile'> {
  if (sc.privileged) return {};
  const profile = sc.seccomp;
  if (profile) {
    if (profile.profile_type === 'Unconfined') return { seccompProfile: 'unconfined' };
    if (profile.profile_type === 'Localhost') return { seccompProfile: localhostProfile(profile.localhost_ref ?? '', 'security_context.seccomp.localhost_ref') };
    return {};
  }
  const legacy = sc.seccomp_profile_path ?? '';
  if (legacy === '' || legacy === 'unconfined') return { seccompProfile: 'unconfined' };
  if (legacy === 'runtime/default' || legacy === 'docker/default') return {};
  if (legacy.startsWith('localhost/')) return { seccompProfile: localhostProfile(legacy.slice('localhost/'.length), 'security_context.seccomp_profile_path') };
  throw berthError('InvalidArgument', `security_context.seccomp_profile_path: unknown seccomp profile "${legacy}"`);
}

function localhostProfile(file: string, field: string): string {
  if (!path.isAbsolute(file)) throw berthError('InvalidArgument', `${field}: the seccomp profile "${file}" is not an absolute path`);
  if (!existsSync(file)) throw berthError('NotFound', `${field}: seccomp profile "${file}" not found`);
  return file;
}

function mountOf(m: CriMount, i: number): MountSpec {
  const source = m.host_path ?? '';
  const target = m.container_path ?? '';
  if (!path.isAbsolute(target)) throw berthError('InvalidArgument', `mounts[${i}].container_path "${target}" must be an absolute path`);
  if (!path.isAbsolute(source)) throw berthError('InvalidArgument', `mounts[${i}].host_path "${source}" must be an absolute path`);
  if (!existsSync(source)) throw berthError('InvalidArgument', `mounts[${i}].host_path "${source}" does not exist`);
  const propagation = m.propagation === 'PROPAGATION_BIDIRECTIONAL' ? 'rshared' : m.propagation === 'PROPAGATION_HOST_TO_CONTAINER' ? 'rslave' : 'rprivate';
  // SELinux relabelling is ignored: berth applies no SELinux labels.
  return { type: 'bind', source, target, readOnly: !!m.readonly, options: [propagation] };
}

function deviceOf(d: { container_path?: string; host_path?: string; permissions?: string }, i: number): DeviceMapping {
  const host = d.host_path ?? '';
  if (!path.isAbsolute(host)) throw berthError('InvalidArgument', `devices[${i}].host_path "${host}" must be an absolute path`);
  if (!existsSync(host)) throw berthError('NotFound', `devices[${i}].host_path "${host}" not found`);
  return { pathOnHost: host, pathInContainer: d.container_path || host, permissions: d.permissions || 'rwm' };
}

/** LinuxContainerResources as berth's; zero means unset, as in the CRI. */
export function resourcesOf(r: CriLinuxContainerResources | undefined): Pick<ContainerConfig, 'resources' | 'oomScoreAdj'> {
  if (!r) return {};
  const n = (v: string | undefined) => Number(v ?? 0);
  const res: Resources = {};
  if (n(r.cpu_period)) res.cpuPeriod = n(r.cpu_period);
  if (n(r.cpu_quota)) res.cpuQuota = n(r.cpu_quota);
  if (n(r.cpu_shares)) res.cpuShares = n(r.cpu_shares);
  if (n(r.memory_limit_in_bytes)) {
    res.memory = n(r.memory_limit_in_bytes);
    // No swap beyond the memory limit unless asked, as containerd sets it.
    res.memorySwap = n(r.memory_swap_limit_in_bytes) || res.memory;
  }
  if (r.cpuset_cpus) res.cpusetCpus = r.cpuset_cpus;
  if (r.cpuset_mems) res.cpusetMems = r.cpuset_mems;
  if (r.hugepage_limits?.length) res.hugepageLimits = r.hugepage_limits.map((h) => ({ pageSize: h.page_size ?? '', limit: n(h.limit) }));
  const oom = r.oom_score_adj !== undefined && n(r.oom_score_adj) !== 0 ? { oomScoreAdj: n(r.oom_score_adj) } : {};
  return { resources: res, ...oom };
}
